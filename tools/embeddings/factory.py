"""Choose and assemble the embedder from settings; the only place that reads ToolsSettings."""

from __future__ import annotations

import logging
from pathlib import Path

import redis.asyncio as aioredis

from tools.embeddings.base import Embedder, EmbedderIdentity, EmbeddingsError
from tools.embeddings.cache import (
    CachedEmbedder,
    EmbeddingCache,
    LRUEmbeddingCache,
    RedisEmbeddingCache,
)
from tools.embeddings.fastembed_local import (
    DEFAULT_FASTEMBED_MODEL,
    FastEmbedEmbedder,
    download_fastembed_model,
    fastembed_model_cached,
)
from tools.embeddings.hashing import DEFAULT_HASHING_DIMENSIONS, HashingEmbedder
from tools.embeddings.openai_api import (
    DEFAULT_OPENAI_MODEL,
    OPENAI_BASE_URL,
    OpenAIEmbedder,
    OpenAIEmbeddingsConfig,
)
from tools.settings import EmbeddingsProvider, ToolsSettings

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 2.0


def fastembed_cache_dir(settings: ToolsSettings) -> Path:
    return settings.data_dir / "fastembed"


def resolve_provider(settings: ToolsSettings) -> EmbeddingsProvider:
    """Explicit choice; else OpenAI with a key; else FastEmbed when downloaded; else hashing."""
    if settings.embeddings_provider is not None:
        return settings.embeddings_provider
    if settings.openai_api_key is not None:
        return "openai"
    model = settings.embeddings_model or DEFAULT_FASTEMBED_MODEL
    if fastembed_model_cached(model, fastembed_cache_dir(settings)):
        return "fastembed"
    return "hashing"


def _openai_config(settings: ToolsSettings, provider: EmbeddingsProvider) -> OpenAIEmbeddingsConfig:
    common = {
        "dimensions": settings.embeddings_dimensions,
        "timeout_s": settings.embeddings_timeout_s,
        "batch_size": settings.embeddings_batch_size,
        "concurrency": settings.embeddings_concurrency,
        "max_retries": settings.embeddings_max_retries,
    }
    if provider == "openai":
        key = settings.embeddings_api_key or settings.openai_api_key
        if key is None:
            raise EmbeddingsError("EMBEDDINGS_PROVIDER=openai needs OPENAI_API_KEY")
        return OpenAIEmbeddingsConfig(
            model=settings.embeddings_model or DEFAULT_OPENAI_MODEL,
            base_url=settings.embeddings_base_url or OPENAI_BASE_URL,
            api_key=key.get_secret_value(),
            provider="openai",
            provider_label="OpenAI",
            **common,  # type: ignore[arg-type]
        )
    if not settings.embeddings_base_url or not settings.embeddings_model:
        raise EmbeddingsError(
            "EMBEDDINGS_PROVIDER=openai-compatible needs EMBEDDINGS_BASE_URL (e.g. "
            "http://localhost:11434/v1) and EMBEDDINGS_MODEL (e.g. nomic-embed-text)"
        )
    # never forward OPENAI_API_KEY to a third-party server
    key = settings.embeddings_api_key
    return OpenAIEmbeddingsConfig(
        model=settings.embeddings_model,
        base_url=settings.embeddings_base_url,
        api_key=key.get_secret_value() if key else None,
        provider="openai-compatible",
        provider_label=f"embeddings server {settings.embeddings_base_url}",
        **common,  # type: ignore[arg-type]
    )


def build_provider(settings: ToolsSettings) -> Embedder:
    """The bare (uncached) embedder the settings ask for."""
    provider = resolve_provider(settings)
    if provider in ("openai", "openai-compatible"):
        return OpenAIEmbedder(_openai_config(settings, provider))
    if provider == "fastembed":
        return FastEmbedEmbedder(
            settings.embeddings_model or DEFAULT_FASTEMBED_MODEL,
            cache_dir=fastembed_cache_dir(settings),
            batch_size=settings.embeddings_batch_size,
        )
    return HashingEmbedder(settings.embeddings_dimensions or DEFAULT_HASHING_DIMENSIONS)


