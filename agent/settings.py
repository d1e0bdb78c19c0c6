"""The worker's one settings class, read once at start-up from the environment, `.env` and
`.env.local` (what `lk app env -w` writes; it wins over `.env`).

`load_settings(mode)` is the edge: it reads the environment, checks what the chosen run mode
needs (LiveKit credentials for `start`/`dev`, provider keys for voice) and turns every problem
into one readable line naming the variable, raised as `SettingsError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict
from redis.exceptions import RedisError

from agent.chat.protocol import ReplyMode
from agent.local_speech import (
    WhisperOptions,
    cached_model_path,
    espeak_path,
    faster_whisper_installed,
    missing_model_message,
    whisper_language,
)
from tools.settings import ToolsSettings, describe_settings_error

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from agent.chat.channel import DataChannelConfig

logger = logging.getLogger(__name__)

# Later files win: `.env.local` holds what `lk app env -w` wrote for this machine.
ENV_FILES = (".env", ".env.local")
RunMode = Literal["start", "dev", "console", "console-text", "download-files"]
# "auto" alone picks a cloud provider whose key is set, else the local engine
STT_PROVIDERS = ("auto", "deepgram", "openai", "whisper")
TTS_PROVIDERS = ("auto", "openai", "deepgram", "espeak")
LogFormat = Literal["auto", "text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
TurnDetection = Literal["vad", "stt"]

# AGENT_GRAPH's default: the assistant graph the project ships
DEFAULT_GRAPH = "workflows.assistant:build_graph"
_PROVIDER_KEY_ENV = {"deepgram": "DEEPGRAM_API_KEY", "openai": "OPENAI_API_KEY"}
_URL_SCHEMES = ("ws://", "wss://", "http://", "https://")


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")


def parse_rate(value: str) -> tuple[int, float]:
    """`"10/10s"` → (10, 10.0): that many messages per that many seconds."""
    match = _RATE.match(value)
    if match is None:
        raise ValueError("expected COUNT/SECONDS, e.g. 10/10s")
    count, seconds = int(match.group(1)), float(match.group(2))
    if count < 1 or seconds <= 0:
        raise ValueError("expected a count of at least 1 per a positive number of seconds")
    return count, seconds


def _names(value: str) -> tuple[str, ...]:
    """A comma-separated setting as its non-empty, stripped names."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


class SettingsError(Exception):
    """A configuration problem, phrased as one line fit for a terminal or a log."""


