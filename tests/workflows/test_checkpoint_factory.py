"""`open_checkpointer` picks the configured backend and fails clearly when it cannot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from echo_graph import echo_graph
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from tests.redis_process import free_port
from workflows.checkpoint import (
    CheckpointerUnavailableError,
    RedisCheckpointSaver,
    open_checkpointer,
    redact_url,
)


async def _turn(checkpointer: BaseCheckpointSaver, text: str) -> list[str]:
    graph = echo_graph(checkpointer)
    result = await graph.ainvoke(
        {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": "guest"}}
    )
    return [str(m.content) for m in result["messages"]]


def _names(directory: Path, prefix: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(prefix))


def _contents(directory: Path, name: str) -> list[bytes]:
    return [p.read_bytes() for p in directory.iterdir() if p.name == name]


async def test_redis_url_gives_the_redis_saver_even_with_a_sqlite_path(
    redis_url: str, tmp_path: Path
) -> None:
    sqlite_path = tmp_path / "unused.sqlite"
    async with open_checkpointer(redis_url=redis_url, sqlite_path=sqlite_path) as saver:
        assert isinstance(saver, RedisCheckpointSaver)
        assert await _turn(saver, "hi") == ["hi", "echo: hi"]
    async with open_checkpointer(redis_url=redis_url, sqlite_path=None) as saver:
        assert await _turn(saver, "again") == ["hi", "echo: hi", "again", "echo: again"]
    assert not sqlite_path.exists()


async def test_ttl_reaches_the_redis_saver(redis_url: str) -> None:
    async with open_checkpointer(redis_url=redis_url, sqlite_path=None, ttl=120) as saver:
        await _turn(saver, "hi")
        assert isinstance(saver, RedisCheckpointSaver)
        keys = await saver.redis.keys("langgraph:*")
        assert keys and all(0 < t <= 120_000 for t in [await saver.redis.pttl(k) for k in keys])


async def test_sqlite_file_is_created_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "state" / "checkpoints.sqlite"
    async with open_checkpointer(redis_url=None, sqlite_path=path) as saver:
        assert isinstance(saver, AsyncSqliteSaver)
        await _turn(saver, "hi")
    assert path.is_file()
    async with open_checkpointer(redis_url="", sqlite_path=path) as saver:
        assert await _turn(saver, "again") == ["hi", "echo: hi", "again", "echo: again"]


async def test_nothing_configured_gives_memory() -> None:
    async with open_checkpointer(redis_url=None, sqlite_path=None) as saver:
        assert isinstance(saver, InMemorySaver)
        assert await _turn(saver, "hi") == ["hi", "echo: hi"]


async def test_unreachable_redis_fails_at_open_with_a_clear_error() -> None:
    port = free_port()
    url = f"redis://worker:s3cret@127.0.0.1:{port}/0"
    async with asyncio.timeout(10):  # guards against a hang, not a latency assertion
        with pytest.raises(CheckpointerUnavailableError) as caught:
            async with open_checkpointer(redis_url=url, sqlite_path=None):
                pytest.fail("the body must not run when Redis is unreachable")
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "REDIS_URL" in message
    assert "s3cret" not in message


async def test_unwritable_sqlite_location_fails_with_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointerUnavailableError, match="SQLite checkpoint file"):
        async with open_checkpointer(redis_url=None, sqlite_path=blocker / "cp.sqlite"):
            pytest.fail("the body must not run")


async def test_a_corrupt_sqlite_file_and_its_wal_are_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cp.sqlite3"
    path.write_bytes(b"garbage" * 1000)
    (tmp_path / "cp.sqlite3-wal").write_bytes(b"stale wal of the broken file")
    with caplog.at_level("ERROR"):
        async with open_checkpointer(redis_url=None, sqlite_path=path) as saver:
            assert await _turn(saver, "hello") == ["hello", "echo: hello"]
    assert [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()] != []
    moved = _names(tmp_path, "cp.sqlite3.corrupt-")
    assert moved and not moved[0].endswith("-wal")  # the broken file is kept for a post-mortem
    # the broken file's WAL is never replayed into the fresh one (moved, or dropped by SQLite)
    assert b"stale wal" not in b"".join(_contents(tmp_path, "cp.sqlite3-wal"))
    async with open_checkpointer(redis_url=None, sqlite_path=path) as saver:
        assert await _turn(saver, "again") == ["hello", "echo: hello", "again", "echo: again"]


async def test_a_sqlite_file_that_cannot_be_read_is_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite3"
    path.mkdir()  # not the file's content at fault: a clear error, nothing renamed
    with pytest.raises(CheckpointerUnavailableError):
        async with open_checkpointer(redis_url=None, sqlite_path=path):
            pytest.fail("the body must not run")
    assert not _names(tmp_path, "cp.sqlite3.corrupt-")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("rediss://user:pw@cache.example.com/2", "rediss://user:***@cache.example.com/2"),
    ],
)
def test_redact_url_hides_passwords(url: str, expected: str) -> None:
    assert redact_url(url) == expected
