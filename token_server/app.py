"""The token server as a raw ASGI application: routing, handlers, lifespan.

No web framework: on one core the framework's per-request machinery cost more than minting
the token, and every route here is a handful of lines.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter

import orjson

from token_server.asgi import (
    JSON_HEADERS,
    ClientDisconnected,
    Headers,
    Receive,
    Scope,
    Send,
    media_type,
    read_body,
    request_headers,
    send_response,
)
from token_server.auth import Authenticator
from token_server.cors import CorsPolicy
from token_server.errors import AuthError, HttpError
from token_server.health import Readiness
from token_server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from token_server.metrics import Metrics
from token_server.rate_limit import RateLimiter
from token_server.static_files import WebPage, same_origin
from token_server.token_policy import TokenPolicy, end_user_key
from token_server.token_request import MAX_BODY_BYTES, parse_token_request
from token_server.webhooks import MAX_WEBHOOK_BYTES, WebhookHandler

logger = logging.getLogger("token_server")

Handler = Callable[[Scope, Receive, Send], Awaitable[int]]

_WEBHOOK_MEDIA_TYPES = frozenset({b"application/webhook+json", b"application/json"})
_KNOWN_METHODS = frozenset({"GET", "POST", "OPTIONS", "HEAD", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class _Route:
    label: str
    handlers: dict[str, Handler]
    allow: bytes


class TokenServerApp:
    """ASGI callable; build it with `token_server.factory.create_app(settings)`."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        policy: TokenPolicy,
        cors: CorsPolicy,
        ip_limiter: RateLimiter,
        principal_limiter: RateLimiter,
        app_limiter: RateLimiter,
        webhooks: WebhookHandler,
        readiness: Readiness,
        metrics: Metrics,
        openapi: bytes,
        max_metadata_bytes: int,
        web_page: WebPage | None = None,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._auth = authenticator
        self._policy = policy
        self._cors = cors
        self._ip_limiter = ip_limiter
        self._principal_limiter = principal_limiter
        self._app_limiter = app_limiter
        self._webhooks = webhooks
        self._readiness = readiness
        self.metrics = metrics
        self._openapi = openapi
        self._max_metadata_bytes = max_metadata_bytes
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        self._routes: dict[str, _Route] = {}
        self._add("/token", {"POST": self._token, "OPTIONS": self._preflight})
        self._add("/healthz", {"GET": self._healthz})
        self._add("/readyz", {"GET": self._readyz})
        self._add("/metrics", {"GET": self._metrics})
        self._add("/openapi.json", {"GET": self._openapi_json})
        self._add("/webhooks/livekit", {"POST": self._webhook})
        self._web_page = web_page
        if web_page is not None:
            for path in web_page.paths:
                self._add(path, {"GET": web_page.serve})

    def _add(self, path: str, handlers: dict[str, Handler]) -> None:
        self._routes[path] = _Route(path, handlers, ", ".join(handlers).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        method: str = scope["method"]
        route = self._routes.get(scope["path"])
        label = route.label if route is not None else "unmatched"
        try:
            if route is None:
                raise HttpError(404, "not_found", "no such route")
            handler = route.handlers.get(method)
            if handler is None:
                raise HttpError(
                    405,
                    "method_not_allowed",
                    f"use {route.allow.decode()}",
                    headers=((b"allow", route.allow),),
                )
            status = await handler(scope, receive, send)
        except HttpError as exc:
            status = exc.status
            await send_response(send, status, exc.body(), JSON_HEADERS + exc.headers)
        except ClientDisconnected:
            status = 499
        except Exception:
            logger.exception("unhandled error on %s %s", method, label)
            status = 500
            error = HttpError(500, "internal", "internal error")
            await send_response(send, status, error.body(), JSON_HEADERS)
        self.metrics.observe_request(
            label, method if method in _KNOWN_METHODS else "other", status, perf_counter() - started
        )

    async def _token(self, scope: Scope, receive: Receive, send: Send) -> int:
        authorization, content_type, origin, content_length = request_headers(
            scope, b"authorization", b"content-type", b"origin", b"content-length"
        )
        if self._web_page is not None and same_origin(scope, origin):
            origin = None  # the page's own request is not cross-origin
        cors = self._cors.response_headers(origin)
        try:
            client = scope.get("client")
            client_ip = str(client[0]) if client else "unknown"
            retry_after = await self._ip_limiter.hit(client_ip)
            if retry_after is not None:
                self.metrics.rate_limited["ip"] += 1
                raise _too_many_requests(retry_after)
            try:
                principal = await self._auth.authenticate(authorization)
            except AuthError as exc:
                self.metrics.auth_failures[exc.reason] += 1
                raise
            # An app backend speaking for many users has its own, larger budget; each of
            # its users is then counted like any other end user once the body names them.
            limiter = self._app_limiter if principal.asserts_users else self._principal_limiter
            retry_after = await limiter.hit(principal.subject or client_ip)
            if retry_after is not None:
                self.metrics.rate_limited["principal"] += 1
                raise _too_many_requests(retry_after)
            body = await read_body(receive, content_length, MAX_BODY_BYTES)
            if (
                body
                and content_type != b"application/json"
                and (media_type(content_type) != b"application/json")
            ):
                raise HttpError(415, "unsupported_media_type", "send application/json")
            request = parse_token_request(body, max_metadata_bytes=self._max_metadata_bytes)
            if principal.asserts_users and request.participant_identity is not None:
                retry_after = await self._principal_limiter.hit(
                    end_user_key(principal, request.participant_identity)
                )
                if retry_after is not None:
                    self.metrics.rate_limited["user"] += 1
                    raise _too_many_requests(retry_after)
            response = self._policy.mint(request, principal)
        except HttpError as exc:
            exc.headers += cors
            raise
        self.metrics.tokens_minted[principal.method] += 1
        await send_response(send, 201, orjson.dumps(response), JSON_HEADERS + cors)
        return 201

    async def _preflight(self, scope: Scope, receive: Receive, send: Send) -> int:
        origin, method = request_headers(scope, b"origin", b"access-control-request-method")
        headers = self._cors.preflight_headers(origin, method)
        await send_response(send, 204, b"", headers)
        return 204

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> int:
        await send_response(send, 200, b'{"status":"ok"}', JSON_HEADERS)
        return 200

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> int:
        checks = await self._readiness.check()
        failed = {name: result for name, result in checks.items() if result != "ok"}
        if failed:
            reasons = ", ".join(f"{name}: {result}" for name, result in failed.items())
            raise HttpError(503, "not_ready", reasons)
        await send_response(
            send, 200, orjson.dumps({"status": "ready", "checks": checks}), JSON_HEADERS
        )
        return 200

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> int:
        headers: Headers = (
            (b"content-type", METRICS_CONTENT_TYPE),
            (b"cache-control", b"no-store"),
        )
        await send_response(send, 200, self.metrics.render(), headers)
        return 200

    async def _openapi_json(self, scope: Scope, receive: Receive, send: Send) -> int:
        headers: Headers = ((b"content-type", b"application/json"),)
        await send_response(send, 200, self._openapi, headers)
        return 200

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> int:
        authorization, content_type, content_length = request_headers(
            scope, b"authorization", b"content-type", b"content-length"
        )
        if media_type(content_type) not in _WEBHOOK_MEDIA_TYPES:
            raise HttpError(
                415, "unsupported_media_type", "send application/webhook+json as LiveKit does"
            )
        body = await read_body(receive, content_length, MAX_WEBHOOK_BYTES)
        event = self._webhooks.receive(body, authorization)
        self.metrics.webhook_events[event.event or "unknown"] += 1
        await send_response(send, 200, b'{"status":"received"}', JSON_HEADERS)
        return 200

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._on_startup is not None:
                    await self._on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.shield(self.aclose())
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Close the clients the app opened (Redis, JWKS HTTP); the lifespan calls this."""
        if self._on_shutdown is not None:
            await self._on_shutdown()


def _too_many_requests(retry_after: float) -> HttpError:
    seconds = max(1, math.ceil(retry_after))
    return HttpError(
        429,
        "rate_limited",
        f"too many token requests; retry in {seconds} s",
        headers=((b"retry-after", str(seconds).encode()),),
    )
