"""Key names and binary encodings of the Redis checkpointer (see `workflows.checkpoint`).

Every variable part inside a zset member or hash field is length-prefixed, so no thread id,
namespace, channel or task id can make two different things encode to the same bytes. All
members of a zset have score 0, which makes Redis order them byte-wise: that is what the
`*BYLEX` range queries below rely on.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from urllib.parse import quote, unquote

_LEN = struct.Struct(">I")
_IDX = struct.Struct(">i")
_SEQ = struct.Struct(">Q")
_END = b"\x00"

Typed = tuple[str, bytes]
EMPTY_BLOB: Typed = ("empty", b"")
# A channel value that is a list of messages: the payload is the concatenated message refs.
MESSAGE_REFS = "lk.msgrefs"
REF_SIZE = 8


def message_ref(encoded_message: bytes) -> bytes:
    """Content address of one stored message (its id is part of the encoded bytes)."""
    return hashlib.blake2b(encoded_message, digest_size=REF_SIZE).digest()


def split_refs(payload: bytes) -> list[bytes]:
    return [payload[i : i + REF_SIZE] for i in range(0, len(payload), REF_SIZE)]


def frame(data: bytes) -> bytes:
    return _LEN.pack(len(data)) + data


def _read_frame(buf: bytes, pos: int) -> tuple[bytes, int]:
    (size,) = _LEN.unpack_from(buf, pos)
    start = pos + _LEN.size
    return buf[start : start + size], start + size


def successor(prefix: bytes) -> bytes:
    """Smallest byte string greater than every string starting with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        raise ValueError("a prefix made only of 0xff bytes has no successor")
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def prefix_range(prefix: bytes) -> tuple[bytes, bytes]:
    """`(min, max)` arguments of ZRANGEBYLEX selecting the members that start with `prefix`."""
    return b"[" + prefix, b"(" + successor(prefix)


def encode_typed(value: Typed) -> bytes:
    return frame(value[0].encode()) + value[1]


def decode_typed(data: bytes) -> Typed:
    type_, pos = _read_frame(data, 0)
    return type_.decode(), data[pos:]


@dataclass(frozen=True, slots=True)
class ThreadKeys:
    """The five keys that hold one thread; they share a hash tag, so one Cluster slot.

    `lock` (the cross-process turn lock, `workflows.turn_lock`) shares the tag but is not
    thread data: deleting or copying a thread leaves it alone.
    """

    checkpoints: bytes
    writes: bytes
    blobs: bytes
    runs: bytes
    messages: bytes
    lock: bytes

    @classmethod
    def build(cls, prefix: str, thread_id: str) -> ThreadKeys:
        base = f"{prefix}:{{{quote(thread_id, safe='')}}}:".encode()
        return cls(
            base + b"checkpoints",
            base + b"writes",
            base + b"blobs",
            base + b"runs",
            base + b"messages",
            base + b"lock",
        )

    def all(self) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        return (self.checkpoints, self.writes, self.blobs, self.runs, self.messages)


_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def thread_scan_pattern(prefix: str, suffix: str) -> str:
    """SCAN MATCH pattern for the `suffix` key ("checkpoints", "runs") of every thread."""
    escaped = _GLOB_SPECIAL.sub(r"\\\1", prefix)
    return f"{escaped}:{{*}}:{suffix}"


def thread_id_from_key(prefix: str, suffix: str, key: bytes) -> str | None:
    """Thread id encoded in a key matched by `thread_scan_pattern`, or None if it is foreign."""
    head, tail = f"{prefix}:{{".encode(), f"}}:{suffix}".encode()
    if not (key.startswith(head) and key.endswith(tail)) or len(key) < len(head) + len(tail):
        return None
    quoted = key[len(head) : len(key) - len(tail)]
    if b"}" in quoted or b"{" in quoted:
        return None
    return unquote(quoted.decode())


def ns_prefix(checkpoint_ns: str) -> bytes:
    return frame(checkpoint_ns.encode())


