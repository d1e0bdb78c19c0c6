"""Documents in Qdrant (Edge in-process, or a server): loading, chunking, ingestion, search.

`build_document_store(DocumentStoreConfig(...))` gives a `DocumentStore` with async
`ingest(paths, prune=...)` and `search(query, k=..., property_id=...)`.
"""

from tools.documents.chunking import Chunk, Chunker
from tools.documents.edge_backend import EdgeBackend, EdgeIndexConfig
from tools.documents.errors import (
    DocumentStoreError,
    DocumentStoreUnavailable,
    EmbeddingModelMismatch,
)
from tools.documents.factory import (
    DocumentStoreConfig,
    build_backend,
    build_document_store,
    qdrant_location,
)
from tools.documents.loaders import (
    FoundFile,
    LoadedDocument,
    SkipFile,
    SkippedFile,
    discover,
    load_document,
)
from tools.documents.qdrant_gateway import QdrantGateway, QdrantLocation
from tools.documents.store import (
    DocumentStore,
    IngestReport,
    SearchHit,
    SearchResult,
)
from tools.documents.vectors import (
    CollectionInfo,
    FieldMatch,
    FoundPoint,
    StoredPoint,
    VectorBackend,
    VectorFilter,
)

__all__ = [
    "Chunk",
    "Chunker",
    "CollectionInfo",
    "DocumentStore",
    "DocumentStoreConfig",
    "DocumentStoreError",
    "DocumentStoreUnavailable",
    "EdgeBackend",
    "EdgeIndexConfig",
    "EmbeddingModelMismatch",
    "FieldMatch",
    "FoundFile",
    "FoundPoint",
    "IngestReport",
    "LoadedDocument",
    "QdrantGateway",
    "QdrantLocation",
    "SearchHit",
    "SearchResult",
    "SkipFile",
    "SkippedFile",
    "StoredPoint",
    "VectorBackend",
    "VectorFilter",
    "build_backend",
    "build_document_store",
    "discover",
    "load_document",
    "qdrant_location",
]
