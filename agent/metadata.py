"""Dispatch metadata: who the caller is and what the conversation is about.

It arrives as one JSON object in the job (`lk dispatch create --metadata '{...}'`, or the
dispatch the token server embeds in the caller's token) and is completed from the caller's
participant attributes. Only the dispatch is trusted to name the conversation and the caller
(`conversation_id`, `caller_identity`, `caller_key`): attributes can fill context fields,
never those, and `conversation_key` ignores attribute-filled fields when it picks the
thread. Bad input never stops a call: every problem becomes a phrase in the
returned list (the entrypoint logs them as one warning) and the affected fields keep their
defaults, while the valid ones are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from workflows.thread import conversation_thread_id

__all__ = [
    "ATTRIBUTE_FIELDS",
    "MAX_CONTEXT_BYTES",
    "MAX_METADATA_BYTES",
    "ConversationKey",
    "DispatchMetadata",
    "conversation_key",
    "merge_participant_attributes",
    "parse_dispatch_metadata",
]

MAX_METADATA_BYTES = 16 * 1024
MAX_CONTEXT_BYTES = 4 * 1024
# Caller attributes may fill these; the conversation, identity and free-form context come only
# from the dispatch.
ATTRIBUTE_FIELDS = ("property_id", "reservation_code", "guest_name", "language")

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$")
_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class DispatchMetadata(BaseModel):
    """The validated dispatch metadata; every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)

    property_id: str | None = Field(default=None, max_length=128)
    reservation_code: str | None = Field(default=None, max_length=64)
    guest_name: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=35)
    conversation_id: str | None = Field(default=None, max_length=200)
    caller_identity: str | None = Field(default=None, max_length=600)
    # The token server's opaque key of the verified end user (stable across their tokens).
    caller_key: str | None = Field(default=None, max_length=128)
    context: dict[str, JsonValue] = Field(default_factory=dict)
    _from_attributes: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator(
        "property_id",
        "reservation_code",
        "guest_name",
        "language",
        "conversation_id",
        "caller_identity",
        "caller_key",
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _LANGUAGE_TAG.match(value):
            raise ValueError("expected a language tag such as 'en' or 'de-DE'")
        return value.replace("_", "-")

    @field_validator("context")
    @classmethod
    def _cap_context(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(f"{size} bytes, over the {MAX_CONTEXT_BYTES}-byte limit")
        return value

    def from_dispatch(self, name: str) -> str | None:
        """The field's value if the dispatch set it (None if absent or filled from attributes)."""
        if name in self._from_attributes:
            return None
        value = getattr(self, name)
        return value if isinstance(value, str) else None

    def present_fields(self) -> list[str]:
        """Names of the fields that carry a value; safe to log (no guest data)."""
        return [name for name in type(self).model_fields if getattr(self, name)]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _error_phrase(error: Mapping[str, Any], source: str) -> str:
    loc = error.get("loc") or ()
    field = str(loc[0]) if loc else "?"
    if error.get("type") == "extra_forbidden":
        return f"{source} has unknown field {field!r}"
    message = str(error.get("msg", "is invalid"))
    for prefix, replacement in (("Value error, ", ""), ("Input should be ", "expected ")):
        if message.startswith(prefix):
            message = replacement + message[len(prefix) :]
    return f"{source} field {field!r}: {message}"


def _validate_keeping_good_fields(
    data: Mapping[str, Any], source: str
) -> tuple[DispatchMetadata, list[str]]:
    try:
        return DispatchMetadata.model_validate(dict(data)), []
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
    bad = {str(e["loc"][0]) for e in errors if e.get("loc")}
    problems = [_error_phrase(e, source) for e in errors]
    kept = {key: value for key, value in data.items() if key not in bad}
    try:
        return DispatchMetadata.model_validate(kept), problems
    except ValidationError:
        return DispatchMetadata(), [*problems, f"{source} ignored"]


def parse_dispatch_metadata(raw: str | None) -> tuple[DispatchMetadata, list[str]]:
    """Parse the job's metadata string; returns the model and the problems found (if any)."""
    if raw is None or not raw.strip():
        return DispatchMetadata(), []
    size = len(raw.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        return DispatchMetadata(), [
            f"dispatch metadata is {size} bytes, over the {MAX_METADATA_BYTES}-byte limit; "
            "ignored it"
        ]
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return DispatchMetadata(), [
            f"dispatch metadata is not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}); ignored it"
        ]
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        return DispatchMetadata(), [f"dispatch metadata is not valid JSON ({reason}); ignored it"]
    if not isinstance(data, dict):
        return DispatchMetadata(), [
            f"dispatch metadata must be a JSON object, got {_json_type(data)}; ignored it"
        ]
    return _validate_keeping_good_fields(data, "dispatch metadata")


def merge_participant_attributes(
    metadata: DispatchMetadata, attributes: Mapping[str, str]
) -> tuple[DispatchMetadata, list[str]]:
    """Fill fields the dispatch left empty from the caller's token-set attributes.

    The dispatch wins where both say something. Attributes outside `ATTRIBUTE_FIELDS` are not
    ours (LiveKit and apps set many) and are ignored silently.
    """
    candidates = {
        name: attributes[name]
        for name in ATTRIBUTE_FIELDS
        if name in attributes and getattr(metadata, name) is None
    }
    if not candidates:
        return metadata, []
    parsed, problems = _validate_keeping_good_fields(candidates, "caller attribute")
    updates = {name: getattr(parsed, name) for name in candidates if getattr(parsed, name)}
    merged = metadata.model_copy(update=updates)
    merged._from_attributes = metadata._from_attributes | frozenset(updates)
    return merged, problems


# --- Which conversation a call continues -------------------------------------------------
# Which conversation a call continues and whose verification it uses, from trusted input only.
#
# Trusted: the job's dispatch metadata, which only the token server (building it from the
# authenticated caller) or the operator (`lk dispatch create`) can write, since it travels in a
# JWT signed with the LiveKit API secret. Not trusted to pick a conversation: participant
# attributes, and anything else a participant could choose. So:
#
# 1. a dispatch `conversation_id` continues that conversation;
# 2. a dispatch reservation code + guest name (both from the dispatch) continue that stay's;
# 3. otherwise the call gets the thread of this room and caller identity, which is new for
#    every token-server token (fresh room, unique identity).
#
# Verification records belong to the dispatch's `caller_key` (the verified end user) when the
# token server set one, else to the LiveKit identity of the participant actually talking.


@dataclass(frozen=True, slots=True)
class ConversationKey:
    thread_id: str
    # whose verified status and failed attempts this call reads and writes
    caller: str
    # True when the thread came from the dispatch (a continued conversation)
    continued: bool


def conversation_key(
    metadata: DispatchMetadata, *, room_name: str, caller_identity: str
) -> ConversationKey:
    caller = metadata.from_dispatch("caller_key") or caller_identity
    conversation = metadata.from_dispatch("conversation_id")
    code = metadata.from_dispatch("reservation_code")
    guest = metadata.from_dispatch("guest_name")
    if conversation or (code and guest):
        thread = conversation_thread_id(
            conversation_id=conversation, reservation_code=code, guest_name=guest
        )
        return ConversationKey(thread, caller, continued=True)
    thread = conversation_thread_id(room=room_name, caller_identity=caller_identity)
    return ConversationKey(thread, caller, continued=False)
