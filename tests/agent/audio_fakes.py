"""Scripted speech components that move real PCM through a real `AgentSession`.

- `PCMAudioInput` plays speech clips (and a low noise floor between them) in real time,
  like a microphone, and reports when each clip's last sample left the "mic".
- `ScriptedSTT` listens to the audio it is given: an energy endpointer finds utterances
  and it streams interim and final transcripts taken, in order, from a script.
- `ScriptedLLM` answers every turn with scripted text after a fixed time to first token.
- `ScriptedTTS` synthesises a voiced waveform whose length follows the text, after a fixed
  time to first byte.
- `CapturingAudioOutput` plays out in simulated real time, records every frame and honours
  `clear_buffer()` (barge-in) exactly like a real sink.
- `VoiceHarness` wires them into the project's own `build_session` and records what the
  caller would hear and see.

Shared by tests/agent and benchmarks/turn_latency.py.
"""

from __future__ import annotations

import asyncio
import collections
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import Agent, AgentSession, llm, stt, tts, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils.audio import AudioBuffer
from livekit.agents.vad import VAD
from livekit.agents.voice.events import AgentStateChangedEvent, ConversationItemAddedEvent
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities

from agent.providers import MediaConfig, build_session

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
# upper bound for any wait on the session; the scripted pipeline answers in about a second
WAIT_S = 15.0

# ---------------------------------------------------------------------------------------
# PCM helpers


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM samples and their sample rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample with LiveKit's own resampler (the one the SDK uses for room audio)."""
    if from_rate == to_rate:
        return samples
    resampler = rtc.AudioResampler(from_rate, to_rate, quality=rtc.AudioResamplerQuality.HIGH)
    frame = rtc.AudioFrame(
        data=samples.tobytes(),
        sample_rate=from_rate,
        num_channels=1,
        samples_per_channel=len(samples),
    )
    out = [*resampler.push(frame), *resampler.flush()]
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in out])


def speech_clip(name: str, sample_rate: int) -> np.ndarray:
    """A committed espeak-ng clip from tests/fixtures/audio at `sample_rate`."""
    samples, rate = read_wav(FIXTURES / f"{name}.wav")
    return resample(samples, rate, sample_rate)


def rms(samples: np.ndarray) -> float:
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def voiced_wave(duration: float, sample_rate: int, *, pitch: float = 140.0) -> np.ndarray:
    """A speech-like waveform: harmonics of `pitch` under a ~4 Hz syllable envelope."""
    n = max(1, round(duration * sample_rate))
    t = np.arange(n) / sample_rate
    tone = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    return (tone * envelope * 6000.0).astype(np.int16)


# ---------------------------------------------------------------------------------------
# Audio input


@dataclass
class _Clip:
    samples: np.ndarray
    done: asyncio.Future[float]
    position: int = 0


