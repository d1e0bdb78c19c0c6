"""The `POST /token` body of LiveKit's standard token endpoint, parsed and checked by hand.

Hand-written rather than a pydantic model because it sits on the hot path; the OpenAPI
document in `openapi.py` states the same rules for clients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from token_server.errors import HttpError

MAX_BODY_BYTES = 16 * 1024
MAX_ROOM_NAME_CHARS = 128
MAX_IDENTITY_CHARS = 256
MAX_NAME_CHARS = 128
MAX_ATTRIBUTES = 16
MAX_ATTRIBUTE_VALUE_CHARS = 1024
MAX_AGENTS = 4

ROOM_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
ATTRIBUTE_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
AGENT_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{0,128}$"

_ROOM_NAME = re.compile(ROOM_NAME_PATTERN)
_ATTRIBUTE_KEY = re.compile(ATTRIBUTE_KEY_PATTERN)
_AGENT_NAME = re.compile(AGENT_NAME_PATTERN)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_FIELDS = frozenset(
    {
        "room_name",
        "participant_identity",
        "participant_name",
        "participant_metadata",
        "participant_attributes",
        "room_config",
    }
)
_AGENT_FIELDS = frozenset({"agent_name", "metadata"})


@dataclass(slots=True)
class AgentRequest:
    """One requested dispatch; `agent_name` None means the server's default agent."""

    agent_name: str | None
    metadata: dict[str, Any]


@dataclass(slots=True)
class TokenRequest:
    room_name: str | None = None
    participant_identity: str | None = None
    participant_name: str | None = None
    participant_metadata: str | None = None
    participant_attributes: dict[str, str] | None = None
    agents: tuple[AgentRequest, ...] | None = None


def invalid(field: str, message: str) -> HttpError:
    return HttpError(422, "invalid_field", f"{field}: {message}")


def parse_token_request(body: bytes, *, max_metadata_bytes: int) -> TokenRequest:
    """Parse and check a request body; raises HttpError 400/403/422 with the offending field."""
    if not body or body.isspace():
        return TokenRequest()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HttpError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HttpError(400, "invalid_json", "the request body must be a JSON object")
    request = TokenRequest()
    # Only the fields present are visited: most clients send one or two.
    for key, value in data.items():
        if key not in _FIELDS:
            raise invalid(key[:64], "unknown field")
        if value is None or value == "":
            continue  # protobuf JSON: null and "" mean "not set"
        if key == "room_config":
            request.agents = _room_config(value, max_metadata_bytes)
        elif key == "participant_name":
            request.participant_name = _bounded_text(value, key, MAX_NAME_CHARS)
        elif key == "room_name":
            request.room_name = _room_name(value)
        elif key == "participant_identity":
            request.participant_identity = _bounded_text(value, key, MAX_IDENTITY_CHARS)
        elif key == "participant_metadata":
            request.participant_metadata = _metadata(value, key, max_metadata_bytes)
        else:
            request.participant_attributes = _attributes(value, max_metadata_bytes)
    return request


def _string(value: Any, field: str) -> str | None:
    """A string field; null and "" mean absent, as in protobuf JSON."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    return value


def _room_name(value: Any) -> str | None:
    name = _string(value, "room_name")
    if name is not None and not _ROOM_NAME.fullmatch(name):
        raise invalid(
            "room_name",
            f"1-{MAX_ROOM_NAME_CHARS} characters from letters, digits and _ . : -",
        )
    return name


def _bounded_text(value: Any, field: str, max_chars: int) -> str | None:
    text = _string(value, field)
    if text is None:
        return None
    if len(text) > max_chars:
        raise invalid(field, f"at most {max_chars} characters")
    if _CONTROL_CHARS.search(text):
        raise invalid(field, "must not contain control characters")
    return text


def _metadata(value: Any, field: str, max_bytes: int) -> str | None:
    text = _string(value, field)
    if text is not None and len(text.encode()) > max_bytes:
        raise HttpError(422, "field_too_large", f"{field}: at most {max_bytes} bytes")
    return text


def _attributes(value: Any, max_bytes: int) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("participant_attributes", "must be an object of strings")
    if len(value) > MAX_ATTRIBUTES:
        raise invalid("participant_attributes", f"at most {MAX_ATTRIBUTES} entries")
    size = 0
    for key, item in value.items():
        if not _ATTRIBUTE_KEY.fullmatch(key):
            raise invalid(
                "participant_attributes",
                f"key {key[:64]!r} must be 1-64 characters from letters, digits and _ . : -",
            )
        if not isinstance(item, str):
            raise invalid(f"participant_attributes.{key}", "must be a string")
        if len(item) > MAX_ATTRIBUTE_VALUE_CHARS:
            raise invalid(f"participant_attributes.{key}", "value too long")
        size += len(key) + len(item.encode())
    if size > max_bytes:
        raise HttpError(
            422, "field_too_large", f"participant_attributes: at most {max_bytes} bytes in total"
        )
    return value or None


def _room_config(value: Any, max_bytes: int) -> tuple[AgentRequest, ...] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("room_config", "must be an object")
    for key in value:
        if key != "agents":
            raise HttpError(
                403,
                "field_not_allowed",
                f"room_config.{key[:64]} cannot be set by clients; only agents[] is accepted",
            )
    agents = value.get("agents")
    if agents is None:
        return None
    if not isinstance(agents, list):
        raise invalid("room_config.agents", "must be an array")
    if len(agents) > MAX_AGENTS:
        raise invalid("room_config.agents", f"at most {MAX_AGENTS} agents")
    return tuple(_agent(item, index, max_bytes) for index, item in enumerate(agents))


def _agent(value: Any, index: int, max_bytes: int) -> AgentRequest:
    where = f"room_config.agents[{index}]"
    if not isinstance(value, dict):
        raise invalid(where, "must be an object")
    for key in value:
        if key not in _AGENT_FIELDS:
            raise HttpError(
                403,
                "field_not_allowed",
                f"{where}.{key[:64]} cannot be set by clients; only agent_name and metadata",
            )
    agent_name = _string(value.get("agent_name"), f"{where}.agent_name")
    if agent_name is not None and not _AGENT_NAME.fullmatch(agent_name):
        raise invalid(f"{where}.agent_name", "at most 128 letters, digits and _ . : -")
    raw = _metadata(value.get("metadata"), f"{where}.metadata", max_bytes)
    return AgentRequest(agent_name=agent_name, metadata=_metadata_object(raw, where))


def _metadata_object(raw: str | None, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise invalid(f"{where}.metadata", "must be a JSON object encoded as a string")
    return parsed
