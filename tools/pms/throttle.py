"""Verification throttling by target: failed attempts counted per reservation code and last name.

A per-conversation limit alone is no limit: an attacker opens another conversation. So every
lookup is first counted against the code and the last name it tries (across conversations,
callers and, with Redis, workers). Past `*_backoff_after` failures a target waits an
exponentially growing pause between attempts; past `*_lock_after` it is locked for `lock_s`
and refuses even the right answer. The count is taken *before* the PMS lookup, so parallel
attempts cannot slip past the limit, and refunded when the lookup succeeds.

Targets are SHA-256 digests of the normalised code and name: no guest data in keys or memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio as aioredis

__all__ = [
    "Attempt",
    "InMemoryVerificationThrottle",
    "RedisVerificationThrottle",
    "Target",
    "ThrottlePolicy",
    "VerificationThrottle",
    "targets_for",
]

TargetKind = Literal["code", "name"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Limits per target; failures are forgotten `window_s` after the last one."""

    code_backoff_after: int = 3
    code_lock_after: int = 10
    name_backoff_after: int = 5
    name_lock_after: int = 30
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    lock_s: float = 3600.0
    window_s: float = 3600.0

    def lock_after(self, kind: TargetKind) -> int:
        return self.code_lock_after if kind == "code" else self.name_lock_after

    def backoff_after(self, kind: TargetKind) -> int:
        return self.code_backoff_after if kind == "code" else self.name_backoff_after

    def pause_s(self, kind: TargetKind, failures: int) -> float | None:
        """How long the target is blocked after its `failures`-th failure (None: not at all)."""
        if failures >= self.lock_after(kind):
            return self.lock_s
        over = failures - self.backoff_after(kind)
        if over < 0:
            return None
        return min(self.backoff_max_s, self.backoff_base_s * 2**over)


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    digest: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.digest}"


def targets_for(code: str, last_name: str) -> tuple[Target, Target]:
    """The two targets of one attempt, from the already normalised code and last name."""
    return (Target("code", _digest("code", code)), Target("name", _digest("name", last_name)))


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"pms-verify\x1f{kind}\x1f{value}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Attempt:
    """The gate's answer: go ahead, wait `retry_after_s`, or locked (also with a wait)."""

    allowed: bool
    locked: bool = False
    retry_after_s: float = 0.0
    counts: tuple[int, ...] = ()


class VerificationThrottle(Protocol):
    async def begin(self, targets: Sequence[Target]) -> Attempt:
        """Count one attempt on every target, or refuse it while a target is paused/locked."""
        ...

    async def failed(self, targets: Sequence[Target], attempt: Attempt) -> None:
        """The lookup found nothing: pause or lock targets that reached their limits."""
        ...

    async def succeeded(self, targets: Sequence[Target]) -> None:
        """The lookup matched: the attempt does not count against its targets."""
        ...


def _over_limit(policy: ThrottlePolicy, targets: Sequence[Target], counts: Sequence[int]) -> bool:
    return any(count > policy.lock_after(t.kind) for t, count in zip(targets, counts, strict=True))


class InMemoryVerificationThrottle:
    """Counts in this process; right for one worker (every job process of it shares nothing)."""

    def __init__(
        self,
        policy: ThrottlePolicy | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self._now = monotonic
        self._failures: dict[str, tuple[int, float]] = {}  # key → (count, forget at)
        self._blocked: dict[str, tuple[bool, float]] = {}  # key → (locked, until)
        self._lock = asyncio.Lock()

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, until) in self._failures.items() if until <= now]:
            del self._failures[key]
        for key in [k for k, (_, until) in self._blocked.items() if until <= now]:
            del self._blocked[key]

    async def begin(self, targets: Sequence[Target]) -> Attempt:
        async with self._lock:
            now = self._now()
            self._prune(now)
            blocks = [self._blocked[t.key] for t in targets if t.key in self._blocked]
            if blocks:
                return Attempt(
                    False,
                    locked=any(locked for locked, _ in blocks),
                    retry_after_s=max(until for _, until in blocks) - now,
                )
            counts = []
            for target in targets:
                count = self._failures.get(target.key, (0, 0.0))[0] + 1
                self._failures[target.key] = (count, now + self.policy.window_s)
                counts.append(count)
            if _over_limit(self.policy, targets, counts):
                for target in targets:
                    self._blocked[target.key] = (True, now + self.policy.lock_s)
                return Attempt(False, locked=True, retry_after_s=self.policy.lock_s)
            return Attempt(True, counts=tuple(counts))

    async def failed(self, targets: Sequence[Target], attempt: Attempt) -> None:
        async with self._lock:
            now = self._now()
            for target, count in zip(targets, attempt.counts, strict=True):
                pause = self.policy.pause_s(target.kind, count)
                if pause is not None:
                    locked = count >= self.policy.lock_after(target.kind)
                    self._blocked[target.key] = (locked, now + pause)

    async def succeeded(self, targets: Sequence[Target]) -> None:
        async with self._lock:
            for target in targets:
                entry = self._failures.get(target.key)
                if entry is not None:
                    self._failures[target.key] = (max(0, entry[0] - 1), entry[1])