def build_embedder(
    settings: ToolsSettings,
    *,
    redis: aioredis.Redis | None = None,
    inner: Embedder | None = None,
) -> CachedEmbedder:
    """The configured embedder behind a cache: Redis when available, else an in-process LRU.

    The hashing embedder computes faster than a Redis round trip, so it only gets the LRU.
    """
    inner = inner or build_provider(settings)
    cache: EmbeddingCache
    if isinstance(inner, HashingEmbedder):
        cache = LRUEmbeddingCache(settings.embeddings_cache_size)
    elif redis is not None:
        cache = RedisEmbeddingCache(redis, ttl_s=settings.embeddings_cache_ttl_s)
    elif settings.redis_url:
        client = aioredis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        cache = RedisEmbeddingCache(client, ttl_s=settings.embeddings_cache_ttl_s, owns_client=True)
    else:
        cache = LRUEmbeddingCache(settings.embeddings_cache_size)
    logger.info(
        "embeddings: %s (%s), cache: %s",
        inner.model_name,
        type(inner).__name__,
        type(cache).__name__,
    )
    return CachedEmbedder(inner, cache)


RECORDED_PROVIDERS = ("openai", "openai-compatible", "fastembed", "hashing")


def _recorded_unavailable(identity: EmbedderIdentity, collection: str, remedy: str) -> str:
    return (
        f"collection {collection!r} was built with {identity.describe()}; re-ingest with "
        f"`python -m tools.ingest --reembed` to use the configured embedder, or {remedy}"
    )


def build_recorded_embedder(
    settings: ToolsSettings,
    identity: EmbedderIdentity,
    *,
    collection: str,
    redis: aioredis.Redis | None = None,
) -> CachedEmbedder:
    """The embedder a collection was built with, when these settings can run it.

    Raises `EmbeddingsError` with one actionable line when they cannot (no API key, model not
    downloaded, ...).
    """
    provider = identity.provider
    if provider not in RECORDED_PROVIDERS:
        raise EmbeddingsError(
            _recorded_unavailable(
                identity, collection, "set EMBEDDINGS_PROVIDER and EMBEDDINGS_MODEL to it"
            )
        )
    recorded = settings.model_copy(
        update={
            "embeddings_provider": provider,
            "embeddings_model": identity.model,
            "embeddings_dimensions": identity.dimensions,
        }
    )
    if provider == "openai" and not (settings.embeddings_api_key or settings.openai_api_key):
        raise EmbeddingsError(_recorded_unavailable(identity, collection, "set OPENAI_API_KEY"))
    if provider == "openai-compatible" and not settings.embeddings_base_url:
        raise EmbeddingsError(
            _recorded_unavailable(
                identity, collection, "set EMBEDDINGS_BASE_URL to the server that runs it"
            )
        )
    if provider == "fastembed" and not fastembed_model_cached(
        identity.model, fastembed_cache_dir(settings)
    ):
        raise EmbeddingsError(
            _recorded_unavailable(
                identity,
                collection,
                "run `python -m agent download-files` with "
                f"EMBEDDINGS_PROVIDER=fastembed EMBEDDINGS_MODEL={identity.model}",
            )
        )
    try:
        return build_embedder(recorded, redis=redis)
    except EmbeddingsError as exc:
        raise EmbeddingsError(_recorded_unavailable(identity, collection, str(exc))) from exc


def download_models(settings: ToolsSettings) -> list[str]:
    """Fetch the local embedding model the settings would use; returns the models fetched.

    Runs when the provider is FastEmbed, or unset without an OpenAI key (FastEmbed is then the
    embedded default). Providers behind an API have nothing to download.
    """
    provider = settings.embeddings_provider
    if provider not in (None, "fastembed") or (
        provider is None and settings.openai_api_key is not None
    ):
        return []
    model = settings.embeddings_model or DEFAULT_FASTEMBED_MODEL
    download_fastembed_model(model, fastembed_cache_dir(settings))
    logger.info("FastEmbed model %s is in %s", model, fastembed_cache_dir(settings))
    return [model]
