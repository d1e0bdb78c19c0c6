"""Local speech providers and self-hosted speech servers, on real engines and real sockets:
faster-whisper with the pinned `tiny.en`, the espeak-ng binary, and a loopback HTTP server
speaking the OpenAI audio API."""

from __future__ import annotations

import asyncio
import io
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _worker_fakes import clear_worker_env
from aiohttp import web
from audio_fakes import rms, speech_clip, voiced_wave
from livekit import rtc
from livekit.agents import APIConnectionError, APIError, stt
from livekit.plugins import openai, silero
from whisper_model import bundled_whisper_model

from agent.__main__ import auto_mode
from agent.local_speech import WhisperOptions, load_whisper_model, local_speech_available
from agent.local_speech.espeak_tts import EspeakTTS
from agent.local_speech.whisper_stt import WhisperSTT
from agent.providers import MediaConfig, build_stt, build_tts
from agent.settings import WorkerSettings

needs_espeak = pytest.mark.usefixtures("espeak_binary")


def settings(**env: object) -> WorkerSettings:
    return WorkerSettings(_env_file=None, **env)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_worker_env(monkeypatch)


@pytest.fixture(scope="module")
def vad() -> silero.VAD:
    return silero.VAD.load()


@pytest.fixture(scope="module")
def whisper() -> Any:
    return load_whisper_model(WhisperOptions(model=str(bundled_whisper_model())))


def frames_of(samples: np.ndarray, rate: int, *, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    step = rate * frame_ms // 1000
    return [
        rtc.AudioFrame(
            data=samples[i : i + step].tobytes(),
            sample_rate=rate,
            num_channels=1,
            samples_per_channel=len(samples[i : i + step]),
        )
        for i in range(0, len(samples), step)
    ]


# --- choosing providers -------------------------------------------------------------------


def test_auto_prefers_a_configured_cloud_key() -> None:
    deepgram_only = settings(DEEPGRAM_API_KEY="dg")
    assert (deepgram_only.stt_providers, deepgram_only.tts_providers) == (
        ("deepgram",),
        ("deepgram",),
    )
    openai_only = settings(OPENAI_API_KEY="sk")
    assert (openai_only.stt_providers, openai_only.tts_providers) == (("openai",), ("openai",))


@needs_espeak
def test_auto_without_keys_runs_on_local_speech() -> None:
    local = settings(LOCAL_STT_MODEL=str(bundled_whisper_model()))
    assert (local.stt_providers, local.tts_providers) == (("whisper",), ("espeak",))
    assert local.problems_for("console") == []
    assert local_speech_available(local.whisper_options)
    # `python -m agent` with no keys and the local engines ready opens the voice console
    assert auto_mode(local) == "console"


def test_a_missing_whisper_model_is_one_line_naming_download_files(tmp_path: Path) -> None:
    missing = settings(DATA_DIR=tmp_path, STT_PROVIDER="whisper", TTS_PROVIDER="espeak")
    problems = missing.problems_for("console")
    assert problems[0].startswith(
        "the Whisper model 'base' is not downloaded: run `python -m agent download-files`"
    )
    assert auto_mode(settings(DATA_DIR=tmp_path)) == "console-text"
    not_a_model = settings(STT_PROVIDER="whisper", LOCAL_STT_MODEL=str(tmp_path))
    assert (
        f"LOCAL_STT_MODEL: {tmp_path} is not a Whisper model directory"
        in (not_a_model.problems_for("console")[0])
    )


def test_a_missing_espeak_binary_is_named_and_auto_falls_back_to_a_cloud_voice() -> None:
    explicit = settings(TTS_PROVIDER="espeak", LOCAL_TTS_BINARY="no-such-espeak")
    assert any("needs the no-such-espeak binary" in p for p in explicit.problems_for("console"))
    auto = settings(LOCAL_TTS_BINARY="no-such-espeak")
    assert auto.tts_providers == ("openai",)
    assert any(
        "OPENAI_API_KEY is not set" in p and "TTS_PROVIDER=auto" in p
        for p in auto.problems_for("console")
    )


def test_auto_cannot_be_mixed_into_a_chain() -> None:
    with pytest.raises(ValueError, match="auto cannot be part of a list"):
        settings(STT_PROVIDER="auto,deepgram")


def test_a_self_hosted_speech_server_needs_no_openai_key() -> None:
    hosted = settings(STT_BASE_URL="http://127.0.0.1:9/v1", TTS_BASE_URL="http://127.0.0.1:9/v1")
    assert (hosted.stt_providers, hosted.tts_providers) == (("openai",), ("openai",))
    assert hosted.problems_for("console") == []


def test_the_factory_builds_whisper_behind_the_vad_adapter_and_espeak(vad: silero.VAD) -> None:
    config = MediaConfig.from_settings(
        settings(
            STT_PROVIDER="whisper",
            TTS_PROVIDER="espeak",
            LOCAL_STT_MODEL="small",
            STT_LANGUAGE="de-DE",
            LOCAL_TTS_VOICE="de",
        )
    )
    recogniser = build_stt(config, vad=vad)
    assert isinstance(recogniser, stt.StreamAdapter)
    assert isinstance(recogniser.wrapped_stt, WhisperSTT)
    assert recogniser.wrapped_stt.options.model == "small"
    assert recogniser.wrapped_stt.options.language == "de"
    speaker = build_tts(config)
    assert isinstance(speaker, EspeakTTS) and speaker.voice == "de"
    chain = build_stt(
        MediaConfig.build(stt_providers="deepgram,whisper", deepgram_api_key="dg"), vad=vad
    )
    assert isinstance(chain, stt.FallbackAdapter)


# --- the engines ----------------------------------------------------------------------------


async def test_whisper_transcribes_espeak_speech_at_room_rate(whisper: Any) -> None:
    recogniser = WhisperSTT(WhisperOptions(model=str(bundled_whisper_model())), model=whisper)
    event = await recogniser.recognize(frames_of(speech_clip("question", 48000), 48000))
    text = event.alternatives[0].text.lower()
    # the committed clip is trimmed tight, so its last word is clipped; tiny.en still gets these
    assert "when" in text and "breakfast" in text, text
    assert event.alternatives[0].language == "en"


async def test_whisper_hears_nothing_in_silence(whisper: Any) -> None:
    recogniser = WhisperSTT(WhisperOptions(model=str(bundled_whisper_model())), model=whisper)
    quiet = np.random.default_rng(3).normal(0, 6, 16000).astype(np.int16)
    event = await recogniser.recognize(frames_of(quiet, 16000))
    assert event.alternatives[0].text.strip(" .") == ""


async def test_whisper_without_its_model_fails_with_the_download_hint(tmp_path: Path) -> None:
    recogniser = WhisperSTT(WhisperOptions(model="base", cache_dir=tmp_path))
    with pytest.raises(APIConnectionError, match="download-files"):
        await recogniser.recognize(frames_of(voiced_wave(0.5, 16000), 16000))


@needs_espeak
async def test_espeak_streams_speech_that_whisper_understands(whisper: Any) -> None:
    speaker = EspeakTTS()
    text = "Breakfast is served in the garden room."
    frames = [event.frame async for event in speaker.synthesize(text)]
    assert len(frames) > 1, "audio arrives in pieces, not as one block"
    audio = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])
    assert rms(audio) > 1000
    recogniser = WhisperSTT(WhisperOptions(model=str(bundled_whisper_model())), model=whisper)
    heard = (await recogniser.recognize(frames)).alternatives[0].text.lower()
    assert "breakfast" in heard and "garden room" in heard, heard


