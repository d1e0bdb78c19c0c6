"""A call on real audio, with no scripted provider anywhere on the speech path.

espeak-ng speaks the caller's question → real Silero VAD → local Whisper (`tiny.en`, shipped
on PyPI and pinned by sha256) behind LiveKit's VAD-segmented StreamAdapter → GraphLLM with
the assistant graph (fallback responder, demo PMS, sample documents) → espeak-ng TTS → the
audio frames the caller would hear, which are transcribed back with the same Whisper model.

The model loads once per test session; every wait is generous, since Whisper shares two
cores with other work. Nothing here asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _worker_fakes import clear_worker_env
from audio_fakes import CapturingAudioOutput, PCMAudioInput, resample, rms
from langchain_core.messages import AIMessage
from livekit import rtc
from livekit.agents import Agent, AgentSession, llm, stt
from livekit.agents.vad import VAD
from livekit.agents.voice.events import AgentStateChangedEvent, ConversationItemAddedEvent
from livekit.plugins import silero
from whisper_model import bundled_whisper_model

from agent.brain import Brain, build_brain
from agent.local_speech import load_whisper_model
from agent.local_speech.espeak_tts import EspeakTTS
from agent.local_speech.whisper_stt import WhisperSTT
from agent.metadata import DispatchMetadata
from agent.providers import MediaConfig, build_session, build_tts
from agent.settings import WorkerSettings

pytestmark = pytest.mark.usefixtures("espeak_binary")

ROOM_RATE = 48000
# upper bound for one turn on a loaded 2-core machine; a quiet one answers in a few seconds
TURN_WAIT_S = 120.0
QUESTION = "What is the Wi-Fi password?"
BARGE_IN = "Sorry, one more thing."


@pytest.fixture(scope="session")
def whisper() -> Any:
    settings = local_settings(Path("/nonexistent"))
    return load_whisper_model(settings.whisper_options)


@pytest.fixture(scope="session")
def vad() -> Iterator[VAD]:
    yield silero.VAD.load()


def local_settings(data_dir: Path) -> WorkerSettings:
    return WorkerSettings(  # type: ignore[call-arg]
        _env_file=None,
        DATA_DIR=data_dir,
        STT_PROVIDER="whisper",
        TTS_PROVIDER="espeak",
        LOCAL_STT_MODEL=str(bundled_whisper_model()),
        MIN_ENDPOINTING_DELAY="0.4",
        # no echo here, so the caller may interrupt from the agent's first word
        AEC_WARMUP_DURATION="0",
    )


def speak(text: str, rate: int = ROOM_RATE) -> np.ndarray:
    """The caller's voice: espeak-ng's PCM, resampled to the room's rate."""

    async def synthesize() -> list[rtc.AudioFrame]:
        return [event.frame async for event in EspeakTTS(voice="en-us").synthesize(text)]

    frame = rtc.combine_audio_frames(asyncio.run(synthesize()))
    return resample(np.frombuffer(frame.data, dtype=np.int16), frame.sample_rate, rate)


@pytest.fixture(scope="session")
def caller_audio() -> dict[str, np.ndarray]:
    return {text: speak(text) for text in (QUESTION, BARGE_IN)}


