"""Local speech recognition with faster-whisper (CTranslate2 Whisper, MIT licence).

`WhisperSTT` is a non-streaming `stt.STT`: it transcribes one whole utterance per call, so the
session drives it through LiveKit's VAD-segmented `stt.StreamAdapter`. The model loads in a
worker thread (at session start through `prewarm`, else on the first utterance) and every
transcription runs in a thread too, so the event loop never waits on CTranslate2.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectionError, APITimeoutError, stt
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.utils import is_given
from livekit.agents.utils.audio import AudioBuffer

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

from agent.local_speech import (
    WhisperModelMissing,
    WhisperOptions,
    load_whisper_model,
    whisper_language,
)

WHISPER_SAMPLE_RATE = 16000
# Whisper's own rule for a segment that is noise, not speech (see its transcribe.py)
_NO_SPEECH_PROB = 0.6
_NOISE_LOGPROB = -1.0


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    confidence: float


def transcribe(model: WhisperModel, audio: np.ndarray, options: WhisperOptions) -> Transcript:
    """Transcribe 16 kHz mono float32 `audio`; noise-only segments are dropped. Blocking."""
    segments, info = model.transcribe(
        audio,
        language=options.language,
        beam_size=options.beam_size,
        # Silero already cut the utterance; each one stands alone
        vad_filter=False,
        condition_on_previous_text=False,
        # no sampling fallback on hard audio: the same utterance always reads the same
        temperature=0.0,
        without_timestamps=True,
    )
    kept = [
        segment
        for segment in segments
        if not (segment.no_speech_prob > _NO_SPEECH_PROB and segment.avg_logprob < _NOISE_LOGPROB)
    ]
    text = " ".join(segment.text.strip() for segment in kept).strip()
    logprob = float(np.mean([segment.avg_logprob for segment in kept])) if kept else -10.0
    return Transcript(
        text=text, language=info.language, confidence=float(np.clip(np.exp(logprob), 0.0, 1.0))
    )


def pcm_for_whisper(buffer: AudioBuffer) -> np.ndarray:
    """LiveKit frames (any rate, any channel count) → 16 kHz mono float32 in [-1, 1]."""
    frame = rtc.combine_audio_frames(buffer)
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        samples = samples.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    if frame.sample_rate != WHISPER_SAMPLE_RATE and samples.size:
        resampler = rtc.AudioResampler(
            frame.sample_rate, WHISPER_SAMPLE_RATE, quality=rtc.AudioResamplerQuality.HIGH
        )
        mono = rtc.AudioFrame(
            data=samples.tobytes(),
            sample_rate=frame.sample_rate,
            num_channels=1,
            samples_per_channel=len(samples),
        )
        out = [*resampler.push(mono), *resampler.flush()]
        samples = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in out])
    return samples.astype(np.float32) / 32768.0


class WhisperSTT(stt.STT):
    """faster-whisper as a LiveKit STT (whole utterances; wrap it in `stt.StreamAdapter`)."""

    def __init__(self, options: WhisperOptions, *, model: WhisperModel | None = None) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._options = options
        self._loaded: WhisperModel | None = model
        self._loading: asyncio.Future[Any] | None = None
        # one utterance at a time: CTranslate2 already uses every core for one
        self._busy = asyncio.Lock()

    @property
    def model(self) -> str:
        return self._options.model

    @property
    def provider(self) -> str:
        return "faster-whisper"

    @property
    def options(self) -> WhisperOptions:
        return self._options

    def prewarm(self) -> None:
        """Start loading the model in a thread so the first utterance does not wait for it."""
        # without a running loop the first utterance loads it instead
        with contextlib.suppress(RuntimeError):
            self._start_loading()

    def _start_loading(self) -> asyncio.Future[Any]:
        if self._loading is None:
            self._loading = asyncio.ensure_future(
                asyncio.to_thread(load_whisper_model, self._options)
            )
        return self._loading

    async def loaded_model(self) -> WhisperModel:
        if self._loaded is None:
            try:
                self._loaded = await self._start_loading()
            except WhisperModelMissing as exc:
                self._loading = None
                raise APIConnectionError(str(exc), retryable=False) from exc
            except Exception as exc:  # a damaged or foreign model file, an unknown device
                self._loading = None
                raise APIConnectionError(
                    f"cannot load the Whisper model {self._options.model!r}: {exc}",
                    retryable=False,
                ) from exc
        return self._loaded

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        options = self._options
        if is_given(language):
            options = replace(options, language=whisper_language(language))
        audio = pcm_for_whisper(buffer)
        model = await self.loaded_model()
        async with self._busy:
            try:
                result = await asyncio.wait_for(
                    asyncio.to_thread(transcribe, model, audio, options), options.timeout_s
                )
            except TimeoutError as exc:
                raise APITimeoutError(
                    f"Whisper took over {options.timeout_s:.0f} s for "
                    f"{len(audio) / WHISPER_SAMPLE_RATE:.1f} s of audio",
                    retryable=False,
                ) from exc
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(result.language or options.language or "en"),
                    text=result.text,
                    confidence=result.confidence,
                )
            ],
        )
