"""Qdrant Edge (Qdrant's engine in-process) as the embedded vector store, safe for many readers.

Layout under the store's root, per collection:

    <root>/<collection>/CURRENT                  name of the published version (replaced atomically)
    <root>/<collection>/versions/<name>/shard/   an Edge shard: segments, HNSW, payload indexes
    <root>/<collection>/versions/<name>/manifest.json   embedder identity, dimensions, counts
    <root>/<collection>/ingest.lock              held by the one ingest that may write

A writer (the ingest CLI) copies the published version into a new directory, applies its
changes there, optimises it (builds HNSW), flushes, then publishes it by replacing CURRENT.
A published version is never written again: shards are created without a WAL, so any number
of processes load it at once. Readers check CURRENT before each call and switch to a newer
version without a restart; old versions are deleted once several newer ones exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from tools.documents.errors import DocumentStoreError, DocumentStoreUnavailable
from tools.documents.vectors import (
    INDEXED_FIELDS,
    CollectionInfo,
    EmbedderIdentity,
    FieldMatch,
    FoundPoint,
    StoredPoint,
    VectorFilter,
    scroll_pages,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
SCROLL_PAGE = 1024
# a filtered query looks at this many times `limit` unfiltered candidates first
OVERFETCH = 8
FORMAT = 1


@dataclass(frozen=True)
class EdgeIndexConfig:
    """HNSW and optimiser settings of new shards, and the search-time beam width."""

    m: int = 16
    ef_construct: int = 100
    hnsw_ef: int = 128
    # segments under this size (KB) are scanned exactly instead of indexed
    full_scan_threshold_kb: int = 1_000
    indexing_threshold_kb: int = 1_000
    segments: int = 1
    search_threads: int = 1


@dataclass
class _Published:
    version: str
    info: CollectionInfo
    shard: qe.EdgeShard | None = None


@dataclass
class _Draft:
    """A version being built by the one writer."""

    collection: str
    directory: Path
    lock_file: Any
    shard: qe.EdgeShard | None = None
    info: CollectionInfo | None = None
    dirty: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)


def _condition(match: FieldMatch) -> Any:
    equal = qe.FieldCondition(key=match.key, match=qe.MatchValue(match.value))
    if not match.or_missing:
        return equal
    return qe.Filter(should=[equal, qe.IsEmptyCondition(key=match.key)])


def edge_filter(where: VectorFilter | None) -> qe.Filter | None:
    """The neutral filter as a Qdrant Edge filter."""
    if where is None or not where.all_of:
        return None
    return qe.Filter(must=[_condition(m) for m in where.all_of])


def matches(where: VectorFilter, payload: dict[str, Any]) -> bool:
    """The neutral filter evaluated on one payload, as the engine would."""
    for match in where.all_of:
        value = payload.get(match.key)
        missing = value is None or value == [] or value == ""
        if value != match.value and not (match.or_missing and missing):
            return False
    return True


class EdgeBackend:
    """Collections in Qdrant Edge shards under `root`; `read_only` for the worker."""

    def __init__(
        self,
        root: Path,
        *,
        read_only: bool = False,
        index: EdgeIndexConfig | None = None,
        keep_versions: int = 3,
    ) -> None:
        self.root = root
        self.read_only = read_only
        self.index = index or EdgeIndexConfig()
        self._keep_versions = max(2, keep_versions)
        self._published: dict[str, _Published] = {}
        self._draft: _Draft | None = None
        # one engine call at a time per process: swapping versions must not race a search
        self._lock = threading.Lock()

    def describe_location(self) -> str:
        return f"Qdrant Edge at {self.root}"

    # ---- plumbing -------------------------------------------------------------------

    def _dir(self, collection: str) -> Path:
        return self.root / collection

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        try:
            return await asyncio.to_thread(locked)
        except DocumentStoreError:
            raise
        except OSError as exc:
            raise DocumentStoreUnavailable(
                f"{self.describe_location()} failed during {what}: {exc}"
            ) from exc
        except Exception as exc:
            raise DocumentStoreError(
                f"{self.describe_location()} failed during {what}: {type(exc).__name__}: {exc}"
            ) from exc

    def _current_version(self, collection: str) -> str | None:
        try:
            return (self._dir(collection) / CURRENT).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def _version_dir(self, collection: str, version: str) -> Path:
        return self._dir(collection) / "versions" / version

    @staticmethod
    def _info_from_manifest(manifest: dict[str, Any], version: str) -> CollectionInfo:
        embedder = manifest.get("embedder")
        return CollectionInfo(
            dimensions=int(manifest["dimensions"]),
            embedder=EmbedderIdentity.model_validate(embedder) if embedder else None,
            version=version,
        )

    def _published_now(self, collection: str) -> _Published | None:
        """The newest published version (its manifest read, its shard not yet opened)."""
        version = self._current_version(collection)
        if version is None:
            return None
        known = self._published.get(collection)
        if known is not None and known.version == version:
            return known
        manifest_path = self._version_dir(collection, version) / MANIFEST
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        fresh = _Published(version=version, info=self._info_from_manifest(manifest, version))
        if known is not None and known.shard is not None:
            known.shard.close()
            logger.info("switched %r to the newly published version %s", collection, version)
        self._published[collection] = fresh
        return fresh

    def _reading_shard(self, collection: str) -> qe.EdgeShard | None:
        draft = self._draft
        if draft is not None and draft.collection == collection:
            return draft.shard
        published = self._published_now(collection)
        if published is None:
            return None
        if published.shard is None:
            path = self._version_dir(collection, published.version) / "shard"
            published.shard = qe.EdgeShard.load(str(path))
        return published.shard

    def _writing_shard(self, collection: str) -> qe.EdgeShard:
        draft = self._draft
        if draft is None or draft.collection != collection:
            raise DocumentStoreError(
                f"{self.describe_location()} is written only by `python -m tools.ingest` "
                "(writes outside an ingest run are refused)"
            )
        if draft.shard is None:
            raise DocumentStoreError(f"collection {collection!r} does not exist yet")
        draft.dirty = True
        return draft.shard

    def _config(self, dimensions: int) -> qe.EdgeConfig:
        index = self.index
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dimensions, distance=qe.Distance.Dot),
            hnsw_config=qe.HnswIndexConfig(
                m=index.m,
                ef_construct=index.ef_construct,
                full_scan_threshold=index.full_scan_threshold_kb,
            ),
            optimizers=qe.EdgeOptimizersConfig(
                indexing_threshold=index.indexing_threshold_kb,
                default_segment_number=index.segments,
            ),
            max_search_threads=index.search_threads,
            # a published version is never written, so several processes may load it at once
            wal_enabled=False,
        )

    # ---- reading ----------------------------------------------------------------------

    async def info(self, collection: str) -> CollectionInfo | None:
        def read() -> CollectionInfo | None:
            draft = self._draft
            if draft is not None and draft.collection == collection:
                return draft.info
            published = self._published_now(collection)
            return published.info if published is not None else None

        return await self._call("reading the collection", read)

    async def query(
        self, collection: str, vector: list[float], *, limit: int, where: VectorFilter | None
    ) -> list[FoundPoint]:
        """Top `limit` points; a filtered query first post-filters a wider unfiltered one.

        When at least `limit` of the unfiltered top `limit * OVERFETCH` pass the filter, they
        are the filtered top `limit` among the HNSW candidates, and HNSW recall on unfiltered
        queries is higher than on filtered ones; otherwise the engine filters itself, with a
        wider beam.
        """
        ef = max(self.index.hnsw_ef, limit)

        def request(
            size: int, condition: qe.Filter | None, beam: int, payload: bool | list[str] = True
        ) -> qe.QueryRequest:
            return qe.QueryRequest(
                limit=size,
                query=qe.Query.Nearest(vector),
                filter=condition,
                with_payload=payload,
                with_vector=False,
                params=qe.SearchParams(hnsw_ef=beam),
            )

        def run() -> list[FoundPoint]:
            shard = self._reading_shard(collection)
            if shard is None:
                return []
            if where is None or not where.all_of:
                return [FoundPoint.of(p) for p in shard.query(request(limit, None, ef))]
            # only the filtered keys for the wide list; full payloads for the few kept
            keys = sorted({m.key for m in where.all_of})
            wide = shard.query(request(limit * OVERFETCH, None, ef, keys))
            eligible = [p for p in wide if matches(where, dict(p.payload or {}))][:limit]
            if len(eligible) == limit or len(wide) < limit * OVERFETCH:
                records = {
                    str(r.id): r for r in shard.retrieve([p.id for p in eligible], True, False)
                }
                return [
                    FoundPoint(
                        id=str(p.id),
                        score=float(p.score),
                        payload=dict(records[str(p.id)].payload or {}),
                    )
                    for p in eligible
                    if str(p.id) in records
                ]
            filtered = shard.query(request(limit, edge_filter(where), ef * OVERFETCH))
            return [FoundPoint.of(p) for p in filtered]

        return await self._call("searching", run)

    async def scroll(
        self,
        collection: str,
        *,
        where: VectorFilter | None = None,
        payload_keys: list[str] | None = None,
    ) -> AsyncIterator[list[FoundPoint]]:
        async def page(offset: Any) -> tuple[list[FoundPoint], Any]:
            request = qe.ScrollRequest(
                offset=offset,
                limit=SCROLL_PAGE,
                filter=edge_filter(where),
                with_payload=payload_keys if payload_keys is not None else True,
                with_vector=False,
            )

            def read() -> tuple[list[FoundPoint], Any]:
                shard = self._reading_shard(collection)
                if shard is None:
                    return [], None
                records, after = shard.scroll(request)
                return [FoundPoint.of(r) for r in records], after

            return await self._call("listing points", read)

        async for points in scroll_pages(page):
            yield points

    async def count(self, collection: str) -> int:
        def run() -> int:
            shard = self._reading_shard(collection)
            return 0 if shard is None else int(shard.count(qe.CountRequest(exact=True)))

        return await self._call("counting", run)

    # ---- writing ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def writing(self, collection: str, *, replace: bool = False) -> AsyncIterator[None]:
        if self.read_only:
            raise DocumentStoreError(
                f"{self.describe_location()} is opened read-only here; ingest with "
                "`python -m tools.ingest`"
            )
        if self._draft is not None:
            raise DocumentStoreError("an ingest run is already open in this process")
        await self._call("starting a new version", lambda: self._open_draft(collection, replace))
        try:
            yield
        except BaseException:
            await asyncio.shield(self._call("discarding the new version", self._discard))
            raise
        await self._call("publishing the new version", self._publish)

    def _open_draft(self, collection: str, replace: bool) -> None:
        base = self._dir(collection)
        base.mkdir(parents=True, exist_ok=True)
        lock_file = open(base / "ingest.lock", "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise DocumentStoreError(
                f"another ingest into {collection!r} is running ({base}); try again when it ends"
            ) from None
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        directory = self._version_dir(collection, name)
        draft = _Draft(collection=collection, directory=directory, lock_file=lock_file)
        try:
            published = None if replace else self._published_now(collection)
            directory.mkdir(parents=True)
            if published is not None:
                source = self._version_dir(collection, published.version)
                shutil.copytree(source / "shard", directory / "shard")
                draft.manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
                draft.shard = qe.EdgeShard.load(str(directory / "shard"))
                draft.info = published.info.model_copy(update={"version": name})
        except BaseException:
            self._draft = draft
            self._discard()
            raise
        self._draft = draft

    def _discard(self) -> None:
        draft, self._draft = self._draft, None
        if draft is None:
            return
        if draft.shard is not None:
            draft.shard.close()
        shutil.rmtree(draft.directory, ignore_errors=True)
        draft.lock_file.close()

    def _publish(self) -> None:
        draft = self._draft
        if draft is None:
            return
        if not draft.dirty or draft.shard is None:
            self._discard()
            return
        try:
            started = time.perf_counter()
            draft.shard.optimize()
            draft.shard.flush()
            points = int(draft.shard.count(qe.CountRequest(exact=True)))
            draft.shard.close()
            draft.shard = None
            # the first load normalises the shard's config file: done here, never by a reader
            qe.EdgeShard.load(str(draft.directory / "shard")).close()
            manifest = {
                **draft.manifest,
                "format": FORMAT,
                "points": points,
                "published_at": time.time(),
                "index_seconds": round(time.perf_counter() - started, 3),
            }
            _write_atomically(draft.directory / MANIFEST, json.dumps(manifest, indent=2))
            _fsync_tree(draft.directory)
            _write_atomically(self._dir(draft.collection) / CURRENT, draft.directory.name + "\n")
            logger.info(
                "published %r version %s: %d points", draft.collection, draft.directory.name, points
            )
        except BaseException:
            self._discard()
            raise
        self._draft = None
        self._remove_old_versions(draft.collection, keep=draft.directory.name)
        draft.lock_file.close()

    def _remove_old_versions(self, collection: str, *, keep: str) -> None:
        versions = self._dir(collection) / "versions"
        names = sorted(p.name for p in versions.iterdir() if p.is_dir())
        in_use = {keep}
        known = self._published.get(collection)
        if known is not None:
            in_use.add(known.version)
        # a reader that has not looked at CURRENT since may still be using the last few
        for name in names[: -self._keep_versions]:
            if name not in in_use:
                shutil.rmtree(versions / name, ignore_errors=True)

    async def create(self, collection: str, dimensions: int, embedder: EmbedderIdentity) -> None:
        def run() -> None:
            draft = self._draft
            if draft is None or draft.collection != collection:
                raise DocumentStoreError(
                    f"{self.describe_location()} is written only by `python -m tools.ingest`"
                )
            if draft.shard is not None:
                draft.shard.close()
                shutil.rmtree(draft.directory / "shard", ignore_errors=True)
            shard = qe.EdgeShard.create(str(draft.directory / "shard"), self._config(dimensions))
            # keyword indexes exist before any point arrives, so HNSW is built with them
            for key in INDEXED_FIELDS:
                shard.update(
                    qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword)
                )
            draft.shard = shard
            draft.dirty = True
            draft.manifest = {
                "dimensions": dimensions,
                "embedder": embedder.model_dump(),
                "distance": "dot",
            }
            draft.info = CollectionInfo(
                dimensions=dimensions, embedder=embedder, version=draft.directory.name
            )

        await self._call("creating the collection", run)

    async def upsert(self, collection: str, points: list[StoredPoint]) -> None:
        operation = qe.UpdateOperation.upsert_points(
            [qe.Point(p.id, p.vector, p.payload) for p in points]
        )
        await self._call(
            "storing chunks", lambda: self._writing_shard(collection).update(operation)
        )

    async def delete_ids(self, collection: str, ids: list[str]) -> None:
        operation = qe.UpdateOperation.delete_points(list(ids))
        await self._call(
            "removing chunks", lambda: self._writing_shard(collection).update(operation)
        )

    async def delete_where(self, collection: str, where: VectorFilter) -> None:
        condition = edge_filter(where)
        if condition is None:
            raise DocumentStoreError("refusing to delete with an empty filter")
        operation = qe.UpdateOperation.delete_points_by_filter(condition)
        await self._call("pruning", lambda: self._writing_shard(collection).update(operation))

    async def aclose(self) -> None:
        def close() -> None:
            for published in self._published.values():
                if published.shard is not None:
                    published.shard.close()
                    published.shard = None
            self._published.clear()

        if self._draft is not None:
            await self._call("discarding the new version", self._discard)
        await self._call("closing", close)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(directory: Path) -> None:
    """Every file of a version on disk before CURRENT names it."""
    for root, _, files in os.walk(directory):
        for name in files:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _fsync_dir(Path(root))
