"""Trace export for the worker: OpenTelemetry through LiveKit's telemetry hook, and LangSmith.

OpenTelemetry is on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: spans go to its `/v1/traces`
(OTLP over HTTP/protobuf). The provider is handed to `livekit.agents.telemetry
.set_tracer_provider`, so LiveKit's own spans (session, turns, `llm_node`, TTS) and the graph's
spans (GraphLLM: the run, its nodes, its tool calls) share one trace. Conversation content
(`lk.pii.*`, GenAI message attributes) is stripped before export unless
`LIVEKIT_TELEMETRY_ALLOW_PII=true`.

LangSmith is on when `LANGSMITH_TRACING=true`: each graph run is traced as a LangChain run
(the thread id travels as metadata and as a `thread_id:<id>` tag, set by GraphLLM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pydantic import SecretStr

if TYPE_CHECKING:
    from langchain_core.callbacks import BaseCallbackHandler
    from opentelemetry.sdk.trace import TracerProvider

    from agent.settings import WorkerSettings

__all__ = [
    "flush_traces",
    "langsmith_tracer",
    "otlp_headers",
    "start_otel_tracing",
]

logger = logging.getLogger(__name__)

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
