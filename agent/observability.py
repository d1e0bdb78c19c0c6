"""What the worker tells operators: its log lines and its traces.

Logs: readable text in development, one JSON object per line in production. JSON lines use
LiveKit Agents' key names for the common fields (`timestamp`, `level`, `name`, `message`,
`pid`, `code.*`, `exc_info`), so one log pipeline reads the worker whether LiveKit's CLI or
`python -m agent` started it. Every line about a call carries its `room`, `job_id` and
`conversation_id`. Inside a job those ids are registered with LiveKit's own per-job log fields
(`JobContext.log_context_fields`, which also travel with records that job processes forward to
the main process) and with a context variable for code that runs outside a job, such as the
text console. Known secret values are scrubbed from every formatted line as a last line of
defence.

Traces: OpenTelemetry is on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: spans go to its
`/v1/traces` (OTLP over HTTP/protobuf). The provider is handed to `livekit.agents.telemetry
.set_tracer_provider`, so LiveKit's own spans (session, turns, `llm_node`, TTS) and the graph's
spans (GraphLLM: the run, its nodes, its tool calls) share one trace. Conversation content
(`lk.pii.*`, GenAI message attributes) is stripped before export unless
`LIVEKIT_TELEMETRY_ALLOW_PII=true`. LangSmith is on when `LANGSMITH_TRACING=true`: each graph
run is traced as a LangChain run (the thread id travels as metadata and as a
`thread_id:<id>` tag, set by GraphLLM).

Metrics live apart in `agent.metrics`: Prometheus' multiprocess mode is fixed when
`prometheus_client` is first imported, which must wait until `PROMETHEUS_MULTIPROC_DIR` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sys
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

import orjson
from pydantic import SecretStr

if TYPE_CHECKING:
    from langchain_core.callbacks import BaseCallbackHandler
    from livekit.agents import JobContext
    from opentelemetry.sdk.trace import TracerProvider

    from agent.settings import WorkerSettings

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "LogContextFilter",
    "RedactingFormatter",
    "TextFormatter",
    "bind_log_fields",
    "configure_logging",
    "flush_traces",
    "langsmith_tracer",
    "otlp_headers",
    "redact_livekit_logs",
    "start_otel_tracing",
]

logger = logging.getLogger(__name__)

# The ids that tie a log line to one call, in the order text lines show them.
CONTEXT_FIELDS = ("room", "job_id", "conversation_id")
_NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "openai",
    "urllib3",
    "websockets",
    "aiohttp.access",
    "livekit",
    "asyncio",
    "qdrant_client",
)
_REDACTED = "[redacted]"
_RESERVED = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)

_log_fields: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "voice_agent_log_fields", default=None
)


def bind_log_fields(job_ctx: JobContext | None = None, **fields: str | None) -> None:
    """Attach ids to every later log line of this call (this task and the tasks it starts)."""
    clean = {key: value for key, value in fields.items() if value}
    _log_fields.set({**(_log_fields.get() or {}), **clean})
    if job_ctx is not None:
        job_ctx.log_context_fields.update(clean)


class LogContextFilter(logging.Filter):
    """Copies the bound ids onto records that do not carry them already."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_log_fields.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RESERVED and not key.startswith("_")
    }


def _exception_text(record: logging.LogRecord, message: str) -> str | None:
    if record.exc_info:
        return "".join(traceback.format_exception(*record.exc_info)).rstrip()
    # Records forwarded from job processes already carry the traceback inside the message.
    if record.exc_text and record.exc_text not in message:
        return record.exc_text
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line with LiveKit's keys: timestamp, level, name, message, the
    call ids, extras, then pid, code location and exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "name": record.name,
            "message": message,
        }
        extras = _extras(record)
        for key in CONTEXT_FIELDS:
            if key in extras:
                entry[key] = extras.pop(key)
        entry.update(extras)
        entry.setdefault("pid", record.process)
        entry.setdefault("code.file.path", record.pathname)
        entry.setdefault("code.function.name", record.funcName)
        entry.setdefault("code.line.number", record.lineno)
        if (exc := _exception_text(record, message)) is not None:
            entry["exc_info"] = exc
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO  agent.server  message  room=… job_id=… key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = _extras(record)
        ordered = [(key, extras.pop(key)) for key in CONTEXT_FIELDS if key in extras]
        ordered.extend(sorted(extras.items()))
        tail = " ".join(f"{key}={value}" for key, value in ordered)
        message = record.getMessage()
        line = f"{when} {record.levelname:<7} {record.name}  {message}"
        if tail:
            line = f"{line}  {tail}"
        if (exc := _exception_text(record, message)) is not None:
            line = f"{line}\n{exc}"
        return line


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter and replaces every known secret value in its output."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self._inner = inner
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record)
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text


