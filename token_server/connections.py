"""Connection limits for uvicorn's httptools protocol: slow senders and idle sockets.

uvicorn has no deadline for a request's headers or body, so a client that opens sockets and
sends nothing (or a byte at a time) holds a file descriptor each until the process runs out
and stops accepting anyone. Here every request must arrive in full within `read_timeout_s`
of its first byte (or of the connection, for the first request), else the connection gets a
408 and is closed. At most `max_connections` are open at once; a new connection beyond that
evicts the oldest one that has no request in flight, so idle sockets cannot lock out callers.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass, field
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger("token_server.connections")

# Descriptors kept free for the listening socket, Redis, the JWKS client, logs and Python.
RESERVED_DESCRIPTORS = 64
_TIMEOUT_BODY = b'{"error":{"code":"request_timeout","message":"the request arrived too slowly"}}'
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


def connection_cap(configured: int) -> int:
    """`configured`, lowered so open connections can never exhaust the file-descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - RESERVED_DESCRIPTORS))


@dataclass(slots=True)
class ConnectionGuard:
    """What the protocols of one server share: the limits and the idle connections, oldest first."""

    read_timeout_s: float
    max_connections: int
    open_count: int = 0
    idle: dict[GuardedHttpToolsProtocol, None] = field(default_factory=dict)
    evicted: int = 0
    timed_out: int = 0

    def admit(self, protocol: GuardedHttpToolsProtocol) -> bool:
        """Count a new connection; False when every slot is busy with a request in flight."""
        self.open_count += 1
        if self.open_count <= self.max_connections:
            return True
        victim = next(iter(self.idle), None)
        if victim is None:
            return False
        self.evicted += 1
        victim.drop()
        return True


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a read deadline per request and a cap on open connections."""

    guard: ConnectionGuard  # set on the subclass `protocol_class` makes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._counted = True
        if not self.guard.admit(self):
            logger.warning("all %d connections are busy; refusing one", self.guard.max_connections)
            transport.abort()
            return
        self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        self.guard.idle.pop(self, None)
        if self._counted:
            self._counted = False
            self.guard.open_count -= 1
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The deadline runs from the first byte of each request (keep-alive idling is
        # uvicorn's own timeout_keep_alive).
        self._await_request()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop_deadline()
        self.guard.idle.pop(self, None)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.guard.idle[self] = None  # idle again: the oldest such may be evicted

    def _await_request(self) -> None:
        self._stop_deadline()
        self.guard.idle.pop(self, None)
        self.guard.idle[self] = None
        self._read_deadline = self.loop.call_later(self.guard.read_timeout_s, self._too_slow)

    def _stop_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        self.guard.timed_out += 1
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def drop(self) -> None:
        """Close an idle connection to make room for a new one."""
        self._stop_deadline()
        self.guard.idle.pop(self, None)
        self.transport.abort()


def protocol_class(*, read_timeout_s: float, max_connections: int) -> type[HttpToolsProtocol]:
    """A protocol class for `uvicorn.Config(http=...)` enforcing these limits on one server."""
    guard = ConnectionGuard(read_timeout_s=read_timeout_s, max_connections=max_connections)
    return type("TokenServerHttpProtocol", (GuardedHttpToolsProtocol,), {"guard": guard})