def words(text: str) -> str:
    """Lower-case letters and digits only, so "Wi-Fi" and "WiFi" compare equal."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass
class RealAudioCall:
    session: AgentSession[Any]
    brain: Brain
    mic: PCMAudioInput
    speaker: CapturingAudioOutput
    stt: stt.STT
    items: list[llm.ChatMessage] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_item(self, event: ConversationItemAddedEvent) -> None:
        if isinstance(event.item, llm.ChatMessage):
            self.items.append(event.item)
            self._changed.set()

    def on_state(self, event: AgentStateChangedEvent) -> None:
        self.states.append(event.new_state)
        self._changed.set()

    def messages(self, role: str) -> list[llm.ChatMessage]:
        return [item for item in self.items if item.role == role]

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(TURN_WAIT_S):
            while not condition():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    # audio frames do not set the event, so look again now and then
                    await asyncio.wait_for(self._changed.wait(), 0.1)


@pytest.fixture
async def call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whisper: Any, vad: VAD
) -> AsyncIterator[RealAudioCall]:
    clear_worker_env(monkeypatch)
    settings = local_settings(tmp_path / "data")
    config = MediaConfig.from_settings(settings)
    async with contextlib.AsyncExitStack() as stack:
        brain = await build_brain(
            settings,
            DispatchMetadata(property_id="alpine-chalet"),
            room_name="front-desk",
            caller_identity="guest-7",
            stack=stack,
        )
        # the factory's own TTS; the STT shares the session-wide model instead of loading it
        recogniser = stt.StreamAdapter(stt=WhisperSTT(config.whisper, model=whisper), vad=vad)
        session = build_session(
            config,
            llm=brain.llm,
            vad=vad,
            allow_preemptive=False,
            stt=recogniser,
            tts=build_tts(config),
        )
        started = RealAudioCall(
            session=session,
            brain=brain,
            mic=PCMAudioInput(sample_rate=ROOM_RATE),
            speaker=CapturingAudioOutput(),
            stt=recogniser,
        )
        session.input.audio = started.mic
        session.output.audio = started.speaker
        session.on("conversation_item_added", started.on_item)
        session.on("agent_state_changed", started.on_state)
        await session.start(Agent(instructions=brain.instructions))
        try:
            yield started
        finally:
            started.mic.close()
            await session.aclose()


async def transcribe_back(whisper: Any, frames: list[rtc.AudioFrame]) -> str:
    settings = local_settings(Path("/nonexistent"))
    event = await WhisperSTT(settings.whisper_options, model=whisper).recognize(frames)
    return event.alternatives[0].text


def voiced_share(audio: np.ndarray, sample_rate: int) -> float:
    """Share of 20 ms windows loud enough to be speech (silence and noise stay far below)."""
    window = sample_rate // 50
    windows = [audio[i : i + window] for i in range(0, len(audio) - window, window)]
    return sum(rms(w) > 500 for w in windows) / max(1, len(windows))


async def test_a_spoken_question_is_answered_aloud_with_the_wifi_password(
    call: RealAudioCall, whisper: Any, caller_audio: dict[str, np.ndarray]
) -> None:
    spoken_at = await call.mic.play(caller_audio[QUESTION])
    await call.wait_until(lambda: bool(call.messages("assistant")))
    # the whole reply has been played out once the agent listens again
    await call.wait_until(lambda: call.states[-1:] == ["listening"] and bool(call.speaker.frames))

    heard_question = call.messages("user")[0].text_content or ""
    assert "wifipassword" in words(heard_question), heard_question
    answer = call.messages("assistant")[0]
    assert "matterhorn88" in (answer.text_content or ""), answer.text_content
    assert not answer.interrupted

    assert call.speaker.frames[0].at > spoken_at, "the agent answered after the caller spoke"
    heard = call.speaker.audio()
    rate = call.speaker.frames[0].frame.sample_rate
    assert len(heard) / rate > 1.0
    assert rms(heard) > 1000, "the reply is audible, not silence"
    assert voiced_share(heard, rate) > 0.3, "the reply is speech, not a click or a tone"

    spoken_back = words(await transcribe_back(whisper, [c.frame for c in call.speaker.frames]))
    assert "password" in spoken_back, spoken_back
    # tiny.en hears espeak's "matterhorn88" as "Matterhorn 88" or "Matter 488": both parts
    assert "matter" in spoken_back and "88" in spoken_back, spoken_back


async def full_reply_duration(call: RealAudioCall) -> float:
    """How long the first answer lasts when spoken to the end (from the graph's checkpoint)."""
    state = await call.brain.graph.aget_state({"configurable": {"thread_id": call.brain.thread_id}})
    replies = [m for m in state.values["messages"] if isinstance(m, AIMessage) and m.content]
    frames = [event.frame async for event in EspeakTTS().synthesize(str(replies[0].content))]
    return sum(frame.duration for frame in frames)


async def test_speaking_over_the_reply_stops_it(
    call: RealAudioCall, caller_audio: dict[str, np.ndarray]
) -> None:
    await call.mic.play(caller_audio[QUESTION])
    await call.wait_until(lambda: bool(call.speaker.frames))
    # the caller talks over the agent while most of its answer is still to come
    await call.mic.play(caller_audio[BARGE_IN])
    await call.wait_until(lambda: len(call.messages("user")) >= 2)
    await call.wait_until(lambda: call.speaker.segments[0].interrupted is not None)

    first = call.speaker.segments[0]
    assert first.interrupted, "the caller's voice stopped the reply"
    assert first.played is not None
    assert first.played < await full_reply_duration(call) / 2
    assert call.messages("assistant")[0].interrupted
    barge_in = words(call.messages("user")[1].text_content or "")
    assert "onemorething" in barge_in or "sorry" in barge_in, barge_in