class PCMAudioInput(AudioInput):
    """A real-time "microphone": queued clips, else a quiet noise floor, in fixed frames."""

    def __init__(self, *, sample_rate: int, frame_ms: int = 20, seed: int = 7) -> None:
        super().__init__(label="pcm-input")
        self.sample_rate = sample_rate
        self._frame_samples = sample_rate * frame_ms // 1000
        self._frame_s = self._frame_samples / sample_rate
        self._queue: collections.deque[_Clip] = collections.deque()
        self._rng = np.random.default_rng(seed)
        self._t0: float | None = None
        self._frames_sent = 0
        self._closed = False

    def play(self, samples: np.ndarray) -> asyncio.Future[float]:
        """Queue a clip; resolves to the perf_counter time its last sample was spoken."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append(_Clip(samples=samples, done=done))
        return done

    def close(self) -> None:
        self._closed = True
        for clip in self._queue:
            if not clip.done.done():
                clip.done.cancel()

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + (self._frames_sent + 1) * self._frame_s
        if due > now:
            await asyncio.sleep(due - now)
        chunk, finished, unused = self._next_chunk()
        self._frames_sent += 1
        if finished is not None and not finished.done():
            # the frame is captured by `due`; the clip's last sample came `unused` earlier
            finished.set_result(due - unused / self.sample_rate)
        return rtc.AudioFrame(
            data=chunk.tobytes(),
            sample_rate=self.sample_rate,
            num_channels=1,
            samples_per_channel=self._frame_samples,
        )

    def _next_chunk(self) -> tuple[np.ndarray, asyncio.Future[float] | None, int]:
        noise = self._rng.normal(0.0, 6.0, self._frame_samples).astype(np.int16)
        if not self._queue:
            return noise, None, 0
        clip = self._queue[0]
        part = clip.samples[clip.position : clip.position + self._frame_samples]
        clip.position += len(part)
        chunk = noise.copy()
        chunk[: len(part)] = part
        if clip.position >= len(clip.samples):
            self._queue.popleft()
            return chunk, clip.done, self._frame_samples - len(part)
        return chunk, None, 0


# ---------------------------------------------------------------------------------------
# Audio output


@dataclass
class PlayedSegment:
    started_at: float
    pushed: float = 0.0
    played: float | None = None
    interrupted: bool | None = None


@dataclass
class CapturedFrame:
    frame: rtc.AudioFrame
    at: float


class CapturingAudioOutput(AudioOutput):
    """Records agent audio and plays it out in simulated real time."""

    def __init__(self, *, sample_rate: int | None = None) -> None:
        super().__init__(
            label="capture",
            capabilities=AudioOutputCapabilities(pause=False),
            sample_rate=sample_rate,
        )
        self.frames: list[CapturedFrame] = []
        self.segments: list[PlayedSegment] = []
        self._capturing: PlayedSegment | None = None
        self._playing_out: PlayedSegment | None = None
        self._finish_timer: asyncio.TimerHandle | None = None
        self._audio_arrived = asyncio.Event()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        now = time.perf_counter()
        if self._capturing is None:
            self._capturing = PlayedSegment(started_at=now)
            self.segments.append(self._capturing)
            self.on_playback_started(created_at=time.time())
        self._capturing.pushed += frame.duration
        self.frames.append(CapturedFrame(frame=frame, at=now))
        self._audio_arrived.set()

    def flush(self) -> None:
        super().flush()
        segment, self._capturing = self._capturing, None
        if segment is None:
            return
        # the segment keeps "playing" until its audio has had time to be heard
        self._playing_out = segment
        remaining = segment.pushed - (time.perf_counter() - segment.started_at)
        self._finish_timer = asyncio.get_running_loop().call_later(
            max(0.0, remaining), self._finish, segment, False
        )

    def clear_buffer(self) -> None:
        for segment in (self._playing_out, self._capturing):
            if segment is not None:
                self._finish(segment, True)

    def _finish(self, segment: PlayedSegment, interrupted: bool) -> None:
        if segment is self._playing_out:
            self._playing_out = None
            if self._finish_timer is not None:
                self._finish_timer.cancel()
                self._finish_timer = None
        if segment is self._capturing:
            self._capturing = None
        segment.played = min(segment.pushed, time.perf_counter() - segment.started_at)
        segment.interrupted = interrupted
        self.on_playback_finished(playback_position=segment.played, interrupted=interrupted)

    async def wait_for_audio(self, *, after: int = 0) -> CapturedFrame:
        """The first frame captured beyond the first `after` frames."""
        async with asyncio.timeout(WAIT_S):
            while len(self.frames) <= after:
                self._audio_arrived.clear()
                await self._audio_arrived.wait()
        return self.frames[after]

    def audio(self) -> np.ndarray:
        return (
            np.concatenate([np.frombuffer(c.frame.data, dtype=np.int16) for c in self.frames])
            if self.frames
            else np.zeros(0, dtype=np.int16)
        )


# ---------------------------------------------------------------------------------------
# STT


class _ScriptedPlugin:
    """The name every scripted plugin reports in LiveKit's metrics and logs."""

    @property
    def model(self) -> str:
        return "scripted"

    @property
    def provider(self) -> str:
        return "tests"


class _Endpointer:
    """Energy-based utterance finder on the audio clock (what a streaming STT does)."""

    def __init__(self, *, threshold: float, final_silence: float, idle_final: float) -> None:
        self.threshold = threshold
        self.final_silence = final_silence
        self.idle_final = idle_final
        self.in_speech = False
        self.speech_time = 0.0
        self.silence_time = 0.0

    def push(self, samples: np.ndarray, duration: float) -> str | None:
        """Classify a frame: start, voiced or end of an utterance, or idle after long silence."""
        if rms(samples) >= self.threshold:
            self.silence_time = 0.0
            self.speech_time += duration
            if not self.in_speech:
                self.in_speech = True
                return "start"
            return "voiced"
        self.silence_time += duration
        if self.in_speech:
            if self.silence_time < self.final_silence:
                return "voiced"
            self.in_speech = False
            self.speech_time = 0.0
            return "end"
        if self.silence_time >= self.idle_final:
            self.silence_time = 0.0
            return "idle"
        return None


