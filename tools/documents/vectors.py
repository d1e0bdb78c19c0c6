"""The vector-store contract the document store speaks, whatever engine stands behind it.

Two engines implement `VectorBackend`: Qdrant Edge in-process (`edge_backend`) and a Qdrant
server through qdrant-client (`qdrant_gateway`). Filters, points and collection facts cross
the boundary as the plain models below; each backend maps them to its own types.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from tools.embeddings.base import EmbedderIdentity

# payload fields every collection indexes as keywords, before its vector index is built
INDEXED_FIELDS = ("property_id", "source")


class FieldMatch(BaseModel):
    """`key == value`; with `or_missing`, points without the key match too."""

    model_config = ConfigDict(frozen=True)

    key: str
    value: str
    or_missing: bool = False


class VectorFilter(BaseModel):
    """Every condition must hold (an empty filter matches everything)."""

    model_config = ConfigDict(frozen=True)

    all_of: tuple[FieldMatch, ...] = ()

    @classmethod
    def where(cls, key: str, value: str, *, or_missing: bool = False) -> VectorFilter:
        return cls(all_of=(FieldMatch(key=key, value=value, or_missing=or_missing),))


class CollectionInfo(BaseModel):
    """What a backend knows about one collection."""

    model_config = ConfigDict(frozen=True)

    dimensions: int
    # None when the collection was not created by this tool
    embedder: EmbedderIdentity | None
    # changes whenever the collection's content is replaced (a new published version)
    version: str = ""


class StoredPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    vector: list[float]
    payload: dict[str, Any]


class FoundPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    score: float
    payload: dict[str, Any]

    @classmethod
    def of(cls, point: Any) -> FoundPoint:
        """From an engine's scored point or record (a record has no score: 0)."""
        return cls(
            id=str(point.id),
            score=float(getattr(point, "score", 0.0) or 0.0),
            payload=dict(point.payload or {}),
        )


# (offset, or None for the first page) -> (points, the next page's offset or None at the end)
PageFetch = Callable[[Any], Awaitable[tuple[list[FoundPoint], Any]]]


async def scroll_pages(fetch: PageFetch) -> AsyncIterator[list[FoundPoint]]:
    """The non-empty pages `fetch` returns, following offsets until the engine gives none."""
    offset: Any = None
    while True:
        points, offset = await fetch(offset)
        if points:
            yield points
        if offset is None:
            return


class VectorBackend(Protocol):
    """One collection store. Blocking engines run off the event loop inside the backend."""

    def describe_location(self) -> str: ...

    async def info(self, collection: str) -> CollectionInfo | None: ...

    def writing(
        self, collection: str, *, replace: bool = False
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Group writes; Qdrant Edge builds a new version and publishes it on success.

        `replace` starts from an empty collection (a re-embed) instead of the current one.
        """
        ...

    async def create(self, collection: str, dimensions: int, embedder: EmbedderIdentity) -> None:
        """Create the collection with keyword indexes on `INDEXED_FIELDS`."""
        ...

    async def upsert(self, collection: str, points: list[StoredPoint]) -> None: ...

    async def delete_ids(self, collection: str, ids: list[str]) -> None: ...

    async def delete_where(self, collection: str, where: VectorFilter) -> None: ...

    async def query(
        self, collection: str, vector: list[float], *, limit: int, where: VectorFilter | None
    ) -> list[FoundPoint]: ...

    def scroll(
        self,
        collection: str,
        *,
        where: VectorFilter | None = None,
        payload_keys: list[str] | None = None,
    ) -> AsyncIterator[list[FoundPoint]]:
        """Pages of points (score 0) with the named payload keys (all when None)."""
        ...

    async def count(self, collection: str) -> int: ...

    async def aclose(self) -> None: ...