def redact_livekit_logs(secrets: Iterable[str]) -> None:
    """Scrub secrets from, and add the call ids to, the root handlers LiveKit's CLI installed.

    Runs when the worker has started (`worker_started`): by then LiveKit's CLI has set up its
    own log handlers, whose format (LiveKit's keys) is kept as it is.
    """
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _VoiceAgentHandler):
            continue
        if not any(isinstance(f, LogContextFilter) for f in handler.filters):
            handler.addFilter(LogContextFilter())
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(
                RedactingFormatter(handler.formatter or logging.Formatter(), secrets)
            )


class _VoiceAgentHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installs, so configuring twice replaces it."""


def configure_logging(
    *,
    level: str,
    fmt: Literal["text", "json"],
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Install the worker's root log handler (replacing a previous one) and return it."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _VoiceAgentHandler):
            root.removeHandler(existing)
            existing.close()
    handler = _VoiceAgentHandler(stream or sys.stderr)
    inner = JsonFormatter() if fmt == "json" else TextFormatter()
    handler.setFormatter(RedactingFormatter(inner, secrets))
    handler.addFilter(LogContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # Library warnings (warnings.warn) become log lines in the same format.
    logging.captureWarnings(True)
    quiet = max(logging.WARNING, logging.getLevelName(level))
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    # Our own loggers and LiveKit's agent framework follow the chosen level.
    for name in ("agent", "workflows", "tools", "livekit.agents", "livekit.plugins"):
        logging.getLogger(name).setLevel(level)
    return handler


_EXPORT_TIMEOUT_S = 10.0
_FLUSH_TIMEOUT_S = 10.0


def otlp_headers(raw: SecretStr | None) -> dict[str, str]:
    """`OTEL_EXPORTER_OTLP_HEADERS` (`key=value,key2=value2`, values URL-encoded) as a dict."""
    if raw is None:
        return {}
    headers: dict[str, str] = {}
    for part in raw.get_secret_value().split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            headers[key.strip().lower()] = unquote(value.strip())
    return headers


def start_otel_tracing(
    settings: WorkerSettings, *, attributes: dict[str, Any] | None = None
) -> TracerProvider | None:
    """Export LiveKit's and the graph's spans over OTLP/HTTP; None when no endpoint is set.

    Call once per process (LiveKit runs each job in its own process).
    """
    endpoint = settings.otel_exporter_otlp_endpoint
    if endpoint is None:
        return None
    # Imported here: the SDK and exporter cost start-up time that untraced runs never need.
    from livekit.agents.telemetry import set_tracer_provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    traces_url = endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
    exporter = OTLPSpanExporter(
        endpoint=traces_url,
        headers=otlp_headers(settings.otel_exporter_otlp_headers),
        timeout=_EXPORT_TIMEOUT_S,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    set_tracer_provider(
        provider,
        metadata={"lk.agent_name": settings.agent_name, **(attributes or {})},
        allow_pii=settings.telemetry_allow_pii,
    )
    logger.info("exporting traces over OTLP", extra={"otlp_endpoint": traces_url})
    return provider


async def flush_traces(provider: TracerProvider | None) -> None:
    """Send the spans still buffered (end of a call, end of the console); bounded in time."""
    if provider is None:
        return
    millis = int(_FLUSH_TIMEOUT_S * 1000)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            asyncio.to_thread(provider.force_flush, millis), _FLUSH_TIMEOUT_S + 1
        )


def langsmith_tracer(settings: WorkerSettings) -> BaseCallbackHandler | None:
    """A LangSmith tracer built from the settings (so `.env` works too); None when off."""
    if not settings.langsmith_tracing:
        return None
    from langchain_core.tracers.langchain import LangChainTracer
    from langsmith import Client

    key = settings.langsmith_api_key
    client = Client(
        api_url=settings.langsmith_endpoint,
        api_key=key.get_secret_value() if key is not None else None,
        timeout_ms=int(_EXPORT_TIMEOUT_S * 1000),
    )
    return LangChainTracer(project_name=settings.langsmith_project, client=client)


async def flush_langsmith(tracer: BaseCallbackHandler | None) -> None:
    """Wait for the runs LangSmith's client still has queued; bounded in time."""
    client = getattr(tracer, "client", None)
    if client is None:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.to_thread(client.flush), _FLUSH_TIMEOUT_S)
