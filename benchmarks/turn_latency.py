"""End of caller speech → first agent audio frame, through the real voice session.

Real espeak-ng speech (48 kHz) is played in real time into the project's own session
(`agent.providers.build_session`) with the real Silero VAD; STT, LLM and TTS are scripted
with fixed latencies. Rows:

- anchor: a plain scripted LiveKit LLM (`ttft` then the reply);
- GraphLLM with a one-node graph whose chat model has the same `ttft`;
- GraphLLM with the project's assistant graph (no tools) on that chat model;
- the anchor again with TURN_DETECTION=stt (endpointing anchored on the STT's timing).

    floor    = endpointing delay + LLM time to first token + TTS time to first byte
    share    = measured − floor       (what the framework and the graph add)
    EOS lag  = the detector's end-of-speech estimate − the true end (part of the share;
               Silero's with TURN_DETECTION=vad, the STT's with stt)
    after EOS = share − EOS lag       (session + graph work once the end of speech is known)

Run: `uv run python -m benchmarks.turn_latency [--turns N] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from livekit.agents import llm
from livekit.agents.vad import VAD

from agent.graph_llm import GraphLLM
from agent.providers import MediaConfig, TurnDetection, build_vad
from workflows.assistant import SPEAKING_NODES, build_assistant_graph

TESTS_AGENT = Path(__file__).resolve().parents[1] / "tests" / "agent"
QUESTION = "When is breakfast served?"
ANSWER = "Breakfast is from seven."
SAMPLE_RATE = 48000
TARGET_SHARE_MS = 30.0


def _test_module(name: str) -> ModuleType:
    """The scripted media and chat model live with the tests; reuse them, don't copy them."""
    if str(TESTS_AGENT) not in sys.path:
        sys.path.insert(0, str(TESTS_AGENT))
    return importlib.import_module(name)


fakes = _test_module("audio_fakes")
graph_fakes = _test_module("graph_fakes")


@dataclass(frozen=True)
class Delays:
    endpointing: float
    llm_ttft: float
    tts_ttfb: float

    @property
    def floor(self) -> float:
        return self.endpointing + self.llm_ttft + self.tts_ttfb


@dataclass(frozen=True)
class Turn:
    total: float
    eos_lag: float


def chat_model(delays: Delays) -> BaseChatModel:
    model: BaseChatModel = graph_fakes.ScriptedChatModel(
        default=ANSWER, first_token_delay=delays.llm_ttft
    )
    return model


def anchor_llm(delays: Delays) -> llm.LLM:
    scripted: llm.LLM = fakes.ScriptedLLM(ANSWER, ttft=delays.llm_ttft)
    return scripted


def trivial_graph_llm(delays: Delays) -> llm.LLM:
    model = chat_model(delays)

    async def respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", respond)
    builder.add_edge(START, "model")
    graph = builder.compile(checkpointer=InMemorySaver())
    return GraphLLM(graph, thread_id="bench-trivial", speaking_nodes=("model",))


def assistant_graph_llm(delays: Delays) -> llm.LLM:
    graph = build_assistant_graph(model=chat_model(delays), tools=[], checkpointer=InMemorySaver())
    return GraphLLM(graph, thread_id="bench-assistant", speaking_nodes=SPEAKING_NODES)


ROWS: list[tuple[str, Callable[[Delays], llm.LLM], TurnDetection]] = [
    ("scripted LLM (anchor)", anchor_llm, "vad"),
    ("GraphLLM · one-node graph", trivial_graph_llm, "vad"),
    ("GraphLLM · assistant graph", assistant_graph_llm, "vad"),
    ("scripted LLM · stt turns", anchor_llm, "stt"),
]


def media_config(delays: Delays, turn_detection: TurnDetection) -> MediaConfig:
    # VAD silence below the endpointing delay, so the configured delay is what governs
    return MediaConfig.build(
        turn_detection=turn_detection,
        min_endpointing_delay=delays.endpointing,
        vad_min_silence_duration=min(0.3, delays.endpointing),
        preemptive_generation=False,
        aec_warmup_duration=0.0,
    )


