"""A LangGraph checkpointer on plain Redis commands (Redis 6+, Valkey, managed Redis).

Only hashes, sorted sets, pipelines and MULTI/EXEC/WATCH are used: no RedisJSON, no
RediSearch, no scripts. One thread lives in exactly five keys that share a hash tag
(`T` is the percent-encoded thread id, `P` the key prefix, default ``langgraph``):

``P:{T}:checkpoints`` (zset, every score 0)
    One member per checkpoint: ``frame(ns) + checkpoint_id + NUL + record``; the record holds
    the parent id, the serialised checkpoint without its channel values, and the metadata.
    Byte order equals (namespace, checkpoint id) order, so "latest", "before" and "exact id"
    are single ZREVRANGEBYLEX / ZRANGEBYLEX calls that return the record itself.
``P:{T}:blobs`` (hash)
    ``frame(ns) + frame(channel) + version`` -> serialised channel value. A value is stored
    once per version and shared by every checkpoint that still has that version. A list of
    messages is stored as its message refs only (8 bytes each).
``P:{T}:messages`` (hash)
    ``ref`` -> serialised message: each message once, however many checkpoints list it, so
    a put sends only the messages this process has not stored yet.
``P:{T}:writes`` (zset, every score 0)
    ``frame(ns) + checkpoint_id + NUL + frame(task_id) + idx + seq + ...`` -> pending writes,
    read per checkpoint with one range query. Special writes (error, interrupt, ...) replace
    an earlier write in their slot; ordinary writes keep the first one (``seq`` decides).
``P:{T}:runs`` (zset, every score 0)
    ``frame(run_id) + frame(ns) + checkpoint_id``: which checkpoints a run created.

With a TTL every write (`aput`, `aput_writes`, `acopy_thread`) sets it again on all five keys,
so a thread disappears as a whole once it has been idle for the TTL. With `max_checkpoints`
a thread keeps its newest checkpoints per namespace and older ones are pruned in batches.
Decoded state is cached per (thread, namespace, channel, version): see `_decoded_cache`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Sequence,
)
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar, cast

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    SerializerProtocol,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import WatchError

from workflows import _redis_layout as layout
from workflows._decoded_cache import DecodedCache, ThreadCache, cacheable

T = TypeVar("T")

_HEAD_CACHE_THREADS = 1024
_LIST_PAGE = 64
_WATCH_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class _Head:
    """What this saver last knew about a namespace's newest checkpoint (verified on use)."""

    checkpoint_id: str
    versions: dict[str, str | int | float]
    fields: list[bytes]


