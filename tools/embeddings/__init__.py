"""Embedding providers behind one interface, with a Redis or in-process cache.

`build_embedder(EmbeddingConfig(...))` returns the configured, cached embedder;
`download_models(config)` fetches local model weights (called by `python -m agent download-files`).
"""

from tools.embeddings.base import (
    Embedder,
    EmbedderIdentity,
    EmbeddingsError,
    EmbeddingsUnavailable,
)
from tools.embeddings.cache import (
    CachedEmbedder,
    CacheStats,
    EmbeddingCache,
    LRUEmbeddingCache,
    RedisEmbeddingCache,
)
from tools.embeddings.factory import (
    EmbeddingConfig,
    EmbeddingsProvider,
    build_embedder,
    build_provider,
    build_recorded_embedder,
    download_models,
    resolve_provider,
)
from tools.embeddings.fastembed_local import DEFAULT_FASTEMBED_MODEL, FastEmbedEmbedder
from tools.embeddings.hashing import HashingEmbedder
from tools.embeddings.openai_api import OpenAIEmbedder, OpenAIEmbeddingsConfig

__all__ = [
    "DEFAULT_FASTEMBED_MODEL",
    "CacheStats",
    "CachedEmbedder",
    "Embedder",
    "EmbedderIdentity",
    "EmbeddingCache",
    "EmbeddingConfig",
    "EmbeddingsError",
    "EmbeddingsProvider",
    "EmbeddingsUnavailable",
    "FastEmbedEmbedder",
    "HashingEmbedder",
    "LRUEmbeddingCache",
    "OpenAIEmbedder",
    "OpenAIEmbeddingsConfig",
    "RedisEmbeddingCache",
    "build_embedder",
    "build_provider",
    "build_recorded_embedder",
    "download_models",
    "resolve_provider",
]