class RedisVerificationThrottle:
    """Counts in Redis (INCR, PEXPIRE, SET PX: any Redis 6+), shared by every worker."""

    def __init__(
        self,
        client: aioredis.Redis,
        policy: ThrottlePolicy | None = None,
        *,
        prefix: str = "pms:verify:target",
        timeout_s: float = 2.0,
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self._redis = client
        self._prefix = prefix
        self._timeout_s = timeout_s

    def _fails(self, target: Target) -> str:
        return f"{self._prefix}:fails:{target.key}"

    def _block(self, target: Target) -> str:
        return f"{self._prefix}:block:{target.key}"

    async def begin(self, targets: Sequence[Target]) -> Attempt:
        async with asyncio.timeout(self._timeout_s):
            async with self._redis.pipeline(transaction=False) as pipe:
                for target in targets:
                    pipe.get(self._block(target))
                    pipe.pttl(self._block(target))
                replies = await pipe.execute()
            blocks = [
                (_text(replies[i]) == "lock", int(replies[i + 1]))
                for i in range(0, len(replies), 2)
                if replies[i] is not None
            ]
            if blocks:
                wait_ms = max(ttl for _, ttl in blocks)
                return Attempt(
                    False,
                    locked=any(locked for locked, _ in blocks),
                    retry_after_s=max(wait_ms, 0) / 1000,
                )
            window_ms = math.ceil(self.policy.window_s * 1000)
            async with self._redis.pipeline(transaction=True) as pipe:
                for target in targets:
                    pipe.incr(self._fails(target))
                    pipe.pexpire(self._fails(target), window_ms)
                replies = await pipe.execute()
            counts = tuple(int(replies[i]) for i in range(0, len(replies), 2))
            if _over_limit(self.policy, targets, counts):
                locks = [True] * len(targets)
                await self._set_blocks(targets, locks, [self.policy.lock_s] * len(targets))
                return Attempt(False, locked=True, retry_after_s=self.policy.lock_s)
        return Attempt(True, counts=counts)

    async def failed(self, targets: Sequence[Target], attempt: Attempt) -> None:
        chosen, locks, pauses = [], [], []
        for target, count in zip(targets, attempt.counts, strict=True):
            pause = self.policy.pause_s(target.kind, count)
            if pause is not None:
                chosen.append(target)
                locks.append(count >= self.policy.lock_after(target.kind))
                pauses.append(pause)
        if chosen:
            async with asyncio.timeout(self._timeout_s):
                await self._set_blocks(chosen, locks, pauses)

    async def _set_blocks(
        self, targets: Sequence[Target], locks: Sequence[bool], pauses: Sequence[float]
    ) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for target, locked, pause in zip(targets, locks, pauses, strict=False):
                value = "lock" if locked else "wait"
                pipe.set(self._block(target), value, px=max(1, math.ceil(pause * 1000)))
            await pipe.execute()

    async def succeeded(self, targets: Sequence[Target]) -> None:
        async with asyncio.timeout(self._timeout_s):
            async with self._redis.pipeline(transaction=False) as pipe:
                for target in targets:
                    pipe.decr(self._fails(target))
                await pipe.execute()


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