class ScriptedSTT(_ScriptedPlugin, stt.STT):
    """Transcribes each utterance it hears with the next scripted transcript."""

    def __init__(
        self,
        transcripts: Sequence[str],
        *,
        language: str = "en",
        final_silence: float = 0.25,
        interim_interval: float = 0.3,
        idle_final: float = 1.0,
        threshold: float = 300.0,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self._script = collections.deque(transcripts)
        self.language = LanguageCode(language)
        self.final_silence = final_silence
        self.interim_interval = interim_interval
        self.idle_final = idle_final
        self.threshold = threshold
        self.finals: list[tuple[str, float]] = []

    def next_transcript(self) -> str:
        return self._script.popleft() if self._script else ""

    def event(
        self, kind: stt.SpeechEventType, text: str = "", *, speech_end_time: float | None = None
    ) -> stt.SpeechEvent:
        transcript = kind in (
            stt.SpeechEventType.INTERIM_TRANSCRIPT,
            stt.SpeechEventType.FINAL_TRANSCRIPT,
        )
        alternatives = [stt.SpeechData(language=self.language, text=text, confidence=0.95)]
        return stt.SpeechEvent(
            type=kind,
            alternatives=alternatives if transcript else [],
            speech_end_time=speech_end_time,
        )

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        samples = np.frombuffer(frame.data, dtype=np.int16)
        text = self.next_transcript() if rms(samples) >= self.threshold else ""
        return self.event(stt.SpeechEventType.FINAL_TRANSCRIPT, text)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _ScriptedRecognizeStream(stt=self, conn_options=conn_options)


class _ScriptedRecognizeStream(stt.RecognizeStream):
    def __init__(self, *, stt: ScriptedSTT, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=stt, conn_options=conn_options)
        self._scripted = stt

    async def _run(self) -> None:
        script = self._scripted
        endpointer = _Endpointer(
            threshold=script.threshold,
            final_silence=script.final_silence,
            idle_final=script.idle_final,
        )
        words: list[str] = []
        interims = 0
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                continue
            samples = np.frombuffer(item.data, dtype=np.int16)
            state = endpointer.push(samples, item.samples_per_channel / item.sample_rate)
            if state == "start":
                words, interims = script.next_transcript().split(), 0
                self._send(script.event(stt.SpeechEventType.START_OF_SPEECH))
            elif (
                state == "voiced"
                and words
                and endpointer.speech_time >= ((interims + 1) * script.interim_interval)
            ):
                interims += 1
                interim = " ".join(words[:interims])
                self._send(script.event(stt.SpeechEventType.INTERIM_TRANSCRIPT, interim))
            elif state == "end":
                if words:
                    script.finals.append((" ".join(words), time.perf_counter()))
                    self._send(script.event(stt.SpeechEventType.FINAL_TRANSCRIPT, " ".join(words)))
                # audio arrives in real time, so the speech ended this long ago
                ended = time.time() - endpointer.silence_time
                self._send(script.event(stt.SpeechEventType.END_OF_SPEECH, speech_end_time=ended))
                words = []
            elif state == "idle":
                # like a real streaming STT, silence is finalised as an empty result
                self._send(script.event(stt.SpeechEventType.FINAL_TRANSCRIPT))

    def _send(self, event: stt.SpeechEvent) -> None:
        self._event_ch.send_nowait(event)


# ---------------------------------------------------------------------------------------
# LLM


@dataclass
class LLMRequest:
    user_text: str
    at: float
    wall: float
    cancelled: bool = False


class ScriptedLLM(_ScriptedPlugin, llm.LLM):
    """Answers each turn with `reply(user_text)` after `ttft`, streaming word by word."""

    def __init__(
        self,
        reply: Callable[[str], str] | str,
        *,
        ttft: float = 0.0,
        word_interval: float = 0.0,
    ) -> None:
        super().__init__()
        self._reply = reply if callable(reply) else (lambda _text, text=reply: text)
        self.ttft = ttft
        self.word_interval = word_interval
        self.requests: list[LLMRequest] = []

    def reply_for(self, user_text: str) -> str:
        return self._reply(user_text)

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _ScriptedLLMStream(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options
        )


def last_user_text(chat_ctx: llm.ChatContext) -> str:
    for item in reversed(chat_ctx.items):
        if item.type == "message" and item.role == "user":
            return item.text_content or ""
    return ""


class _ScriptedLLMStream(llm.LLMStream):
    def __init__(
        self,
        scripted: ScriptedLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(scripted, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._scripted = scripted

    async def _run(self) -> None:
        user_text = last_user_text(self.chat_ctx)
        request = LLMRequest(user_text=user_text, at=time.perf_counter(), wall=time.time())
        self._scripted.requests.append(request)
        try:
            await asyncio.sleep(self._scripted.ttft)
            request_id = utils.shortuuid("scripted_llm_")
            for index, word in enumerate(self._scripted.reply_for(user_text).split(" ")):
                if index and self._scripted.word_interval:
                    await asyncio.sleep(self._scripted.word_interval)
                delta = word if index == 0 else f" {word}"
                self._event_ch.send_nowait(
                    llm.ChatChunk(
                        id=request_id, delta=llm.ChoiceDelta(role="assistant", content=delta)
                    )
                )
        except asyncio.CancelledError:
            request.cancelled = True
            raise


# ---------------------------------------------------------------------------------------
# TTS


@dataclass
class TTSRequest:
    text: str
    at: float
    first_audio_at: float | None = None
    audio_duration: float = 0.0


@dataclass
class ScriptedTTSOptions:
    ttfb: float = 0.0
    seconds_per_char: float = 0.06
    sample_rate: int = 24000
    chunk_ms: int = 20
    requests: list[TTSRequest] = field(default_factory=list)


class ScriptedTTS(_ScriptedPlugin, tts.TTS):
    """Synthesises a voiced waveform of `seconds_per_char * len(text)` after `ttfb`."""

    def __init__(
        self, *, ttfb: float = 0.0, seconds_per_char: float = 0.06, sample_rate: int = 24000
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=sample_rate,
            num_channels=1,
        )
        self.opts = ScriptedTTSOptions(
            ttfb=ttfb, seconds_per_char=seconds_per_char, sample_rate=sample_rate
        )

    @property
    def requests(self) -> list[TTSRequest]:
        return self.opts.requests

    def duration_for(self, text: str) -> float:
        return len(text.strip()) * self.opts.seconds_per_char

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _ScriptedChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class _ScriptedChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: ScriptedTTS, input_text: str, conn_options: APIConnectOptions):
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._scripted = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        opts = self._scripted.opts
        request = TTSRequest(text=self.input_text, at=time.perf_counter())
        opts.requests.append(request)
        output_emitter.initialize(
            request_id=utils.shortuuid("scripted_tts_"),
            sample_rate=opts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        await asyncio.sleep(opts.ttfb)
        samples = voiced_wave(self._scripted.duration_for(self.input_text), opts.sample_rate)
        chunk = opts.sample_rate * opts.chunk_ms // 1000
        request.first_audio_at = time.perf_counter()
        for start in range(0, len(samples), chunk):
            output_emitter.push(samples[start : start + chunk].tobytes())
        request.audio_duration = len(samples) / opts.sample_rate
        output_emitter.flush()


# ---------------------------------------------------------------------------------------
# Harness


@dataclass
class VoiceHarness:
    """A started session on scripted media, with the caller's view of it."""

    session: AgentSession[Any]
    mic: PCMAudioInput
    speaker: CapturingAudioOutput
    stt: ScriptedSTT
    llm: llm.LLM
    tts: ScriptedTTS
    items: list[llm.ChatMessage] = field(default_factory=list)
    added_at: dict[str, float] = field(default_factory=dict)
    agent_states: list[tuple[str, float]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def start(
        cls,
        config: MediaConfig,
        *,
        vad: VAD,
        stt: ScriptedSTT,
        llm: llm.LLM,
        tts: ScriptedTTS,
        sample_rate: int,
        allow_preemptive: bool = False,
    ) -> VoiceHarness:
        session = build_session(
            config, llm=llm, vad=vad, allow_preemptive=allow_preemptive, stt=stt, tts=tts
        )
        harness = cls(
            session=session,
            mic=PCMAudioInput(sample_rate=sample_rate),
            speaker=CapturingAudioOutput(),
            stt=stt,
            llm=llm,
            tts=tts,
        )
        session.input.audio = harness.mic
        session.output.audio = harness.speaker
        session.on("conversation_item_added", harness._on_item)
        session.on("agent_state_changed", harness._on_agent_state)
        await session.start(Agent(instructions="You are the front desk of a small hotel."))
        return harness

    def _on_item(self, event: ConversationItemAddedEvent) -> None:
        if isinstance(event.item, llm.ChatMessage):
            self.items.append(event.item)
            self.added_at[event.item.id] = time.perf_counter()
            self._changed.set()

    def _on_agent_state(self, event: AgentStateChangedEvent) -> None:
        self.agent_states.append((event.new_state, time.perf_counter()))
        self._changed.set()

    def messages(self, role: str) -> list[llm.ChatMessage]:
        return [item for item in self.items if item.role == role]

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_messages(self, role: str, count: int) -> None:
        await self.wait_until(lambda: len(self.messages(role)) >= count)

    async def wait_for_state(self, state: str, *, after: int = 0) -> float:
        """perf_counter time the agent entered `state` for the (after+1)-th time."""

        def seen() -> list[float]:
            return [at for name, at in self.agent_states if name == state]

        await self.wait_until(lambda: len(seen()) > after)
        return seen()[after]

    async def aclose(self) -> None:
        self.mic.close()
        await self.session.aclose()
