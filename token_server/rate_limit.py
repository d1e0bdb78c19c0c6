"""Fixed-window rate limits: in-process, or shared through Redis across replicas."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger("token_server.rate_limit")

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smh]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """At most `limit` requests per `window_s` seconds."""

    limit: int
    window_s: int

    @classmethod
    def parse(cls, text: str) -> RateLimitSpec:
        """Parse `30/60s`, `30/60`, `100/m`, `1000/1h`."""
        match = _SPEC.match(text)
        if match is None:
            raise ValueError(f"rate limit {text!r} must look like 30/60s, 100/m or 1000/1h")
        limit, count, unit = match.groups()
        window = int(count or 1) * _UNIT_SECONDS[unit]
        if int(limit) < 1 or window < 1:
            raise ValueError(f"rate limit {text!r} needs a limit and a window of at least 1")
        return cls(limit=int(limit), window_s=window)

    def __str__(self) -> str:
        return f"{self.limit}/{self.window_s}s"


class RateLimiter(Protocol):
    async def hit(self, key: str) -> float | None:
        """Count one request for `key`; the seconds to wait when over the limit, else None."""
        ...


class InProcessRateLimiter:
    """Counts in this process only; right for a single replica or when Redis is not configured."""

    def __init__(
        self,
        spec: RateLimitSpec,
        *,
        clock: Callable[[], float] = time.time,
        max_keys: int = 100_000,
    ) -> None:
        self._limit = spec.limit
        self._window = spec.window_s
        self._clock = clock
        self._max_keys = max_keys
        self._counts: dict[str, list[int]] = {}

    def __len__(self) -> int:
        """How many keys are being counted (bounded by `max_keys`)."""
        return len(self._counts)

    async def hit(self, key: str) -> float | None:
        return self.hit_now(key)

    def hit_now(self, key: str) -> float | None:
        now = self._clock()
        window = int(now // self._window)
        entry = self._counts.get(key)
        if entry is None or entry[0] != window:
            if len(self._counts) >= self._max_keys:
                self._evict(window)
            entry = [window, 0]
            self._counts[key] = entry
        entry[1] += 1
        if entry[1] > self._limit:
            return (window + 1) * self._window - now
        return None

    def _evict(self, window: int) -> None:
        stale = [key for key, entry in self._counts.items() if entry[0] != window]
        for key in stale:
            del self._counts[key]
        if len(self._counts) >= self._max_keys:
            # Every key is in the current window: forget the oldest half rather than grow forever.
            for key in list(self._counts)[: self._max_keys // 2]:
                del self._counts[key]


class RedisRateLimiter:
    """Counts in Redis so every replica shares one budget; falls back to in-process on errors."""

    def __init__(
        self,
        redis: Redis,
        spec: RateLimitSpec,
        *,
        namespace: str,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
        on_backend_error: Callable[[], None] | None = None,
    ) -> None:
        self._redis = redis
        self._limit = spec.limit
        self._window = spec.window_s
        self._namespace = namespace
        self._timeout_s = timeout_s
        self._clock = clock
        self._fallback = InProcessRateLimiter(spec, clock=clock)
        self._on_backend_error = on_backend_error
        self._last_warning = -math.inf

    async def hit(self, key: str) -> float | None:
        now = self._clock()
        window = int(now // self._window)
        redis_key = f"token_server:rl:{self._namespace}:{window}:{key}"
        try:
            async with asyncio.timeout(self._timeout_s):
                pipe = self._redis.pipeline(transaction=False)
                pipe.incr(redis_key)
                pipe.expire(redis_key, self._window + 1)
                count, _ = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._report_backend_error(exc)
            return self._fallback.hit_now(key)
        if int(count) > self._limit:
            return (window + 1) * self._window - now
        return None

    def _report_backend_error(self, exc: BaseException) -> None:
        if self._on_backend_error is not None:
            self._on_backend_error()
        now = time.monotonic()
        if now - self._last_warning >= 60:
            self._last_warning = now
            logger.warning(
                "Redis rate limit unavailable (%s); counting in this process until it returns",
                type(exc).__name__,
            )
