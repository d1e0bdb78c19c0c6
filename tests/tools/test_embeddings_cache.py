"""The embedding cache: hits on a real Redis (shared across embedders), LRU, degradation."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import redis.asyncio as aioredis
from knowledge_helpers import EmbeddingsServer, clean_env, closed_port, start_embeddings_server

from tools.embeddings import (
    CachedEmbedder,
    HashingEmbedder,
    LRUEmbeddingCache,
    OpenAIEmbedder,
    OpenAIEmbeddingsConfig,
    RedisEmbeddingCache,
    build_embedder,
)
from tools.settings import ToolsSettings


@contextmanager
def serving() -> Iterator[EmbeddingsServer]:
    state = EmbeddingsServer(dim=16)
    stop = start_embeddings_server(state)
    try:
        yield state
    finally:
        stop()


def provider(server: EmbeddingsServer, model: str = "test-embedder") -> OpenAIEmbedder:
    return OpenAIEmbedder(OpenAIEmbeddingsConfig(model=model, base_url=server.url))


async def test_redis_hits_are_counted_and_shared_between_workers(redis_url: str) -> None:
    with serving() as server:
        worker_a = CachedEmbedder(
            provider(server), RedisEmbeddingCache(aioredis.from_url(redis_url), ttl_s=3600)
        )
        first = await worker_a.aembed_documents(["wifi password", "parking spot"])
        assert (worker_a.stats.hits, worker_a.stats.misses) == (0, 2)

        # a second worker process: its own client, the same Redis
        worker_b = CachedEmbedder(
            provider(server), RedisEmbeddingCache(aioredis.from_url(redis_url), ttl_s=3600)
        )
        again = await worker_b.aembed_documents(["wifi password", "parking spot"])
        mixed = await worker_b.aembed_documents(["parking spot", "sauna"])
        for embedder in (worker_a, worker_b):
            await embedder.aclose()

    assert np.allclose(again, first, atol=1e-6)  # float32 in the cache
    assert np.allclose(mixed[0], first[1], atol=1e-6)
    assert (worker_b.stats.hits, worker_b.stats.misses) == (3, 1)
    # the provider saw each distinct text exactly once
    assert [r["input"] for r in server.requests] == [["wifi password", "parking spot"], ["sauna"]]

    client = aioredis.from_url(redis_url)
    key = "emb:test-embedder:" + hashlib.sha256(b"sauna").hexdigest()
    assert await client.exists(key) == 1
    assert 0 < await client.ttl(key) <= 3600
    await client.aclose()


async def test_queries_and_documents_share_entries_for_symmetric_models(redis_url: str) -> None:
    with serving() as server:
        embedder = CachedEmbedder(
            provider(server), RedisEmbeddingCache(aioredis.from_url(redis_url))
        )
        await embedder.aembed_documents(["check-out time"])
        await embedder.aembed_query("check-out time")
        await embedder.aclose()
    assert embedder.stats.hits == 1
    assert len(server.requests) == 1


async def test_another_model_never_reads_this_models_vectors(redis_url: str) -> None:
    with serving() as server:
        small = CachedEmbedder(
            provider(server, "model-a"), RedisEmbeddingCache(aioredis.from_url(redis_url))
        )
        other = CachedEmbedder(
            provider(server, "model-b"), RedisEmbeddingCache(aioredis.from_url(redis_url))
        )
        await small.aembed_query("pets")
        await other.aembed_query("pets")
        for embedder in (small, other):
            await embedder.aclose()
    assert other.stats.misses == 1
    assert [r["model"] for r in server.requests] == ["model-a", "model-b"]


async def test_a_down_redis_degrades_to_embedding_without_cache(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = aioredis.from_url(
        f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=0.5, socket_timeout=0.5
    )
    embedder = CachedEmbedder(HashingEmbedder(64), RedisEmbeddingCache(dead))
    with caplog.at_level(logging.WARNING, logger="tools.embeddings.cache"):
        vectors = await embedder.aembed_documents(["fireplace", "ski room"])
    assert vectors == HashingEmbedder(64).embed_documents(["fireplace", "ski room"])
    assert "embedding cache read failed" in caplog.text
    await embedder.aclose()


async def test_the_lru_keeps_the_most_recently_used_entries() -> None:
    cache = LRUEmbeddingCache(max_entries=2)
    embedder = CachedEmbedder(HashingEmbedder(32), cache)
    await embedder.aembed_documents(["a", "b"])
    await embedder.aembed_query("a")  # refreshes "a"
    await embedder.aembed_query("c")  # evicts "b"
    hits_before = embedder.stats.hits
    await embedder.aembed_query("a")
    await embedder.aembed_query("b")
    assert len(cache) == 2
    assert embedder.stats.hits - hits_before == 1


def test_build_embedder_uses_redis_when_configured_and_an_lru_for_hashing(
    monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    clean_env(monkeypatch)
    remote = build_embedder(
        ToolsSettings(
            _env_file=None,  # type: ignore[call-arg]
            EMBEDDINGS_PROVIDER="openai-compatible",
            EMBEDDINGS_BASE_URL="http://127.0.0.1:1/v1",
            EMBEDDINGS_MODEL="nomic-embed-text",
            REDIS_URL=redis_url,
        ).embedding_config()
    )
    assert isinstance(remote.cache, RedisEmbeddingCache)
    assert remote.model_name == "nomic-embed-text" and remote.dimensions == 768

    hashing = build_embedder(
        ToolsSettings(_env_file=None, REDIS_URL=redis_url).embedding_config()  # type: ignore[call-arg]
    )
    assert isinstance(hashing.cache, LRUEmbeddingCache)
    assert isinstance(hashing.inner, HashingEmbedder)