class WorkerSettings(ToolsSettings):
    """Everything the voice worker reads from its environment (plus the tools' settings)."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILES,
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    # LiveKit
    livekit_url: str | None = Field(default=None, alias="LIVEKIT_URL")
    livekit_api_key: str | None = Field(default=None, alias="LIVEKIT_API_KEY")
    livekit_api_secret: SecretStr | None = Field(default=None, alias="LIVEKIT_API_SECRET")
    agent_name: str = Field(default="voice-agent", min_length=1, alias="AGENT_NAME")
    worker_port: int | None = Field(default=None, ge=0, le=65535, alias="WORKER_PORT")
    drain_timeout_s: int = Field(default=1800, ge=0, alias="DRAIN_TIMEOUT_S")
    caller_wait_timeout_s: float = Field(default=60.0, gt=0, alias="CALLER_WAIT_TIMEOUT_S")

    # Data channel: typed chat, commands, events (docs/data-channel.md)
    text_reply_mode: ReplyMode = Field(default=ReplyMode.BOTH, alias="TEXT_REPLY_MODE")
    command_rate_limit: str = Field(default="10/10s", alias="COMMAND_RATE_LIMIT")
    command_max_bytes: int = Field(
        default=16 * 1024, ge=256, le=1024 * 1024, alias="COMMAND_MAX_BYTES"
    )
    chat_max_chars: int = Field(default=4000, ge=1, le=100_000, alias="CHAT_MAX_CHARS")
    command_timeout_s: float = Field(default=30.0, gt=0, le=600, alias="COMMAND_TIMEOUT_S")
    workflow_timeout_s: float = Field(default=120.0, gt=0, le=3600, alias="WORKFLOW_TIMEOUT_S")
    staff_role_attribute: str = Field(default="role", min_length=1, alias="STAFF_ROLE_ATTRIBUTE")
    staff_roles: str = Field(default="staff", min_length=1, alias="STAFF_ROLES")

    # Speech to text; a comma-separated list builds a fallback chain in that order
    stt_provider: str = Field(default="auto", alias="STT_PROVIDER")
    stt_model: str | None = Field(default=None, alias="STT_MODEL")
    stt_language: str = Field(default="en-US", min_length=2, alias="STT_LANGUAGE")
    deepgram_api_key: SecretStr | None = Field(default=None, alias="DEEPGRAM_API_KEY")
    # an OpenAI-compatible transcription server (faster-whisper-server, Speaches, vLLM ...)
    stt_base_url: str | None = Field(default=None, alias="STT_BASE_URL")
    stt_api_key: SecretStr | None = Field(default=None, alias="STT_API_KEY")
    # local faster-whisper: a size name (base, small.en ...), a hub repo id or a directory
    local_stt_model: str = Field(default="base", min_length=1, alias="LOCAL_STT_MODEL")
    local_stt_device: str = Field(default="cpu", min_length=1, alias="LOCAL_STT_DEVICE")
    local_stt_compute_type: str = Field(
        default="int8", min_length=1, alias="LOCAL_STT_COMPUTE_TYPE"
    )
    local_stt_beam_size: int = Field(default=5, ge=1, le=10, alias="LOCAL_STT_BEAM_SIZE")
    local_stt_cache_dir: Path | None = Field(default=None, alias="LOCAL_STT_CACHE_DIR")

    # The chat model inside the graph (OpenAI or any OpenAI-compatible endpoint)
    llm_model: str = Field(default="gpt-4.1-mini", min_length=1, alias="LLM_MODEL")
    llm_base_url: str | None = Field(default=None, alias="LLM_BASE_URL")
    llm_api_key: SecretStr | None = Field(default=None, alias="LLM_API_KEY")
    llm_temperature: float = Field(default=0.3, ge=0.0, le=2.0, alias="LLM_TEMPERATURE")
    llm_timeout_s: float = Field(default=20.0, gt=0, alias="LLM_TIMEOUT_S")
    llm_max_retries: int = Field(default=1, ge=0, le=10, alias="LLM_MAX_RETRIES")

    # Text to speech; a comma-separated list builds a fallback chain in that order
    tts_provider: str = Field(default="auto", alias="TTS_PROVIDER")
    tts_model: str | None = Field(default=None, alias="TTS_MODEL")
    tts_voice: str | None = Field(default=None, alias="TTS_VOICE")
    # an OpenAI-compatible speech server (Kokoro-FastAPI, openedai-speech, Speaches ...)
    tts_base_url: str | None = Field(default=None, alias="TTS_BASE_URL")
    tts_api_key: SecretStr | None = Field(default=None, alias="TTS_API_KEY")
    # local espeak-ng, an external GPL binary the project never bundles
    local_tts_voice: str = Field(default="en-us", min_length=1, alias="LOCAL_TTS_VOICE")
    local_tts_rate: int = Field(default=170, ge=80, le=450, alias="LOCAL_TTS_RATE")
    local_tts_binary: str = Field(default="espeak-ng", min_length=1, alias="LOCAL_TTS_BINARY")

    # Voice activity detection (Silero) and turn handling
    vad_activation_threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0, alias="VAD_ACTIVATION_THRESHOLD"
    )
    vad_min_silence_duration: float = Field(
        default=0.55, gt=0.0, le=5.0, alias="VAD_MIN_SILENCE_DURATION"
    )
    turn_detection: TurnDetection = Field(default="vad", alias="TURN_DETECTION")
    min_endpointing_delay: float = Field(
        default=0.5, ge=0.0, le=10.0, alias="MIN_ENDPOINTING_DELAY"
    )
    max_endpointing_delay: float = Field(
        default=3.0, gt=0.0, le=30.0, alias="MAX_ENDPOINTING_DELAY"
    )
    min_interruption_duration: float = Field(
        default=0.5, ge=0.0, le=10.0, alias="MIN_INTERRUPTION_DURATION"
    )
    min_interruption_words: int = Field(default=0, ge=0, le=50, alias="MIN_INTERRUPTION_WORDS")
    preemptive_generation: bool = Field(default=True, alias="PREEMPTIVE_GENERATION")
    aec_warmup_duration: float | None = Field(
        default=None, ge=0.0, le=30.0, alias="AEC_WARMUP_DURATION"
    )

    # The conversation
    agent_instructions: str | None = Field(default=None, alias="AGENT_INSTRUCTIONS")
    agent_greeting: str | None = Field(default=None, alias="AGENT_GREETING")
    default_language: str = Field(default="en", min_length=2, alias="DEFAULT_LANGUAGE")
    conversation_ttl_s: int = Field(default=7 * 24 * 3600, gt=0, alias="CONVERSATION_TTL_S")
    checkpoint_sqlite_path: Path | None = Field(default=None, alias="CHECKPOINT_SQLITE_PATH")
    checkpoint_keep: int = Field(default=32, ge=8, alias="CHECKPOINT_KEEP")
    checkpoint_timeout_s: float = Field(default=0.5, gt=0, le=30.0, alias="CHECKPOINT_TIMEOUT_S")

    # The graph the worker runs: `package.module:function` or `./file.py:function`, a
    # build_graph(model, tools, checkpointer) that returns a compiled graph
    agent_graph: str = Field(default=DEFAULT_GRAPH, min_length=3, alias="AGENT_GRAPH")
    # Nodes whose text is spoken; empty: the assistant's, or what GraphLLM recognises
    agent_speaking_nodes: str = Field(default="", alias="AGENT_SPEAKING_NODES")

    # A graph deployed on a LangGraph Agent Server instead of the in-worker assistant graph
    langgraph_server_url: str | None = Field(default=None, alias="LANGGRAPH_SERVER_URL")
    langgraph_assistant_id: str = Field(
        default="assistant", min_length=1, alias="LANGGRAPH_ASSISTANT_ID"
    )
    langgraph_api_key: SecretStr | None = Field(default=None, alias="LANGGRAPH_API_KEY")

    # Operations
    log_level: LogLevel | None = Field(default=None, alias="LOG_LEVEL")
    log_format: LogFormat = Field(default="auto", alias="LOG_FORMAT")
    prometheus_port: int | None = Field(default=None, ge=1, le=65535, alias="PROMETHEUS_PORT")
    prometheus_multiproc_dir: Path | None = Field(default=None, alias="PROMETHEUS_MULTIPROC_DIR")

    # Tracing: OpenTelemetry through LiveKit's telemetry hook, LangSmith for the graph runs
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    otel_exporter_otlp_headers: SecretStr | None = Field(
        default=None, alias="OTEL_EXPORTER_OTLP_HEADERS"
    )
    otel_service_name: str = Field(default="voice-agent", min_length=1, alias="OTEL_SERVICE_NAME")
    telemetry_allow_pii: bool = Field(default=False, alias="LIVEKIT_TELEMETRY_ALLOW_PII")
    langsmith_tracing: bool = Field(default=False, alias="LANGSMITH_TRACING")
    langsmith_api_key: SecretStr | None = Field(default=None, alias="LANGSMITH_API_KEY")
    langsmith_project: str | None = Field(default=None, alias="LANGSMITH_PROJECT")
    langsmith_endpoint: str | None = Field(default=None, alias="LANGSMITH_ENDPOINT")

    @field_validator("agent_graph")
    @classmethod
    def _graph_reference(cls, value: str) -> str:
        target, colon, attribute = value.strip().rpartition(":")
        if not colon or not target or not attribute.isidentifier():
            raise ValueError(
                f"expected 'package.module:function' or './path/to/file.py:function', got {value!r}"
            )
        return value.strip()

    @field_validator("langgraph_server_url")
    @classmethod
    def _check_langgraph_server_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("livekit_url")
    @classmethod
    def _check_livekit_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(_URL_SCHEMES):
            raise ValueError("expected a ws://, wss://, http:// or https:// URL")
        return value

    @field_validator("stt_provider", "tts_provider")
    @classmethod
    def _check_provider_list(cls, value: str, info: ValidationInfo) -> str:
        allowed = STT_PROVIDERS if info.field_name == "stt_provider" else TTS_PROVIDERS
        items = [part.strip().lower() for part in value.split(",") if part.strip()]
        if not items:
            raise ValueError(f"expected one or more of {', '.join(allowed)}")
        for item in items:
            if item not in allowed:
                raise ValueError(
                    f"unknown provider {item!r}; expected one or more of {', '.join(allowed)}"
                )
        if len(set(items)) != len(items):
            raise ValueError("lists a provider twice")
        if "auto" in items and len(items) > 1:
            raise ValueError("auto cannot be part of a list; name the providers instead")
        return ",".join(items)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            upper = value.strip().upper()
            return None if not upper else ("WARNING" if upper == "WARN" else upper)
        return value

    @field_validator(
        "llm_base_url",
        "livekit_api_key",
        "stt_model",
        "tts_model",
        "tts_voice",
        "llm_api_key",
        "deepgram_api_key",
        "livekit_api_secret",
        "stt_base_url",
        "stt_api_key",
        "tts_base_url",
        "tts_api_key",
        "local_stt_cache_dir",
        "otel_exporter_otlp_endpoint",
        "otel_exporter_otlp_headers",
        "langsmith_api_key",
        "langsmith_project",
        "langsmith_endpoint",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @field_validator("otel_exporter_otlp_endpoint", "langsmith_endpoint")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/") if value is not None else None

    @field_validator("text_reply_mode", mode="before")
    @classmethod
    def _lower_mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("command_rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate(value)
        return value.strip()

    @model_validator(mode="after")
    def _check_endpointing(self) -> WorkerSettings:
        if self.max_endpointing_delay < self.min_endpointing_delay:
            raise ValueError("MAX_ENDPOINTING_DELAY must be at least MIN_ENDPOINTING_DELAY")
        return self

    def data_channel_config(self) -> DataChannelConfig:
        # imported here: agent.chat pulls in LiveKit, which imports prometheus_client, and
        # that must wait until `python -m agent` has set PROMETHEUS_MULTIPROC_DIR
        from agent.chat.channel import DataChannelConfig

        limit, window = parse_rate(self.command_rate_limit)
        return DataChannelConfig(
            reply_mode=self.text_reply_mode,
            rate_limit=limit,
            rate_window_s=window,
            max_command_bytes=self.command_max_bytes,
            max_chat_chars=self.chat_max_chars,
            command_timeout_s=self.command_timeout_s,
            workflow_timeout_s=self.workflow_timeout_s,
            staff_role_attribute=self.staff_role_attribute,
            staff_roles=_names(self.staff_roles),
        )

    @property
    def resolved_llm_api_key(self) -> SecretStr | None:
        """LLM_API_KEY, else OPENAI_API_KEY (the same key usually serves both)."""
        return self.llm_api_key or self.openai_api_key

    @property
    def resolved_checkpoint_sqlite_path(self) -> Path:
        return self.checkpoint_sqlite_path or self.data_dir / "checkpoints.sqlite3"

    @property
    def resolved_local_stt_cache_dir(self) -> Path:
        return self.local_stt_cache_dir or self.data_dir / "models" / "whisper"

    @property
    def whisper_options(self) -> WhisperOptions:
        return WhisperOptions(
            model=self.local_stt_model,
            cache_dir=self.resolved_local_stt_cache_dir,
            device=self.local_stt_device,
            compute_type=self.local_stt_compute_type,
            language=whisper_language(self.stt_language),
            beam_size=self.local_stt_beam_size,
        )

    @property
    def resolved_prometheus_multiproc_dir(self) -> Path:
        return self.prometheus_multiproc_dir or self.data_dir / "prometheus"

    def resolved_log_level(self, mode: RunMode) -> str:
        """LOG_LEVEL, else DEBUG for `dev`, WARNING in the consoles, INFO otherwise."""
        if self.log_level is not None:
            return self.log_level
        if mode == "dev":
            return "DEBUG"
        return "WARNING" if mode in ("console", "console-text") else "INFO"

    def resolved_log_format(self, mode: RunMode, *, stream_is_tty: bool) -> Literal["text", "json"]:
        """LOG_FORMAT, else JSON for `start` (production) or when logs do not go to a terminal."""
        if self.log_format != "auto":
            return self.log_format
        return "text" if stream_is_tty and mode != "start" else "json"

    def secret_values(self) -> list[str]:
        """Every secret's plain value, so log output can be scrubbed of them."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        return values

    def problems_for(self, mode: RunMode) -> list[str]:
        """What `mode` needs that is missing, one phrase per variable."""
        problems: list[str] = []
        if mode in ("start", "dev"):
            if self.livekit_url is None:
                problems.append(
                    "LIVEKIT_URL is not set (expected your LiveKit server URL, e.g. "
                    "wss://my-project.livekit.cloud or ws://localhost:7880; without a server "
                    "use `console`)"
                )
            if self.livekit_api_key is None:
                problems.append("LIVEKIT_API_KEY is not set (expected the LiveKit API key)")
            if self.livekit_api_secret is None or not self.livekit_api_secret.get_secret_value():
                problems.append("LIVEKIT_API_SECRET is not set (expected the LiveKit API secret)")
        if mode in ("start", "dev", "console"):
            missing = self._missing_provider_keys() + self._missing_local_speech()
            if missing:
                missing[-1] += " (`console --text` runs without STT/TTS)"
            problems.extend(missing)
        return problems

    def _has_key(self, provider: str) -> bool:
        key = self.deepgram_api_key if provider == "deepgram" else self.openai_api_key
        return key is not None and bool(key.get_secret_value())

    def _missing_provider_keys(self) -> list[str]:
        needed: dict[str, list[str]] = {}
        for variable, providers, base_url in (
            ("STT_PROVIDER", self.stt_providers, self.stt_base_url),
            ("TTS_PROVIDER", self.tts_providers, self.tts_base_url),
        ):
            for provider in providers:
                if provider not in _PROVIDER_KEY_ENV or self._has_key(provider):
                    continue
                if provider == "openai" and base_url is not None:
                    continue  # a self-hosted server usually takes no key
                needed.setdefault(_PROVIDER_KEY_ENV[provider], []).append(
                    f"{variable}={self._described(variable, provider)}"
                )
        return [
            f"{env} is not set (expected an API key; needed by {' and '.join(uses)})"
            for env, uses in needed.items()
        ]

    def _missing_local_speech(self) -> list[str]:
        problems: list[str] = []
        if "whisper" in self.stt_providers:
            if not faster_whisper_installed():
                problems.append(
                    "STT_PROVIDER=whisper needs faster-whisper (install the `local-speech` extra)"
                )
            elif cached_model_path(self.whisper_options) is None:
                prefix = (
                    "STT_PROVIDER=auto found no DEEPGRAM_API_KEY or OPENAI_API_KEY, and "
                    if self.stt_provider == "auto"
                    else ""
                )
                problems.append(prefix + missing_model_message(self.whisper_options))
        if "espeak" in self.tts_providers and espeak_path(self.local_tts_binary) is None:
            problems.append(
                f"TTS_PROVIDER=espeak needs the {self.local_tts_binary} binary on PATH "
                "(e.g. `apt-get install espeak-ng`; GPL, installed separately)"
            )
        return problems

    def _described(self, variable: str, provider: str) -> str:
        chosen = self.stt_provider if variable == "STT_PROVIDER" else self.tts_provider
        return f"auto, which fell back to {provider}" if chosen == "auto" else provider

    @property
    def speaking_nodes(self) -> tuple[str, ...]:
        """AGENT_SPEAKING_NODES as node names; empty when not set."""
        return _names(self.agent_speaking_nodes)

    @property
    def stt_providers(self) -> tuple[str, ...]:
        """STT_PROVIDER with `auto` resolved: a keyed cloud provider, else local Whisper."""
        if self.stt_provider != "auto":
            return tuple(self.stt_provider.split(","))
        if self._has_key("deepgram"):
            return ("deepgram",)
        if self._has_key("openai") or self.stt_base_url is not None:
            return ("openai",)
        return ("whisper",) if faster_whisper_installed() else ("deepgram",)

    @property
    def tts_providers(self) -> tuple[str, ...]:
        """TTS_PROVIDER with `auto` resolved: a keyed cloud provider, else espeak-ng."""
        if self.tts_provider != "auto":
            return tuple(self.tts_provider.split(","))
        if self._has_key("openai") or self.tts_base_url is not None:
            return ("openai",)
        if self._has_key("deepgram"):
            return ("deepgram",)
        return ("espeak",) if espeak_path(self.local_tts_binary) is not None else ("openai",)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad variable and what it expects; input values are never echoed."""
    return describe_settings_error(error, WorkerSettings)


def load_settings(
    mode: RunMode, *, env_file: Path | str | tuple[str, ...] | None = ENV_FILES
) -> WorkerSettings:
    """Read the settings once and check what `mode` needs; raises `SettingsError` (one line)."""
    try:
        settings = WorkerSettings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(f"invalid configuration: {describe_validation_error(exc)}") from None
    problems = settings.problems_for(mode)
    if problems:
        raise SettingsError(f"cannot run `{mode}`: {'; '.join(problems)}")
    return settings


GraphBuilder = Callable[
    ["BaseChatModel | None", "Sequence[BaseTool]", "BaseCheckpointSaver[Any] | None"], Any
]


def _import_target(target: str) -> ModuleType:
    if not (target.endswith(".py") or "/" in target):
        return importlib.import_module(target)
    path = Path(target).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    # one module per file path, so a second call reuses the first import
    name = "agent_graph_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if (loaded := sys.modules.get(name)) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_graph_builder(reference: str) -> GraphBuilder:
    """AGENT_GRAPH resolved to its `build_graph(model, tools, checkpointer)` function.

    `reference` is `package.module:function` or `./path/to/file.py:function` (relative to
    the working directory, as in `langgraph.json`). Raises `SettingsError` naming the problem.
    """
    target, _, attribute = reference.rpartition(":")
    try:
        module = _import_target(target)
    except Exception as exc:
        raise SettingsError(
            f"AGENT_GRAPH={reference!r}: cannot import {target}: {type(exc).__name__}: {exc}"
        ) from None
    builder = getattr(module, attribute, None)
    if builder is None:
        raise SettingsError(f"AGENT_GRAPH={reference!r}: {target} has no {attribute!r}")
    from langgraph.pregel import Pregel

    if isinstance(builder, Pregel) or not callable(builder):
        raise SettingsError(
            f"AGENT_GRAPH={reference!r}: {attribute} is a {type(builder).__name__}, expected a "
            "function build_graph(model, tools, checkpointer) that returns a compiled graph"
        )
    return builder  # type: ignore[no-any-return]


def build_graph(
    reference: str,
    model: BaseChatModel | None,
    tools: Sequence[BaseTool],
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> Any:
    """The graph AGENT_GRAPH names, built with the worker's model, tools and checkpointer."""
    from langgraph.pregel import Pregel

    graph = load_graph_builder(reference)(model, tools, checkpointer)
    if not isinstance(graph, Pregel):
        raise SettingsError(
            f"AGENT_GRAPH={reference!r} returned a {type(graph).__name__}, not a compiled "
            "graph (call .compile(checkpointer=checkpointer) on the StateGraph)"
        )
    return graph


