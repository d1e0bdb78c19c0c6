"""The voice session and its speech providers: STT, TTS and VAD built from one typed config,
and the `AgentSession` that joins them with the graph's LLM and the turn-handling options.

`MediaConfig` is the slice of the worker settings this module needs; `MediaConfig.from_settings`
copies it, field by field, off the `WorkerSettings` the edge read. Nothing here reads the
environment.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal, get_args

from livekit.agents import AgentSession, llm, stt, tts, vad
from livekit.agents.types import NOT_GIVEN
from livekit.agents.voice.turn import TurnHandlingOptions
from livekit.plugins import deepgram, openai, silero
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from agent.local_speech import (
    DEFAULT_ESPEAK_BINARY,
    DEFAULT_ESPEAK_RATE,
    DEFAULT_ESPEAK_VOICE,
    WhisperOptions,
)

if TYPE_CHECKING:
    from agent.settings import WorkerSettings

logger = logging.getLogger(__name__)

STTProvider = Literal["deepgram", "openai", "whisper"]
TTSProvider = Literal["openai", "deepgram", "espeak"]
TurnDetection = Literal["vad", "stt"]

DEFAULT_DEEPGRAM_STT_MODEL = "nova-3"
DEFAULT_OPENAI_STT_MODEL = "gpt-4o-mini-transcribe"
DEFAULT_OPENAI_TTS_MODEL = "gpt-4o-mini-tts"
DEFAULT_OPENAI_TTS_VOICE = "ash"
DEFAULT_DEEPGRAM_TTS_MODEL = "aura-2-andromeda-en"
# Deepgram's code for "detect and switch languages"; OpenAI spells it detect_language
MULTILINGUAL = "multi"

# self-hosted OpenAI-compatible servers usually take no key, but the OpenAI client needs one
UNUSED_API_KEY = "no-key"
# OpenAI's TTS default is mp3; WAV is what every OpenAI-compatible speech server also speaks
SELF_HOSTED_TTS_FORMAT = "wav"

# config fields whose environment variable is not their upper-cased name
_ENV_NAMES = {
    "stt_providers": "STT_PROVIDER",
    "tts_providers": "TTS_PROVIDER",
    "whisper": "LOCAL_STT_MODEL",
}


def env_name(field: str) -> str:
    """The environment variable behind a config field."""
    return _ENV_NAMES.get(field, field.upper())


class MediaConfigError(ValueError):
    """A media setting is missing or invalid; the message is one line naming the variable."""


def _provider_list(value: Any, allowed: tuple[str, ...], field: str) -> tuple[str, ...]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    items = [str(part).strip().lower() for part in parts if str(part).strip()]
    variable = env_name(field)
    if not items:
        raise ValueError(f"{variable} must name one or more of {', '.join(allowed)}")
    for item in items:
        if item not in allowed:
            raise ValueError(
                f"{variable} has unknown provider {item!r}; "
                f"expected one or more of {', '.join(allowed)}"
            )
    if len(set(items)) != len(items):
        raise ValueError(f"{variable} lists a provider twice")
    return tuple(items)


class MediaConfig(BaseModel):
    """What the STT/TTS/VAD factories and the session need from the worker settings.

    The first provider of each list is the primary; a longer list builds a fallback chain in
    that order. `stt_model`, `tts_model` and `tts_voice` apply to the primary only; fallbacks
    use their provider's default so a model name never reaches the wrong vendor.
    """

    model_config = ConfigDict(frozen=True)

    stt_providers: tuple[STTProvider, ...] = ("deepgram",)
    stt_model: str | None = None
    stt_language: str = Field(default="en-US", min_length=2)
    deepgram_api_key: SecretStr | None = None
    stt_base_url: str | None = None
    stt_api_key: SecretStr | None = None
    whisper: WhisperOptions = Field(default_factory=WhisperOptions)
    tts_providers: tuple[TTSProvider, ...] = ("openai",)
    tts_model: str | None = None
    tts_voice: str | None = None
    tts_base_url: str | None = None
    tts_api_key: SecretStr | None = None
    local_tts_voice: str = DEFAULT_ESPEAK_VOICE
    local_tts_rate: int = Field(default=DEFAULT_ESPEAK_RATE, ge=80, le=450)
    local_tts_binary: str = DEFAULT_ESPEAK_BINARY
    openai_api_key: SecretStr | None = None
    vad_activation_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    vad_min_silence_duration: float = Field(default=0.55, gt=0.0, le=5.0)
    turn_detection: TurnDetection = "vad"
    min_endpointing_delay: float = Field(default=0.5, ge=0.0, le=10.0)
    max_endpointing_delay: float = Field(default=3.0, gt=0.0, le=30.0)
    min_interruption_duration: float = Field(default=0.5, ge=0.0, le=10.0)
    min_interruption_words: int = Field(default=0, ge=0, le=50)
    preemptive_generation: bool = True
    # None keeps the framework's choice (3 s from the agent's first words, none for outbound SIP)
    aec_warmup_duration: float | None = Field(default=None, ge=0.0, le=30.0)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {
            key: (None if isinstance(value, str) and not value.strip() else value)
            for key, value in data.items()
        }
        for field, allowed in (
            ("stt_providers", get_args(STTProvider)),
            ("tts_providers", get_args(TTSProvider)),
        ):
            if field in data:
                data[field] = _provider_list(data[field] or "", allowed, field)
        return data

    @model_validator(mode="after")
    def _check_delays(self) -> MediaConfig:
        if self.max_endpointing_delay < self.min_endpointing_delay:
            raise ValueError(
                "MAX_ENDPOINTING_DELAY must be at least MIN_ENDPOINTING_DELAY "
                f"({self.min_endpointing_delay} s)"
            )
        return self

    @classmethod
    def build(cls, **values: Any) -> MediaConfig:
        """Validate `values`, turning pydantic's report into one line naming the variable."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise MediaConfigError(_one_line(exc)) from None

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> MediaConfig:
        """The media slice of the worker settings, with `auto` providers already resolved."""
        return cls.build(
            stt_providers=settings.stt_providers,
            stt_model=settings.stt_model,
            stt_language=settings.stt_language,
            deepgram_api_key=settings.deepgram_api_key,
            stt_base_url=settings.stt_base_url,
            stt_api_key=settings.stt_api_key,
            whisper=settings.whisper_options,
            tts_providers=settings.tts_providers,
            tts_model=settings.tts_model,
            tts_voice=settings.tts_voice,
            tts_base_url=settings.tts_base_url,
            tts_api_key=settings.tts_api_key,
            local_tts_voice=settings.local_tts_voice,
            local_tts_rate=settings.local_tts_rate,
            local_tts_binary=settings.local_tts_binary,
            openai_api_key=settings.openai_api_key,
            vad_activation_threshold=settings.vad_activation_threshold,
            vad_min_silence_duration=settings.vad_min_silence_duration,
            turn_detection=settings.turn_detection,
            min_endpointing_delay=settings.min_endpointing_delay,
            max_endpointing_delay=settings.max_endpointing_delay,
            min_interruption_duration=settings.min_interruption_duration,
            min_interruption_words=settings.min_interruption_words,
            preemptive_generation=settings.preemptive_generation,
            aec_warmup_duration=settings.aec_warmup_duration,
        )

    def missing_keys(self) -> list[str]:
        """One line per provider whose API key is absent, e.g. for a start-up check."""
        problems: list[str] = []
        for kind, providers in (("STT", self.stt_providers), ("TTS", self.tts_providers)):
            for provider in providers:
                if provider in _KEYED and self._key_for(provider, kind) is None:
                    problems.append(_missing_key_message(provider, kind))
        return problems

    def _key_for(self, provider: str, kind: str) -> str | None:
        if provider == "deepgram":
            secret = self.deepgram_api_key
        else:
            base_url = self.stt_base_url if kind == "STT" else self.tts_base_url
            own = self.stt_api_key if kind == "STT" else self.tts_api_key
            secret = own or self.openai_api_key
            if base_url is not None and not _plain(secret):
                return UNUSED_API_KEY
        return _plain(secret) or None

    def _require_key(self, provider: str, kind: str) -> str:
        key = self._key_for(provider, kind)
        if key is None:
            raise MediaConfigError(_missing_key_message(provider, kind))
        return key


