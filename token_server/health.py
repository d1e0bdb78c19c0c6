"""Readiness: the dependencies a replica needs are reachable (only those configured)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError

from token_server.oidc import JwksCache, JwksUnavailable


class Readiness:
    def __init__(self, *, redis: Redis | None, jwks: JwksCache | None, timeout_s: float) -> None:
        self._redis = redis
        self._jwks = jwks
        self._timeout_s = timeout_s

    async def check(self) -> dict[str, str]:
        """Each configured dependency → "ok" or a short reason it is not."""
        checks: dict[str, str] = {}
        if self._redis is not None:
            checks["redis"] = await self._check_redis(self._redis)
        if self._jwks is not None:
            checks["oidc_jwks"] = await self._check_jwks(self._jwks)
        return checks

    async def _check_redis(self, redis: Redis) -> str:
        try:
            async with asyncio.timeout(self._timeout_s):
                await redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            return f"unreachable ({type(exc).__name__})"
        return "ok"

    async def _check_jwks(self, jwks: JwksCache) -> str:
        try:
            await jwks.ensure_loaded()
        except JwksUnavailable:
            return "signing keys cannot be loaded"
        return "ok"
