"""One way to reach Qdrant for all three deployments: server URL, local path, or `:memory:`.

The synchronous `QdrantClient` runs in worker threads. The async client's local mode computes
searches on the event loop, which would stall audio in a voice worker; threads never do.
Local mode is not thread-safe, so its calls are serialised.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from tools.documents.errors import DocumentStoreError, DocumentStoreUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
MEMORY = ":memory:"


@dataclass(frozen=True)
class QdrantLocation:
    """Where Qdrant lives: `url` (server or cluster) wins over `path` (local, or `:memory:`)."""

    url: str | None = None
    path: str = MEMORY
    api_key: str | None = None

    @property
    def is_local(self) -> bool:
        return self.url is None

    def describe(self) -> str:
        if self.url is not None:
            return f"Qdrant at {self.url}"
        if self.path == MEMORY:
            return "in-memory Qdrant"
        return f"local Qdrant at {self.path}"


class QdrantGateway:
    """Runs client calls off the event loop and turns failures into the store's errors."""

    def __init__(self, location: QdrantLocation, *, timeout_s: float = 5.0) -> None:
        self.location = location
        self._timeout_s = timeout_s
        self._client: QdrantClient | None = None
        self._thread_lock = threading.Lock()
        self._open_lock = asyncio.Lock()

    def _open(self) -> QdrantClient:
        loc = self.location
        if loc.url is not None:
            return QdrantClient(
                url=loc.url,
                api_key=loc.api_key,
                timeout=max(1, math.ceil(self._timeout_s)),
                check_compatibility=False,
            )
        if loc.path == MEMORY:
            return QdrantClient(location=MEMORY, force_disable_check_same_thread=True)
        Path(loc.path).mkdir(parents=True, exist_ok=True)
        return QdrantClient(path=loc.path, force_disable_check_same_thread=True)

    async def _connected(self) -> QdrantClient:
        async with self._open_lock:
            if self._client is None:
                try:
                    self._client = await asyncio.to_thread(self._open)
                except Exception as exc:
                    raise self._translate(exc, "open") from exc
            return self._client

    async def run(self, what: str, call: Callable[[QdrantClient], T]) -> T:
        """Run `call(client)` in a thread; `what` names the operation in error messages."""
        client = await self._connected()

        def locked() -> T:
            with self._thread_lock:
                return call(client)

        try:
            if self.location.is_local:
                return await asyncio.to_thread(locked)
            # the client has its own HTTP timeout; this is the backstop for a stuck thread
            return await asyncio.wait_for(
                asyncio.to_thread(call, client), timeout=2 * self._timeout_s + 1
            )
        except DocumentStoreError:
            raise
        except Exception as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: Exception, what: str) -> DocumentStoreError:
        where = self.location.describe()
        if isinstance(exc, ResponseHandlingException):
            cause = exc.source
            return DocumentStoreUnavailable(
                f"{where} is unreachable during {what}: {type(cause).__name__}: {cause}"
            )
        if isinstance(exc, UnexpectedResponse):
            detail = exc.content.decode("utf-8", "replace")[:300]
            message = f"{where} answered HTTP {exc.status_code} during {what}: {detail}"
            if exc.status_code is not None and exc.status_code < 500:
                return DocumentStoreError(message)
            return DocumentStoreUnavailable(message)
        if isinstance(exc, (httpx.HTTPError, OSError, TimeoutError)):
            return DocumentStoreUnavailable(
                f"{where} is unreachable during {what}: {type(exc).__name__}: {exc}"
            )
        if isinstance(exc, RuntimeError) and "already accessed" in str(exc):
            return DocumentStoreUnavailable(
                f"{where} is in use by another process (local mode allows one at a time: stop "
                "the worker while ingesting, or run a Qdrant server and set QDRANT_URL)"
            )
        return DocumentStoreError(f"{where} failed during {what}: {type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)
