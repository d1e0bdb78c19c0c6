"""The document store: ingest files into a vector collection and search it.

A document's identity is its path relative to the ingest root, so moving the folder changes
nothing. Point ids are derived from that identity, chunk index and chunk content: ingesting
the same file twice changes nothing, and a changed file gets its new chunks before its stale
ones go. The collection records its embedder (provider, model, dimensions); searches and
ingests use the recorded embedder, and `reembed()` migrates the collection to another one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tools.documents.chunking import CHUNKER_VERSION, Chunk, Chunker
from tools.documents.errors import (
    DocumentStoreError,
    DocumentStoreUnavailable,
    EmbeddingModelMismatch,
)
from tools.documents.loaders import (
    FoundFile,
    LoadedDocument,
    SkipFile,
    SkippedFile,
    discover,
    load_document,
)
from tools.documents.vectors import (
    CollectionInfo,
    FoundPoint,
    StoredPoint,
    VectorBackend,
    VectorFilter,
)
from tools.embeddings import Embedder, EmbedderIdentity, EmbeddingsError, EmbeddingsUnavailable

if TYPE_CHECKING:
    # the ingest CLI's bar is the one progress receiver; imported for typing only (no cycle)
    from tools.ingest import ProgressBar

logger = logging.getLogger(__name__)

_POINT_NAMESPACE = uuid.UUID("6f1c2a9e-3d4b-5e6f-8a7b-9c0d1e2f3a4b")
PREVIEW_CHARS = 160
UPSERT_BATCH = 256
REEMBED_BATCH = 512
OVERFETCH = 8

# builds the embedder a collection records; raises EmbeddingsError when it cannot
RecordedEmbedderFactory = Callable[[EmbedderIdentity], Embedder]


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
    chunks_reembedded: int = 0
    sources_pruned: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    prune_refused: str = ""

    def summary(self) -> str:
        parts = []
        if self.chunks_reembedded:
            parts.append(f"re-embedded {self.chunks_reembedded} chunks")
        parts += [
            f"{self.files_seen} files: {self.files_indexed} indexed, "
            f"{self.files_unchanged} unchanged, {len(self.skipped)} skipped",
            f"{self.chunks_added} chunks added, {self.chunks_removed} replaced",
        ]
        if self.sources_pruned:
            parts.append(
                f"pruned {self.chunks_pruned} chunks of {len(self.sources_pruned)} removed files"
            )
        if self.prune_refused:
            parts.append(f"nothing pruned: {self.prune_refused}")
        return "; ".join(parts)


def point_id(source: str, index: int, content_hash: str) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{source}\n{index}\n{content_hash}"))


def unit(vector: list[float]) -> list[float]:
    """L2-normalised, so the collection's dot product is cosine similarity."""
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(array))
    return (array / norm).tolist() if norm > 0 else list(vector)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def property_filter(property_id: str | None) -> VectorFilter | None:
    """A property's own documents plus the general ones (those without a property tag)."""
    if property_id is None:
        return None
    return VectorFilter.where("property_id", property_id, or_missing=True)


def _embed_text(payload: dict[str, Any]) -> str:
    """What was embedded for a stored chunk (rebuilt for chunks stored before it was kept)."""
    if payload.get("embed_text"):
        return str(payload["embed_text"])
    title, section, text = payload.get("title", ""), payload.get("section", ""), payload["text"]
    return f"{title}\n{section}\n{text}" if section else f"{title}\n{text}"


def _same_embedder(embedder: Embedder, identity: EmbedderIdentity) -> bool:
    if embedder.model_name != identity.model:
        return False
    if identity.provider not in ("unknown", embedder.provider):
        return False
    try:
        return embedder.dimensions == identity.dimensions
    except EmbeddingsError:
        return True  # an API model whose size is learnt from its first answer


