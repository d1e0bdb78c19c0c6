"""The one error type handlers raise, rendered as `{"error": {"code", "message"}}`."""

from __future__ import annotations

import orjson


class HttpError(Exception):
    """A client-facing failure with its HTTP status, a stable code and a readable message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    def body(self) -> bytes:
        return orjson.dumps({"error": {"code": self.code, "message": self.message}})


class AuthError(HttpError):
    """401 with the `WWW-Authenticate` challenge; `reason` labels the failure metric."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(
            401,
            "unauthenticated",
            message,
            headers=((b"www-authenticate", b'Bearer realm="token"'),),
        )
        self.reason = reason
