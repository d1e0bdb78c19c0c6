"""The `PMS` protocol every backend (demo SQLite, Apaleo) implements."""

from __future__ import annotations

from datetime import date
from typing import Protocol, runtime_checkable

from tools.pms.models import (
    Availability,
    FeedbackReceipt,
    Property,
    PropertySummary,
    Quote,
    Reservation,
    UpsellOffer,
    UpsellReceipt,
)

__all__ = ["PMS"]


@runtime_checkable
class PMS(Protocol):
    """Async access to properties, reservations, availability, prices and guest requests.

    Methods raise `tools.pms.errors.PMSError` subclasses with a speakable message; callers
    verify the guest (confirmation code + last name) before using reservation methods.
    Side-effecting methods are idempotent per `idempotency_key`.
    """

    backend: str

    async def list_properties(self) -> list[PropertySummary]: ...

    async def get_property(self, property_id: str) -> Property | None: ...

    async def find_reservation(self, code: str, last_name: str) -> Reservation | None:
        """The reservation with this confirmation code whose guest has this last name."""
        ...

    async def list_reservations(
        self, property_id: str, start: date, end: date
    ) -> list[Reservation]:
        """Staff only: reservations staying at least one night in [start, end)."""
        ...

    async def check_availability(
        self, property_id: str, arrival: date, departure: date, guests: int
    ) -> Availability: ...

    async def quote_stay(
        self, property_id: str, arrival: date, departure: date, guests: int
    ) -> Quote: ...

    async def list_upsell_offers(self, reservation: Reservation) -> list[UpsellOffer]: ...

    async def list_gap_night_offers(self, reservation: Reservation) -> list[UpsellOffer]: ...

    async def request_upsell(
        self, reservation: Reservation, offer_id: str, *, idempotency_key: str
    ) -> UpsellReceipt: ...

    async def leave_feedback(
        self, reservation: Reservation, rating: int, comment: str, *, idempotency_key: str
    ) -> FeedbackReceipt: ...

    async def aclose(self) -> None: ...
