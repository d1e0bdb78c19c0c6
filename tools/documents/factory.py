"""Build the document store from settings (the edge hands settings in; nothing reads env)."""

from __future__ import annotations

import redis.asyncio as aioredis

from tools.documents.chunking import Chunker
from tools.documents.qdrant_gateway import QdrantGateway, QdrantLocation
from tools.documents.store import DocumentStore
from tools.embeddings import Embedder, build_embedder
from tools.settings import ToolsSettings


def qdrant_location(settings: ToolsSettings) -> QdrantLocation:
    """`QDRANT_URL` (+ `QDRANT_API_KEY`) when set, else local mode at `QDRANT_PATH`."""
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantLocation(url=settings.qdrant_url, api_key=key)
    return QdrantLocation(path=str(settings.resolved_qdrant_path))


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
) -> DocumentStore:
    """The configured store; opening Qdrant is deferred to the first call."""
    embedder = embedder or build_embedder(settings, redis=redis)
    return DocumentStore(
        QdrantGateway(qdrant_location(settings), timeout_s=settings.qdrant_timeout_s),
        embedder,
        collection=collection or settings.qdrant_collection,
        chunker=Chunker(chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap),
        min_score=min_score(settings, embedder),
        max_file_bytes=int(settings.ingest_max_file_mb * 1_000_000),
    )
