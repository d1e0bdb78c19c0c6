"""Time to first spoken token: GraphLLM vs livekit-plugins-langchain's LLMAdapter vs the bare model.

Every variant streams the same scripted chat model (word-sized chunks, no artificial
delay, so only adapter overhead is measured) through the same graph: a router LLM node
(not spoken) → a model node (spoken). Conversations run 5 turns with LiveKit's growing
chat history, as a session would pass it. "First spoken token" is the first chunk of the
model node's answer; the official adapter also forwards the router's output before it
(it cannot filter), which is reported separately.

    uv run python -m benchmarks.graph_llm_ttft            # ~60 s
    uv run python -m benchmarks.graph_llm_ttft --quick    # ~20 s

Starts `redis-server` (Debian package) on a free loopback port for the Redis rows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from livekit.agents import llm
from livekit.plugins.langchain import LLMAdapter

from agent.graph_llm import GraphLLM
from tests.agent.graph_fakes import ScriptedChatModel, build_router_graph, room_rate_tool
from workflows.checkpoint import open_checkpointer

ANSWER = "Breakfast is served from seven to ten in the garden room, and coffee is free."
FIRST_WORD = "Breakfast"
ROUTER_LABEL = "concierge"
TURNS = 5
INSTRUCTIONS = "You are the concierge of Hotel Aurora."


@dataclass
class Samples:
    first_token: list[float] = field(default_factory=list)
    first_chunk: list[float] = field(default_factory=list)
    leaked: int = 0


def _models() -> tuple[ScriptedChatModel, ScriptedChatModel]:
    return (
        ScriptedChatModel(default=ROUTER_LABEL, model_name="router"),
        ScriptedChatModel(default=ANSWER),
    )


def _graph(checkpointer: BaseCheckpointSaver[Any] | None) -> Any:
    router, model = _models()
    return build_router_graph(
        router=router, model=model, tools=[room_rate_tool()], checkpointer=checkpointer
    )


async def _measure_stream(start: float, stream: llm.LLMStream, samples: Samples) -> str:
    text: list[str] = []
    async with stream:
        async for chunk in stream:
            content = chunk.delta.content if chunk.delta else None
            if not content:
                continue
            now = time.perf_counter()
            if not text:
                samples.first_chunk.append(now - start)
            if content.startswith(FIRST_WORD) and len(samples.first_token) < len(
                samples.first_chunk
            ):
                samples.first_token.append(now - start)
            text.append(content)
    spoken = "".join(text)
    if ROUTER_LABEL in spoken:
        samples.leaked += 1
    return spoken


async def _conversation(make_llm: Callable[[str], llm.LLM], thread: str, samples: Samples) -> None:
    adapter = make_llm(thread)
    chat_ctx = llm.ChatContext()
    chat_ctx.add_message(role="system", content=INSTRUCTIONS, id="lk.agent_task.instructions")
    for turn in range(TURNS):
        chat_ctx.add_message(role="user", content=f"Question {turn} about breakfast?")
        start = time.perf_counter()
        spoken = await _measure_stream(start, adapter.chat(chat_ctx=chat_ctx.copy()), samples)
        chat_ctx.add_message(role="assistant", content=spoken)


async def _bare(model: ScriptedChatModel, samples: Samples) -> None:
    prompt = [SystemMessage(INSTRUCTIONS), HumanMessage("Question about breakfast?")]
    for _ in range(TURNS):
        start = time.perf_counter()
        first = True
        async for chunk in model.astream(prompt):
            if first and chunk.content:
                samples.first_token.append(time.perf_counter() - start)
                samples.first_chunk.append(time.perf_counter() - start)
                first = False
        prompt = [*prompt, AIMessage(ANSWER), HumanMessage("Another question?")]
        model.prompts.clear()


@contextmanager
def _redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("redis-server did not start within 10 s") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@asynccontextmanager
async def _variants(redis_url: str | None) -> AsyncIterator[dict[str, Callable[[str], llm.LLM]]]:
    memory_graph = _graph(InMemorySaver())
    plain_graph = _graph(None)
    variants: dict[str, Callable[[str], llm.LLM]] = {
        "official LLMAdapter, no checkpointer": lambda _t: LLMAdapter(plain_graph),
        "official LLMAdapter, InMemorySaver": lambda t: LLMAdapter(
            memory_graph, config={"configurable": {"thread_id": t}}
        ),
        "GraphLLM, InMemorySaver": lambda t: GraphLLM(memory_graph, thread_id=t),
    }
    if redis_url is None:
        yield variants
        return
    async with open_checkpointer(redis_url=redis_url, sqlite_path=None) as saver:
        redis_graph = _graph(saver)
        variants["official LLMAdapter, RedisCheckpointSaver"] = lambda t: LLMAdapter(
            redis_graph, config={"configurable": {"thread_id": t}}
        )
        variants["GraphLLM, RedisCheckpointSaver"] = lambda t: GraphLLM(redis_graph, thread_id=t)
        yield variants


def _ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if q == 0.5:
        return statistics.median(values) * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] * 1000


async def _run(rounds: int, warmup: int, redis_url: str | None) -> None:
    bare_model = ScriptedChatModel(default=ANSWER)
    async with _variants(redis_url) as variants:
        results: dict[str, Samples] = {"bare model stream": Samples()}
        results.update({name: Samples() for name in variants})
        for round_no in range(warmup + rounds):
            target = results if round_no >= warmup else {name: Samples() for name in results}
            gc.collect()
            await _bare(bare_model, target["bare model stream"])
            for name, make in variants.items():
                await _conversation(make, f"{name}-{round_no}", target[name])
    _report(results, rounds)


def _report(results: dict[str, Samples], rounds: int) -> None:
    bare = _ms(results["bare model stream"].first_token, 0.5)
    print(f"\nTime to first spoken token, {rounds} conversations x {TURNS} turns per variant\n")
    header = f"{'variant':44} {'p50 ms':>8} {'p95 ms':>8} {'+bare p50':>10}  router text spoken"
    print(header)
    print("-" * len(header))
    for name, samples in results.items():
        p50 = _ms(samples.first_token, 0.5)
        leak = f"{samples.leaked}/{len(samples.first_chunk)} turns" if samples.leaked else "never"
        print(
            f"{name:44} {p50:8.3f} {_ms(samples.first_token, 0.95):8.3f} {p50 - bare:10.3f}  {leak}"
        )
    official = _ms(results["official LLMAdapter, InMemorySaver"].first_token, 0.5)
    ours = _ms(results["GraphLLM, InMemorySaver"].first_token, 0.5)
    print(
        f"\nGraphLLM vs official (InMemorySaver): {ours - official:+.3f} ms p50 "
        f"(target <= +0.5 ms) -> {'PASS' if ours - official <= 0.5 else 'FAIL'}"
    )
    if "GraphLLM, RedisCheckpointSaver" in results:
        redis = _ms(results["GraphLLM, RedisCheckpointSaver"].first_token, 0.5)
        print(
            f"GraphLLM Redis vs InMemorySaver: {redis - ours:+.3f} ms p50 "
            f"(target <= +1.5 ms) -> {'PASS' if redis - ours <= 1.5 else 'FAIL'}"
        )
    else:
        print("Redis rows skipped: redis-server is not installed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer conversations (~20 s)")
    parser.add_argument("--rounds", type=int, default=None, help="conversations per variant")
    args = parser.parse_args(argv)
    rounds = args.rounds or (40 if args.quick else 120)
    with _redis_server() as redis_url:
        asyncio.run(_run(rounds, warmup=5, redis_url=redis_url))


if __name__ == "__main__":
    main()
