"""The document store: ingest files into a Qdrant collection and search it.

Point ids are derived from source, chunk index and chunk content, so ingesting the same file
twice changes nothing, and a changed file gets its new chunks before its stale ones go.
The collection records the embedding model and dimension; any other embedder is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from tools.documents.chunking import CHUNKER_VERSION, Chunk, Chunker
from tools.documents.errors import (
    DocumentStoreError,
    DocumentStoreUnavailable,
    EmbeddingModelMismatch,
)
from tools.documents.loaders import (
    LoadedDocument,
    SkipFile,
    SkippedFile,
    discover,
    load_document,
)
from tools.documents.qdrant_gateway import QdrantGateway
from tools.embeddings import Embedder, EmbeddingsError, EmbeddingsUnavailable

logger = logging.getLogger(__name__)

_POINT_NAMESPACE = uuid.UUID("6f1c2a9e-3d4b-5e6f-8a7b-9c0d1e2f3a4b")
PREVIEW_CHARS = 160
UPSERT_BATCH = 256
SCROLL_PAGE = 1024
OVERFETCH = 8
META_MODEL = "embedding_model"
META_DIMENSIONS = "embedding_dimensions"


@dataclass(frozen=True)
class SearchHit:
    source: str
    title: str
    chunk: int
    score: float
    text: str
    section: str = ""
    property_id: str | None = None

    @property
    def preview(self) -> str:
        flat = " ".join(self.text.split())
        return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1].rstrip() + "…"

    @property
    def label(self) -> str:
        """How to name the source when speaking: its title, and section when there is one."""
        return f"{self.title} — {self.section}" if self.section else self.title

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "preview": self.preview}


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[SearchHit]
    min_score: float
    # chunks that came back but scored under `min_score`
    discarded: int = 0

    @property
    def found(self) -> bool:
        return bool(self.hits)


@dataclass
class IngestReport:
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_pruned: int = 0
    sources_pruned: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{self.files_seen} files: {self.files_indexed} indexed, "
            f"{self.files_unchanged} unchanged, {len(self.skipped)} skipped",
            f"{self.chunks_added} chunks added, {self.chunks_removed} replaced",
        ]
        if self.sources_pruned:
            parts.append(
                f"pruned {self.chunks_pruned} chunks of {len(self.sources_pruned)} removed files"
            )
        return "; ".join(parts)


class IngestProgress(Protocol):
    """Receives progress of an ingest run (a progress bar, usually)."""

    def start(self, total_files: int) -> None: ...

    def file_done(self) -> None: ...

    def skipped(self, item: SkippedFile) -> None: ...


def point_id(source: str, index: int, content_hash: str) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{source}\n{index}\n{content_hash}"))


def unit(vector: list[float]) -> list[float]:
    """L2-normalised, so the collection's dot product is cosine similarity.

    Qdrant's cosine distance would do the same, but local mode re-normalises every stored
    vector on every query; dot product on unit vectors gives equal scores without that cost.
    """
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    return (array / norm).tolist() if norm > 0 else list(vector)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _match(key: str, value: str) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def property_filter(property_id: str | None) -> qm.Filter | None:
    """A property's own documents plus the general ones (those without a property tag)."""
    if property_id is None:
        return None
    return qm.Filter(
        should=[
            _match("property_id", property_id),
            qm.IsEmptyCondition(is_empty=qm.PayloadField(key="property_id")),
        ]
    )


