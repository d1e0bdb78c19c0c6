"""Choose and assemble the embedder from an `EmbeddingConfig` the edge builds from its settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, cast

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

logger = logging.getLogger(__name__)

EmbeddingsProvider = Literal["openai", "openai-compatible", "fastembed", "hashing"]

REDIS_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class EmbeddingConfig:
    """What the embedder factory needs; the edge fills it from its settings (EMBEDDINGS_*)."""

    # None: pick by what is available (see `resolve_provider`)
    provider: EmbeddingsProvider | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    # used for provider "openai" when `api_key` is unset; never sent to another server
    openai_api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 15.0
    dimensions: int | None = None
    batch_size: int = 64
    concurrency: int = 4
    max_retries: int = 4
    cache_size: int = 10_000
    cache_ttl_s: int = 30 * 24 * 3600
    redis_url: str | None = field(default=None, repr=False)
    fastembed_cache_dir: Path = Path(".data") / "fastembed"


def resolve_provider(config: EmbeddingConfig) -> EmbeddingsProvider:
    """Explicit choice; else OpenAI with a key; else FastEmbed when downloaded; else hashing."""
    if config.provider is not None:
        return config.provider
    if config.openai_api_key is not None:
        return "openai"
    model = config.model or DEFAULT_FASTEMBED_MODEL
    if fastembed_model_cached(model, config.fastembed_cache_dir):
        return "fastembed"
    return "hashing"


def _openai_config(config: EmbeddingConfig, provider: EmbeddingsProvider) -> OpenAIEmbeddingsConfig:
    if provider == "openai":
        key = config.api_key or config.openai_api_key
        if key is None:
            raise EmbeddingsError("EMBEDDINGS_PROVIDER=openai needs OPENAI_API_KEY")
        model = config.model or DEFAULT_OPENAI_MODEL
        base_url = config.base_url or OPENAI_BASE_URL
        label = "OpenAI"
    else:
        if not config.base_url or not config.model:
            raise EmbeddingsError(
                "EMBEDDINGS_PROVIDER=openai-compatible needs EMBEDDINGS_BASE_URL (e.g. "
                "http://localhost:11434/v1) and EMBEDDINGS_MODEL (e.g. nomic-embed-text)"
            )
        # never forward OPENAI_API_KEY to a third-party server
        key, model, base_url = config.api_key, config.model, config.base_url
        label = f"embeddings server {config.base_url}"
    return OpenAIEmbeddingsConfig(
        model=model,
        base_url=base_url,
        api_key=key,
        dimensions=config.dimensions,
        timeout_s=config.timeout_s,
        batch_size=config.batch_size,
        concurrency=config.concurrency,
        max_retries=config.max_retries,
        provider=provider,
        provider_label=label,
    )


def build_provider(config: EmbeddingConfig) -> Embedder:
    """The bare (uncached) embedder the config asks for."""
    provider = resolve_provider(config)
    if provider in ("openai", "openai-compatible"):
        return OpenAIEmbedder(_openai_config(config, provider))
    if provider == "fastembed":
        return FastEmbedEmbedder(
            config.model or DEFAULT_FASTEMBED_MODEL,
            cache_dir=config.fastembed_cache_dir,
            batch_size=config.batch_size,
        )
    return HashingEmbedder(config.dimensions or DEFAULT_HASHING_DIMENSIONS)


def build_embedder(
    config: EmbeddingConfig,
    *,
    redis: aioredis.Redis | None = None,
    inner: Embedder | None = None,
) -> CachedEmbedder:
    """The configured embedder behind a cache: Redis when available, else an in-process LRU.

    The hashing embedder computes faster than a Redis round trip, so it only gets the LRU.
    """
    inner = inner or build_provider(config)
    cache: EmbeddingCache
    if isinstance(inner, HashingEmbedder):
        cache = LRUEmbeddingCache(config.cache_size)
    elif redis is not None:
        cache = RedisEmbeddingCache(redis, ttl_s=config.cache_ttl_s)
    elif config.redis_url:
        client = aioredis.from_url(
            config.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        cache = RedisEmbeddingCache(client, ttl_s=config.cache_ttl_s, owns_client=True)
    else:
        cache = LRUEmbeddingCache(config.cache_size)
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
    config: EmbeddingConfig,
    identity: EmbedderIdentity,
    *,
    collection: str,
    redis: aioredis.Redis | None = None,
) -> CachedEmbedder:
    """The embedder a collection was built with, when this config can run it.

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
    recorded = replace(
        config,
        provider=cast(EmbeddingsProvider, provider),
        model=identity.model,
        dimensions=identity.dimensions,
    )
    if provider == "openai" and not (config.api_key or config.openai_api_key):
        raise EmbeddingsError(_recorded_unavailable(identity, collection, "set OPENAI_API_KEY"))
    if provider == "openai-compatible" and not config.base_url:
        raise EmbeddingsError(
            _recorded_unavailable(
                identity, collection, "set EMBEDDINGS_BASE_URL to the server that runs it"
            )
        )
    if provider == "fastembed" and not fastembed_model_cached(
        identity.model, config.fastembed_cache_dir
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


def download_models(config: EmbeddingConfig) -> list[str]:
    """Fetch the local embedding model the config would use; returns the models fetched.

    Runs when the provider is FastEmbed, or unset without an OpenAI key (FastEmbed is then the
    embedded default). Providers behind an API have nothing to download.
    """
    provider = config.provider
    if provider not in (None, "fastembed") or (
        provider is None and config.openai_api_key is not None
    ):
        return []
    model = config.model or DEFAULT_FASTEMBED_MODEL
    download_fastembed_model(model, config.fastembed_cache_dir)
    logger.info("FastEmbed model %s is in %s", model, config.fastembed_cache_dir)
    return [model]
