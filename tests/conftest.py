"""Fixtures shared by every test package: a real redis-server on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.redis_process import RedisProcess, free_port


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a throwaway redis-server; yields its URL. Requires the Debian package."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start within 10 s")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
