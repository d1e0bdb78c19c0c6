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
from typing import Protocol, TypeVar

import redis.asyncio as aioredis

__all__ = [
    "InMemoryVerificationStore",
    "RedisVerificationStore",
    "VerificationStore",
    "VerifiedGuest",
]

DEFAULT_TTL_S = 24 * 3600
_T = TypeVar("_T")


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

    async def record_request(self, conversation: str, offer_id: str, name: str) -> None:
        """Remember an offer this conversation requested, so a repeat can be recognised."""
        ...

    async def requested(self, conversation: str) -> dict[str, str]:
        """Offers this conversation requested: offer id → name."""
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
        self._requests: dict[str, tuple[dict[str, str], float]] = {}
        self._lock = asyncio.Lock()

    def _prune(self) -> None:
        now = self._now()
        _drop_expired(self._failures, now)
        _drop_expired(self._verified, now)
        _drop_expired(self._requests, now)

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

    async def record_request(self, conversation: str, offer_id: str, name: str) -> None:
        async with self._lock:
            self._prune()
            offers = dict(self._requests.get(conversation, ({}, 0.0))[0])
            offers[offer_id] = name
            self._requests[conversation] = (offers, self._now() + self._ttl_s)

    async def requested(self, conversation: str) -> dict[str, str]:
        async with self._lock:
            self._prune()
            return dict(self._requests.get(conversation, ({}, 0.0))[0])


def _drop_expired(table: dict[str, tuple[_T, float]], now: float) -> None:
    for key in [k for k, (_, expires) in table.items() if expires <= now]:
        del table[key]


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

    async def record_request(self, conversation: str, offer_id: str, name: str) -> None:
        key = self._key(conversation, "requests")
        async with asyncio.timeout(self._timeout_s):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, offer_id, name)
                pipe.expire(key, self._ttl_s)
                await pipe.execute()

    async def requested(self, conversation: str) -> dict[str, str]:
        async with asyncio.timeout(self._timeout_s):
            raw = await self._redis.hgetall(self._key(conversation, "requests"))
        return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
