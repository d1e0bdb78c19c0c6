"""Minimal raw-ASGI plumbing: types, body reading with a cap, and one-shot responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from token_server.errors import HttpError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = tuple[tuple[bytes, bytes], ...]

JSON_HEADERS: Headers = (
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
)


class ClientDisconnected(Exception):
    """The client went away before its body arrived; nothing can be sent back."""


async def read_body(receive: Receive, content_length: bytes | None, limit: int) -> bytes:
    """The whole request body; 413 as soon as it is known to exceed `limit`."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise HttpError(400, "invalid_request", "Content-Length is not a number") from None
        if declared > limit:
            raise _too_large(limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    chunks, size = [body], len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def request_headers(scope: Scope, *names: bytes) -> list[bytes | None]:
    """The named headers' values in the order asked: the last one when sent twice, else None."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in names:
            found[name] = value
    return [found.get(name) for name in names]


def media_type(content_type: bytes | None) -> bytes:
    """`application/json; charset=utf-8` → `application/json`."""
    if content_type is None:
        return b""
    return content_type.partition(b";")[0].strip().lower()


def _too_large(limit: int) -> HttpError:
    return HttpError(413, "body_too_large", f"the request body must be at most {limit} bytes")
