"""Agent events for the caller's app, on `agent.event`: built here, sent in order by a queue.

Sources of events: GraphLLM's `tool_started` / `tool_finished`, the session's `error` events
(mapped to stable codes), the sources behind each answer, workflow progress, and the welcome.
Agent state and transcripts are not repeated here: LiveKit publishes them as the
`lk.agent.state` attribute and on `lk.transcription`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from agent.chat.protocol import EventType, event_envelope
from agent.graph_llm.events import ToolFinished, ToolStarted

__all__ = [
    "ERROR_CODES",
    "EventPublisher",
    "error_event_data",
    "tool_finished_data",
    "tool_started_data",
]

logger = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]

# LiveKit's error types (`LLMError.type`, ...) → the stable codes clients see
ERROR_CODES: dict[str, str] = {
    "stt_error": "stt_failed",
    "llm_error": "llm_failed",
    "realtime_model_error": "llm_failed",
    "tts_error": "tts_failed",
    "tool_error": "tool_failed",
}
_ERROR_MESSAGES = {
    "stt_failed": "Speech recognition failed.",
    "llm_failed": "The language model failed to answer.",
    "tts_failed": "Speech synthesis failed.",
    "tool_failed": "A tool failed.",
}


def tool_started_data(event: ToolStarted) -> dict[str, Any]:
    return {"name": event.name, "call_id": event.call_id, "args_summary": event.args_summary}


def tool_finished_data(event: ToolFinished) -> dict[str, Any]:
    return {
        "name": event.name,
        "call_id": event.call_id,
        "ok": event.ok,
        "duration_s": round(event.duration, 3),
        "error": event.error,
    }


def error_event_data(
    code: str, *, recoverable: bool, source: str | None = None, detail: str | None = None
) -> dict[str, Any]:
    return {
        "code": code,
        "message": _ERROR_MESSAGES.get(code, "Something failed."),
        "recoverable": recoverable,
        "source": source,
        "detail": detail,
    }


class EventPublisher:
    """Queues events and sends them one at a time, in order; never blocks the emitter.

    When the queue is full (a stalled connection), new events are dropped and counted.
    """

    def __init__(self, send: Send, *, max_queue: int = 256) -> None:
        self._send = send
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.sent = 0

    def emit(self, event_type: EventType, data: dict[str, Any]) -> None:
        try:
            payload = orjson.dumps(event_envelope(event_type, data)).decode()
        except TypeError:
            logger.exception("event %s is not JSON-serialisable", event_type.value)
            return
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="agent_event_publisher"
            )

    async def _drain(self) -> None:
        while not self._queue.empty():
            payload = self._queue.get_nowait()
            try:
                await self._send(payload)
                self.sent += 1
            except Exception as exc:
                logger.warning("could not send an agent event: %s", exc)

    async def flush(self) -> None:
        """Wait until every queued event has been sent (or failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
