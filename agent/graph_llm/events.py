"""What a graph run reports while it runs: tool progress, turn latency, and spans.

Subscribe with LiveKit's event-emitter API on the GraphLLM instance::

    graph_llm.on("tool_started", lambda ev: ...)   # ToolStarted
    graph_llm.on("tool_finished", lambda ev: ...)  # ToolFinished

Two LangChain callback handlers watch each run: `ToolEventHandler` turns tool callbacks into
those events, and `GraphSpanHandler` turns the run, each node (`langgraph_node` in the
callback metadata), each chat-model call and each tool call into an OpenTelemetry span on
LiveKit's tracer, nested under LiveKit's LLM span, so they land in whatever provider the
worker gave `livekit.agents.telemetry.set_tracer_provider` (a no-op when none). Spans carry
names, ids, timing and outcome only: no message text, tool arguments or tool output.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from livekit.agents.telemetry import tracer
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

__all__ = [
    "ATTR_GRAPH_NODE",
    "ATTR_THREAD_ID",
    "SPAN_GRAPH_RUN",
    "GraphLLMEvent",
    "GraphSpanHandler",
    "ToolEventHandler",
    "ToolFinished",
    "ToolStarted",
    "TurnLatency",
    "summarize_args",
    "with_handler",
]

GraphLLMEvent = Literal["tool_started", "tool_finished"]

_ARGS_SUMMARY_LIMIT = 160
_ERROR_LIMIT = 200


@dataclass(frozen=True)
class ToolStarted:
    """A tool began running inside the graph."""

    name: str
    call_id: str
    args_summary: str
    thread_id: str
    started_at: float
    """Wall-clock time (``time.time()``) the tool started."""


@dataclass(frozen=True)
class ToolFinished:
    """A tool finished; `ok` is False when it raised or returned an error ToolMessage."""

    name: str
    call_id: str
    args_summary: str
    thread_id: str
    duration: float
    """Seconds the tool ran."""
    ok: bool
    error: str | None = None
    artifact: Any = None
    """The tool's artifact (its `content_and_artifact` second half), when it returned one."""


@dataclass(frozen=True)
class TurnLatency:
    """Where the time of one GraphLLM turn went (seconds)."""

    time_to_first_token: float | None
    """From the LLM request to the first text handed to TTS; None when nothing was spoken."""
    state_time: float
    """Reading (and, after a discarded run, rewinding) the thread before the run."""
    graph_time: float
    """Wall time of the graph run itself."""
    tool_time: float
    """Sum of the durations of the tools the run called."""
    tool_calls: int
    total_time: float
    """From the LLM request to the end of the turn."""


def summarize_args(args: Any) -> str:
    """A short one-line `key=value` rendering of tool arguments, for progress displays."""
    if isinstance(args, Mapping):
        text = ", ".join(f"{key}={value!r}" for key, value in args.items())
    else:
        text = str(args)
    text = " ".join(text.split())
    if len(text) > _ARGS_SUMMARY_LIMIT:
        return text[: _ARGS_SUMMARY_LIMIT - 1] + "…"
    return text


def with_handler(config: RunnableConfig, handler: BaseCallbackHandler) -> RunnableConfig:
    """A copy of `config` whose callbacks also include `handler` (for the run and its children)."""
    config = {**config}
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        config["callbacks"] = manager
    else:
        config["callbacks"] = [*(callbacks or []), handler]
    return config


@dataclass
class _RunningTool:
    name: str
    call_id: str
    args_summary: str
    started: float


