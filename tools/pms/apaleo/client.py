"""HTTP access to Apaleo: OAuth2 client credentials, timeouts, retries with backoff.

The access token is cached until shortly before it expires and fetched again when the API
answers 401. Requests are retried on 429 and 5xx (honouring `Retry-After`) and on network
errors; requests that are not safe to repeat are retried only when the server surely did
not process them (429, or a connection that never opened).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tools.pms.errors import PMSError, PMSUnavailable

__all__ = ["ApaleoClient", "ApaleoError", "ApaleoNotFound"]

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApaleoError(PMSError):
    """Apaleo refused a request (4xx other than 401/404/429)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(
            "The booking system didn't accept that request. I can connect you with the team "
            "if you'd like.",
            detail=f"Apaleo answered {status}: {detail}",
        )
        self.status = status


class ApaleoNotFound(PMSError):
    def __init__(self, detail: str) -> None:
        super().__init__("I couldn't find that in the booking system.", detail=detail)


def _retry_after(response: httpx.Response, *, now: datetime) -> float | None:
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class _TokenCache:
    """One access token, refreshed `margin_s` before expiry; one refresh at a time."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        margin_s: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._auth = (client_id, client_secret)
        self._margin_s = margin_s
        self._now = monotonic
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, fetch: Callable[[], Awaitable[httpx.Response]]) -> str:
        async with self._lock:
            if self._token is not None and self._now() < self._expires_at - self._margin_s:
                return self._token
            response = await fetch()
            if response.status_code in (400, 401, 403):
                status = response.status_code
                raise PMSUnavailable(detail=f"Apaleo identity rejected the credentials ({status})")
            if response.status_code >= 400:
                raise PMSUnavailable(detail=f"Apaleo identity answered {response.status_code}")
            payload = response.json()
            self._token = str(payload["access_token"])
            self._expires_at = self._now() + float(payload.get("expires_in", 3600))
            return self._token

    def invalidate(self, token: str) -> None:
        if self._token == token:
            self._token = None

    def request(self) -> Awaitable[httpx.Response]:
        return self._http.post(
            self._token_url, data={"grant_type": "client_credentials"}, auth=self._auth
        )


class ApaleoClient:
    """Authenticated JSON requests against the Apaleo API."""

    def __init__(
        self,
        *,
        base_url: str,
        identity_url: str,
        client_id: str,
        client_secret: str,
        timeout_s: float = 8.0,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_retry_after_s: float = 30.0,
        token_margin_s: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] | None = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "livekit-langgraph-voice"},
        )
        loop_time = monotonic or (lambda: asyncio.get_running_loop().time())
        self._tokens = _TokenCache(
            self._http,
            token_url=identity_url.rstrip("/") + "/connect/token",
            client_id=client_id,
            client_secret=client_secret,
            margin_s=token_margin_s,
            monotonic=loop_time,
        )
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))

    async def aclose(self) -> None:
        await self._http.aclose()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            hinted = _retry_after(response, now=self._wall_clock())
            if hinted is not None:
                return min(hinted, self._max_retry_after_s)
        exponential = self._backoff_s * (2 ** (attempt - 1))
        return min(self._max_backoff_s, exponential * (0.5 + random.random() / 2))

    async def _send(
        self, build: Callable[[], Awaitable[httpx.Response]], *, safe: bool, what: str
    ) -> httpx.Response:
        """Send with retries; `safe` says whether a request that reached the server may repeat."""
        last_problem = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            response: httpx.Response | None = None
            try:
                response = await build()
            except httpx.ConnectError as exc:
                last_problem = f"connection failed: {exc}"
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                if not safe:
                    raise PMSUnavailable(detail=f"{what}: {last_problem}") from exc
            else:
                if response.status_code not in _RETRY_STATUSES:
                    return response
                last_problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and not safe:
                    break
            if attempt < self._max_attempts:
                delay = self._delay(attempt, response)
                logger.warning("apaleo %s: %s; retrying in %.2fs", what, last_problem, delay)
                await self._sleep(delay)
        raise PMSUnavailable(detail=f"{what}: {last_problem}")

    async def _token(self) -> str:
        return await self._tokens.get(
            lambda: self._send(self._tokens.request, safe=True, what="token request")
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        safe: bool | None = None,
    ) -> httpx.Response:
        """One API call; raises PMSError subclasses, returns 2xx responses only."""
        repeatable = method in ("GET", "HEAD", "PUT", "DELETE") if safe is None else safe
        what = f"{method} {path}"
        clean_params = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
        for attempt in (1, 2):
            token = await self._token()

            def build(token: str = token) -> Awaitable[httpx.Response]:
                return self._http.request(
                    method,
                    path,
                    params=clean_params,
                    json=json,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                )

            response = await self._send(build, safe=repeatable, what=what)
            if response.status_code == 401 and attempt == 1:
                self._tokens.invalidate(token)
                continue
            break
        if response.status_code == 404:
            raise ApaleoNotFound(f"{what} → 404")
        if response.status_code == 401:
            raise PMSUnavailable(detail=f"{what}: Apaleo rejected a fresh access token")
        if response.status_code >= 400:
            raise ApaleoError(response.status_code, response.text[:300])
        return response

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The decoded body, or None for 204 No Content (Apaleo's empty list)."""
        response = await self.request("GET", path, params=params)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
