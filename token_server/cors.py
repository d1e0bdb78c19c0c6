"""CORS for browser apps: an explicit origin allow-list, preflight included, never `*`."""

from __future__ import annotations

from collections.abc import Iterable

from token_server.errors import HttpError

Headers = tuple[tuple[bytes, bytes], ...]

ALLOWED_METHODS = b"POST, OPTIONS"
ALLOWED_HEADERS = b"authorization, content-type"
PREFLIGHT_MAX_AGE_S = 600


class CorsPolicy:
    """Decides per `Origin` header; requests without one (native apps, servers) pass through."""

    def __init__(self, origins: Iterable[str]) -> None:
        self._response_headers: dict[bytes, Headers] = {}
        self._preflight_headers: dict[bytes, Headers] = {}
        for origin in origins:
            raw = origin.lower().encode()
            base = ((b"access-control-allow-origin", raw), (b"vary", b"Origin"))
            self._response_headers[raw] = (
                *base,
                (b"access-control-expose-headers", b"Retry-After"),
            )
            self._preflight_headers[raw] = (
                *base,
                (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", ALLOWED_HEADERS),
                (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
            )

    def response_headers(self, origin: bytes | None) -> Headers:
        """Headers for an actual request; 403 when a browser origin is not on the list."""
        if origin is None:
            return ()
        headers = self._response_headers.get(origin.lower())
        if headers is None:
            raise _origin_not_allowed()
        return headers

    def preflight_headers(self, origin: bytes | None, method: bytes | None) -> Headers:
        """Headers answering an OPTIONS preflight; 403 for an unknown origin or method."""
        if origin is None:
            return ((b"allow", ALLOWED_METHODS),)
        headers = self._preflight_headers.get(origin.lower())
        if headers is None:
            raise _origin_not_allowed()
        if method is not None and method.upper() != b"POST":
            raise HttpError(403, "method_not_allowed", "only POST may be requested cross-origin")
        return headers


def _origin_not_allowed() -> HttpError:
    return HttpError(403, "origin_not_allowed", "this origin is not allowed to request tokens")