class ToolEventHandler(BaseCallbackHandler):
    """LangChain callback handler reporting tool starts and finishes of one graph run.

    Create it on the event loop. Sync tools and sync nodes report from worker threads;
    their events are handed to the loop, because the sinks touch the LiveKit stream.
    """

    run_inline = True

    def __init__(
        self,
        *,
        thread_id: str,
        on_started: Callable[[ToolStarted], None],
        on_finished: Callable[[ToolFinished], None],
    ) -> None:
        super().__init__()
        self._thread_id = thread_id
        self._on_started = on_started
        self._on_finished = on_finished
        self._running: dict[UUID, _RunningTool] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def _deliver(self, callback: Callable[[Any], None], event: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            callback(event)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, event)

    # LangChain gates tool callbacks on `ignore_agent`, so that one stays False
    @property
    def ignore_llm(self) -> bool:
        return True

    @property
    def ignore_chat_model(self) -> bool:
        return True

    @property
    def ignore_chain(self) -> bool:
        return True

    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_retry(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        name = str(kwargs.get("name") or (serialized or {}).get("name") or "tool")
        call_id = str(kwargs.get("tool_call_id") or run_id)
        running = _RunningTool(
            name=name,
            call_id=call_id,
            args_summary=summarize_args(inputs if inputs is not None else input_str),
            started=time.perf_counter(),
        )
        with self._lock:
            self._running[run_id] = running
        self._deliver(
            self._on_started,
            ToolStarted(
                name=name,
                call_id=call_id,
                args_summary=running.args_summary,
                thread_id=self._thread_id,
                started_at=time.time(),
            ),
        )

    def on_tool_end(
        self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        failed = isinstance(output, ToolMessage) and output.status == "error"
        error = _clip(str(output.content)) if failed else None
        artifact = output.artifact if isinstance(output, ToolMessage) else None
        self._finish(run_id, ok=not failed, error=error, artifact=artifact)

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._finish(run_id, ok=False, error=_clip(f"{type(error).__name__}: {error}"))

    def _finish(self, run_id: UUID, *, ok: bool, error: str | None, artifact: Any = None) -> None:
        with self._lock:
            running = self._running.pop(run_id, None)
        if running is None:
            return
        self._deliver(
            self._on_finished,
            ToolFinished(
                name=running.name,
                call_id=running.call_id,
                args_summary=running.args_summary,
                thread_id=self._thread_id,
                duration=time.perf_counter() - running.started,
                ok=ok,
                error=error,
                artifact=artifact,
            ),
        )


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_LIMIT else text[: _ERROR_LIMIT - 1] + "…"


# -- OpenTelemetry spans of a run ---------------------------------------------------------

SPAN_GRAPH_RUN = "graph_run"
ATTR_THREAD_ID = "langgraph.thread_id"
ATTR_GRAPH_NODE = "langgraph.node"
ATTR_GRAPH_STEP = "langgraph.step"
# OpenTelemetry GenAI semantic conventions
_ATTR_CONVERSATION_ID = "gen_ai.conversation.id"
_ATTR_OPERATION = "gen_ai.operation.name"
_ATTR_TOOL_NAME = "gen_ai.tool.name"
_ATTR_TOOL_CALL_ID = "gen_ai.tool.call.id"
_ATTR_REQUEST_MODEL = "gen_ai.request.model"
_ATTR_PROVIDER = "gen_ai.provider.name"
_ATTR_INPUT_TOKENS = "gen_ai.usage.input_tokens"
_ATTR_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
_HIDDEN_TAG = "langsmith:hidden"


def _error_status(error: BaseException | str) -> Status:
    # The type only: exception messages can quote what the caller said.
    return Status(StatusCode.ERROR, error if isinstance(error, str) else type(error).__name__)


class GraphSpanHandler(BaseCallbackHandler):
    """Spans for one graph run; `close()` ends any the run left open (cancelled turns)."""

    run_inline = True  # called in the graph's own task, so span timing is exact
    raise_error = False

    def __init__(self, *, thread_id: str, parent: otel_context.Context | None = None) -> None:
        self._thread_id = thread_id
        self._parent = parent if parent is not None else otel_context.get_current()
        self._spans: dict[UUID, Span] = {}
        # Runs without a span of their own (LangGraph internals) point at their nearest span.
        self._owner: dict[UUID, UUID | None] = {}
        self._lock = threading.Lock()

    # -- helpers -----------------------------------------------------------------------

    def _parent_context(self, parent_run_id: UUID | None) -> otel_context.Context:
        owner = self._owner.get(parent_run_id) if parent_run_id is not None else None
        span = self._spans.get(owner) if owner is not None else None
        return trace.set_span_in_context(span) if span is not None else self._parent

    def _open(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        attributes: Mapping[str, Any],
    ) -> None:
        with self._lock:
            span = tracer.start_span(
                name,
                context=self._parent_context(parent_run_id),
                attributes={
                    ATTR_THREAD_ID: self._thread_id,
                    _ATTR_CONVERSATION_ID: self._thread_id,
                    **{k: v for k, v in attributes.items() if v is not None},
                },
            )
            self._spans[run_id] = span
            self._owner[run_id] = run_id

    def _skip(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        with self._lock:
            self._owner[run_id] = self._owner.get(parent_run_id) if parent_run_id else None

    def _close(self, run_id: UUID, error: BaseException | str | None = None) -> None:
        with self._lock:
            self._owner.pop(run_id, None)
            span = self._spans.pop(run_id, None)
        if span is None:
            return
        # an interrupt() pauses the run for the caller's answer; it is not a failure
        if error is not None and type(error).__name__ != "GraphInterrupt":
            span.set_status(_error_status(error))
        span.end()

    def close(self) -> None:
        with self._lock:
            spans = list(self._spans.values())
            self._spans.clear()
            self._owner.clear()
        for span in reversed(spans):
            span.end()

    # -- chains: the graph and its nodes -----------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        meta = metadata or {}
        name = kwargs.get("name") or (serialized or {}).get("name") or "chain"
        node = meta.get("langgraph_node")
        if parent_run_id is None:
            self._open(run_id, None, SPAN_GRAPH_RUN, {"langgraph.graph": name})
        elif node is not None and name == node and _HIDDEN_TAG not in (tags or ()):
            self._open(
                run_id,
                parent_run_id,
                f"graph_node {node}",
                {ATTR_GRAPH_NODE: str(node), ATTR_GRAPH_STEP: meta.get("langgraph_step")},
            )
        else:
            self._skip(run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)

    # -- chat models ---------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        meta = metadata or {}
        model = meta.get("ls_model_name")
        self._open(
            run_id,
            parent_run_id,
            f"chat {model}" if model else "chat",
            {
                _ATTR_OPERATION: "chat",
                _ATTR_REQUEST_MODEL: model,
                _ATTR_PROVIDER: meta.get("ls_provider"),
            },
        )

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        usage = _usage(response)
        span = self._spans.get(run_id)
        if span is not None and usage:
            span.set_attributes(usage)
        self._close(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)

    # -- tools ---------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        del inputs  # tool arguments can hold personal data; they never reach a span
        name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
        call_id = kwargs.get("tool_call_id")
        self._open(
            run_id,
            parent_run_id,
            f"execute_tool {name}",
            {_ATTR_OPERATION: "execute_tool", _ATTR_TOOL_NAME: name, _ATTR_TOOL_CALL_ID: call_id},
        )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        # ToolNode turns a tool's exception into an error ToolMessage instead of raising
        if getattr(output, "status", None) == "error":
            self._close(run_id, "tool returned an error")
        else:
            self._close(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id, error)


def _usage(response: Any) -> dict[str, int]:
    for generations in getattr(response, "generations", None) or ():
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                return {
                    _ATTR_INPUT_TOKENS: int(usage.get("input_tokens", 0)),
                    _ATTR_OUTPUT_TOKENS: int(usage.get("output_tokens", 0)),
                }
    return {}
