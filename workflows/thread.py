"""Stable, privacy-preserving thread ids for conversations.

A caller who reconnects, or who types in the chat while talking, must land on the same
checkpointed thread. The key is chosen in this order:

1. `conversation_id` from the dispatch metadata (the app decides what a conversation is);
2. reservation code + guest name, normalised (case, accents, spacing, punctuation), so
   "ab-12 34 / Müller" and "AB1234 / muller" are the same stay;
3. room name + caller identity (or the room alone).

The chosen parts are hashed (SHA-256, 128 bits kept): ids are fixed-length, safe in Redis
key names and logs, and carry no guest data. The prefix names which rule produced the id.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["THREAD_ID_VERSION", "conversation_thread_id"]

THREAD_ID_VERSION = "v1"
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in _fold(code) if ch.isalnum()).upper()


def _normalise_name(name: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", _fold(name)).replace("_", " ").split())


def _digest(kind: str, *parts: str) -> str:
    payload = "\x1f".join((THREAD_ID_VERSION, kind, *parts)).encode("utf-8")
    return f"{kind}-{hashlib.sha256(payload).hexdigest()[:32]}"


def _clean(value: str | None) -> str:
    return value.strip() if value else ""


def conversation_thread_id(
    *,
    conversation_id: str | None = None,
    reservation_code: str | None = None,
    guest_name: str | None = None,
    room: str | None = None,
    caller_identity: str | None = None,
) -> str:
    """The checkpoint thread id for a conversation; raises ValueError when nothing identifies it."""
    if conversation := _clean(conversation_id):
        return _digest("conversation", conversation)
    code = _normalise_code(_clean(reservation_code))
    name = _normalise_name(_clean(guest_name))
    if code and name:
        return _digest("reservation", code, name)
    room_name = _clean(room)
    identity = _clean(caller_identity)
    if room_name or identity:
        return _digest("caller", room_name, identity)
    raise ValueError(
        "a thread id needs conversation_id, reservation_code with guest_name, "
        "or a room / caller identity"
    )