class DocumentStore:
    """Async facade over one collection of a vector backend and one embedder."""

    def __init__(
        self,
        backend: VectorBackend,
        embedder: Embedder,
        *,
        collection: str = "documents",
        chunker: Chunker | None = None,
        min_score: float = 0.2,
        max_file_bytes: int = 20_000_000,
        ingest_concurrency: int = 4,
        recorded_embedder: RecordedEmbedderFactory | None = None,
    ) -> None:
        self.backend = backend
        self.configured_embedder = embedder
        self.collection = collection
        self.chunker = chunker or Chunker(chunk_size=800, chunk_overlap=120)
        self.min_score = min_score
        self.max_file_bytes = max_file_bytes
        self._ingest_concurrency = ingest_concurrency
        self._recorded_embedder = recorded_embedder
        self._active: Embedder = embedder
        self._adopted: dict[EmbedderIdentity, Embedder] = {}
        self._checked_version: str | None = None
        self._create_lock = asyncio.Lock()

    @property
    def gateway(self) -> VectorBackend:
        """The backend (its older name)."""
        return self.backend

    @property
    def embedder(self) -> Embedder:
        """The embedder in use: the one the collection records, else the configured one."""
        return self._active

    # ---- collection bookkeeping -------------------------------------------------------

    def _mismatch(self, identity: EmbedderIdentity) -> EmbeddingModelMismatch:
        return EmbeddingModelMismatch(
            f"collection {self.collection!r} was built with {identity.describe()}, but the "
            f"configured embedder is {self.configured_embedder.model_name}; vector spaces are "
            "never mixed. Re-ingest with `python -m tools.ingest --reembed`, or set "
            "EMBEDDINGS_PROVIDER/EMBEDDINGS_MODEL to the recorded embedder"
        )

    def _adopt(self, info: CollectionInfo) -> None:
        """Use the embedder the collection records (or refuse with one actionable line)."""
        identity = info.embedder
        if identity is None:
            raise EmbeddingModelMismatch(
                f"collection {self.collection!r} records no embedding model, so it was not "
                "created by this tool; use another collection name"
            )
        if _same_embedder(self.configured_embedder, identity):
            self._active = self.configured_embedder
        elif identity in self._adopted:
            self._active = self._adopted[identity]
        elif self._recorded_embedder is None:
            raise self._mismatch(identity)
        else:
            try:
                recorded = self._recorded_embedder(identity)
            except EmbeddingsError as exc:
                raise EmbeddingModelMismatch(str(exc)) from exc
            logger.warning(
                "collection %r was built with %s; using it rather than the configured %s "
                "(re-ingest with `python -m tools.ingest --reembed` to switch)",
                self.collection,
                identity.describe(),
                self.configured_embedder.model_name,
            )
            self._adopted[identity] = self._active = recorded
        self._checked_version = info.version

    async def _collection(self) -> CollectionInfo | None:
        """The collection's facts, with its embedder adopted; None when it doesn't exist."""
        info = await self.backend.info(self.collection)
        if info is None:
            return None
        if info.version != self._checked_version or info.embedder is None:
            self._adopt(info)
        return info

    async def _ensure_collection(self, dimensions: int) -> None:
        async with self._create_lock:
            info = await self._collection()
            if info is not None:
                if info.dimensions != dimensions:
                    raise self._mismatch(info.embedder or self.embedder.identity(dimensions))
                return
            identity = self.embedder.identity(dimensions)
            await self.backend.create(self.collection, dimensions, identity)
            self._checked_version = None
            logger.info(
                "created collection %r for %s in %s",
                self.collection,
                identity.describe(),
                self.backend.describe_location(),
            )

    def _check_vector(self, vector: list[float], info: CollectionInfo) -> None:
        if len(vector) != info.dimensions:
            raise self._mismatch(info.embedder or self.embedder.identity(info.dimensions))

    async def count(self) -> int:
        """Number of chunks in the collection (0 when it doesn't exist yet)."""
        if await self._collection() is None:
            return 0
        return await self.backend.count(self.collection)

    async def recorded_embedder(self) -> EmbedderIdentity | None:
        """What the collection records about its embedder (None when it doesn't exist)."""
        info = await self.backend.info(self.collection)
        return info.embedder if info is not None else None

    # ---- search ------------------------------------------------------------------------

    async def embed_query(self, text: str) -> list[float]:
        """The query vector in the collection's space; failures become store errors."""
        await self._collection()
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
        info = await self._collection()
        if info is None:
            logger.warning("search in %r, which has no documents yet", self.collection)
            return SearchResult(query=query, hits=[], min_score=threshold)
        self._check_vector(vector, info)
        points = await self.backend.query(
            self.collection, unit(vector), limit=k, where=property_filter(property_id)
        )
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
        if await self._collection() is None:
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
        info = await self._collection()
        if info is None:
            return []
        self._check_vector(vector, info)
        vector = unit(vector)
        where = property_filter(property_id)
        limit = k * OVERFETCH
        while True:
            points = await self.backend.query(self.collection, vector, limit=limit, where=where)
            best: dict[str, SearchHit] = {}
            for point in points:  # best first, so the first chunk of a source is its best
                hit = self._hit(point)
                best.setdefault(hit.source, hit)
            if len(best) >= k or len(points) < limit:
                return list(best.values())[:k]
            limit *= 4

    @staticmethod
    def _hit(point: FoundPoint) -> SearchHit:
        payload = point.payload
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
        if await self._collection() is None:
            return set()
        ids: set[str] = set()
        async for page in self.backend.scroll(
            self.collection, where=VectorFilter.where("source", source), payload_keys=[]
        ):
            ids.update(p.id for p in page)
        return ids

    async def _embed_texts(self, texts: list[str]) -> list[list[float]]:
        try:
            vectors = await self.embedder.aembed_documents(texts)
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
            vectors = await self._embed_texts([c.embed_text for _, c in new])
            await self._ensure_collection(len(vectors[0]))
            points = [
                StoredPoint(id=pid, vector=vector, payload=self._payload(document, chunk))
                for (pid, chunk), vector in zip(new, vectors, strict=True)
            ]
            for start in range(0, len(points), UPSERT_BATCH):
                await self.backend.upsert(self.collection, points[start : start + UPSERT_BATCH])
        if stale:
            await self.backend.delete_ids(self.collection, stale)
        return len(new), len(stale)

    @staticmethod
    def _payload(document: LoadedDocument, chunk: Chunk) -> dict[str, Any]:
        return {
            "source": document.source,
            "title": document.title,
            "chunk": chunk.index,
            "section": chunk.section,
            "text": chunk.text,
            "embed_text": chunk.embed_text,
            "content_hash": _sha256(chunk.embed_text),
            "file_hash": document.file_hash,
            "format": document.format,
            "property_id": document.property_id,
            "chunker_version": CHUNKER_VERSION,
        }

    async def ingest(
        self,
        paths: Sequence[Path | str],
        *,
        prune: bool = False,
        progress: ProgressBar | None = None,
        reembed: bool = False,
        follow_symlinks: bool = False,
    ) -> IngestReport:
        """Ingest files and folders. Bad files are skipped (reported), the run continues.

        `prune`: afterwards the collection holds only documents found under `paths`.
        `reembed`: first move every stored chunk to the configured embedder.
        `follow_symlinks`: also follow symlinks that leave an ingest folder.
        All changes become visible to readers together, when the run ends.
        """
        files, skipped = await asyncio.to_thread(
            discover, [Path(p) for p in paths], follow_symlinks=follow_symlinks
        )
        report = IngestReport(files_seen=len(files) + len(skipped))
        for item in skipped:
            self._skipped(report, item, progress)
        replacement = await self._reembedded_points(report) if reembed else None
        async with self.backend.writing(self.collection, replace=replacement is not None):
            if replacement is not None:
                await self._store_replacement(*replacement)
            await self._ingest_files(files, report, progress)
            if prune:
                missing_root = [s.source for s in skipped if s.reason == "not found"]
                if missing_root:
                    report.prune_refused = f"{missing_root[0]} does not exist"
                else:
                    await self._prune({f.source for f in files}, report)
        return report

    async def _ingest_files(
        self, files: list[FoundFile], report: IngestReport, progress: ProgressBar | None
    ) -> None:
        if progress is not None:
            progress.start(len(files))
        gate = asyncio.Semaphore(self._ingest_concurrency)
        # one pass over the collection beats a filtered lookup per file on every backend
        known = await self.chunk_ids_by_source()

        async def one(found: FoundFile) -> None:
            async with gate:
                try:
                    document = await asyncio.to_thread(
                        load_document,
                        found.path,
                        max_bytes=self.max_file_bytes,
                        source=found.source,
                    )
                except SkipFile as exc:
                    self._skipped(report, SkippedFile(str(found.path), str(exc)), progress)
                else:
                    existing = known.get(document.source, set())
                    added, removed = await self.ingest_document(document, existing=existing)
                    report.chunks_added += added
                    report.chunks_removed += removed
                    if added or removed:
                        report.files_indexed += 1
                    else:
                        report.files_unchanged += 1
                if progress is not None:
                    progress.file_done()

        await asyncio.gather(*(one(f) for f in files))

    async def _reembedded_points(
        self, report: IngestReport
    ) -> tuple[list[StoredPoint], int] | None:
        """Every stored chunk with a vector from the configured embedder (None: nothing to do)."""
        info = await self.backend.info(self.collection)
        if info is None:
            return None
        if info.embedder is not None and _same_embedder(self.configured_embedder, info.embedder):
            logger.info("collection %r already uses %s", self.collection, info.embedder.describe())
            return None
        chunks: list[FoundPoint] = []
        async for page in self.backend.scroll(self.collection):
            chunks.extend(page)
        self._active = self.configured_embedder
        points: list[StoredPoint] = []
        for start in range(0, len(chunks), REEMBED_BATCH):
            batch = chunks[start : start + REEMBED_BATCH]
            vectors = await self._embed_texts([_embed_text(p.payload) for p in batch])
            points += [
                StoredPoint(
                    id=p.id, vector=v, payload={**p.payload, "embed_text": _embed_text(p.payload)}
                )
                for p, v in zip(batch, vectors, strict=True)
            ]
        report.chunks_reembedded = len(points)
        dimensions = len(points[0].vector) if points else self.configured_embedder.dimensions
        return points, dimensions

    async def _store_replacement(self, points: list[StoredPoint], dimensions: int) -> None:
        identity = self.configured_embedder.identity(dimensions)
        await self.backend.create(self.collection, dimensions, identity)
        for start in range(0, len(points), UPSERT_BATCH):
            await self.backend.upsert(self.collection, points[start : start + UPSERT_BATCH])
        self._active = self.configured_embedder
        self._checked_version = None
        logger.info(
            "re-embedded %d chunks of %r with %s", len(points), self.collection, identity.describe()
        )

    @staticmethod
    def _skipped(report: IngestReport, item: SkippedFile, progress: ProgressBar | None) -> None:
        report.skipped.append(item)
        logger.info("skipped %s: %s", item.source, item.reason)
        if progress is not None:
            progress.skipped(item)

    async def chunk_ids_by_source(self) -> dict[str, set[str]]:
        """Every indexed source with the ids of its chunks (one pass over the collection)."""
        if await self._collection() is None:
            return {}
        by_source: dict[str, set[str]] = {}
        async for page in self.backend.scroll(self.collection, payload_keys=["source"]):
            for p in page:
                by_source.setdefault(str(p.payload.get("source", "")), set()).add(p.id)
        return by_source

    async def sources(self) -> dict[str, int]:
        """Every indexed source with its chunk count."""
        return {source: len(ids) for source, ids in (await self.chunk_ids_by_source()).items()}

    async def _prune(self, present: set[str], report: IngestReport) -> None:
        indexed = await self.sources()
        for source in sorted(set(indexed) - present):
            count = indexed[source]
            await self.backend.delete_where(self.collection, VectorFilter.where("source", source))
            report.sources_pruned.append(source)
            report.chunks_pruned += count
            logger.info("pruned %d chunks of %s (not under the given paths)", count, source)

    async def aclose(self) -> None:
        await self.backend.aclose()
        await self.configured_embedder.aclose()
        for embedder in self._adopted.values():
            await embedder.aclose()
