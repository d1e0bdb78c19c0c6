"""Run a side effect at most once per idempotency key, and replay its recorded result.

Used by backends whose remote API is not idempotent by itself (Apaleo). In-process by
default; Redis-backed so that a retried request landing on another worker is still
recognised. A crashed attempt releases its claim so the caller can try again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis

from tools.pms.errors import PMSError

__all__ = ["InMemoryLedger", "RedisLedger", "RequestLedger"]

Action = Callable[[], Awaitable[str]]
_PENDING = "__pending__"


class RequestLedger(Protocol):
    async def run_once(self, key: str, action: Action) -> tuple[str, bool]:
        """(result, replayed): runs `action` only if `key` has no recorded result yet."""
        ...


class InMemoryLedger:
    def __init__(self) -> None:
        self._results: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def run_once(self, key: str, action: Action) -> tuple[str, bool]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self._results:
                return self._results[key], True
            result = await action()
            self._results[key] = result
            return result, False


class RedisLedger:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "pms:ledger",
        ttl_s: int = 30 * 24 * 3600,
        claim_ttl_s: int = 60,
        poll_interval_s: float = 0.05,
        timeout_s: float = 2.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._claim_ttl_s = claim_ttl_s
        self._poll_s = poll_interval_s
        self._timeout_s = timeout_s

    async def run_once(self, key: str, action: Action) -> tuple[str, bool]:
        name = f"{self._prefix}:{key}"
        async with asyncio.timeout(self._timeout_s):
            claimed = await self._redis.set(name, _PENDING, nx=True, ex=self._claim_ttl_s)
        if claimed:
            try:
                result = await action()
            except BaseException:
                async with asyncio.timeout(self._timeout_s):
                    await self._redis.delete(name)
                raise
            async with asyncio.timeout(self._timeout_s):
                await self._redis.set(name, result, ex=self._ttl_s)
            return result, False
        return await self._wait_for(name), True

    async def _wait_for(self, name: str) -> str:
        """Another worker holds the claim: wait for its recorded result."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._claim_ttl_s
        while loop.time() < deadline:
            async with asyncio.timeout(self._timeout_s):
                raw = await self._redis.get(name)
            if raw is None:
                break
            value = raw.decode() if isinstance(raw, bytes) else str(raw)
            if value != _PENDING:
                return value
            await asyncio.sleep(self._poll_s)
        raise PMSError(
            "That request is still being processed. Please ask me again in a moment.",
            detail=f"ledger key {name} has no result",
        )
