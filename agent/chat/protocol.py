"""The data-channel protocol, version 1, as pydantic models; `schemas/*.json` are made from them.

Requests (`agent.command`)::

    {"v": 1, "id": "req-1", "command": "search", "args": {"query": "wifi"}}

Replies (`agent.reply`, to the sender only)::

    {"v": 1, "id": "req-1", "ok": true, "command": "search", "data": {...}}
    {"v": 1, "id": "req-1", "ok": false, "command": "search",
     "error": {"code": "invalid_arguments", "message": "...", "usage": "/search <query>"}}

Events (`agent.event`, to the caller)::

    {"v": 1, "type": "tool_started", "ts": 1730000000.0, "data": {...}}

A command's `args` and `data` models live in its handler (`agent/chat/handlers/`); the schemas
join them in. Regenerate the committed files with `python -m agent.chat.protocol [DIR]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "PROTOCOL_VERSION",
    "SCHEMA_FILES",
    "TOPIC_CHAT",
    "TOPIC_COMMAND",
    "TOPIC_EVENT",
    "TOPIC_REPLY",
    "Absent",
    "AgentEvent",
    "CommandInfo",
    "CommandRequest",
    "ErrorCode",
    "ErrorReply",
    "EventType",
    "OkReply",
    "ReplyMode",
    "Wire",
    "event_envelope",
    "schemas",
    "write_schemas",
]

PROTOCOL_VERSION: Literal[1] = 1
TOPIC_CHAT = "lk.chat"
TOPIC_COMMAND = "agent.command"
TOPIC_REPLY = "agent.reply"
TOPIC_EVENT = "agent.event"
MAX_ID_CHARS = 128
COMMAND_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
SCHEMA_FILES = ("command-request.v1.json", "command-reply.v1.json", "agent-event.v1.json")
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_BASE = "https://github.com/livekit-langgraph-voice/schemas/"

RequestId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
CommandName = Annotated[str, Field(pattern=COMMAND_NAME_PATTERN)]
Version = Literal[1]


class Wire(BaseModel):
    """A protocol object: closed (no unknown fields), as the schemas say."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


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


class ReplyMode(StrEnum):
    """How typed messages are answered: spoken only, as text only, or both."""

    VOICE = "voice"
    TEXT = "text"
    BOTH = "both"

    @property
    def speaks(self) -> bool:
        return self is not ReplyMode.TEXT

    @property
    def writes(self) -> bool:
        return self is not ReplyMode.VOICE


# -- requests and replies ----------------------------------------------------------------------


class CommandRequest(Wire):
    """A JSON request on `agent.command`; `args` is checked by the command's own model."""

    v: Version
    id: RequestId
    command: CommandName
    args: dict[str, Any] = Field(default_factory=dict)


class CommandInfo(Wire):
    name: str
    usage: str
    summary: str
    access: Literal["caller", "staff"]


class OkReply(Wire):
    v: Version = PROTOCOL_VERSION
    id: RequestId | None
    ok: Literal[True] = True
    command: CommandName
    data: dict[str, Any]


# an optional field of the wire format: left out when absent, never sent as null
Absent = Field(default=None, exclude_if=lambda value: value is None)


class ErrorDetail(Wire):
    code: ErrorCode
    message: Annotated[str, Field(min_length=1)]
    usage: str | SkipJsonSchema[None] = Absent
    retry_after_s: Annotated[float, Field(ge=0)] | SkipJsonSchema[None] = Absent


class ErrorReply(Wire):
    v: Version = PROTOCOL_VERSION
    id: RequestId | None
    ok: Literal[False] = False
    command: CommandName | None
    error: ErrorDetail


# -- events ------------------------------------------------------------------------------------


class Topics(Wire):
    chat: str = TOPIC_CHAT
    command: str = TOPIC_COMMAND
    reply: str = TOPIC_REPLY
    event: str = TOPIC_EVENT


class ProtocolInfo(Wire):
    version: Version = PROTOCOL_VERSION
    topics: Topics = Field(default_factory=Topics)


class Welcome(Wire):
    agent: str | None
    greeting: str | None
    capabilities: list[str]
    commands: list[CommandInfo]
    reply_mode: ReplyMode
    protocol: ProtocolInfo = Field(default_factory=ProtocolInfo)


class ToolStartedData(Wire):
    name: str
    call_id: str
    args_summary: str


class ToolFinishedData(Wire):
    name: str
    call_id: str
    ok: bool
    duration_s: float
    error: str | None


class AnswerSource(Wire):
    source: str
    title: str
    chunk: int | None
    score: float
    preview: str
    tool: str


