"""JSON Schemas of protocol v1, generated from the code: `python -m agent.chat.schema [DIR]`.

Writes `command-request.v1.json`, `command-reply.v1.json` and `agent-event.v1.json` (default
directory: `schemas/`). Argument schemas come from the commands' pydantic models; a test keeps
the committed files equal to what this module generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.chat.handlers import builtin_commands
from agent.chat.parsing import MAX_ID_CHARS
from agent.chat.protocol import PROTOCOL_VERSION, ErrorCode, EventType
from agent.chat.reply_mode import ReplyMode

__all__ = ["SCHEMA_FILES", "event_schema", "reply_schema", "request_schema", "write_schemas"]

_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_BASE = "https://github.com/livekit-langgraph-voice/schemas/"
SCHEMA_FILES = ("command-request.v1.json", "command-reply.v1.json", "agent-event.v1.json")

STRING: dict[str, Any] = {"type": "string"}
NUMBER: dict[str, Any] = {"type": "number"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(
    properties: dict[str, Any], *, required: tuple[str, ...] | None = None
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
    }


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _enum(values: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": values}


REQUEST_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}
COMMAND_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,31}$"}
REPLY_MODES = _enum([m.value for m in ReplyMode])
COMMAND_INFO = _object(
    {"name": STRING, "usage": STRING, "summary": STRING, "access": _enum(["caller", "staff"])}
)


def request_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    branches = []
    for spec in builtin_commands():
        args = spec.args_model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(args.pop("$defs", {}))
        defs[f"{spec.name}_args"] = args
        branches.append(
            {
                "if": {"properties": {"command": {"const": spec.name}}},
                "then": {"properties": {"args": {"$ref": f"#/$defs/{spec.name}_args"}}},
            }
        )
    return {
        "$schema": _DRAFT,
        "$id": _BASE + SCHEMA_FILES[0],
        "title": "Agent command request (protocol v1, topic agent.command)",
        "type": "object",
        "properties": {
            "v": {"const": PROTOCOL_VERSION},
            "id": REQUEST_ID,
            "command": COMMAND_NAME,
            "args": {"type": "object"},
        },
        "required": ["v", "id", "command"],
        "additionalProperties": False,
        "allOf": branches,
        "$defs": defs,
    }


def _command_data() -> dict[str, dict[str, Any]]:
    source = _object(
        {
            "source": STRING,
            "title": STRING,
            "section": STRING,
            "chunk": INTEGER,
            "score": NUMBER,
            "preview": STRING,
        }
    )
    nearest = _object({"source": STRING, "title": STRING, "score": NUMBER, "preview": STRING})
    workflow_info = _object(
        {
            "name": STRING,
            "description": STRING,
            "side_effecting": BOOLEAN,
            "params": _array(_object({"name": STRING, "description": STRING, "required": BOOLEAN})),
        }
    )
    latency = _object(
        {
            "time_to_first_token": _nullable(NUMBER),
            "state_time": NUMBER,
            "graph_time": NUMBER,
            "tool_time": NUMBER,
            "tool_calls": INTEGER,
            "total_time": NUMBER,
        }
    )
    return {
        "help": _object({"commands": _array(COMMAND_INFO)}),
        "search": _object(
            {
                "query": STRING,
                "property_id": _nullable(STRING),
                "min_score": _nullable(NUMBER),
                "results": _array(source),
            }
        ),
        "embed": _object(
            {
                "model": STRING,
                "dimensions": INTEGER,
                "norm": _nullable(NUMBER),
                "vector_preview": _array(NUMBER),
                "nearest": _array(nearest),
            }
        ),
        "analyze": _object(
            {
                "summary": STRING,
                "key_points": _array(STRING),
                "sentiment": _enum(["positive", "neutral", "negative", "mixed"]),
            }
        ),
        "workflow": {
            "oneOf": [
                _object({"workflows": _array(workflow_info)}),
                _object(
                    {
                        "run_id": STRING,
                        "workflow": STRING,
                        "status": _enum(["finished", "waiting"]),
                        "text": STRING,
                        "result": {"type": "object"},
                    }
                ),
            ]
        },
        "status": _object(
            {
                "agent_state": STRING,
                "user_state": STRING,
                "conversation_id": STRING,
                "turns": INTEGER,
                "resets": INTEGER,
                "reply_mode": REPLY_MODES,
                "awaiting_confirmation": BOOLEAN,
                "providers": {"type": "object", "additionalProperties": STRING},
                "last_turn_latency": {"anyOf": [latency, {"type": "null"}]},
                "uptime_s": NUMBER,
            }
        ),
        "reset": _object(
            {
                "status": _enum(["confirmation_required", "reset"]),
                "expires_in_s": NUMBER,
                "conversation_id": STRING,
                "previous_conversation_id": STRING,
            },
            required=("status",),
        ),
        "mode": _object({"mode": REPLY_MODES, "changed": BOOLEAN}),
    }


def reply_schema() -> dict[str, Any]:
    data = _command_data()
    ok = {
        "type": "object",
        "properties": {
            "v": {"const": PROTOCOL_VERSION},
            "id": _nullable(REQUEST_ID),
            "ok": {"const": True},
            "command": COMMAND_NAME,
            "data": {"type": "object"},
        },
        "required": ["v", "id", "ok", "command", "data"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"command": {"const": name}}},
                "then": {"properties": {"data": {"$ref": f"#/$defs/{name}_data"}}},
            }
            for name in data
        ],
    }
    error = {
        "type": "object",
        "properties": {
            "v": {"const": PROTOCOL_VERSION},
            "id": _nullable(REQUEST_ID),
            "ok": {"const": False},
            "command": _nullable(COMMAND_NAME),
            "error": _object(
                {
                    "code": _enum([c.value for c in ErrorCode]),
                    "message": {"type": "string", "minLength": 1},
                    "usage": STRING,
                    "retry_after_s": {"type": "number", "minimum": 0},
                },
                required=("code", "message"),
            ),
        },
        "required": ["v", "id", "ok", "command", "error"],
        "additionalProperties": False,
    }
    return {
        "$schema": _DRAFT,
        "$id": _BASE + SCHEMA_FILES[1],
        "title": "Agent command reply (protocol v1, topic agent.reply)",
        "oneOf": [{"$ref": "#/$defs/ok_reply"}, {"$ref": "#/$defs/error_reply"}],
        "$defs": {
            "ok_reply": ok,
            "error_reply": error,
            **{f"{name}_data": schema for name, schema in data.items()},
        },
    }


def _event_data() -> dict[EventType, dict[str, Any]]:
    topics = _object({"chat": STRING, "command": STRING, "reply": STRING, "event": STRING})
    answer_source = _object(
        {
            "source": STRING,
            "title": STRING,
            "chunk": _nullable(INTEGER),
            "score": NUMBER,
            "preview": STRING,
            "tool": STRING,
        }
    )
    return {
        EventType.WELCOME: _object(
            {
                "agent": _nullable(STRING),
                "greeting": _nullable(STRING),
                "capabilities": _array(STRING),
                "commands": _array(COMMAND_INFO),
                "reply_mode": REPLY_MODES,
                "protocol": _object({"version": {"const": PROTOCOL_VERSION}, "topics": topics}),
            }
        ),
        EventType.TOOL_STARTED: _object(
            {"name": STRING, "call_id": STRING, "args_summary": STRING}
        ),
        EventType.TOOL_FINISHED: _object(
            {
                "name": STRING,
                "call_id": STRING,
                "ok": BOOLEAN,
                "duration_s": NUMBER,
                "error": _nullable(STRING),
            }
        ),
        EventType.SOURCES: _object(
            {"message_id": STRING, "conversation_id": STRING, "sources": _array(answer_source)}
        ),
        EventType.WORKFLOW_PROGRESS: _object(
            {
                "run_id": STRING,
                "workflow": STRING,
                "status": _enum(["started", "step", "waiting", "finished", "failed"]),
                "step": _nullable(STRING),
                "message": _nullable(STRING),
                "request_id": STRING,
            }
        ),
        EventType.REPLY_MODE: _object({"mode": REPLY_MODES}),
        EventType.THREAD_RESET: _object(
            {"conversation_id": STRING, "previous_conversation_id": STRING}
        ),
        EventType.ERROR: _object(
            {
                "code": _enum(["stt_failed", "llm_failed", "tts_failed", "tool_failed"]),
                "message": STRING,
                "recoverable": BOOLEAN,
                "source": _nullable(STRING),
                "detail": _nullable(STRING),
            }
        ),
    }


def event_schema() -> dict[str, Any]:
    data = _event_data()
    return {
        "$schema": _DRAFT,
        "$id": _BASE + SCHEMA_FILES[2],
        "title": "Agent event (protocol v1, topic agent.event)",
        "type": "object",
        "properties": {
            "v": {"const": PROTOCOL_VERSION},
            "type": _enum([t.value for t in EventType]),
            "ts": NUMBER,
            "data": {"type": "object"},
        },
        "required": ["v", "type", "ts", "data"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"type": {"const": kind.value}}},
                "then": {"properties": {"data": {"$ref": f"#/$defs/{kind.value}"}}},
            }
            for kind in data
        ],
        "$defs": {kind.value: schema for kind, schema in data.items()},
    }


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in zip(
        SCHEMA_FILES, (request_schema(), reply_schema(), event_schema()), strict=True
    ):
        path = directory / name
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.chat.schema",
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
