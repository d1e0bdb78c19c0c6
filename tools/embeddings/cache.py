"""Embedding caches (Redis, shared by workers; or an in-process LRU) and the caching embedder.

Key: `emb:<model namespace>:<sha256 of the text>`; value: the vector as float32 bytes.
A cache that fails (Redis down) degrades to a miss with a logged warning, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tools.embeddings.base import Embedder

logger = logging.getLogger(__name__)


class EmbeddingCache(Protocol):
    async def get_many(self, keys: list[str]) -> list[list[float] | None]: ...

    async def set_many(self, items: dict[str, list[float]]) -> None: ...

    async def aclose(self) -> None: ...


def _encode(vector: list[float]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _decode(raw: bytes) -> list[float]:
    return np.frombuffer(raw, dtype=np.float32).tolist()


class LRUEmbeddingCache:
    """Bounded in-process cache; `max_entries=0` disables it."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, keys: list[str]) -> list[list[float] | None]:
        found: list[list[float] | None] = []
        for key in keys:
            raw = self._entries.get(key)
            if raw is not None:
                self._entries.move_to_end(key)
            found.append(_decode(raw) if raw is not None else None)
        return found

    async def set_many(self, items: dict[str, list[float]]) -> None:
        if self._max_entries <= 0:
            return
        for key, vector in items.items():
            self._entries[key] = _encode(vector)
            self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisEmbeddingCache:
    """Vectors in Redis with a TTL, shared by every worker that points at the same Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_s: int = 0,
        owns_client: bool = False,
        retry_after_failure_s: float = 30.0,
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._owns_client = owns_client
        self._retry_after_failure_s = retry_after_failure_s
        self._skip_until = 0.0

    def _available(self) -> bool:
        return time.monotonic() >= self._skip_until

    def _failed(self, action: str, exc: Exception) -> None:
        # a down Redis would otherwise cost a connection attempt on every single embedding
        self._skip_until = time.monotonic() + self._retry_after_failure_s
        logger.warning(
            "embedding cache %s failed, embedding without the cache for %.0f s: %s",
            action,
            self._retry_after_failure_s,
            exc,
        )

    async def get_many(self, keys: list[str]) -> list[list[float] | None]:
        if not keys or not self._available():
            return [None] * len(keys)
        try:
            values = await self._client.mget(keys)
        except (RedisError, OSError) as exc:
            self._failed("read", exc)
            return [None] * len(keys)
        return [_decode(v) if isinstance(v, bytes) else None for v in values]

    async def set_many(self, items: dict[str, list[float]]) -> None:
        if not items or not self._available():
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, vector in items.items():
                    pipe.set(key, _encode(vector), ex=self._ttl_s or None)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("write", exc)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class CachedEmbedder(Embedder):
    """Wraps an embedder; repeated texts are served from the cache.

    Synchronous calls go straight to the provider: the caches are async.
    """

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.stats = CacheStats()
        self.model_name = inner.model_name
        self.provider = inner.provider
        self.symmetric = inner.symmetric
        self.suggested_min_score = inner.suggested_min_score

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def cache_namespace(self) -> str:
        return self.inner.cache_namespace

    def cache_key(self, text: str, *, query: bool = False) -> str:
        kind = "q:" if query and not self.symmetric else ""
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return f"emb:{self.cache_namespace}:{kind}{digest}"

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        keys = [self.cache_key(t) for t in texts]
        cached = await self.cache.get_many(keys)
        missing: dict[str, str] = {}
        for key, text, vector in zip(keys, texts, cached, strict=True):
            if vector is None:
                missing.setdefault(key, text)
        self.stats.hits += len(texts) - sum(1 for v in cached if v is None)
        self.stats.misses += len(missing)
        fresh: dict[str, list[float]] = {}
        if missing:
            vectors = await self.inner.aembed_documents(list(missing.values()))
            fresh = dict(zip(missing.keys(), vectors, strict=True))
            await self.cache.set_many(fresh)
        return [v if v is not None else fresh[k] for k, v in zip(keys, cached, strict=True)]

    async def aembed_query(self, text: str) -> list[float]:
        key = self.cache_key(text, query=True)
        (vector,) = await self.cache.get_many([key])
        if vector is not None:
            self.stats.hits += 1
            return vector
        self.stats.misses += 1
        vector = await self.inner.aembed_query(text)
        await self.cache.set_many({key: vector})
        return vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    async def aclose(self) -> None:
        await self.cache.aclose()
        await self.inner.aclose()