class RedisCheckpointSaver(BaseCheckpointSaver[str]):
    """Async LangGraph checkpointer storing each thread in four plain Redis keys.

    Use it from async code (`graph.ainvoke`, `graph.astream`, `await saver.aget_tuple(...)`).
    The sync methods work only from a thread other than the event loop's, like the official
    `AsyncSqliteSaver`. Every Redis round trip is bounded by `timeout` seconds (TimeoutError).
    `max_checkpoints` bounds the checkpoints kept per thread and namespace (None: all);
    `cache_threads` is how many threads' decoded state is cached (0: no cache).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        ttl: float | timedelta | None = None,
        key_prefix: str = "langgraph",
        timeout: float | None = 5.0,
        serde: SerializerProtocol | None = None,
        max_checkpoints: int | None = None,
        cache_threads: int = _HEAD_CACHE_THREADS,
    ) -> None:
        super().__init__(serde=serde)
        if max_checkpoints is not None and max_checkpoints < 2:
            raise ValueError("max_checkpoints must be at least 2 (or None to keep every one)")
        if redis.get_connection_kwargs().get("decode_responses"):
            raise ValueError("RedisCheckpointSaver needs a client with decode_responses=False")
        if not key_prefix or "{" in key_prefix or "}" in key_prefix:
            raise ValueError("key_prefix must be non-empty and contain no '{' or '}'")
        self._redis = redis
        self._ttl_ms = _ttl_ms(ttl)
        self._prefix = key_prefix
        self._timeout = timeout
        self._owns_client = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heads: OrderedDict[str, dict[str, _Head]] = OrderedDict()
        self._max_checkpoints = max_checkpoints
        self._cache = DecodedCache(cache_threads)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl: float | timedelta | None = None,
        key_prefix: str = "langgraph",
        connect_timeout: float = 2.0,
        timeout: float | None = 5.0,
        retries: int = 2,
        serde: SerializerProtocol | None = None,
        max_checkpoints: int | None = None,
        cache_threads: int = _HEAD_CACHE_THREADS,
    ) -> RedisCheckpointSaver:
        """A saver owning a new `redis.asyncio` client; close it with `aclose()` or `async with`."""
        client = Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            # Reads are bounded per round trip by `timeout`: one timer, not one per reply.
            socket_timeout=None,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries),
            decode_responses=False,
        )
        saver = cls(
            client,
            ttl=ttl,
            key_prefix=key_prefix,
            timeout=timeout,
            serde=serde,
            max_checkpoints=max_checkpoints,
            cache_threads=cache_threads,
        )
        saver._owns_client = True
        return saver

    @property
    def redis(self) -> Redis:
        return self._redis

    @property
    def key_prefix(self) -> str:
        return self._prefix

    async def ping(self) -> None:
        """Round-trip to Redis; raises the client's connection or timeout error."""
        await self._io(self._redis.ping())

    async def aclose(self) -> None:
        """Close the Redis client if this saver created it (`from_url`)."""
        if self._owns_client:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisCheckpointSaver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ reading

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._bind_loop()
        thread_id, ns = _thread_and_ns(config)
        wanted_id = get_checkpoint_id(config)
        keys = self._keys(thread_id)
        cache = self._cache.thread(thread_id)
        head = self._head(thread_id, ns)
        if head is not None and wanted_id not in (None, head.checkpoint_id):
            head = None
        guessed = [] if head is None else self._uncached_fields(cache, ns, head.versions)

        pipe = self._redis.pipeline(transaction=False)
        if wanted_id is None:
            lo, hi = layout.prefix_range(layout.ns_prefix(ns))
            pipe.zrevrangebylex(keys.checkpoints, hi, lo, 0, 1)
        else:
            lo, hi = layout.prefix_range(layout.checkpoint_prefix(ns, wanted_id))
            pipe.zrangebylex(keys.checkpoints, lo, hi, 0, 1)
        if head is not None:
            pipe.zrangebylex(
                keys.writes, *layout.prefix_range(layout.checkpoint_prefix(ns, head.checkpoint_id))
            )
            if guessed:
                pipe.hmget(keys.blobs, guessed)
        replies = await self._io(pipe.execute())
        if not replies[0]:
            return None

        stored = layout.decode_checkpoint(replies[0][0])
        checkpoint: Checkpoint = self.serde.loads_typed(stored.checkpoint)
        versions = checkpoint["channel_versions"]
        if (
            head is not None
            and head.checkpoint_id == stored.checkpoint_id
            and head.versions == versions
        ):
            writes = replies[1]
            blobs = dict(zip(guessed, replies[2], strict=True)) if guessed else {}
        else:
            # another worker moved the thread on (or nothing was known): read what is missing
            head = _make_head(stored.checkpoint_id, ns, versions)
            fields = self._uncached_fields(cache, ns, versions)
            [(writes, found)] = await self._fetch_writes_and_blobs(keys, [(stored, fields)])
            blobs = dict(zip(fields, found, strict=True))
        if wanted_id is None:
            self._remember_head(thread_id, ns, head)
        [values] = await self._channel_values(keys, cache, [(ns, versions, blobs)])
        return self._to_tuple(thread_id, stored, checkpoint, values, writes)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        self._bind_loop()
        if limit is not None and limit <= 0:
            return
        before_id = get_checkpoint_id(before) if before else None
        remaining = limit
        if config is None:
            threads: AsyncGenerator[str, None] = self._scan_threads("checkpoints")
            ns: str | None = None
            wanted_id: str | None = None
        else:
            threads = _one(str(config["configurable"]["thread_id"]))
            ns = config["configurable"].get("checkpoint_ns")
            wanted_id = get_checkpoint_id(config)
        async with aclosing(threads):
            async for thread_id in threads:
                pages = self._list_pages(thread_id, ns, wanted_id, before_id, filter, remaining)
                async with aclosing(pages):
                    async for page in pages:
                        for tup in await self._load_page(thread_id, page):
                            yield tup
                            if remaining is not None:
                                remaining -= 1
                                if remaining == 0:
                                    return

    async def _list_pages(
        self,
        thread_id: str,
        ns: str | None,
        wanted_id: str | None,
        before_id: str | None,
        metadata_filter: dict[str, Any] | None,
        limit: int | None,
    ) -> AsyncGenerator[list[layout.StoredCheckpoint], None]:
        keys = self._keys(thread_id)

        def keep(stored: layout.StoredCheckpoint) -> bool:
            if wanted_id is not None and stored.checkpoint_id != wanted_id:
                return False
            if before_id is not None and stored.checkpoint_id >= before_id:
                return False
            if metadata_filter:
                metadata = self.serde.loads_typed(stored.metadata)
                return all(metadata.get(k) == v for k, v in metadata_filter.items())
            return True

        if ns is not None and wanted_id is not None:
            bounds = layout.prefix_range(layout.checkpoint_prefix(ns, wanted_id))
            members = _members(await self._io(self._redis.zrangebylex(keys.checkpoints, *bounds)))
            yield [r for r in map(layout.decode_checkpoint, members) if keep(r)]
            return
        if ns is None:
            members = _members(await self._io(self._redis.zrange(keys.checkpoints, 0, -1)))
            records = [layout.decode_checkpoint(m) for m in members]
            records.sort(key=lambda r: (r.checkpoint_id, r.checkpoint_ns), reverse=True)
            kept = [r for r in records if keep(r)]
            for start in range(0, len(kept), _LIST_PAGE):
                yield kept[start : start + _LIST_PAGE]
            return

        lo, hi = layout.prefix_range(layout.ns_prefix(ns))
        if before_id is not None:
            hi = layout.before_bound(ns, before_id)
        page_size = _LIST_PAGE if limit is None or metadata_filter else min(limit, _LIST_PAGE)
        while True:
            members = _members(
                await self._io(self._redis.zrevrangebylex(keys.checkpoints, hi, lo, 0, page_size))
            )
            if not members:
                return
            yield [r for r in map(layout.decode_checkpoint, members) if keep(r)]
            if len(members) < page_size:
                return
            hi = b"(" + members[-1]

    async def _load_page(
        self, thread_id: str, page: list[layout.StoredCheckpoint]
    ) -> list[CheckpointTuple]:
        if not page:
            return []
        keys = self._keys(thread_id)
        cache = self._cache.thread(thread_id)
        decoded = [(stored, self.serde.loads_typed(stored.checkpoint)) for stored in page]
        requests = [
            (stored, self._uncached_fields(cache, stored.checkpoint_ns, cp["channel_versions"]))
            for stored, cp in decoded
        ]
        loaded = await self._fetch_writes_and_blobs(keys, requests)
        values = await self._channel_values(
            keys,
            cache,
            [
                (
                    stored.checkpoint_ns,
                    cp["channel_versions"],
                    dict(zip(fields, found, strict=True)),
                )
                for (stored, cp), (_, fields), (_, found) in zip(
                    decoded, requests, loaded, strict=True
                )
            ],
        )
        return [
            self._to_tuple(thread_id, stored, cp, vals, writes)
            for (stored, cp), (writes, _), vals in zip(decoded, loaded, values, strict=True)
        ]

    async def _fetch_writes_and_blobs(
        self, keys: layout.ThreadKeys, requests: list[tuple[layout.StoredCheckpoint, list[bytes]]]
    ) -> list[tuple[list[bytes], list[bytes | None]]]:
        """Pending writes and blob values of several checkpoints in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for stored, fields in requests:
            prefix = layout.checkpoint_prefix(stored.checkpoint_ns, stored.checkpoint_id)
            pipe.zrangebylex(keys.writes, *layout.prefix_range(prefix))
            if fields:
                pipe.hmget(keys.blobs, fields)
        replies = iter(await self._io(pipe.execute()))
        return [(next(replies), next(replies) if fields else []) for _, fields in requests]

    def _uncached_fields(
        self, cache: ThreadCache | None, ns: str, versions: ChannelVersions
    ) -> list[bytes]:
        """Blob fields of the channel versions the decoded cache cannot answer."""
        return [
            layout.blob_field(ns, channel, version)
            for channel, version in versions.items()
            if cache is None or (ns, channel, str(version)) not in cache.values
        ]

    async def _channel_values(
        self,
        keys: layout.ThreadKeys,
        cache: ThreadCache | None,
        wanted: list[tuple[str, ChannelVersions, dict[bytes, bytes | None]]],
    ) -> list[dict[str, Any]]:
        """Decoded channel values of several checkpoints: from the cache, the blobs read,
        and (one more round trip, only for messages not seen before) the messages hash."""
        results: list[dict[str, Any]] = []
        pending: list[tuple[dict[str, Any], str, tuple[str, str, str], list[bytes]]] = []
        missing: set[bytes] = set()
        for ns, versions, blobs in wanted:
            values: dict[str, Any] = {}
            for channel, version in versions.items():
                key = (ns, channel, str(version))
                if cache is not None:
                    hit, value = cache.get_value(key)
                    if hit:
                        values[channel] = value
                        continue
                blob = blobs.get(layout.blob_field(ns, channel, version))
                if blob is None:
                    continue
                kind, payload = layout.decode_typed(blob)
                if kind == layout.EMPTY_BLOB[0]:
                    continue
                if kind == layout.MESSAGE_REFS:
                    refs = layout.split_refs(payload)
                    missing.update(r for r in refs if cache is None or r not in cache.by_ref)
                    pending.append((values, channel, key, refs))
                    continue
                values[channel] = self.serde.loads_typed((kind, payload))
                if cache is not None and cacheable(values[channel]):
                    cache.put_value(key, values[channel])
            results.append(values)
        if not pending:
            return results
        fetched: dict[bytes, BaseMessage] = {}
        if missing:
            order = sorted(missing)
            found = cast(
                list[bytes | None], await self._io(self._redis.hmget(keys.messages, order))
            )
            for ref, data in zip(order, found, strict=True):
                if data is None:
                    raise RuntimeError(f"stored message {ref.hex()} is missing from the thread")
                message = self.serde.loads_typed(layout.decode_typed(data))
                fetched[ref] = message
                if cache is not None:
                    cache.remember_message(ref, message)
        for values, channel, key, refs in pending:
            messages = [fetched[r] if r in fetched else cache.by_ref[r] for r in refs]  # type: ignore[union-attr]
            values[channel] = messages
            if cache is not None:
                cache.put_value(key, messages)
                values[channel] = list(messages)
        return results

    def _to_tuple(
        self,
        thread_id: str,
        stored: layout.StoredCheckpoint,
        checkpoint: Checkpoint,
        values: dict[str, Any],
        writes: Sequence[bytes],
    ) -> CheckpointTuple:
        ns = stored.checkpoint_ns
        return CheckpointTuple(
            config=_config(thread_id, ns, stored.checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=cast(CheckpointMetadata, self.serde.loads_typed(stored.metadata)),
            parent_config=_config(thread_id, ns, stored.parent_id) if stored.parent_id else None,
            pending_writes=self._pending_writes(writes),
        )

    def _pending_writes(self, members: Sequence[bytes]) -> list[PendingWrite]:
        first: dict[tuple[str, int], layout.StoredWrite] = {}
        for member in members:
            write = layout.decode_write(member)
            slot = (write.task_id, write.idx)
            if slot not in first or write.seq < first[slot].seq:
                first[slot] = write
        ordered = sorted(
            first.values(), key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx)
        )
        return [(w.task_id, w.channel, self.serde.loads_typed(w.value)) for w in ordered]

    # ------------------------------------------------------------------ writing

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._bind_loop()
        configurable = config["configurable"]
        thread_id, ns = _thread_and_ns(config)
        checkpoint_id = checkpoint["id"]
        if "\x00" in checkpoint_id:
            raise ValueError("checkpoint ids must not contain NUL characters")
        skeleton = checkpoint.copy()
        values: dict[str, Any] = skeleton.pop("channel_values")  # type: ignore[misc]
        full_metadata = get_checkpoint_metadata(config, metadata)
        stored = layout.StoredCheckpoint(
            checkpoint_ns=ns,
            checkpoint_id=checkpoint_id,
            parent_id=configurable.get("checkpoint_id"),
            checkpoint=self.serde.dumps_typed(skeleton),
            metadata=self.serde.dumps_typed(full_metadata),
        )
        cache = self._cache.thread(thread_id)
        blobs: dict[bytes, bytes] = {}
        messages: dict[bytes, bytes] = {}
        message_lists: set[str] = set()
        for channel, version in new_versions.items():
            field = layout.blob_field(ns, channel, version)
            value = values.get(channel)
            refs = self._store_messages(cache, value, messages) if channel in values else None
            if channel not in values:
                blobs[field] = layout.encode_typed(layout.EMPTY_BLOB)
            elif refs is not None:
                message_lists.add(channel)
                blobs[field] = layout.encode_typed((layout.MESSAGE_REFS, b"".join(refs)))
            else:
                blobs[field] = layout.encode_typed(self.serde.dumps_typed(value))
        keys = self._keys(thread_id)
        pipe = self._redis.pipeline(transaction=True)
        if messages:
            pipe.hset(keys.messages, mapping=messages)  # type: ignore[arg-type]
        if blobs:
            pipe.hset(keys.blobs, mapping=blobs)  # type: ignore[arg-type]
        pipe.zremrangebylex(
            keys.checkpoints, *layout.prefix_range(layout.checkpoint_prefix(ns, checkpoint_id))
        )
        pipe.zadd(keys.checkpoints, {layout.encode_checkpoint(stored): 0})
        run_id = full_metadata.get("run_id")
        if run_id is not None:
            pipe.zadd(keys.runs, {layout.encode_run(str(run_id), ns, checkpoint_id): 0})
        self._refresh_ttl(pipe, keys)
        if self._max_checkpoints is not None:
            pipe.zlexcount(keys.checkpoints, *layout.prefix_range(layout.ns_prefix(ns)))
        replies = await self._io(pipe.execute())

        if cache is not None:
            for channel, version in new_versions.items():
                if channel in message_lists or (channel in values and cacheable(values[channel])):
                    cache.put_value((ns, channel, str(version)), values[channel])
        cached = self._head(thread_id, ns)
        if cached is None or checkpoint_id >= cached.checkpoint_id:
            versions = dict(checkpoint["channel_versions"])
            self._remember_head(thread_id, ns, _make_head(checkpoint_id, ns, versions))
        if self._max_checkpoints is not None and replies[-1] > self._prune_threshold():
            await self._remove_checkpoints(thread_id, self._beyond_newest(self._max_checkpoints))
        return {
            "configurable": {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    def _store_messages(
        self,
        cache: ThreadCache | None,
        messages: Any,
        new: dict[bytes, bytes],
    ) -> list[bytes] | None:
        """Refs of a list of messages, the ones not stored by this process yet added to `new`;
        None when `messages` is not a non-empty list of messages (stored as one blob)."""
        if type(messages) is not list or not messages:
            return None
        refs: list[bytes] = []
        known = cache.by_object if cache is not None else {}
        for message in messages:
            hit = known.get(id(message))
            if hit is not None and hit[0] is message:
                refs.append(hit[1])
                continue
            if not isinstance(message, BaseMessage):
                return None
            data = layout.encode_typed(self.serde.dumps_typed(message))
            ref = layout.message_ref(data)
            new[ref] = data
            if cache is not None:
                cache.remember_message(ref, message)
            refs.append(ref)
        if cache is not None:
            cache.trim_messages(messages, refs)
        return refs

    def _prune_threshold(self) -> int:
        # prune in batches: one WATCH round every few puts, not on every put
        limit = cast(int, self._max_checkpoints)
        return limit + max(2, limit // 2)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._bind_loop()
        if not writes:
            return
        thread_id, ns = _thread_and_ns(config)
        checkpoint_id = config["configurable"]["checkpoint_id"]
        keys = self._keys(thread_id)
        seq = time.time_ns()
        by_idx: dict[int, layout.StoredWrite] = {}
        for position, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, position)
            by_idx[idx] = layout.StoredWrite(
                task_id=task_id,
                idx=idx,
                seq=seq + position,
                task_path=task_path,
                channel=channel,
                value=self.serde.dumps_typed(value),
            )
        pipe = self._redis.pipeline(transaction=True)
        for idx in by_idx:
            if idx < 0:
                slot = layout.write_slot(ns, checkpoint_id, task_id, idx)
                pipe.zremrangebylex(keys.writes, *layout.prefix_range(slot))
        members = {layout.encode_write(ns, checkpoint_id, w): 0 for w in by_idx.values()}
        pipe.zadd(keys.writes, members)  # type: ignore[arg-type]
        self._refresh_ttl(pipe, keys)
        await self._io(pipe.execute())

    # ------------------------------------------------------------------ maintenance

    async def adelete_thread(self, thread_id: str) -> None:
        self._bind_loop()
        thread_id = str(thread_id)
        await self._io(self._redis.delete(*self._keys(thread_id).all()))
        self._heads.pop(thread_id, None)
        self._cache.drop(thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and blob of a thread; same ids are overwritten."""
        self._bind_loop()
        source = self._keys(str(source_thread_id))
        target = self._keys(str(target_thread_id))
        read = self._redis.pipeline(transaction=True)
        read.zrange(source.checkpoints, 0, -1)
        read.zrange(source.writes, 0, -1)
        read.hgetall(source.blobs)
        read.zrange(source.runs, 0, -1)
        read.hgetall(source.messages)
        checkpoints, writes, blobs, runs, messages = await self._io(read.execute())
        if not checkpoints:
            return
        pipe = self._redis.pipeline(transaction=True)
        for member in checkpoints:
            stored = layout.decode_checkpoint(member)
            prefix = layout.checkpoint_prefix(stored.checkpoint_ns, stored.checkpoint_id)
            pipe.zremrangebylex(target.checkpoints, *layout.prefix_range(prefix))
            pipe.zremrangebylex(target.writes, *layout.prefix_range(prefix))
        pipe.zadd(target.checkpoints, dict.fromkeys(checkpoints, 0))
        if writes:
            pipe.zadd(target.writes, dict.fromkeys(writes, 0))
        if blobs:
            pipe.hset(target.blobs, mapping=blobs)
        if runs:
            pipe.zadd(target.runs, dict.fromkeys(runs, 0))
        if messages:
            pipe.hset(target.messages, mapping=messages)
        self._refresh_ttl(pipe, target)
        await self._io(pipe.execute())
        self._heads.pop(str(target_thread_id), None)
        self._cache.drop(str(target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`"delete"` drops the threads; `"keep_latest"` keeps the newest checkpoint per namespace.

        `"keep_latest"` also keeps the ancestors a `DeltaChannel` still needs (back to the
        nearest stored value of each delta channel) and deletes every blob no kept checkpoint
        refers to.
        """
        self._bind_loop()
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
            else:
                await self._remove_checkpoints(str(thread_id), self._beyond_newest(1))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes and orphaned blobs) that the runs created.

        Finds the threads with SCAN over the per-thread run indexes, so the cost grows with
        the size of the keyspace: an administrative operation, not a per-turn one.
        """
        self._bind_loop()
        wanted = [str(r) for r in run_ids]
        if not wanted:
            return
        async for thread_id in self._scan_threads("runs"):
            runs_key = self._keys(thread_id).runs
            pipe = self._redis.pipeline(transaction=False)
            for run_id in wanted:
                pipe.zrangebylex(runs_key, *layout.prefix_range(layout.run_prefix(run_id)))
            found = {
                layout.decode_run(member)[1:]
                for members in await self._io(pipe.execute())
                for member in members
            }
            if found:
                await self._remove_checkpoints(thread_id, _select(found))

    async def _remove_checkpoints(
        self,
        thread_id: str,
        select: _Selector,
    ) -> None:
        keys = self._keys(thread_id)
        for _ in range(_WATCH_ATTEMPTS):
            async with self._redis.pipeline(transaction=True) as pipe:
                try:
                    await self._io(pipe.watch(*keys.all()))
                    members = _members(await self._io(pipe.zrange(keys.checkpoints, 0, -1)))
                    records = [layout.decode_checkpoint(m) for m in members]
                    doomed = await select(records, pipe, keys)
                    if not doomed:
                        await self._io(pipe.unwatch())
                        return
                    referenced = {
                        layout.blob_field(r.checkpoint_ns, ch, v)
                        for r in records
                        if (r.checkpoint_ns, r.checkpoint_id) not in doomed
                        for ch, v in self.serde.loads_typed(r.checkpoint)[
                            "channel_versions"
                        ].items()
                    }
                    fields = _members(await self._io(pipe.hkeys(keys.blobs)))
                    orphans = [f for f in fields if f not in referenced]
                    stale_messages = await self._unreferenced_messages(
                        pipe,
                        keys,
                        [f for f in fields if f in referenced],
                        self._newest_fields(records),
                    )
                    stale_runs = [
                        m
                        for m in _members(await self._io(pipe.zrange(keys.runs, 0, -1)))
                        if layout.decode_run(m)[1:] in doomed
                    ]
                    pipe.multi()
                    for ns, checkpoint_id in doomed:
                        bounds = layout.prefix_range(layout.checkpoint_prefix(ns, checkpoint_id))
                        pipe.zremrangebylex(keys.checkpoints, *bounds)
                        pipe.zremrangebylex(keys.writes, *bounds)
                    if orphans:
                        pipe.hdel(keys.blobs, *orphans)
                    if stale_messages:
                        pipe.hdel(keys.messages, *stale_messages)
                    if stale_runs:
                        pipe.zrem(keys.runs, *stale_runs)
                    await self._io(pipe.execute())
                except WatchError:
                    continue
            self._heads.pop(thread_id, None)
            if stale_messages and (cache := self._cache.thread(thread_id)) is not None:
                cache.forget(stale_messages)
            return
        raise RuntimeError(
            f"thread {thread_id!r} kept changing while checkpoints were being removed; retry later"
        )

    def _newest_fields(self, records: list[layout.StoredCheckpoint]) -> list[bytes]:
        """Blob fields of the newest checkpoint's channel values (empty without checkpoints)."""
        if not records:
            return []
        newest = max(records, key=lambda r: r.checkpoint_id)
        versions = self.serde.loads_typed(newest.checkpoint)["channel_versions"]
        return [layout.blob_field(newest.checkpoint_ns, ch, v) for ch, v in versions.items()]

    async def _unreferenced_messages(
        self,
        pipe: Pipeline,
        keys: layout.ThreadKeys,
        kept_fields: list[bytes],
        newest_fields: list[bytes],
    ) -> list[bytes]:
        """Stored messages that no kept blob refers to any more.

        Only worth reading every kept list when the hash clearly outgrew the thread: a call
        mostly appends, so this runs rarely (after barge-in rewrites and rewinds piled up).
        """
        stored_count = cast(int, await self._io(pipe.hlen(keys.messages)))
        if not stored_count:
            return []
        newest: list[bytes | None] = []
        if newest_fields:
            newest = cast(list[bytes | None], await self._io(pipe.hmget(keys.blobs, newest_fields)))
        longest = max((_ref_count(blob) for blob in newest), default=0)
        if stored_count <= 2 * longest + 64:
            return []
        referenced: set[bytes] = set()
        for start in range(0, len(kept_fields), _LIST_PAGE):
            chunk = kept_fields[start : start + _LIST_PAGE]
            for blob in cast(list[bytes | None], await self._io(pipe.hmget(keys.blobs, chunk))):
                if blob is None:
                    continue
                kind, payload = layout.decode_typed(blob)
                if kind == layout.MESSAGE_REFS:
                    referenced.update(layout.split_refs(payload))
        stored = _members(await self._io(pipe.hkeys(keys.messages)))
        return [ref for ref in stored if ref not in referenced]

    def _beyond_newest(self, keep: int) -> _Selector:
        """Selects all but the newest `keep` checkpoints of each namespace (and what a
        `DeltaChannel` of the newest one is rebuilt from)."""

        async def select(
            records: list[layout.StoredCheckpoint], pipe: Pipeline, keys: layout.ThreadKeys
        ) -> set[tuple[str, str]]:
            by_ns: dict[str, dict[str, layout.StoredCheckpoint]] = {}
            for record in records:
                by_ns.setdefault(record.checkpoint_ns, {})[record.checkpoint_id] = record
            doomed: set[tuple[str, str]] = set()
            for ns, checkpoints in by_ns.items():
                if len(checkpoints) <= keep:
                    continue
                kept = set(sorted(checkpoints)[-keep:])
                kept |= await self._delta_chain(ns, checkpoints, pipe, keys)
                doomed.update((ns, cid) for cid in checkpoints if cid not in kept)
            return doomed

        return select

    async def _delta_chain(
        self,
        ns: str,
        checkpoints: dict[str, layout.StoredCheckpoint],
        pipe: Pipeline,
        keys: layout.ThreadKeys,
    ) -> set[str]:
        """The newest checkpoint plus the ancestors its `DeltaChannel`s are rebuilt from."""
        latest = checkpoints[max(checkpoints)]
        metadata = self.serde.loads_typed(latest.metadata)
        delta_channels = set(metadata.get("counters_since_delta_snapshot") or ())
        chain: list[layout.StoredCheckpoint] = []
        node: layout.StoredCheckpoint | None = latest
        while node is not None and len(chain) <= len(checkpoints):
            chain.append(node)
            node = checkpoints.get(node.parent_id) if node.parent_id else None
        if not delta_channels:
            return {latest.checkpoint_id}
        keep: set[str] = set()
        for node in chain:
            keep.add(node.checkpoint_id)
            versions = self.serde.loads_typed(node.checkpoint)["channel_versions"]
            present = [ch for ch in delta_channels if ch in versions]
            fields = [layout.blob_field(ns, ch, versions[ch]) for ch in present]
            blobs = cast(
                list[bytes | None], await self._io(pipe.hmget(keys.blobs, fields)) if fields else []
            )
            for channel, blob in zip(present, blobs, strict=True):
                if blob is not None and layout.decode_typed(blob)[0] != layout.EMPTY_BLOB[0]:
                    delta_channels.discard(channel)
            if not delta_channels:
                break
        return keep

    # ------------------------------------------------------------------ helpers

    def _keys(self, thread_id: str) -> layout.ThreadKeys:
        return layout.ThreadKeys.build(self._prefix, thread_id)

    def _refresh_ttl(self, pipe: Pipeline, keys: layout.ThreadKeys) -> None:
        if self._ttl_ms is not None:
            for key in keys.all():
                pipe.pexpire(key, self._ttl_ms)

    async def _scan_threads(self, suffix: str) -> AsyncGenerator[str, None]:
        seen: set[str] = set()
        pattern = layout.thread_scan_pattern(self._prefix, suffix)
        cursor = 0
        while True:
            cursor, keys = await self._io(self._redis.scan(cursor, match=pattern, count=1000))
            for key in _members(keys):
                thread_id = layout.thread_id_from_key(self._prefix, suffix, key)
                if thread_id is not None and thread_id not in seen:
                    seen.add(thread_id)
                    yield thread_id
            if cursor == 0:
                return

    async def _io(self, operation: Awaitable[T]) -> T:
        """Await one Redis round trip, bounded by the saver's timeout."""
        async with asyncio.timeout(self._timeout):
            return await operation

    def _head(self, thread_id: str, ns: str) -> _Head | None:
        namespaces = self._heads.get(thread_id)
        return namespaces.get(ns) if namespaces else None

    def _remember_head(self, thread_id: str, ns: str, head: _Head) -> None:
        self._heads.setdefault(thread_id, {})[ns] = head
        self._heads.move_to_end(thread_id)
        while len(self._heads) > _HEAD_CACHE_THREADS:
            self._heads.popitem(last=False)

    def _bind_loop(self) -> None:
        # The sync bridge runs coroutines on the loop that used this saver last.
        self._loop = asyncio.get_running_loop()

    def get_next_version(self, current: str | None, channel: None) -> str:
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        # The random suffix keeps versions of forked branches from colliding in the blob hash.
        return f"{current_v + 1:032}.{random.random():016}"

    # ------------------------------------------------------------------ sync bridge

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            coro.close()
            raise asyncio.InvalidStateError(
                "RedisCheckpointSaver is asynchronous: use graph.ainvoke()/astream() or "
                "await saver.aget_tuple(...). Sync calls only work from another thread "
                "while the saver's event loop is running."
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        items = self.alist(config, filter=filter, before=before, limit=limit)
        return iter(self._sync(_collect(items)))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self.adelete_thread(thread_id))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._sync(self.aprune(thread_ids, strategy=strategy))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self.adelete_for_runs(run_ids))


_Selector = Callable[
    [list[layout.StoredCheckpoint], Pipeline, layout.ThreadKeys], Awaitable[set[tuple[str, str]]]
]


def _select(found: set[tuple[str, str]]) -> _Selector:
    async def select(
        records: list[layout.StoredCheckpoint], pipe: Pipeline, keys: layout.ThreadKeys
    ) -> set[tuple[str, str]]:
        return found & {(r.checkpoint_ns, r.checkpoint_id) for r in records}

    return select


def _ref_count(blob: bytes | None) -> int:
    if blob is None:
        return 0
    kind, payload = layout.decode_typed(blob)
    return len(payload) // layout.REF_SIZE if kind == layout.MESSAGE_REFS else 0


def _ttl_ms(ttl: float | timedelta | None) -> int | None:
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds <= 0:
        raise ValueError("ttl must be positive (seconds or a timedelta), or None for no expiry")
    return max(1, round(seconds * 1000))


def _thread_and_ns(config: RunnableConfig) -> tuple[str, str]:
    configurable = config["configurable"]
    return str(configurable["thread_id"]), configurable.get("checkpoint_ns") or ""


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _make_head(checkpoint_id: str, ns: str, versions: ChannelVersions) -> _Head:
    fields = [layout.blob_field(ns, channel, version) for channel, version in versions.items()]
    return _Head(checkpoint_id=checkpoint_id, versions=dict(versions), fields=fields)


async def _one(item: str) -> AsyncGenerator[str, None]:
    yield item


async def _collect(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


def _members(reply: Any) -> list[bytes]:
    # The client is built with decode_responses=False, so replies are bytes.
    return cast(list[bytes], reply)