# Checks run once before the worker takes calls: configuration that can never work stops
# start-up with one line; services that are down now are warned about, not fatal.


async def answers_ping(client: aioredis.Redis, *, timeout_s: float = 2.0) -> bool:
    try:
        return bool(await asyncio.wait_for(client.ping(), timeout_s + 0.5))
    except (RedisError, OSError, TimeoutError):
        return False


async def appendonly_disabled(client: aioredis.Redis, *, timeout_s: float = 2.0) -> bool:
    """True when Redis says ``appendonly no``; False when AOF is on or CONFIG is refused
    (managed Redis often disables it) or the server does not answer."""
    try:
        reply = await asyncio.wait_for(client.config_get("appendonly"), timeout_s + 0.5)
    except (RedisError, OSError, TimeoutError):  # ResponseError (CONFIG refused) included
        return False
    values: dict[Any, Any] = dict(reply)
    return values.get(b"appendonly", values.get("appendonly")) in (b"no", "no")


async def _redis_warning(url: str, *, timeout_s: float = 2.0) -> str | None:
    """Why Redis is not fit to keep conversations (down, or without AOF), over one connection."""
    # imported here: reading settings must not load the Redis client or the checkpointers
    import redis.asyncio as aioredis

    from workflows.checkpoint import redact_url

    client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        if not await answers_ping(client, timeout_s=timeout_s):
            return (
                f"REDIS_URL ({redact_url(url)}) does not answer: calls will keep "
                "their state in the local SQLite file until it does"
            )
        if await appendonly_disabled(client, timeout_s=timeout_s):
            return (
                f"Redis at {redact_url(url)} runs with appendonly no: a Redis "
                "restart loses recent conversation state; enable AOF (appendonly yes)"
            )
        return None
    finally:
        await client.aclose()


async def preflight(settings: WorkerSettings) -> list[str]:
    """Raise `SettingsError` for settings that cannot work; return warnings for what is down."""
    # imported here: the PMS package is not needed to read settings, only to check them
    from tools.pms import PMSConfigError, build_pms

    load_graph_builder(settings.agent_graph)  # a typo in AGENT_GRAPH stops start-up, not a call
    try:
        pms = build_pms(settings.pms_config())
    except PMSConfigError as exc:
        raise SettingsError(f"invalid PMS configuration: {exc}") from None
    await pms.aclose()
    warnings: list[str] = []
    if settings.redis_url and (warning := await _redis_warning(settings.redis_url)):
        warnings.append(warning)
    for warning in warnings:
        logger.warning(warning)
    return warnings
