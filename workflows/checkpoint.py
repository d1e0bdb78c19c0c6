"""Which checkpointer a graph gets: Redis when configured, else SQLite on a file, else memory.

`open_checkpointer` pings Redis before yielding, so a wrong or unreachable `REDIS_URL` stops
the worker at start-up with one clear error instead of failing the first conversation turn.
A corrupt SQLite file is moved aside (one error line) and a fresh one started, so one bad
file never silences every call on the machine. `turn_lock_for` gives the matching
cross-process turn lock. `RedisCheckpointSaver` (key layout: see `workflows.redis_saver`)
is re-exported from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from redis.exceptions import RedisError

from workflows.redis_saver import RedisCheckpointSaver
from workflows.turn_lock import FileTurnLock, RedisTurnLock, TurnLock

__all__ = [
    "CheckpointerUnavailableError",
    "RedisCheckpointSaver",
    "open_checkpointer",
    "turn_lock_for",
]

logger = logging.getLogger(__name__)


class CheckpointerUnavailableError(RuntimeError):
    """The configured checkpoint store cannot be reached or opened."""


@asynccontextmanager
async def open_checkpointer(
    *,
    redis_url: str | None,
    sqlite_path: Path | None,
    ttl: float | timedelta | None = None,
    key_prefix: str = "langgraph",
    connect_timeout: float = 2.0,
    op_timeout: float | None = 5.0,
    max_checkpoints: int | None = None,
) -> AsyncIterator[BaseCheckpointSaver]:
    """Yield a ready checkpointer and close it on exit.

    - `redis_url` set: `RedisCheckpointSaver` (threads expire `ttl` after their last write
      when `ttl` is given; each round trip is bounded by `op_timeout`; with `max_checkpoints`
      older checkpoints of a thread are pruned). Raises `CheckpointerUnavailableError` if
      Redis does not answer a PING within about `connect_timeout` + 1 s.
    - else `sqlite_path` set: the official `AsyncSqliteSaver` on that file (parent
      directories are created; a corrupt file is moved aside); `ttl` does not apply.
    - else: `InMemorySaver` (state is lost when the process exits).
    """
    if redis_url:
        async with _open_redis(
            redis_url, ttl, key_prefix, connect_timeout, op_timeout, max_checkpoints
        ) as saver:
            yield saver
    elif sqlite_path is not None:
        async with _open_sqlite(sqlite_path) as sqlite_saver:
            yield sqlite_saver
    else:
        yield InMemorySaver()


@asynccontextmanager
async def _open_redis(
    url: str,
    ttl: float | timedelta | None,
    key_prefix: str,
    connect_timeout: float,
    op_timeout: float | None,
    max_checkpoints: int | None,
) -> AsyncIterator[RedisCheckpointSaver]:
    saver = RedisCheckpointSaver.from_url(
        url,
        ttl=ttl,
        key_prefix=key_prefix,
        connect_timeout=connect_timeout,
        timeout=op_timeout,
        max_checkpoints=max_checkpoints,
    )
    try:
        try:
            async with asyncio.timeout(connect_timeout + 1.0):
                await saver.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise CheckpointerUnavailableError(
                f"Redis checkpointer at {redact_url(url)} is unreachable ({reason}). "
                "Check REDIS_URL, or unset it to keep conversation state in a local SQLite file."
            ) from exc
        yield saver
    finally:
        await saver.aclose()


@asynccontextmanager
async def _open_sqlite(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    for attempt in range(2):
        stack = AsyncExitStack()
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(path)))
            await saver.setup()
            # setup only reads the schema; touch the newest rows too
            async with saver.conn.execute(
                "SELECT thread_id FROM checkpoints ORDER BY rowid DESC LIMIT 1"
            ) as cursor:
                await cursor.fetchall()
        except (OSError, sqlite3.Error) as exc:
            await stack.aclose()
            if attempt == 0 and _is_corrupt(exc):
                moved = await asyncio.to_thread(_move_aside, path)
                logger.error(
                    "checkpoint file %s is corrupt (%s): moved to %s, starting a fresh one",
                    path,
                    exc,
                    moved,
                )
                continue
            raise CheckpointerUnavailableError(
                f"cannot open the SQLite checkpoint file {path}: {exc}"
            ) from exc
        async with stack:
            yield saver
        return


def _is_corrupt(exc: BaseException) -> bool:
    # OperationalError (locked, no permission, disk full, ...) is not the file's fault
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _move_aside(path: Path) -> Path:
    """Rename the file (and its WAL/SHM companions) to ``<name>.corrupt-<UTC time>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        # another process may have moved it first: then there is nothing left to move
        with contextlib.suppress(FileNotFoundError):
            source.rename(target.with_name(target.name + suffix))
    return target


def turn_lock_for(
    checkpointer: BaseCheckpointSaver,
    *,
    sqlite_path: Path | None,
    wait_s: float = 60.0,
    timeout_s: float = 0.5,
) -> TurnLock | None:
    """The cross-process turn lock matching `checkpointer` (None for in-memory state)."""
    if isinstance(checkpointer, RedisCheckpointSaver):
        return RedisTurnLock(
            checkpointer.redis,
            key_prefix=checkpointer.key_prefix,
            wait_s=wait_s,
            timeout_s=timeout_s,
        )
    if isinstance(checkpointer, AsyncSqliteSaver) and sqlite_path is not None:
        return FileTurnLock(sqlite_path.with_name(sqlite_path.name + ".locks"), wait_s=wait_s)
    return None


def redact_url(url: str) -> str:
    """`url` with any password replaced by ``***`` (safe to log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
