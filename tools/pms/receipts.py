"""The receipts a guest's request hands back, made the same way by every backend."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from tools.pms.errors import StayRejected
from tools.pms.models import FeedbackReceipt, ReceiptStatus, UpsellOffer, UpsellReceipt
from tools.pms.phrases import RATING_RANGE

__all__ = ["feedback_receipt", "require_rating", "upsell_receipt"]


def _reference(prefix: str) -> str:
    """A short reference the guest can read back to the front office."""
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


def upsell_receipt(
    offer: UpsellOffer,
    *,
    reservation_code: str,
    status: ReceiptStatus,
    created_at: datetime,
    new_arrival: date | None = None,
    new_departure: date | None = None,
) -> UpsellReceipt:
    return UpsellReceipt(
        reference=_reference("REQ"),
        reservation_code=reservation_code,
        offer_id=offer.id,
        kind=offer.kind,
        name=offer.name,
        price=offer.price,
        status=status,
        created_at=created_at,
        new_arrival=new_arrival,
        new_departure=new_departure,
    )


def require_rating(rating: int) -> None:
    if not 1 <= rating <= 5:
        raise StayRejected(RATING_RANGE)


def feedback_receipt(
    reservation_code: str, rating: int, *, created_at: datetime
) -> FeedbackReceipt:
    return FeedbackReceipt(
        reference=_reference("FB"),
        reservation_code=reservation_code,
        rating=rating,
        created_at=created_at,
    )