async def measure(
    make_llm: Callable[[Delays], llm.LLM],
    *,
    vad: VAD,
    delays: Delays,
    turns: int,
    turn_detection: TurnDetection,
) -> list[Turn]:
    config = media_config(delays, turn_detection)
    harness = await fakes.VoiceHarness.start(
        config,
        vad=vad,
        stt=fakes.ScriptedSTT([QUESTION] * turns),
        llm=make_llm(delays),
        tts=fakes.ScriptedTTS(ttfb=delays.tts_ttfb, seconds_per_char=0.01),
        sample_rate=SAMPLE_RATE,
    )
    clip = fakes.speech_clip("question", SAMPLE_RATE)
    # the framework stamps turns with time.time(); the mic with perf_counter
    wall_offset = time.time() - time.perf_counter()
    results: list[Turn] = []
    try:
        for index in range(turns):
            heard_before = len(harness.speaker.frames)
            speech_end = await harness.mic.play(clip)
            first = await harness.speaker.wait_for_audio(after=heard_before)
            await harness.wait_for_state("listening", after=index + 1)
            metrics = harness.messages("user")[index].metrics
            detected_end = metrics["stopped_speaking_at"] - wall_offset
            results.append(Turn(total=first.at - speech_end, eos_lag=detected_end - speech_end))
            await asyncio.sleep(0.2)
    finally:
        await harness.aclose()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q) - 1]


def ms(value: float) -> str:
    return f"{value * 1000:7.1f}"


async def run(turns: int, delays: Delays) -> None:
    vad = build_vad(media_config(delays, "vad"))
    print(
        f"turns per row: {turns}   endpointing {delays.endpointing * 1000:.0f} ms + LLM ttft "
        f"{delays.llm_ttft * 1000:.0f} ms + TTS ttfb {delays.tts_ttfb * 1000:.0f} ms "
        f"= floor {delays.floor * 1000:.0f} ms   (all figures in ms)"
    )
    header = (
        f"{'row':<28} {'p50':>7} {'p95':>7} {'share50':>7} {'share95':>7} "
        f"{'EOSlag50':>8} {'afterEOS50':>10} {'afterEOS95':>10} {'x anchor':>8}"
    )
    print(header)
    print("-" * len(header))
    anchor_p50: float | None = None
    summary: list[tuple[str, float, float, float]] = []
    for name, make_llm, turn_detection in ROWS:
        samples = await measure(
            make_llm, vad=vad, delays=delays, turns=turns, turn_detection=turn_detection
        )
        totals = [s.total for s in samples]
        shares = [s.total - delays.floor for s in samples]
        lags = [s.eos_lag for s in samples]
        after_eos = [s.total - s.eos_lag - delays.floor for s in samples]
        p50 = percentile(totals, 50)
        anchor_p50 = anchor_p50 or p50
        print(
            f"{name:<28} {ms(p50)} {ms(percentile(totals, 95))} {ms(percentile(shares, 50))} "
            f"{ms(percentile(shares, 95))}  {ms(percentile(lags, 50))} "
            f"   {ms(percentile(after_eos, 50))}    {ms(percentile(after_eos, 95))} "
            f"{p50 / anchor_p50:8.3f}"
        )
        summary.append(
            (name, percentile(shares, 50), percentile(lags, 50), percentile(after_eos, 50))
        )
    print()
    print(f"target: share ≤ {TARGET_SHARE_MS:.0f} ms at p50")
    for name, share, lag, after in summary:
        print(
            f"  {name:<28} share {share * 1000:5.1f} ms {verdict(share)}; "
            f"{lag * 1000:5.1f} ms of it is end-of-speech detection, "
            f"{after * 1000:5.1f} ms is session + graph {verdict(after)}"
        )


def verdict(seconds: float) -> str:
    return "(meets)" if seconds * 1000 <= TARGET_SHARE_MS else "(MISSES)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=8, help="caller turns per row")
    parser.add_argument("--quick", action="store_true", help="3 turns per row")
    parser.add_argument("--endpointing", type=float, default=0.5, help="seconds")
    parser.add_argument("--llm-ttft", type=float, default=0.2, help="seconds")
    parser.add_argument("--tts-ttfb", type=float, default=0.15, help="seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("livekit", "livekit.agents", "agent"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    delays = Delays(args.endpointing, args.llm_ttft, args.tts_ttfb)
    asyncio.run(run(3 if args.quick else args.turns, delays))


if __name__ == "__main__":
    main()
