"""Which checkpointer a graph gets: Redis when configured, else SQLite on a file, else memory.

`open_checkpointer` pings Redis before yielding, so a wrong or unreachable `REDIS_URL` stops
the worker at start-up with one clear error instead of failing the first conversation turn.
`RedisCheckpointSaver` (key layout: see `workflows.redis_saver`) is re-exported from here.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from redis.exceptions import RedisError

from workflows.redis_saver import RedisCheckpointSaver

__all__ = ["CheckpointerUnavailableError", "RedisCheckpointSaver", "open_checkpointer"]


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
) -> AsyncIterator[BaseCheckpointSaver]:
    """Yield a ready checkpointer and close it on exit.

    - `redis_url` set: `RedisCheckpointSaver` (threads expire `ttl` after their last write
      when `ttl` is given). Raises `CheckpointerUnavailableError` if Redis does not answer
      a PING within about `connect_timeout` + 1 s.
    - else `sqlite_path` set: the official `AsyncSqliteSaver` on that file (parent
      directories are created); `ttl` does not apply.
    - else: `InMemorySaver` (state is lost when the process exits).
    """
    if redis_url:
        async with _open_redis(redis_url, ttl, key_prefix, connect_timeout) as saver:
            yield saver
    elif sqlite_path is not None:
        async with _open_sqlite(sqlite_path) as sqlite_saver:
            yield sqlite_saver
    else:
        yield InMemorySaver()


@asynccontextmanager
async def _open_redis(
    url: str, ttl: float | timedelta | None, key_prefix: str, connect_timeout: float
) -> AsyncIterator[RedisCheckpointSaver]:
    saver = RedisCheckpointSaver.from_url(
        url, ttl=ttl, key_prefix=key_prefix, connect_timeout=connect_timeout
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
    async with AsyncExitStack() as stack:
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(path)))
            await saver.setup()
        except (OSError, sqlite3.Error) as exc:
            raise CheckpointerUnavailableError(
                f"cannot open the SQLite checkpoint file {path}: {exc}"
            ) from exc
        yield saver


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
