"""One turn per conversation at a time, across worker processes.

A reconnect can race the old job: two workers then run turns on one thread, each reading the
latest checkpoint and writing its own successor, and one answered turn silently disappears.
Holding a per-thread lock around each turn's read -> run -> write makes the second worker
start from the first one's result instead.

- `RedisTurnLock`: a lease (``SET NX PX``) under the thread's hash tag, renewed while the
  turn runs; renewal and release only touch the lease if it still holds this holder's token
  (``WATCH``/``MULTI``), and a holder whose lease was lost is cancelled rather than left
  writing alongside the next one. Plain commands only (no Lua), like the checkpointer.
- `FileTurnLock`: ``flock`` on a per-thread file next to the SQLite checkpoint file (every
  process on the machine shares that file, so they share the locks too).

Both are callables ``lock(thread_id)`` returning an async context manager, the shape
`agent.graph_llm.GraphLLM(turn_lock=...)` takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from workflows import _redis_layout as layout

__all__ = [
    "FileTurnLock",
    "RedisTurnLock",
    "TurnLock",
    "TurnLockTimeoutError",
    "TurnLockUnavailableError",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
TurnLock = Callable[[str], AbstractAsyncContextManager[None]]


class TurnLockTimeoutError(TimeoutError):
    """Another process kept the conversation's turn lock longer than we may wait."""


class TurnLockUnavailableError(RuntimeError):
    """The lock's store (Redis) did not answer: the turn cannot run safely."""


class RedisTurnLock:
    """Per-thread lease in Redis: ``lock(thread_id)`` is entered around one turn."""

    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str = "langgraph",
        lease_s: float = 10.0,
        wait_s: float = 60.0,
        timeout_s: float = 0.5,
    ) -> None:
        if lease_s <= 0 or wait_s < 0 or timeout_s <= 0:
            raise ValueError("lease_s and timeout_s must be positive, wait_s not negative")
        self._redis = redis
        self._prefix = key_prefix
        self._lease_ms = max(1, round(lease_s * 1000))
        self._wait_s = wait_s
        self._timeout_s = timeout_s

    def __call__(self, thread_id: str) -> AbstractAsyncContextManager[None]:
        return self._hold(layout.ThreadKeys.build(self._prefix, str(thread_id)).lock)

    @asynccontextmanager
    async def _hold(self, key: bytes) -> AsyncIterator[None]:
        token = uuid.uuid4().hex.encode()
        await self._acquire(key, token)
        holder = asyncio.current_task()
        lost = asyncio.Event()
        renewer = asyncio.create_task(self._renew(key, token, holder, lost))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            if not lost.is_set():
                await self._release(key, token)

    async def _acquire(self, key: bytes, token: bytes) -> None:
        deadline = time.monotonic() + self._wait_s
        pause = 0.01
        while True:
            if await self._io(self._redis.set(key, token, nx=True, px=self._lease_ms)):
                return
            if time.monotonic() >= deadline:
                raise TurnLockTimeoutError(
                    f"another worker held this conversation for over {self._wait_s:g} s"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    async def _renew(
        self, key: bytes, token: bytes, holder: asyncio.Task[object] | None, lost: asyncio.Event
    ) -> None:
        lease_s = self._lease_ms / 1000
        renewed_at = time.monotonic()
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                still_ours = await self._if_ours(key, token, renew=True)
                renewed_at = time.monotonic()
            except TurnLockUnavailableError:
                # a blip is outlived by the lease; stop before it can expire under us
                still_ours = time.monotonic() - renewed_at < lease_s * 2 / 3
            if not still_ours:
                lost.set()
                logger.error("turn lock lost (lease expired or unrenewable): stopping this turn")
                if holder is not None:
                    holder.cancel()
                return

    async def _release(self, key: bytes, token: bytes) -> None:
        try:
            await self._if_ours(key, token, renew=False)
        except TurnLockUnavailableError:
            logger.warning("could not release the turn lock; it expires on its own")

    async def _if_ours(self, key: bytes, token: bytes, *, renew: bool) -> bool:
        """Renew or delete the lease if it still holds `token`; False if it does not."""
        for _ in range(4):
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    await self._io(pipe.watch(key))
                    if await self._io(pipe.get(key)) != token:
                        await self._io(pipe.unwatch())
                        return False
                    pipe.multi()
                    if renew:
                        pipe.pexpire(key, self._lease_ms)
                    else:
                        pipe.delete(key)
                    await self._io(pipe.execute())
                    return True
            except WatchError:
                continue
        return False

    async def _io(self, operation: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await operation
        except (RedisError, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise TurnLockUnavailableError(
                f"Redis did not answer the conversation lock ({reason})"
            ) from exc


class FileTurnLock:
    """Per-thread ``flock`` in `directory` (created on first use)."""

    def __init__(self, directory: Path, *, wait_s: float = 60.0, poll_s: float = 0.02) -> None:
        self._directory = directory
        self._wait_s = wait_s
        self._poll_s = poll_s

    def __call__(self, thread_id: str) -> AbstractAsyncContextManager[None]:
        name = hashlib.sha256(str(thread_id).encode()).hexdigest()[:32] + ".lock"
        return self._hold(self._directory / name)

    @asynccontextmanager
    async def _hold(self, path: Path) -> AsyncIterator[None]:
        fd = await asyncio.to_thread(self._open, path)
        try:
            deadline = time.monotonic() + self._wait_s
            while True:
                try:
                    # non-blocking: the event loop waits, not a thread stuck in flock()
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TurnLockTimeoutError(
                            f"another process held this conversation for over {self._wait_s:g} s"
                        ) from None
                    await asyncio.sleep(self._poll_s)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _open(self, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