@needs_espeak
async def test_espeak_missing_or_failing_is_a_clear_error() -> None:
    with pytest.raises(APIError, match="cannot run 'no-such-espeak'"):
        [e async for e in EspeakTTS(binary="no-such-espeak").synthesize("Hello")]
    with pytest.raises(APIError, match="espeak-ng"):
        [e async for e in EspeakTTS(voice="xx-no-such-voice").synthesize("Hello")]


# --- an OpenAI-compatible speech server on loopback ---------------------------------------


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return out.getvalue()


class SpeechServer:
    """`POST /v1/audio/transcriptions` and `/v1/audio/speech`, as self-hosted servers answer."""

    def __init__(self) -> None:
        self.transcriptions: list[dict[str, Any]] = []
        self.speech: list[dict[str, Any]] = []

    async def transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        with wave.open(io.BytesIO(upload.file.read()), "rb") as wav:
            seconds = wav.getnframes() / wav.getframerate()
        self.transcriptions.append(
            {"model": form["model"], "language": form.get("language"), "seconds": seconds}
        )
        return web.json_response({"text": "When is breakfast served?"})

    async def speak(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.speech.append(body)
        audio = voiced_wave(1.5, 24000)
        return web.Response(body=wav_bytes(audio, 24000), content_type="audio/wav")


@pytest.fixture
async def speech_server() -> AsyncIterator[tuple[str, SpeechServer]]:
    server = SpeechServer()
    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", server.transcribe)
    app.router.add_post("/v1/audio/speech", server.speak)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1", server
    await runner.cleanup()


async def test_stt_and_tts_base_urls_reach_a_self_hosted_server(
    speech_server: tuple[str, SpeechServer], vad: silero.VAD
) -> None:
    url, server = speech_server
    config = MediaConfig.from_settings(
        settings(
            STT_BASE_URL=url,
            STT_MODEL="Systran/faster-whisper-small",
            TTS_BASE_URL=url,
            TTS_MODEL="kokoro",
            TTS_VOICE="af_heart",
        )
    )
    recogniser = build_stt(config, vad=vad)
    assert isinstance(recogniser, stt.StreamAdapter)
    assert isinstance(recogniser.wrapped_stt, openai.STT)
    clip = speech_clip("question", 16000)
    event = await asyncio.wait_for(recogniser.recognize(frames_of(clip, 16000)), 30)
    assert event.alternatives[0].text == "When is breakfast served?"
    assert server.transcriptions == [
        {
            "model": "Systran/faster-whisper-small",
            "language": "en",
            "seconds": pytest.approx(len(clip) / 16000, abs=0.02),
        }
    ]

    speaker = build_tts(config)
    frames = [e.frame async for e in speaker.synthesize("Breakfast is at seven.")]
    assert sum(f.duration for f in frames) == pytest.approx(1.5, abs=0.05)
    assert server.speech[0]["model"] == "kokoro"
    assert server.speech[0]["voice"] == "af_heart"
    assert server.speech[0]["input"] == "Breakfast is at seven."
    assert server.speech[0]["response_format"] == "wav"
    await speaker.aclose()


async def test_a_damaged_whisper_model_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes(b"not a model")
    recogniser = WhisperSTT(WhisperOptions(model=str(tmp_path)))
    with pytest.raises(APIConnectionError, match="cannot load the Whisper model"):
        await recogniser.recognize(frames_of(voiced_wave(0.5, 16000), 16000))
