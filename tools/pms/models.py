"""Typed results of the PMS layer, shared by every backend.

Only what a verified guest may hear is modelled here: payment details, full e-mail addresses
and phone numbers never enter these models (backends keep them, and expose masked hints).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ReservationStatus = Literal["confirmed", "in_house", "checked_out", "cancelled", "no_show"]
OfferKind = Literal["early_check_in", "late_checkout", "extra", "gap_night"]
ReceiptStatus = Literal["confirmed", "requested"]

_CENT = Decimal("0.01")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def public_dict(self) -> dict[str, Any]:
        """A JSON-able dict (dates as ISO strings, amounts as decimal strings)."""
        return self.model_dump(mode="json")


class Money(_Model):
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)

    @field_validator("amount")
    @classmethod
    def _round(cls, value: Decimal) -> Decimal:
        return value.quantize(_CENT, rounding=ROUND_HALF_UP)

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def times(self, factor: Decimal | int) -> Money:
        return Money(amount=self.amount * Decimal(factor), currency=self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)


class Address(_Model):
    street: str
    postal_code: str | None = None
    city: str
    region: str | None = None
    country: str
    country_code: str | None = None

    def one_line(self) -> str:
        city = " ".join(part for part in (self.postal_code, self.city) if part)
        parts = [self.street, city, self.region, self.country]
        return ", ".join(part for part in parts if part)


class WifiInfo(_Model):
    network: str
    password: str | None = None


class PropertySummary(_Model):
    id: str
    name: str
    city: str


class Property(_Model):
    id: str
    name: str
    kind: str = "property"
    description: str | None = None
    address: Address
    timezone: str = "UTC"
    currency: str
    check_in_time: str | None = None
    check_out_time: str | None = None
    check_in_method: str | None = None
    max_guests: int = Field(ge=1)
    bedrooms: int | None = None
    min_nights: int = Field(default=1, ge=1)
    wifi: WifiInfo | None = None
    parking: str | None = None
    pets: str | None = None
    quiet_hours: str | None = None
    smoking: str | None = None
    house_rules: tuple[str, ...] = ()
    amenities: tuple[str, ...] = ()

    def summary(self) -> PropertySummary:
        return PropertySummary(id=self.id, name=self.name, city=self.address.city)


class Reservation(_Model):
    """A reservation as shown to its verified guest: no payment data, contacts masked."""

    id: str
    code: str
    property_id: str
    property_name: str
    status: ReservationStatus
    arrival: date
    departure: date
    adults: int = Field(ge=1)
    children: int = Field(default=0, ge=0)
    guest_first_name: str | None = None
    guest_last_name: str
    unit_name: str | None = None
    unit_group_id: str | None = None
    rate_plan_id: str | None = None
    total: Money | None = None
    email_hint: str | None = None
    phone_hint: str | None = None
    extras: tuple[str, ...] = ()

    @property
    def nights(self) -> int:
        return (self.departure - self.arrival).days

    @property
    def guests(self) -> int:
        return self.adults + self.children

    @property
    def guest_name(self) -> str:
        return " ".join(p for p in (self.guest_first_name, self.guest_last_name) if p)

    @property
    def is_active(self) -> bool:
        """Upcoming or in progress, so extras can still be added."""
        return self.status in ("confirmed", "in_house")


class Charge(_Model):
    name: str
    amount: Money
    included: bool = False


class NightlyRate(_Model):
    night: date
    amount: Money


class Quote(_Model):
    property_id: str
    arrival: date
    departure: date
    adults: int
    children: int = 0
    currency: str
    nights: tuple[NightlyRate, ...]
    fees: tuple[Charge, ...] = ()
    taxes: tuple[Charge, ...] = ()
    total: Money
    rate_plan: str | None = None

    @property
    def accommodation(self) -> Money:
        total = Money.zero(self.currency)
        for night in self.nights:
            total = total + night.amount
        return total


class Availability(_Model):
    property_id: str
    arrival: date
    departure: date
    guests: int
    available: bool
    unavailable_nights: tuple[date, ...] = ()
    min_nights: int = 1
    next_window: tuple[date, date] | None = None
    quote: Quote | None = None


class UpsellOffer(_Model):
    id: str
    kind: OfferKind
    name: str
    description: str | None = None
    price: Money
    regular_price: Money | None = None
    discount_percent: int | None = None
    time: str | None = None
    nights: tuple[date, ...] = ()
    service_id: str | None = None


class UpsellReceipt(_Model):
    reference: str
    reservation_code: str
    offer_id: str
    kind: OfferKind
    name: str
    price: Money
    status: ReceiptStatus
    created_at: datetime
    replayed: bool = False
    new_arrival: date | None = None
    new_departure: date | None = None


class FeedbackReceipt(_Model):
    reference: str
    reservation_code: str
    rating: int = Field(ge=1, le=5)
    created_at: datetime
    replayed: bool = False
