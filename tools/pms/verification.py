"""Per-conversation verification state: failed attempts and the verified reservation.

Keyed by the conversation's thread id. In-process by default; Redis-backed when the worker
has Redis, so a conversation that moves to another worker stays verified (and stays locked).
Only the confirmation code, last name and property id are kept — never reservation details.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import redis.asyncio as aioredis

__all__ = [
    "InMemoryVerificationStore",
    "RedisVerificationStore",
    "VerificationStore",
    "VerifiedGuest",
]

DEFAULT_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class VerifiedGuest:
    code: str
    last_name: str
    property_id: str


class VerificationStore(Protocol):
    async def failures(self, conversation: str) -> int: ...

    async def record_failure(self, conversation: str) -> int:
        """Count one more failed attempt; returns the new total."""
        ...

    async def verified(self, conversation: str) -> VerifiedGuest | None: ...

    async def remember(self, conversation: str, guest: VerifiedGuest) -> None: ...

    async def forget(self, conversation: str) -> None:
        """Drop the verified reservation (failed attempts stay counted)."""
        ...


class InMemoryVerificationStore:
    """Process-local store with expiry; fine for one worker or tests."""

    def __init__(
        self, *, ttl_s: float = DEFAULT_TTL_S, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._now = monotonic
        self._failures: dict[str, tuple[int, float]] = {}
        self._verified: dict[str, tuple[VerifiedGuest, float]] = {}
        self._lock = asyncio.Lock()

    def _prune(self) -> None:
        now = self._now()
        for table in (self._failures, self._verified):
            for key in [k for k, (_, expires) in table.items() if expires <= now]:
                del table[key]

    async def failures(self, conversation: str) -> int:
        async with self._lock:
            self._prune()
            return self._failures.get(conversation, (0, 0.0))[0]

    async def record_failure(self, conversation: str) -> int:
        async with self._lock:
            self._prune()
            count = self._failures.get(conversation, (0, 0.0))[0] + 1
            self._failures[conversation] = (count, self._now() + self._ttl_s)
            return count

    async def verified(self, conversation: str) -> VerifiedGuest | None:
        async with self._lock:
            self._prune()
            entry = self._verified.get(conversation)
            return entry[0] if entry else None

    async def remember(self, conversation: str, guest: VerifiedGuest) -> None:
        async with self._lock:
            self._verified[conversation] = (guest, self._now() + self._ttl_s)

    async def forget(self, conversation: str) -> None:
        async with self._lock:
            self._verified.pop(conversation, None)


class RedisVerificationStore:
    """Redis-backed store (plain string commands with expiry; works on any Redis 6+)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "pms:verify",
        ttl_s: int = DEFAULT_TTL_S,
        timeout_s: float = 2.0,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s

    def _key(self, conversation: str, kind: str) -> str:
        return f"{self._prefix}:{conversation}:{kind}"

    async def failures(self, conversation: str) -> int:
        async with asyncio.timeout(self._timeout_s):
            value = await self._redis.get(self._key(conversation, "failures"))
        return int(value) if value is not None else 0

    async def record_failure(self, conversation: str) -> int:
        key = self._key(conversation, "failures")
        async with asyncio.timeout(self._timeout_s):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self._ttl_s)
                count, _ = await pipe.execute()
        return int(count)

    async def verified(self, conversation: str) -> VerifiedGuest | None:
        async with asyncio.timeout(self._timeout_s):
            raw = await self._redis.get(self._key(conversation, "guest"))
        if raw is None:
            return None
        data = json.loads(raw)
        return VerifiedGuest(
            code=str(data["code"]),
            last_name=str(data["last_name"]),
            property_id=str(data["property_id"]),
        )

    async def remember(self, conversation: str, guest: VerifiedGuest) -> None:
        async with asyncio.timeout(self._timeout_s):
            await self._redis.set(
                self._key(conversation, "guest"), json.dumps(asdict(guest)), ex=self._ttl_s
            )

    async def forget(self, conversation: str) -> None:
        async with asyncio.timeout(self._timeout_s):
            await self._redis.delete(self._key(conversation, "guest"))
