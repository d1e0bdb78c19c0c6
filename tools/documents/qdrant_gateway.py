"""Qdrant through qdrant-client: a server or cluster (`QDRANT_URL`), or the client's local mode.

The synchronous `QdrantClient` runs in worker threads. The async client's local mode computes
searches on the event loop, which would stall audio in a voice worker; threads never do.
Local mode (`:memory:` or a path) is not thread-safe, so its calls are serialised; it remains
for tests and the benchmark's baseline, while the embedded default is Qdrant Edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

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
MEMORY = ":memory:"
SCROLL_PAGE = 1024
META_PROVIDER = "embedding_provider"
META_MODEL = "embedding_model"
META_DIMENSIONS = "embedding_dimensions"
# how long a worker trusts what it read about a server collection (another host may re-embed)
INFO_TTL_S = 30.0


@dataclass(frozen=True)
class QdrantLocation:
    """Where Qdrant lives: `url` (server or cluster) wins over `path` (local, or `:memory:`)."""

    url: str | None = None
    path: str = MEMORY
    api_key: str | None = None

    @property
    def is_local(self) -> bool:
        return self.url is None

    def describe(self) -> str:
        if self.url is not None:
            return f"Qdrant at {self.url}"
        if self.path == MEMORY:
            return "in-memory Qdrant"
        return f"local Qdrant at {self.path}"


def _condition(match: FieldMatch) -> qm.Condition:
    equal = qm.FieldCondition(key=match.key, match=qm.MatchValue(value=match.value))
    if not match.or_missing:
        return equal
    return qm.Filter(should=[equal, qm.IsEmptyCondition(is_empty=qm.PayloadField(key=match.key))])


def client_filter(where: VectorFilter | None) -> qm.Filter | None:
    """The neutral filter as a qdrant-client filter."""
    if where is None or not where.all_of:
        return None
    return qm.Filter(must=[_condition(m) for m in where.all_of])


class QdrantGateway:
    """Runs client calls off the event loop and turns failures into the store's errors."""

    def __init__(self, location: QdrantLocation, *, timeout_s: float = 5.0) -> None:
        self.location = location
        self._timeout_s = timeout_s
        self._client: QdrantClient | None = None
        self._thread_lock = threading.Lock()
        self._open_lock = asyncio.Lock()
        self._info: dict[str, tuple[float, CollectionInfo | None]] = {}

    def describe_location(self) -> str:
        return self.location.describe()

    def _open(self) -> QdrantClient:
        loc = self.location
        if loc.url is not None:
            return QdrantClient(
                url=loc.url,
                api_key=loc.api_key,
                timeout=max(1, math.ceil(self._timeout_s)),
                check_compatibility=False,
            )
        if loc.path == MEMORY:
            return QdrantClient(location=MEMORY, force_disable_check_same_thread=True)
        Path(loc.path).mkdir(parents=True, exist_ok=True)
        return QdrantClient(path=loc.path, force_disable_check_same_thread=True)

    async def _connected(self) -> QdrantClient:
        async with self._open_lock:
            if self._client is None:
                try:
                    self._client = await asyncio.to_thread(self._open)
                except Exception as exc:
                    raise self._translate(exc, "open") from exc
            return self._client

    async def run(self, what: str, call: Callable[[QdrantClient], T]) -> T:
        """Run `call(client)` in a thread; `what` names the operation in error messages."""
        client = await self._connected()

        def locked() -> T:
            with self._thread_lock:
                return call(client)

        try:
            if self.location.is_local:
                return await asyncio.to_thread(locked)
            # the client has its own HTTP timeout; this is the backstop for a stuck thread
            return await asyncio.wait_for(
                asyncio.to_thread(call, client), timeout=2 * self._timeout_s + 1
            )
        except DocumentStoreError:
            raise
        except Exception as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: Exception, what: str) -> DocumentStoreError:
        where = self.location.describe()
        if isinstance(exc, ResponseHandlingException):
            cause = exc.source
            return DocumentStoreUnavailable(
                f"{where} is unreachable during {what}: {type(cause).__name__}: {cause}"
            )
        if isinstance(exc, UnexpectedResponse):
            detail = exc.content.decode("utf-8", "replace")[:300]
            message = f"{where} answered HTTP {exc.status_code} during {what}: {detail}"
            if exc.status_code is not None and exc.status_code < 500:
                return DocumentStoreError(message)
            return DocumentStoreUnavailable(message)
        if isinstance(exc, (httpx.HTTPError, OSError, TimeoutError)):
            return DocumentStoreUnavailable(
                f"{where} is unreachable during {what}: {type(exc).__name__}: {exc}"
            )
        if isinstance(exc, RuntimeError) and "already accessed" in str(exc):
            return DocumentStoreUnavailable(
                f"{where} is in use by another process (qdrant-client's local mode allows one "
                "at a time: unset QDRANT_PATH's local mode, or run a Qdrant server and set "
                "QDRANT_URL)"
            )
        return DocumentStoreError(f"{where} failed during {what}: {type(exc).__name__}: {exc}")

    # ---- the VectorBackend operations ------------------------------------------------

    async def info(self, collection: str) -> CollectionInfo | None:
        cached = self._info.get(collection)
        if cached is not None and (self.location.is_local or time.monotonic() < cached[0]):
            return cached[1]

        def describe(client: QdrantClient) -> qm.CollectionInfo | None:
            if not client.collection_exists(collection):
                return None
            return client.get_collection(collection)

        raw = await self.run("reading the collection", describe)
        info = None if raw is None else self._collection_info(raw)
        self._info[collection] = (time.monotonic() + INFO_TTL_S, info)
        return info

    @staticmethod
    def _collection_info(raw: qm.CollectionInfo) -> CollectionInfo:
        metadata = raw.config.metadata or {}
        vectors = raw.config.params.vectors
        size = vectors.size if isinstance(vectors, qm.VectorParams) else 0
        model = metadata.get(META_MODEL)
        embedder = None
        if model is not None:
            embedder = EmbedderIdentity(
                # collections made before the provider was recorded
                provider=str(metadata.get(META_PROVIDER, "unknown")),
                model=str(model),
                dimensions=int(metadata.get(META_DIMENSIONS, size)),
            )
        return CollectionInfo(dimensions=int(size), embedder=embedder)

    @contextlib.asynccontextmanager
    async def writing(self, collection: str, *, replace: bool = False) -> AsyncIterator[None]:
        # a server applies each write at once; a replacement starts from no collection
        self._info.pop(collection, None)
        if replace:
            await self.run("replacing the collection", lambda c: c.delete_collection(collection))
        try:
            yield
        finally:
            self._info.pop(collection, None)

    async def create(self, collection: str, dimensions: int, embedder: EmbedderIdentity) -> None:
        def create(client: QdrantClient) -> None:
            client.create_collection(
                collection,
                vectors_config=qm.VectorParams(size=dimensions, distance=qm.Distance.DOT),
                metadata={
                    META_PROVIDER: embedder.provider,
                    META_MODEL: embedder.model,
                    META_DIMENSIONS: dimensions,
                },
            )
            if self.location.url is not None:  # local mode scans every point and warns
                for key in INDEXED_FIELDS:
                    client.create_payload_index(
                        collection, key, field_schema=qm.PayloadSchemaType.KEYWORD, wait=True
                    )

        await self.run("creating the collection", create)
        self._info.pop(collection, None)

    async def upsert(self, collection: str, points: list[StoredPoint]) -> None:
        structs = [qm.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points]
        await self.run("storing chunks", lambda c: c.upsert(collection, points=structs, wait=True))

    async def delete_ids(self, collection: str, ids: list[str]) -> None:
        selector = qm.PointIdsList(points=list(ids))
        await self.run(
            "removing chunks",
            lambda c: c.delete(collection, points_selector=selector, wait=True),
        )

    async def delete_where(self, collection: str, where: VectorFilter) -> None:
        condition = client_filter(where)
        if condition is None:
            raise DocumentStoreError("refusing to delete with an empty filter")
        selector = qm.FilterSelector(filter=condition)
        await self.run(
            "pruning", lambda c: c.delete(collection, points_selector=selector, wait=True)
        )

    async def query(
        self, collection: str, vector: list[float], *, limit: int, where: VectorFilter | None
    ) -> list[FoundPoint]:
        condition = client_filter(where)

        def search(client: QdrantClient) -> list[FoundPoint]:
            points = client.query_points(
                collection, query=vector, limit=limit, query_filter=condition, with_payload=True
            ).points
            return [FoundPoint.of(p) for p in points]

        return await self.run("searching", search)

    async def scroll(
        self,
        collection: str,
        *,
        where: VectorFilter | None = None,
        payload_keys: list[str] | None = None,
    ) -> AsyncIterator[list[FoundPoint]]:
        condition = client_filter(where)

        async def page(offset: Any) -> tuple[list[FoundPoint], Any]:
            def read(client: QdrantClient) -> tuple[list[FoundPoint], Any]:
                points, following = client.scroll(
                    collection,
                    scroll_filter=condition,
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=payload_keys if payload_keys is not None else True,
                    with_vectors=False,
                )
                return [FoundPoint.of(p) for p in points], following

            return await self.run("listing points", read)

        async for points in scroll_pages(page):
            yield points

    async def count(self, collection: str) -> int:
        if await self.info(collection) is None:
            return 0
        return await self.run("counting", lambda c: c.count(collection, exact=True).count)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)
