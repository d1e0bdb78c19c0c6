"""Write-through cache of decoded checkpoint state for `RedisCheckpointSaver`.

Per thread it remembers decoded messages by content ref (and which in-process message object
was stored under which ref, so a put serialises only messages it has not stored yet) and the
decoded value of recent channel versions. Entries are keyed by (namespace, channel, version)
and versions are never reused, so an entry can only be missing, never wrong: when another
worker wrote, the saver simply does not find the new version here and reads it from Redis.

Assumes what LangGraph asks of nodes: state is updated by returning new values, never by
mutating a message object in place. Cached message lists are handed out as shallow copies.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage

_VERSIONS_PER_THREAD = 16
_IMMUTABLE = (str, int, float, bool, bytes, type(None))

ValueKey = tuple[str, str, str]
"""(checkpoint_ns, channel, version)."""


def is_message_list(value: Any) -> bool:
    return type(value) is list and bool(value) and all(isinstance(m, BaseMessage) for m in value)


def cacheable(value: Any) -> bool:
    """Values safe to hand out again: message lists (copied on the way out) and immutables."""
    return isinstance(value, _IMMUTABLE) or is_message_list(value)


@dataclass
class ThreadCache:
    by_ref: dict[bytes, BaseMessage] = field(default_factory=dict)
    # id(message) -> (message, ref); the message is held so its id cannot be reused meanwhile
    by_object: dict[int, tuple[BaseMessage, bytes]] = field(default_factory=dict)
    values: OrderedDict[ValueKey, Any] = field(default_factory=OrderedDict)

    def ref_of(self, message: BaseMessage) -> bytes | None:
        hit = self.by_object.get(id(message))
        return hit[1] if hit is not None and hit[0] is message else None

    def remember_message(self, ref: bytes, message: BaseMessage) -> None:
        self.by_ref[ref] = message
        self.by_object[id(message)] = (message, ref)

    def trim_messages(self, current: list[BaseMessage], refs: list[bytes]) -> None:
        """Forget messages no longer in the thread once they clearly outnumber it."""
        if len(self.by_ref) <= 2 * len(current) + 64:
            return
        self.by_ref = dict(zip(refs, current, strict=True))
        self.by_object = {id(m): (m, r) for r, m in zip(refs, current, strict=True)}

    def forget(self, refs: list[bytes]) -> None:
        """Messages deleted from Redis: a later put must store them again."""
        for ref in refs:
            message = self.by_ref.pop(ref, None)
            if message is not None:
                self.by_object.pop(id(message), None)

    def get_value(self, key: ValueKey) -> tuple[bool, Any]:
        if key not in self.values:
            return False, None
        value = self.values[key]
        return True, list(value) if type(value) is list else value

    def put_value(self, key: ValueKey, value: Any) -> None:
        self.values[key] = list(value) if type(value) is list else value
        self.values.move_to_end(key)
        while len(self.values) > _VERSIONS_PER_THREAD:
            self.values.popitem(last=False)


class DecodedCache:
    """LRU of `ThreadCache`s; `threads=0` disables caching entirely."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._entries: OrderedDict[str, ThreadCache] = OrderedDict()

    def thread(self, thread_id: str) -> ThreadCache | None:
        if self._threads <= 0:
            return None
        entry = self._entries.get(thread_id)
        if entry is None:
            entry = self._entries[thread_id] = ThreadCache()
            while len(self._entries) > self._threads:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(thread_id)
        return entry

    def drop(self, thread_id: str) -> None:
        self._entries.pop(thread_id, None)
