"""Turn what arrives on the data channel into a `CommandRequest`, or a `ProtocolError`.

Two forms arrive: a JSON envelope on `agent.command`, and chat text starting with `/` on
`lk.chat`. Nothing here raises anything but `ProtocolError`, whatever the payload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from agent.chat.protocol import PROTOCOL_VERSION, ErrorCode

__all__ = [
    "ENVELOPE_KEYS",
    "MAX_ID_CHARS",
    "CommandRequest",
    "ProtocolError",
    "decode_envelope",
    "is_command_text",
    "parse_slash",
    "payload_size",
    "unescape_chat",
]

MAX_ID_CHARS = 128
MAX_NAME_CHARS = 32
ENVELOPE_KEYS = frozenset({"v", "id", "command", "args"})
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SHOWN_NAME_CHARS = 40
_HEAD = re.compile(r"(\S*)(.*)\Z", re.DOTALL)


@dataclass(frozen=True)
class CommandRequest:
    """One command to run: from a JSON envelope (`args`) or a chat line (`text`)."""

    command: str
    id: str | None
    source: Literal["json", "chat"]
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    """For chat commands: everything after the command word, stripped."""


class ProtocolError(Exception):
    """The payload is not a usable request; becomes an error reply with `code`."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        request_id: str | None = None,
        command: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.command = command


def payload_size(payload: bytes | str) -> int:
    """Size in bytes as sent (UTF-8); lone surrogates count as the bytes they would take."""
    if isinstance(payload, bytes):
        return len(payload)
    return len(payload.encode("utf-8", "surrogatepass"))


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _usable_id(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS:
        return value
    return None


def decode_envelope(payload: bytes | str, *, max_bytes: int) -> CommandRequest:
    """Validate a JSON request envelope of protocol version 1."""
    size = payload_size(payload)
    if size > max_bytes:
        raise ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"the request is {size} bytes; the limit is {max_bytes} bytes",
        )
    try:
        data = orjson.loads(payload)
    except (orjson.JSONDecodeError, UnicodeError, TypeError) as exc:
        raise ProtocolError(
            ErrorCode.INVALID_JSON, f"the request is not valid UTF-8 JSON ({exc})"
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError(
            ErrorCode.INVALID_ENVELOPE, f"the request must be a JSON object, not {_type_name(data)}"
        )
    request_id = _usable_id(data.get("id"))
    raw_command = data.get("command")
    command = raw_command if isinstance(raw_command, str) and _NAME.fullmatch(raw_command) else None

    def fail(code: ErrorCode, message: str) -> ProtocolError:
        return ProtocolError(code, message, request_id=request_id, command=command)

    version = data.get("v")
    if "v" not in data:
        raise fail(ErrorCode.INVALID_ENVELOPE, 'the request needs "v": 1 (the protocol version)')
    if isinstance(version, bool) or not isinstance(version, int):
        raise fail(ErrorCode.INVALID_ENVELOPE, f'"v" must be an integer, not {_type_name(version)}')
    if version != PROTOCOL_VERSION:
        raise fail(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version} is not supported; this agent speaks version "
            f"{PROTOCOL_VERSION}",
        )
    unknown = sorted(str(key) for key in data if key not in ENVELOPE_KEYS)
    if unknown:
        shown = ", ".join(repr(k[:_SHOWN_NAME_CHARS]) for k in unknown[:5])
        raise fail(
            ErrorCode.INVALID_ENVELOPE, f"unknown field(s) {shown}; allowed: v, id, command, args"
        )
    if "id" not in data or request_id is None:
        raise fail(
            ErrorCode.INVALID_ENVELOPE,
            f'"id" must be a string of 1 to {MAX_ID_CHARS} characters',
        )
    if not isinstance(raw_command, str):
        raise fail(
            ErrorCode.INVALID_ENVELOPE,
            f'"command" must be a string, not {_type_name(raw_command)}',
        )
    if command is None:
        raise fail(
            ErrorCode.UNKNOWN_COMMAND,
            f'unknown command {_shown(raw_command)!r}; send "help" for the list',
        )
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise fail(ErrorCode.INVALID_ENVELOPE, f'"args" must be an object, not {_type_name(args)}')
    return CommandRequest(command=command, id=request_id, source="json", args=args)


def _shown(name: str) -> str:
    flat = "".join(ch if ch.isprintable() else "?" for ch in name)
    return flat if len(flat) <= _SHOWN_NAME_CHARS else flat[: _SHOWN_NAME_CHARS - 1] + "…"


def is_command_text(text: str) -> bool:
    """Chat text is a command when it starts with `/` (but `//` escapes a literal slash)."""
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//")


def unescape_chat(text: str) -> str:
    """`//text` is sent to the conversation as `/text`."""
    stripped = text.lstrip()
    return stripped[1:] if stripped.startswith("//") else text


def parse_slash(text: str, *, max_bytes: int, request_id: str) -> CommandRequest:
    """Split `/name rest of line` into a request; the command decides how to read `rest`."""
    size = payload_size(text)
    if size > max_bytes:
        raise ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE,
            f"the command is {size} bytes; the limit is {max_bytes} bytes",
            request_id=request_id,
        )
    head = _HEAD.match(text.strip()[1:])
    name = head.group(1).lower() if head else ""
    rest = head.group(2).strip() if head else ""
    if not name:
        raise ProtocolError(
            ErrorCode.UNKNOWN_COMMAND,
            "a command name must follow the slash; type /help for the list",
            request_id=request_id,
        )
    if not _NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.UNKNOWN_COMMAND,
            f"unknown command /{_shown(name)}; type /help for the list",
            request_id=request_id,
        )
    return CommandRequest(command=name, id=request_id, source="chat", text=rest)
