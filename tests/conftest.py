"""Fixtures shared by every test package: a real redis-server on a free loopback port, and
the embedded demo PMS."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.redis_process import RedisProcess
from tools.pms import DemoPMS, fixed_clock

DEMO_NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
"""The moment the tests' demo PMS lives in: the seeded reservations are relative to it."""


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a throwaway redis-server; yields its URL. Requires the Debian package."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"), "--appendonly", "no")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[..., RedisProcess]]:
    """`start_redis("--appendonly", "yes")` starts a private redis-server, stopped after."""
    started: list[RedisProcess] = []

    def start(*extra: str) -> RedisProcess:
        workdir = tmp_path / f"redis-{len(started)}"
        workdir.mkdir()
        started.append(RedisProcess(workdir, *extra))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def redis_url(redis_server: str) -> AsyncIterator[str]:
    """A Redis URL whose database is empty when the test starts."""
    client = aioredis.from_url(redis_server)
    await client.flushdb()
    await client.aclose()
    yield redis_server


@pytest.fixture(scope="session")
def espeak_binary() -> str:
    """The espeak-ng binary the local-speech tests speak with; fails plainly when missing."""
    path = shutil.which("espeak-ng")
    if path is None:
        pytest.fail("these tests need the espeak-ng binary: apt-get install -y espeak-ng")
    return path


@pytest.fixture
async def pms(tmp_path: Path) -> AsyncIterator[DemoPMS]:
    """The embedded demo PMS (seeded) on a temp file, its clock fixed at `DEMO_NOW`."""
    demo = DemoPMS(tmp_path / "demo.sqlite3", clock=fixed_clock(DEMO_NOW))
    yield demo
    await demo.aclose()
