"""The demo PMS seed: properties with their rates and extras, and reservations by day offset.

Reservation dates are offsets from "today" so the demo calendar always has past, current
and future stays; the demo database turns them into dates when it is created.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.pms.models import OfferKind, Property

__all__ = [
    "DEFAULT_SEED_PATH",
    "ExtraSpec",
    "PaymentCard",
    "PropertySpec",
    "RateSpec",
    "ReservationSpec",
    "Seed",
    "TaxSpec",
    "load_seed",
]

DEFAULT_SEED_PATH = Path(__file__).with_name("seed.json")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SeasonSpec(_Spec):
    name: str
    months: tuple[int, ...]
    multiplier: Decimal


class RateSpec(_Spec):
    base: Decimal
    weekend: Decimal
    weekend_nights: tuple[int, ...] = Field(description="Weekdays (Monday=0) priced as weekend.")
    seasons: tuple[SeasonSpec, ...] = ()


class TaxSpec(_Spec):
    name: str
    percent: Decimal | None = None
    per_adult_night: Decimal | None = None


class ExtraSpec(_Spec):
    id: str
    kind: OfferKind
    name: str
    description: str | None = None
    time: str | None = None
    price: Decimal
    pricing: Literal["per_stay", "per_night"]


class PropertySpec(Property):
    model_config = ConfigDict(frozen=True, extra="forbid")

    unit_name: str
    rates: RateSpec
    cleaning_fee: Decimal
    taxes: tuple[TaxSpec, ...] = ()
    extras: tuple[ExtraSpec, ...] = ()

    def public(self) -> Property:
        return Property.model_validate(self.model_dump(include=set(Property.model_fields)))

    def extra(self, extra_id: str) -> ExtraSpec | None:
        return next((extra for extra in self.extras if extra.id == extra_id), None)


class PaymentCard(_Spec):
    brand: str
    last4: str
    holder: str
    expiry: str


class ReservationSpec(_Spec):
    code: str
    property_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    payment: PaymentCard
    arrival_offset: int
    nights: int = Field(ge=1)
    adults: int = Field(ge=1)
    children: int = Field(default=0, ge=0)
    status: Literal["booked", "cancelled", "no_show"] = "booked"
    extras: tuple[str, ...] = ()


class Seed(_Spec):
    version: int
    properties: tuple[PropertySpec, ...]
    reservations: tuple[ReservationSpec, ...]


def load_seed(path: Path = DEFAULT_SEED_PATH) -> Seed:
    """Parse and validate a seed file; every reservation must point at a seeded property."""
    seed = Seed.model_validate(json.loads(path.read_text(encoding="utf-8")))
    known = {prop.id for prop in seed.properties}
    for spec in seed.reservations:
        if spec.property_id not in known:
            raise ValueError(f"seed reservation {spec.code} names unknown {spec.property_id!r}")
    return seed
