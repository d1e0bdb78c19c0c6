"""Map failures of a graph run onto LiveKit's API errors, with the right `retryable` flag.

LiveKit's LLMStream retries `retryable` errors and FallbackAdapter switches LLMs on them;
everything else ends the turn. Provider SDK errors are recognised by shape (an HTTP
`status_code`, a timeout or connection error class) so no provider SDK is imported here.
"""

from __future__ import annotations

import asyncio

import httpx
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError

__all__ = ["to_api_error"]

_MESSAGE_LIMIT = 300


def to_api_error(exc: BaseException) -> APIError:
    """The LiveKit APIError that best describes `exc` (returned, not raised)."""
    if isinstance(exc, APIError):
        return exc
    message = _describe(exc)
    if _is_timeout(exc):
        return APITimeoutError(message, retryable=True)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        # LiveKit marks 4xx (except 408/429) as not retryable
        return APIStatusError(message, status_code=status, body=getattr(exc, "body", None))
    if _is_connection_error(exc):
        return APIConnectionError(message, retryable=True)
    # a bug in a node, a recursion limit, bad tool output: the same input fails the same way
    return APIError(message, retryable=False)


def _describe(exc: BaseException) -> str:
    text = f"graph run failed: {type(exc).__name__}: {exc}"
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _class_names(exc: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(exc).__mro__]


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | httpx.TimeoutException):
        return True
    return any("Timeout" in name for name in _class_names(exc))


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | httpx.TransportError):
        return True
    return any("Connection" in name for name in _class_names(exc))