class DocumentStore:
    """Async facade over one Qdrant collection and one embedder."""

    def __init__(
        self,
        gateway: QdrantGateway,
        embedder: Embedder,
        *,
        collection: str = "documents",
        chunker: Chunker | None = None,
        min_score: float = 0.2,
        max_file_bytes: int = 20_000_000,
        ingest_concurrency: int = 4,
    ) -> None:
        self.gateway = gateway
        self.embedder = embedder
        self.collection = collection
        self.chunker = chunker or Chunker(chunk_size=800, chunk_overlap=120)
        self.min_score = min_score
        self.max_file_bytes = max_file_bytes
        self._ingest_concurrency = ingest_concurrency
        self._verified_dimensions: int | None = None
        self._create_lock = asyncio.Lock()

    # ---- collection bookkeeping -------------------------------------------------------

    def _mismatch(self, recorded_model: object, recorded_dims: object) -> EmbeddingModelMismatch:
        return EmbeddingModelMismatch(
            f"collection {self.collection!r} holds vectors from {recorded_model} "
            f"({recorded_dims} dimensions), but the configured embedder is "
            f"{self.embedder.model_name}; vector spaces are never mixed. Switch "
            "EMBEDDINGS_PROVIDER/EMBEDDINGS_MODEL back, or ingest into another collection "
            "(QDRANT_COLLECTION or --collection)"
        )

    async def _recorded_dimensions(self) -> int | None:
        """The collection's vector size after checking its model; None when it doesn't exist."""
        if self._verified_dimensions is not None:
            return self._verified_dimensions

        def describe(client: QdrantClient) -> qm.CollectionInfo | None:
            if not client.collection_exists(self.collection):
                return None
            return client.get_collection(self.collection)

        info = await self.gateway.run("reading the collection", describe)
        if info is None:
            return None
        metadata = info.config.metadata or {}
        vectors = info.config.params.vectors
        size = vectors.size if isinstance(vectors, qm.VectorParams) else None
        model = metadata.get(META_MODEL)
        if model is None:
            raise EmbeddingModelMismatch(
                f"collection {self.collection!r} records no embedding model, so it was not "
                "created by this tool; use another collection name"
            )
        if model != self.embedder.model_name or size != metadata.get(META_DIMENSIONS):
            raise self._mismatch(model, metadata.get(META_DIMENSIONS, size))
        self._verified_dimensions = int(size) if size is not None else None
        return self._verified_dimensions

    async def _ensure_collection(self, dimensions: int) -> None:
        async with self._create_lock:
            existing = await self._recorded_dimensions()
            if existing is not None:
                if existing != dimensions:
                    raise self._mismatch(self.embedder.model_name, existing)
                return
            local = self.gateway.location.is_local

            def create(client: QdrantClient) -> None:
                client.create_collection(
                    self.collection,
                    vectors_config=qm.VectorParams(size=dimensions, distance=qm.Distance.DOT),
                    metadata={
                        META_MODEL: self.embedder.model_name,
                        META_DIMENSIONS: dimensions,
                        "chunker_version": CHUNKER_VERSION,
                    },
                )
                if not local:  # local mode scans every point anyway and warns about indexes
                    for key in ("property_id", "source"):
                        client.create_payload_index(
                            self.collection, key, field_schema=qm.PayloadSchemaType.KEYWORD
                        )

            await self.gateway.run("creating the collection", create)
            logger.info(
                "created collection %r for %s (%d dimensions) in %s",
                self.collection,
                self.embedder.model_name,
                dimensions,
                self.gateway.location.describe(),
            )

    def _check_vector(self, vector: list[float], recorded: int) -> None:
        if len(vector) != recorded:
            raise self._mismatch(f"a {recorded}-dimension model", recorded)

    async def count(self) -> int:
        """Number of chunks in the collection (0 when it doesn't exist yet)."""
        if await self._recorded_dimensions() is None:
            return 0
        return await self.gateway.run(
            "counting", lambda c: c.count(self.collection, exact=True).count
        )

    # ---- search ------------------------------------------------------------------------

    async def embed_query(self, text: str) -> list[float]:
        """The query vector; embedding failures become document-store errors."""
        try:
            return await self.embedder.aembed_query(text)
        except EmbeddingsUnavailable as exc:
            raise DocumentStoreUnavailable(f"embedding provider unavailable: {exc}") from exc
        except EmbeddingsError as exc:
            raise DocumentStoreError(f"embedding failed: {exc}") from exc

    async def search_vector(
        self,
        vector: list[float],
        *,
        k: int = 5,
        property_id: str | None = None,
        min_score: float | None = None,
        query: str = "",
    ) -> SearchResult:
        """Top-k chunks for a query vector, dropping those under the minimum score."""
        threshold = self.min_score if min_score is None else min_score
        recorded = await self._recorded_dimensions()
        if recorded is None:
            logger.warning("search in %r, which has no documents yet", self.collection)
            return SearchResult(query=query, hits=[], min_score=threshold)
        self._check_vector(vector, recorded)
        vector = unit(vector)

        if property_id is not None and self.gateway.location.is_local:
            search = partial(self._local_property_search, vector=vector, k=k, prop=property_id)
        else:
            search = partial(self._filtered_search, vector=vector, k=k, prop=property_id)
        points = await self.gateway.run("searching", search)
        hits = [self._hit(p) for p in points]
        kept = [h for h in hits if h.score >= threshold]
        return SearchResult(
            query=query, hits=kept, min_score=threshold, discarded=len(hits) - len(kept)
        )

    async def search(
        self,
        query: str,
        *,
        k: int = 5,
        property_id: str | None = None,
        min_score: float | None = None,
    ) -> SearchResult:
        """Top-k chunks for a question, optionally limited to one property (plus general)."""
        if await self._recorded_dimensions() is None:
            threshold = self.min_score if min_score is None else min_score
            return SearchResult(query=query, hits=[], min_score=threshold)
        vector = await self.embed_query(query)
        return await self.search_vector(
            vector, k=k, property_id=property_id, min_score=min_score, query=query
        )

    async def nearest_documents(
        self, vector: list[float], *, k: int = 5, property_id: str | None = None
    ) -> list[SearchHit]:
        """The k most similar documents (best chunk of each), with no score threshold."""
        recorded = await self._recorded_dimensions()
        if recorded is None:
            return []
        self._check_vector(vector, recorded)
        vector = unit(vector)

        def grouped(client: QdrantClient) -> list[qm.PointGroup]:
            return client.query_points_groups(
                self.collection,
                query=vector,
                group_by="source",
                limit=k,
                group_size=1,
                query_filter=property_filter(property_id),
                with_payload=True,
            ).groups

        groups = await self.gateway.run("searching documents", grouped)
        return [self._hit(g.hits[0]) for g in groups if g.hits]

    def _filtered_search(
        self, client: QdrantClient, vector: list[float], k: int, prop: str | None
    ) -> list[qm.ScoredPoint]:
        return client.query_points(
            self.collection,
            query=vector,
            limit=k,
            query_filter=property_filter(prop),
            with_payload=True,
        ).points

    def _local_property_search(
        self, client: QdrantClient, vector: list[float], k: int, prop: str
    ) -> list[qm.ScoredPoint]:
        """Exact filtered top-k without local mode's per-point Python filter, when possible.

        If at least k of the unfiltered top k*OVERFETCH are eligible, they are the filtered
        top k (any better eligible point would be in that list too); otherwise filter for real.
        """
        wide = client.query_points(
            self.collection, query=vector, limit=k * OVERFETCH, with_payload=True
        ).points
        eligible = [p for p in wide if (p.payload or {}).get("property_id") in (prop, None)]
        if len(eligible) >= k or len(wide) < k * OVERFETCH:
            return eligible[:k]
        return self._filtered_search(client, vector, k, prop)

    @staticmethod
    def _hit(point: qm.ScoredPoint) -> SearchHit:
        payload = point.payload or {}
        return SearchHit(
            source=str(payload.get("source", "")),
            title=str(payload.get("title", "")),
            chunk=int(payload.get("chunk", 0)),
            score=round(float(point.score), 4),
            text=str(payload.get("text", "")),
            section=str(payload.get("section", "")),
            property_id=payload.get("property_id"),
        )

    # ---- ingestion ---------------------------------------------------------------------

    async def _existing_ids(self, source: str) -> set[str]:
        if await self._recorded_dimensions() is None:
            return set()

        def scroll(client: QdrantClient) -> set[str]:
            ids: set[str] = set()
            offset: Any = None
            while True:
                points, offset = client.scroll(
                    self.collection,
                    scroll_filter=qm.Filter(must=[_match("source", source)]),
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                )
                ids.update(str(p.id) for p in points)
                if offset is None:
                    return ids

        return await self.gateway.run("listing a file's chunks", scroll)

    async def _embed_chunks(self, chunks: Sequence[Chunk]) -> list[list[float]]:
        try:
            vectors = await self.embedder.aembed_documents([c.embed_text for c in chunks])
        except EmbeddingsUnavailable as exc:
            raise DocumentStoreUnavailable(f"embedding provider unavailable: {exc}") from exc
        except EmbeddingsError as exc:
            raise DocumentStoreError(f"embedding failed: {exc}") from exc
        return [unit(v) for v in vectors]

    async def ingest_document(
        self, document: LoadedDocument, *, existing: set[str] | None = None
    ) -> tuple[int, int]:
        """Index one loaded document; returns (chunks added, stale chunks removed).

        `existing` is the ids already stored for this source, when the caller knows them.
        """
        chunks = self.chunker.split(document)
        ids = [point_id(document.source, c.index, _sha256(c.embed_text)) for c in chunks]
        if existing is None:
            existing = await self._existing_ids(document.source)
        new = [(pid, c) for pid, c in zip(ids, chunks, strict=True) if pid not in existing]
        stale = sorted(existing - set(ids))
        if new:
            vectors = await self._embed_chunks([c for _, c in new])
            await self._ensure_collection(len(vectors[0]))
            points = [
                qm.PointStruct(id=pid, vector=vector, payload=self._payload(document, chunk))
                for (pid, chunk), vector in zip(new, vectors, strict=True)
            ]
            for start in range(0, len(points), UPSERT_BATCH):
                batch = points[start : start + UPSERT_BATCH]
                await self.gateway.run("storing chunks", partial(self._upsert, points=batch))
        if stale:
            await self.gateway.run(
                "removing replaced chunks",
                lambda c: c.delete(
                    self.collection, points_selector=qm.PointIdsList(points=stale), wait=True
                ),
            )
        return len(new), len(stale)

    def _upsert(self, client: QdrantClient, points: list[qm.PointStruct]) -> None:
        client.upsert(self.collection, points=points, wait=True)

    def _delete_source(self, client: QdrantClient, source: str) -> None:
        selector = qm.FilterSelector(filter=qm.Filter(must=[_match("source", source)]))
        client.delete(self.collection, points_selector=selector, wait=True)

    @staticmethod
    def _payload(document: LoadedDocument, chunk: Chunk) -> dict[str, Any]:
        return {
            "source": document.source,
            "title": document.title,
            "chunk": chunk.index,
            "section": chunk.section,
            "text": chunk.text,
            "content_hash": _sha256(chunk.embed_text),
            "file_hash": document.file_hash,
            "format": document.format,
            "property_id": document.property_id,
        }

    async def ingest(
        self,
        paths: Sequence[Path | str],
        *,
        prune: bool = False,
        progress: IngestProgress | None = None,
    ) -> IngestReport:
        """Ingest files and folders. Bad files are skipped (reported), the run continues.

        `prune` also removes chunks of files that lived under the given paths and are gone.
        """
        roots = await asyncio.to_thread(lambda: [Path(p).resolve() for p in paths])
        files, skipped = await asyncio.to_thread(discover, roots)
        report = IngestReport(files_seen=len(files) + len(skipped))
        for item in skipped:
            self._skipped(report, item, progress)
        if progress is not None:
            progress.start(len(files))
        gate = asyncio.Semaphore(self._ingest_concurrency)
        # local mode filters by scanning every point in Python, so one scan up front beats a
        # filtered lookup per file; a server answers those from its payload index instead
        known = await self.chunk_ids_by_source() if self.gateway.location.is_local else None

        async def one(path: Path) -> None:
            async with gate:
                try:
                    document = await asyncio.to_thread(
                        load_document, path, max_bytes=self.max_file_bytes
                    )
                except SkipFile as exc:
                    self._skipped(report, SkippedFile(str(path), str(exc)), progress)
                else:
                    existing = None if known is None else known.get(document.source, set())
                    added, removed = await self.ingest_document(document, existing=existing)
                    report.chunks_added += added
                    report.chunks_removed += removed
                    if added or removed:
                        report.files_indexed += 1
                    else:
                        report.files_unchanged += 1
                if progress is not None:
                    progress.file_done()

        await asyncio.gather(*(one(p) for p in files))
        if prune:
            await self._prune(roots, report)
        return report

    @staticmethod
    def _skipped(report: IngestReport, item: SkippedFile, progress: IngestProgress | None) -> None:
        report.skipped.append(item)
        logger.info("skipped %s: %s", item.source, item.reason)
        if progress is not None:
            progress.skipped(item)

    async def chunk_ids_by_source(self) -> dict[str, set[str]]:
        """Every indexed source file with the ids of its chunks (one pass over the collection)."""
        if await self._recorded_dimensions() is None:
            return {}

        def scroll(client: QdrantClient) -> dict[str, set[str]]:
            by_source: dict[str, set[str]] = {}
            offset: Any = None
            while True:
                points, offset = client.scroll(
                    self.collection,
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=["source"],
                    with_vectors=False,
                )
                for p in points:
                    source = str((p.payload or {}).get("source", ""))
                    by_source.setdefault(source, set()).add(str(p.id))
                if offset is None:
                    return by_source

        return await self.gateway.run("listing sources", scroll)

    async def sources(self) -> dict[str, int]:
        """Every indexed source file with its chunk count."""
        return {source: len(ids) for source, ids in (await self.chunk_ids_by_source()).items()}

    async def _prune(self, roots: Sequence[Path], report: IngestReport) -> None:
        indexed = await self.sources()

        def gone_under_a_root() -> list[str]:
            gone = []
            for source in sorted(indexed):
                path = Path(source)
                inside = any(path == root or root in path.parents for root in roots)
                if inside and not path.exists():
                    gone.append(source)
            return gone

        for source in await asyncio.to_thread(gone_under_a_root):
            count = indexed[source]
            await self.gateway.run("pruning", partial(self._delete_source, source=source))
            report.sources_pruned.append(source)
            report.chunks_pruned += count
            logger.info("pruned %d chunks of %s (file no longer exists)", count, source)

    async def aclose(self) -> None:
        await self.gateway.aclose()
        await self.embedder.aclose()
