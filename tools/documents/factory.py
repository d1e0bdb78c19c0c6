"""Build the document store from a `DocumentStoreConfig` (the edge fills it; nothing reads env)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from tools.documents.chunking import Chunker
from tools.documents.edge_backend import EdgeBackend
from tools.documents.qdrant_gateway import MEMORY, QdrantGateway, QdrantLocation
from tools.documents.store import DocumentStore
from tools.documents.vectors import VectorBackend
from tools.embeddings import (
    Embedder,
    EmbedderIdentity,
    EmbeddingConfig,
    build_embedder,
    build_recorded_embedder,
)


@dataclass(frozen=True)
class DocumentStoreConfig:
    """Where the vectors live and how documents are cut; the edge fills it (QDRANT_*, CHUNK_*)."""

    embeddings: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    # a Qdrant server; when unset, the embedded Qdrant Edge store at `qdrant_path`
    qdrant_url: str | None = None
    qdrant_api_key: str | None = field(default=None, repr=False)
    qdrant_path: Path = Path(".data") / "qdrant"
    collection: str = "documents"
    qdrant_timeout_s: float = 5.0
    chunk_size: int = 800
    chunk_overlap: int = 120
    # None: where relevance starts on the embedder's own scale
    min_score: float | None = None
    max_file_bytes: int = 20_000_000


def qdrant_location(config: DocumentStoreConfig) -> QdrantLocation:
    """`QDRANT_URL` (+ `QDRANT_API_KEY`) when set, else the embedded store at `QDRANT_PATH`."""
    if config.qdrant_url:
        return QdrantLocation(url=config.qdrant_url, api_key=config.qdrant_api_key)
    return QdrantLocation(path=str(config.qdrant_path))


def build_backend(config: DocumentStoreConfig, *, read_only: bool = False) -> VectorBackend:
    """A Qdrant server when `QDRANT_URL` is set, else Qdrant Edge at `QDRANT_PATH`.

    `QDRANT_PATH=:memory:` keeps qdrant-client's in-memory mode (one process, for tests).
    """
    location = qdrant_location(config)
    if location.url is not None or location.path == MEMORY:
        return QdrantGateway(location, timeout_s=config.qdrant_timeout_s)
    return EdgeBackend(config.qdrant_path, read_only=read_only)


def build_document_store(
    config: DocumentStoreConfig,
    *,
    redis: aioredis.Redis | None = None,
    embedder: Embedder | None = None,
    collection: str | None = None,
    read_only: bool = False,
) -> DocumentStore:
    """The configured store; opening Qdrant is deferred to the first call.

    `read_only` for the worker: the embedded store is written only by the ingest CLI.
    """
    embedder = embedder or build_embedder(config.embeddings, redis=redis)
    name = collection or config.collection

    def recorded(identity: EmbedderIdentity) -> Embedder:
        return build_recorded_embedder(config.embeddings, identity, collection=name, redis=redis)

    return DocumentStore(
        build_backend(config, read_only=read_only),
        embedder,
        collection=name,
        chunker=Chunker(chunk_size=config.chunk_size, chunk_overlap=config.chunk_overlap),
        min_score=embedder.suggested_min_score if config.min_score is None else config.min_score,
        max_file_bytes=config.max_file_bytes,
        recorded_embedder=recorded,
    )
