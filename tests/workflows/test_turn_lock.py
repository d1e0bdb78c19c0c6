"""The per-conversation turn locks: Redis lease (real redis-server) and flock (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from workflows.turn_lock import FileTurnLock, RedisTurnLock, TurnLockTimeoutError


async def order_of_two_turns(lock: RedisTurnLock | FileTurnLock, thread: str) -> list[str]:
    events: list[str] = []

    async def turn(name: str) -> None:
        async with lock(thread):
            events.append(f"{name} in")
            await asyncio.sleep(0.1)
            events.append(f"{name} out")

    first = asyncio.create_task(turn("a"))
    await asyncio.sleep(0.02)
    await asyncio.gather(first, turn("b"))
    return events


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_url)
    yield c
    await c.aclose()


async def test_redis_turns_on_one_thread_never_overlap(client: aioredis.Redis) -> None:
    lock = RedisTurnLock(client, lease_s=2.0, wait_s=10.0)
    assert await order_of_two_turns(lock, "t") == ["a in", "a out", "b in", "b out"]
    assert await client.exists(b"langgraph:{t}:lock") == 0  # released


async def test_redis_turns_on_other_threads_do_not_wait(client: aioredis.Redis) -> None:
    lock = RedisTurnLock(client, lease_s=2.0, wait_s=0.05)
    async with lock("one"), lock("two"):
        pass


async def test_redis_waiting_too_long_is_a_clear_error(client: aioredis.Redis) -> None:
    lock = RedisTurnLock(client, lease_s=5.0, wait_s=0.2)
    async with lock("busy"):
        with pytest.raises(TurnLockTimeoutError, match="another worker"):
            async with lock("busy"):
                pass


async def test_a_holder_that_lost_its_lease_is_stopped_and_frees_nothing(
    client: aioredis.Redis,
) -> None:
    lock = RedisTurnLock(client, lease_s=0.3, wait_s=1.0)
    with pytest.raises(asyncio.CancelledError):
        async with lock("stolen"):
            # the lease expired and another worker took the conversation
            await client.set(b"langgraph:{stolen}:lock", b"someone-else")
            await asyncio.sleep(5)
    assert await client.get(b"langgraph:{stolen}:lock") == b"someone-else"


async def test_flock_turns_never_overlap_and_time_out_clearly(tmp_path: Path) -> None:
    lock = FileTurnLock(tmp_path / "locks", wait_s=10.0)
    assert await order_of_two_turns(lock, "t") == ["a in", "a out", "b in", "b out"]
    impatient = FileTurnLock(tmp_path / "locks", wait_s=0.1)
    async with lock("held"):
        with pytest.raises(TurnLockTimeoutError):
            async with impatient("held"):
                pass
        async with impatient("another thread"):
            pass
