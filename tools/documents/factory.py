"""Build the document store from settings (the edge hands settings in; nothing reads env)."""

from __future__ import annotations

import redis.asyncio as aioredis

from tools.documents.chunking import Chunker
from tools.documents.edge_backend import EdgeBackend
from tools.documents.qdrant_gateway import MEMORY, QdrantGateway, QdrantLocation
from tools.documents.store import DocumentStore
from tools.documents.vectors import VectorBackend
from tools.embeddings import Embedder, EmbedderIdentity, build_embedder, build_recorded_embedder
from tools.settings import ToolsSettings


def qdrant_location(settings: ToolsSettings) -> QdrantLocation:
    """`QDRANT_URL` (+ `QDRANT_API_KEY`) when set, else the embedded store at `QDRANT_PATH`."""
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantLocation(url=settings.qdrant_url, api_key=key)
    return QdrantLocation(path=str(settings.resolved_qdrant_path))


def build_backend(settings: ToolsSettings, *, read_only: bool = False) -> VectorBackend:
    """A Qdrant server when `QDRANT_URL` is set, else Qdrant Edge at `QDRANT_PATH`.

    `QDRANT_PATH=:memory:` keeps qdrant-client's in-memory mode (one process, for tests).
    """
    location = qdrant_location(settings)
    if location.url is not None or location.path == MEMORY:
        return QdrantGateway(location, timeout_s=settings.qdrant_timeout_s)
    return EdgeBackend(settings.resolved_qdrant_path, read_only=read_only)


def min_score(settings: ToolsSettings, embedder: Embedder) -> float:
    """SEARCH_MIN_SCORE when set; otherwise where relevance starts on this model's scale."""
    if "search_min_score" in settings.model_fields_set:
        return settings.search_min_score
    return embedder.suggested_min_score


def build_document_store(
    settings: ToolsSettings,
    *,
    redis: aioredis.Redis | None = None,
    embedder: Embedder | None = None,
    collection: str | None = None,
    read_only: bool = False,
) -> DocumentStore:
    """The configured store; opening Qdrant is deferred to the first call.

    `read_only` for the worker: the embedded store is written only by the ingest CLI.
    """
    embedder = embedder or build_embedder(settings, redis=redis)
    name = collection or settings.qdrant_collection

    def recorded(identity: EmbedderIdentity) -> Embedder:
        return build_recorded_embedder(settings, identity, collection=name, redis=redis)

    return DocumentStore(
        build_backend(settings, read_only=read_only),
        embedder,
        collection=name,
        chunker=Chunker(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap),
        min_score=min_score(settings, embedder),
        max_file_bytes=int(settings.ingest_max_file_mb * 1_000_000),
        recorded_embedder=recorded,
    )
