"""The STT/TTS/VAD factory: what gets built from settings, and the errors an operator sees."""

from __future__ import annotations

import pytest
from livekit.agents import stt, tts
from livekit.plugins import deepgram, openai, silero

from agent.providers import (
    MediaConfig,
    MediaConfigError,
    build_stt,
    build_tts,
    build_vad,
)
from agent.settings import WorkerSettings

SECRET = "sk-do-not-print-me"


def worker_settings(**env: str) -> WorkerSettings:
    return WorkerSettings(_env_file=None, **env)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def vad() -> silero.VAD:
    return silero.VAD.load()


def test_reads_every_media_field_from_worker_settings() -> None:
    settings = worker_settings(
        STT_PROVIDER="deepgram, openai",
        STT_MODEL="nova-3-medical",
        STT_LANGUAGE="fr",
        DEEPGRAM_API_KEY="dg-key",
        TTS_PROVIDER="deepgram,openai",
        TTS_MODEL="aura-2-thalia-en",
        OPENAI_API_KEY=SECRET,
        VAD_ACTIVATION_THRESHOLD="0.6",
        VAD_MIN_SILENCE_DURATION="0.4",
        TURN_DETECTION="stt",
        MIN_ENDPOINTING_DELAY="0.3",
        MAX_ENDPOINTING_DELAY="4",
        MIN_INTERRUPTION_DURATION="0.8",
        MIN_INTERRUPTION_WORDS="1",
        PREEMPTIVE_GENERATION="false",
        AEC_WARMUP_DURATION="0",
        STT_BASE_URL="http://127.0.0.1:8000/v1",
        TTS_BASE_URL="http://127.0.0.1:8880/v1",
        LOCAL_STT_MODEL="small",
        LOCAL_STT_BEAM_SIZE="2",
        LOCAL_TTS_VOICE="de",
        LOCAL_TTS_RATE="150",
        DATA_DIR="/srv/agent",
    )
    config = MediaConfig.from_settings(settings)
    assert config.whisper.model == "small"
    assert config.whisper.beam_size == 2
    assert config.whisper.language == "fr"
    assert str(config.whisper.cache_dir) == "/srv/agent/models/whisper"
    secrets = {"deepgram_api_key", "openai_api_key", "stt_api_key", "tts_api_key"}
    assert config.model_dump(exclude={*secrets, "whisper"}) == {
        "stt_providers": ("deepgram", "openai"),
        "stt_model": "nova-3-medical",
        "stt_language": "fr",
        "stt_base_url": "http://127.0.0.1:8000/v1",
        "tts_providers": ("deepgram", "openai"),
        "tts_model": "aura-2-thalia-en",
        "tts_voice": None,
        "tts_base_url": "http://127.0.0.1:8880/v1",
        "local_tts_voice": "de",
        "local_tts_rate": 150,
        "local_tts_binary": "espeak-ng",
        "vad_activation_threshold": 0.6,
        "vad_min_silence_duration": 0.4,
        "turn_detection": "stt",
        "min_endpointing_delay": 0.3,
        "max_endpointing_delay": 4.0,
        "min_interruption_duration": 0.8,
        "min_interruption_words": 1,
        "preemptive_generation": False,
        "aec_warmup_duration": 0.0,
    }
    assert SECRET not in repr(config)


def test_single_providers_are_the_plugins_themselves(vad: silero.VAD) -> None:
    config = MediaConfig.build(
        stt_language="es",
        deepgram_api_key="dg-key",
        openai_api_key="sk-key",
        tts_voice="coral",
    )
    recogniser = build_stt(config, vad=vad)
    assert isinstance(recogniser, deepgram.STT)
    assert recogniser.model == "nova-3"
    assert recogniser._opts.language == "es"

    speaker = build_tts(config)
    assert isinstance(speaker, openai.TTS)
    assert speaker.model == "gpt-4o-mini-tts"
    assert speaker._opts.voice == "coral"