_KEYED = ("deepgram", "openai")


def _plain(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""


def _missing_key_message(provider: str, kind: str) -> str:
    return f"{_key_env(provider)} is required because {kind}_PROVIDER includes {provider}"


def _key_env(provider: str) -> str:
    return env_name("deepgram_api_key" if provider == "deepgram" else "openai_api_key")


def _one_line(exc: ValidationError) -> str:
    error = exc.errors(include_input=False)[0]
    location = error.get("loc") or ()
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{env_name(str(location[0]))}: {message}" if location else message


def _build_one_stt(config: MediaConfig, provider: STTProvider, *, primary: bool) -> stt.STT:
    if provider == "whisper":
        from agent.local_speech.whisper_stt import WhisperSTT

        return WhisperSTT(config.whisper)
    key = config._require_key(provider, "STT")
    model = config.stt_model if primary else None
    if provider == "deepgram":
        return deepgram.STT(
            model=model or DEFAULT_DEEPGRAM_STT_MODEL, language=config.stt_language, api_key=key
        )
    multilingual = config.stt_language == MULTILINGUAL
    # OpenAI's transcription API takes the bare ISO-639-1 code
    return openai.STT(
        model=model or DEFAULT_OPENAI_STT_MODEL,
        language="en" if multilingual else config.stt_language.split("-")[0],
        detect_language=multilingual,
        api_key=key,
        base_url=config.stt_base_url or NOT_GIVEN,
    )


def build_stt(config: MediaConfig, *, vad: vad.VAD) -> stt.STT:
    """The configured STT, or a `stt.FallbackAdapter` over all of them in order.

    Providers that only transcribe whole utterances (Whisper, OpenAI's HTTP API) are
    streamed by LiveKit's `stt.StreamAdapter`, which cuts the audio at `vad`'s ends of speech.
    """
    instances = [
        _build_one_stt(config, provider, primary=index == 0)
        for index, provider in enumerate(config.stt_providers)
    ]
    if len(instances) == 1:
        only = instances[0]
        return only if only.capabilities.streaming else stt.StreamAdapter(stt=only, vad=vad)
    return stt.FallbackAdapter(instances, vad=vad)


def _deepgram_tts_model(config: MediaConfig, *, primary: bool) -> str:
    if not primary:
        return DEFAULT_DEEPGRAM_TTS_MODEL
    # an Aura model id names its voice (aura-2-thalia-en), so either setting may carry it
    model = config.tts_model or config.tts_voice or DEFAULT_DEEPGRAM_TTS_MODEL
    if not model.startswith("aura"):
        variable = env_name("tts_model" if config.tts_model else "tts_voice")
        raise MediaConfigError(
            f"{variable}: Deepgram TTS needs an Aura model id such as "
            f"{DEFAULT_DEEPGRAM_TTS_MODEL!r}, got {model!r}"
        )
    return model


def _build_one_tts(config: MediaConfig, provider: TTSProvider, *, primary: bool) -> tts.TTS:
    if provider == "espeak":
        from agent.local_speech.espeak_tts import EspeakTTS

        return EspeakTTS(
            voice=config.local_tts_voice,
            words_per_minute=config.local_tts_rate,
            binary=config.local_tts_binary,
        )
    key = config._require_key(provider, "TTS")
    if provider == "deepgram":
        return deepgram.TTS(model=_deepgram_tts_model(config, primary=primary), api_key=key)
    self_hosted: dict[str, Any] = {}
    if config.tts_base_url:
        self_hosted = {"base_url": config.tts_base_url, "response_format": SELF_HOSTED_TTS_FORMAT}
    return openai.TTS(
        model=(config.tts_model if primary else None) or DEFAULT_OPENAI_TTS_MODEL,
        voice=(config.tts_voice if primary else None) or DEFAULT_OPENAI_TTS_VOICE,
        api_key=key,
        **self_hosted,
    )


def build_tts(config: MediaConfig) -> tts.TTS:
    """The configured TTS, or a `tts.FallbackAdapter` over all of them in order."""
    instances = [
        _build_one_tts(config, provider, primary=index == 0)
        for index, provider in enumerate(config.tts_providers)
    ]
    if len(instances) == 1:
        return instances[0]
    return tts.FallbackAdapter(instances)


def build_vad(config: MediaConfig) -> vad.VAD:
    """Load Silero VAD (the model ships inside the plugin). Blocking: call it in prewarm."""
    return silero.VAD.load(
        activation_threshold=config.vad_activation_threshold,
        min_silence_duration=config.vad_min_silence_duration,
    )


def turn_handling(config: MediaConfig, *, allow_preemptive: bool) -> TurnHandlingOptions:
    """Turn-taking options, all decided locally (no cloud turn detector or interruption model).

    Preemptive generation starts the reply from the final transcript before the turn is
    committed; a graph that can act on the world must not, so the caller decides.
    """
    return TurnHandlingOptions(
        turn_detection=config.turn_detection,
        endpointing={
            "mode": "fixed",
            "min_delay": config.min_endpointing_delay,
            "max_delay": config.max_endpointing_delay,
        },
        interruption={
            "enabled": True,
            "mode": "vad",
            "min_duration": config.min_interruption_duration,
            "min_words": config.min_interruption_words,
        },
        preemptive_generation={"enabled": allow_preemptive and config.preemptive_generation},
    )


def build_session(
    settings: MediaConfig | WorkerSettings,
    *,
    llm: llm.LLM,
    vad: vad.VAD,
    allow_preemptive: bool,
    stt: stt.STT | None = None,
    tts: tts.TTS | None = None,
) -> AgentSession[Any]:
    """The session for one call. STT and TTS come from settings unless given (tests, console).

    `allow_preemptive` must be False whenever the graph has side-effecting tools.
    """
    config = settings if isinstance(settings, MediaConfig) else MediaConfig.from_settings(settings)
    options = turn_handling(config, allow_preemptive=allow_preemptive)
    logger.info(
        "voice session: turn detection %s, endpointing %.2f-%.2f s, preemptive generation %s",
        config.turn_detection,
        config.min_endpointing_delay,
        config.max_endpointing_delay,
        "on" if options["preemptive_generation"]["enabled"] else "off",
    )
    extra: dict[str, Any] = {}
    if config.aec_warmup_duration is not None:
        extra["aec_warmup_duration"] = config.aec_warmup_duration
    return AgentSession(
        stt=stt if stt is not None else build_stt(config, vad=vad),
        vad=vad,
        llm=llm,
        tts=tts if tts is not None else build_tts(config),
        turn_handling=options,
        **extra,
    )