class SourcesData(Wire):
    message_id: str
    conversation_id: str
    sources: list[AnswerSource]


class WorkflowProgressData(Wire):
    run_id: str
    workflow: str
    status: Literal["started", "step", "waiting", "finished", "failed"]
    step: str | None
    message: str | None
    request_id: str


class ReplyModeData(Wire):
    mode: ReplyMode


class ThreadResetData(Wire):
    conversation_id: str
    previous_conversation_id: str


class ErrorData(Wire):
    code: Literal["stt_failed", "llm_failed", "tts_failed", "tool_failed"]
    message: str
    recoverable: bool
    source: str | None
    detail: str | None


EVENT_DATA: dict[EventType, type[Wire]] = {
    EventType.WELCOME: Welcome,
    EventType.TOOL_STARTED: ToolStartedData,
    EventType.TOOL_FINISHED: ToolFinishedData,
    EventType.SOURCES: SourcesData,
    EventType.WORKFLOW_PROGRESS: WorkflowProgressData,
    EventType.REPLY_MODE: ReplyModeData,
    EventType.THREAD_RESET: ThreadResetData,
    EventType.ERROR: ErrorData,
}


class AgentEvent(Wire):
    v: Version = PROTOCOL_VERSION
    type: EventType
    ts: float
    data: dict[str, Any]


def event_envelope(event_type: EventType, data: Wire, *, ts: float | None = None) -> AgentEvent:
    return AgentEvent(
        type=event_type,
        ts=round(time.time() if ts is None else ts, 3),
        data=data.model_dump(mode="json"),
    )


# -- the JSON Schemas --------------------------------------------------------------------------


def _schema(model: Any, defs: dict[str, Any], *, sent: bool = True) -> dict[str, Any]:
    """`model`'s schema (as the agent sends it, or as it reads it), its nested definitions
    moved into the shared `defs`."""
    schema = TypeAdapter(model).json_schema(
        ref_template="#/$defs/{model}", mode="serialization" if sent else "validation"
    )
    defs.update(schema.pop("$defs", {}))
    return schema


def _branches(field: str, key: str, refs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "if": {"properties": {key: {"const": name}}},
            "then": {"properties": {field: {"$ref": f"#/$defs/{ref}"}}},
        }
        for name, ref in refs
    ]


def _document(index: int, title: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": _DRAFT, "$id": _BASE + SCHEMA_FILES[index], "title": title, **body}


def schemas(commands: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The three schema documents for `commands` (`CommandSpec`s), by file name."""
    specs = list(commands)
    request_defs: dict[str, Any] = {}
    for spec in specs:
        request_defs[f"{spec.name}_args"] = _schema(spec.args_model, request_defs, sent=False)
    request = _schema(CommandRequest, request_defs, sent=False)
    request["allOf"] = _branches("args", "command", ((s.name, f"{s.name}_args") for s in specs))
    request["$defs"] = request_defs

    reply_defs: dict[str, Any] = {}
    for spec in specs:
        reply_defs[f"{spec.name}_data"] = _schema(spec.reply_model, reply_defs)
    ok = _schema(OkReply, reply_defs)
    ok["allOf"] = _branches("data", "command", ((s.name, f"{s.name}_data") for s in specs))
    reply_defs.update(ok_reply=ok, error_reply=_schema(ErrorReply, reply_defs))

    event_defs: dict[str, Any] = {}
    for kind, model in EVENT_DATA.items():
        event_defs[kind.value] = _schema(model, event_defs)
    event = _schema(AgentEvent, event_defs)
    event["allOf"] = _branches("data", "type", ((k.value, k.value) for k in EVENT_DATA))
    event["$defs"] = event_defs
    return {
        SCHEMA_FILES[0]: _document(
            0, "Agent command request (protocol v1, topic agent.command)", request
        ),
        SCHEMA_FILES[1]: _document(
            1,
            "Agent command reply (protocol v1, topic agent.reply)",
            {
                "oneOf": [{"$ref": "#/$defs/ok_reply"}, {"$ref": "#/$defs/error_reply"}],
                "$defs": reply_defs,
            },
        ),
        SCHEMA_FILES[2]: _document(2, "Agent event (protocol v1, topic agent.event)", event),
    }


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    from agent.chat.handlers import COMMANDS  # the handlers import this module

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas(COMMANDS).items():
        path = directory / name
        path.write_text(schema_text(schema), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.chat.protocol",
        description="Write the data-channel JSON Schemas (command request, reply, event).",
    )
    parser.add_argument(
        "directory", nargs="?", default="schemas", type=Path, help="where to write (schemas/)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for path in write_schemas(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