def test_second_provider_builds_a_fallback_chain_in_order(vad: silero.VAD) -> None:
    config = MediaConfig.build(
        stt_providers="deepgram,openai",
        stt_model="nova-2-general",
        tts_providers="openai,deepgram",
        tts_model="tts-1",
        tts_voice="alloy",
        deepgram_api_key="dg-key",
        openai_api_key="sk-key",
    )
    recogniser = build_stt(config, vad=vad)
    assert isinstance(recogniser, stt.FallbackAdapter)
    primary_stt, backup_stt = recogniser._stt_instances
    assert isinstance(primary_stt, deepgram.STT) and primary_stt.model == "nova-2-general"
    # the OpenAI transcriber is not streaming, so the adapter drives it with the VAD
    assert isinstance(backup_stt, stt.StreamAdapter)
    assert isinstance(backup_stt.wrapped_stt, openai.STT)
    assert backup_stt.wrapped_stt.model == "gpt-4o-mini-transcribe"

    speaker = build_tts(config)
    assert isinstance(speaker, tts.FallbackAdapter)
    primary_tts, backup_tts = speaker._tts_instances
    assert isinstance(primary_tts, openai.TTS) and primary_tts.model == "tts-1"
    # the primary's model and voice never reach the fallback vendor
    assert isinstance(backup_tts, deepgram.TTS) and backup_tts.model == "aura-2-andromeda-en"


def test_multilingual_deepgram_setting_asks_openai_to_detect_the_language(
    vad: silero.VAD,
) -> None:
    config = MediaConfig.build(
        stt_providers="openai", stt_language="multi", openai_api_key="sk-key"
    )
    recogniser = build_stt(config, vad=vad)
    # whole-utterance transcription runs behind the VAD-segmenting adapter
    assert isinstance(recogniser, stt.StreamAdapter)
    assert isinstance(recogniser.wrapped_stt, openai.STT)
    assert recogniser.wrapped_stt._opts.detect_language is True


def test_deepgram_tts_voice_is_an_aura_model_id() -> None:
    config = MediaConfig.build(
        tts_providers="deepgram", tts_voice="aura-2-thalia-en", deepgram_api_key="dg-key"
    )
    speaker = build_tts(config)
    assert isinstance(speaker, deepgram.TTS)
    assert speaker.model == "aura-2-thalia-en"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stt_providers": "vosk"}, "STT_PROVIDER has unknown provider 'vosk'"),
        (
            {"tts_providers": " , "},
            "TTS_PROVIDER must name one or more of openai, deepgram, espeak",
        ),
        ({"tts_providers": "openai,openai"}, "TTS_PROVIDER lists a provider twice"),
        ({"min_endpointing_delay": 2, "max_endpointing_delay": 1}, "MAX_ENDPOINTING_DELAY"),
        ({"vad_activation_threshold": 1.5}, "VAD_ACTIVATION_THRESHOLD: "),
        ({"turn_detection": "model"}, "TURN_DETECTION: "),
        ({"min_interruption_words": -1}, "MIN_INTERRUPTION_WORDS: "),
    ],
)
def test_invalid_settings_are_one_line_naming_the_variable(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(MediaConfigError) as caught:
        MediaConfig.build(openai_api_key=SECRET, **values)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"openai_api_key": SECRET}, "DEEPGRAM_API_KEY is required because STT_PROVIDER"),
        (
            {"stt_providers": "deepgram,openai", "deepgram_api_key": SECRET},
            "OPENAI_API_KEY is required because STT_PROVIDER includes openai",
        ),
    ],
)
def test_missing_stt_key_names_the_variable(
    vad: silero.VAD, values: dict[str, object], variable: str
) -> None:
    config = MediaConfig.build(**values)
    with pytest.raises(MediaConfigError, match=variable) as caught:
        build_stt(config, vad=vad)
    assert SECRET not in str(caught.value)


def test_missing_tts_key_names_the_variable() -> None:
    config = MediaConfig.build(tts_providers="openai,deepgram", openai_api_key="sk-key")
    assert config.missing_keys() == [
        "DEEPGRAM_API_KEY is required because STT_PROVIDER includes deepgram",
        "DEEPGRAM_API_KEY is required because TTS_PROVIDER includes deepgram",
    ]
    with pytest.raises(MediaConfigError, match="DEEPGRAM_API_KEY is required because TTS_PROVIDER"):
        build_tts(config)


def test_deepgram_tts_rejects_an_openai_voice_name() -> None:
    config = MediaConfig.build(
        tts_providers="deepgram", tts_voice="alloy", deepgram_api_key="dg-key"
    )
    with pytest.raises(MediaConfigError, match="TTS_VOICE: Deepgram TTS needs an Aura model id"):
        build_tts(config)


def test_vad_is_silero_with_the_configured_silence() -> None:
    detector = build_vad(MediaConfig.build(vad_min_silence_duration=0.3))
    assert isinstance(detector, silero.VAD)
    assert detector._opts.min_silence_duration == 0.3
