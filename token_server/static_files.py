"""The web page for talking to the agent: `GET /` and `GET /app.js`, built from `web/`.

The files are read once when the app is built and kept in memory (they are small and never
change while the server runs); `TOKEN_WEB_PAGE` turns the page on or off.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from token_server.asgi import Headers, Receive, Scope, Send, send_response
from token_server.errors import HttpError

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page loads only its own script; livekit-client talks to whatever server the token names.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self' ws: wss: http: https:; media-src 'self' blob: mediastream:; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'"
)
_FILES = {
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/app.js": ("app.js", b"text/javascript; charset=utf-8"),
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    etag: bytes
    headers: Headers


class WebPage:
    """Serves the built page, and tells the page's own `POST /token` apart from other origins."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self._assets: dict[str, _Asset] = {}
        for path, (name, content_type) in _FILES.items():
            file = directory / name
            try:
                body = file.read_bytes()
            except OSError as exc:
                raise RuntimeError(
                    f"the web page file {file} is missing ({exc.strerror}); rebuild it with "
                    "`npm ci && npm run build` in web/, or set TOKEN_WEB_PAGE=false"
                ) from None
            etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
            self._assets[path] = _Asset(
                body,
                etag,
                (
                    (b"content-type", content_type),
                    (b"cache-control", b"no-cache"),
                    (b"etag", etag),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                ),
            )

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self._assets)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> int:
        asset = self._assets.get(scope["path"])
        if asset is None:
            raise HttpError(404, "not_found", "no such route")
        for name, value in scope["headers"]:
            if name == b"if-none-match" and asset.etag in value:
                await send_response(send, 304, b"", asset.headers)
                return 304
        await send_response(send, 200, asset.body, asset.headers)
        return 200


def same_origin(scope: Scope, origin: bytes | None) -> bool:
    """True when `Origin` names this server itself (the page's own fetch), not a CORS caller.

    Browsers set both headers themselves, so a page on another origin cannot make them match.
    """
    if origin is None:
        return False
    for name, value in scope["headers"]:
        if name == b"host":
            scheme = str(scope.get("scheme", "http")).encode()
            return origin.lower() == scheme + b"://" + value.lower()
    return False
