"""Events GraphLLM publishes while a graph turn runs: tool progress and turn latency.

Subscribe with LiveKit's event-emitter API on the GraphLLM instance::

    graph_llm.on("tool_started", lambda ev: ...)   # ToolStarted
    graph_llm.on("tool_finished", lambda ev: ...)  # ToolFinished

The callback handler below turns LangChain's tool callbacks into those events.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolMessage

__all__ = [
    "GraphLLMEvent",
    "ToolEventHandler",
    "ToolFinished",
    "ToolStarted",
    "TurnLatency",
    "summarize_args",
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
