"""Documents in Qdrant: loading files, chunking, ingestion and search.

`build_document_store(settings)` gives a `DocumentStore` with async `ingest(paths, prune=...)`
and `search(query, k=..., property_id=...)`.
"""

from tools.documents.chunking import Chunk, Chunker
from tools.documents.errors import (
    DocumentStoreError,
    DocumentStoreUnavailable,
    EmbeddingModelMismatch,
)
from tools.documents.factory import build_document_store, qdrant_location
from tools.documents.loaders import LoadedDocument, SkipFile, SkippedFile, load_document
from tools.documents.qdrant_gateway import QdrantGateway, QdrantLocation
from tools.documents.store import (
    DocumentStore,
    IngestProgress,
    IngestReport,
    SearchHit,
    SearchResult,
)

__all__ = [
    "Chunk",
    "Chunker",
    "DocumentStore",
    "DocumentStoreError",
    "DocumentStoreUnavailable",
    "EmbeddingModelMismatch",
    "IngestProgress",
    "IngestReport",
    "LoadedDocument",
    "QdrantGateway",
    "QdrantLocation",
    "SearchHit",
    "SearchResult",
    "SkipFile",
    "SkippedFile",
    "build_document_store",
    "load_document",
    "qdrant_location",
]
