"""Errors of the PMS layer; each carries a sentence the agent may say to the caller."""

from __future__ import annotations

__all__ = ["OfferUnavailable", "PMSError", "PMSUnavailable", "StayRejected"]


class PMSError(Exception):
    """Base class: `speakable` is safe to read out (no internals, no personal data)."""

    def __init__(self, speakable: str, *, detail: str | None = None) -> None:
        super().__init__(detail or speakable)
        self.speakable = speakable


class PMSUnavailable(PMSError):
    """The backend could not be reached or kept failing."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            "I can't reach the booking system right now. Please try again in a few minutes, "
            "or I can connect you with the team.",
            detail=detail,
        )


class StayRejected(PMSError):
    """The requested dates or party size cannot be booked as asked."""


class OfferUnavailable(PMSError):
    """An upsell or gap-night offer is unknown, expired or no longer possible."""