def checkpoint_prefix(checkpoint_ns: str, checkpoint_id: str) -> bytes:
    """Leading bytes shared by a checkpoint's zset member and all of its writes."""
    return ns_prefix(checkpoint_ns) + checkpoint_id.encode() + _END


def before_bound(checkpoint_ns: str, before_id: str) -> bytes:
    """Exclusive ZREVRANGEBYLEX max: checkpoints of the namespace older than `before_id`."""
    return b"(" + ns_prefix(checkpoint_ns) + before_id.encode() + _END


def blob_field(checkpoint_ns: str, channel: str, version: str | int | float) -> bytes:
    return ns_prefix(checkpoint_ns) + frame(channel.encode()) + str(version).encode()


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint as kept in the `checkpoints` zset: everything but the channel values."""

    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    checkpoint: Typed
    metadata: Typed


def encode_checkpoint(stored: StoredCheckpoint) -> bytes:
    return (
        checkpoint_prefix(stored.checkpoint_ns, stored.checkpoint_id)
        + frame((stored.parent_id or "").encode())
        + frame(encode_typed(stored.checkpoint))
        + encode_typed(stored.metadata)
    )


def decode_checkpoint(member: bytes) -> StoredCheckpoint:
    ns, pos = _read_frame(member, 0)
    end = member.index(_END, pos)
    checkpoint_id = member[pos:end].decode()
    parent, pos = _read_frame(member, end + 1)
    checkpoint, pos = _read_frame(member, pos)
    return StoredCheckpoint(
        checkpoint_ns=ns.decode(),
        checkpoint_id=checkpoint_id,
        parent_id=parent.decode() or None,
        checkpoint=decode_typed(checkpoint),
        metadata=decode_typed(member[pos:]),
    )


@dataclass(frozen=True, slots=True)
class StoredWrite:
    """One pending write; `seq` orders duplicates of one `(task_id, idx)` (first one wins)."""

    task_id: str
    idx: int
    seq: int
    task_path: str
    channel: str
    value: Typed


def write_slot(checkpoint_ns: str, checkpoint_id: str, task_id: str, idx: int) -> bytes:
    """Leading bytes of every stored copy of the write `(task_id, idx)` of a checkpoint."""
    return (
        checkpoint_prefix(checkpoint_ns, checkpoint_id) + frame(task_id.encode()) + _IDX.pack(idx)
    )


def encode_write(checkpoint_ns: str, checkpoint_id: str, write: StoredWrite) -> bytes:
    return (
        write_slot(checkpoint_ns, checkpoint_id, write.task_id, write.idx)
        + _SEQ.pack(write.seq)
        + frame(write.task_path.encode())
        + frame(write.channel.encode())
        + encode_typed(write.value)
    )


def decode_write(member: bytes) -> StoredWrite:
    _, pos = _read_frame(member, 0)
    pos = member.index(_END, pos) + 1
    task_id, pos = _read_frame(member, pos)
    (idx,) = _IDX.unpack_from(member, pos)
    (seq,) = _SEQ.unpack_from(member, pos + _IDX.size)
    task_path, pos = _read_frame(member, pos + _IDX.size + _SEQ.size)
    channel, pos = _read_frame(member, pos)
    return StoredWrite(
        task_id=task_id.decode(),
        idx=idx,
        seq=seq,
        task_path=task_path.decode(),
        channel=channel.decode(),
        value=decode_typed(member[pos:]),
    )


def run_prefix(run_id: str) -> bytes:
    return frame(run_id.encode())


def encode_run(run_id: str, checkpoint_ns: str, checkpoint_id: str) -> bytes:
    return run_prefix(run_id) + ns_prefix(checkpoint_ns) + checkpoint_id.encode()


def decode_run(member: bytes) -> tuple[str, str, str]:
    """`(run_id, checkpoint_ns, checkpoint_id)` of a `runs` zset member."""
    run_id, pos = _read_frame(member, 0)
    ns, pos = _read_frame(member, pos)
    return run_id.decode(), ns.decode(), member[pos:].decode()
