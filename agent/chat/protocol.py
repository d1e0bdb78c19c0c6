"""The data-channel protocol, version 1: topics, the request/reply envelopes, events, error codes.

Requests (`agent.command`)::

    {"v": 1, "id": "req-1", "command": "search", "args": {"query": "wifi"}}

Replies (`agent.reply`, to the sender only)::

    {"v": 1, "id": "req-1", "ok": true, "command": "search", "data": {...}}
    {"v": 1, "id": "req-1", "ok": false, "command": "search",
     "error": {"code": "invalid_arguments", "message": "...", "usage": "/search <query>"}}

Events (`agent.event`, to the caller)::

    {"v": 1, "type": "tool_started", "ts": 1730000000.0, "data": {...}}

The JSON Schemas in `schemas/` describe exactly these shapes.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

__all__ = [
    "EVENT_TYPES",
    "PROTOCOL_VERSION",
    "TOPIC_CHAT",
    "TOPIC_COMMAND",
    "TOPIC_EVENT",
    "TOPIC_REPLY",
    "ErrorCode",
    "EventType",
    "error_reply",
    "event_envelope",
    "ok_reply",
]

PROTOCOL_VERSION = 1

TOPIC_CHAT = "lk.chat"
TOPIC_COMMAND = "agent.command"
TOPIC_REPLY = "agent.reply"
TOPIC_EVENT = "agent.event"


class ErrorCode(StrEnum):
    """Stable error codes of command replies; clients may branch on them."""

    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    UNSUPPORTED_VERSION = "unsupported_version"
    MESSAGE_TOO_LARGE = "message_too_large"
    UNKNOWN_COMMAND = "unknown_command"
    INVALID_ARGUMENTS = "invalid_arguments"
    FORBIDDEN = "forbidden"
    NOT_ALLOWED = "not_allowed"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    NOTHING_TO_CONFIRM = "nothing_to_confirm"
    BUSY = "busy"
    COMMAND_FAILED = "command_failed"
    TIMEOUT = "timeout"
    INTERNAL_ERROR = "internal_error"


class EventType(StrEnum):
    WELCOME = "welcome"
    TOOL_STARTED = "tool_started"
    TOOL_FINISHED = "tool_finished"
    SOURCES = "sources"
    WORKFLOW_PROGRESS = "workflow_progress"
    REPLY_MODE = "reply_mode"
    THREAD_RESET = "thread_reset"
    ERROR = "error"


EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)


def ok_reply(request_id: str | None, command: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "command": command, "data": data}


def error_reply(
    request_id: str | None,
    command: str | None,
    code: ErrorCode,
    message: str,
    *,
    usage: str | None = None,
    retry_after_s: float | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code.value, "message": message}
    if usage is not None:
        error["usage"] = usage
    if retry_after_s is not None:
        error["retry_after_s"] = round(retry_after_s, 2)
    return {
        "v": PROTOCOL_VERSION,
        "id": request_id,
        "ok": False,
        "command": command,
        "error": error,
    }


def event_envelope(
    event_type: EventType, data: dict[str, Any], *, ts: float | None = None
) -> dict[str, Any]:
    return {
        "v": PROTOCOL_VERSION,
        "type": event_type.value,
        "ts": round(time.time() if ts is None else ts, 3),
        "data": data,
    }
