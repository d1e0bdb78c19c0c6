"""Map Apaleo API payloads (inventory, booking, availability, offers) to the PMS models.

Only fields the project uses are read; everything else in Apaleo's rich payloads is ignored.
Payment accounts, full e-mail addresses and phone numbers are never copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from tools.pms.models import (
    Address,
    Charge,
    Money,
    NightlyRate,
    OfferKind,
    Property,
    PropertySummary,
    Quote,
    Reservation,
    ReservationStatus,
    UpsellOffer,
)
from tools.pms.phrases import mask_email, mask_phone

__all__ = [
    "SERVICE_OFFER_PREFIX",
    "day",
    "localized",
    "money",
    "nightly_availability",
    "property_from_apaleo",
    "quote_from_offer",
    "reservation_from_apaleo",
    "summary_from_apaleo",
    "upsell_from_service_offer",
]

SERVICE_OFFER_PREFIX = "service-"

_STATUS: dict[str, ReservationStatus] = {
    "Confirmed": "confirmed",
    "InHouse": "in_house",
    "CheckedOut": "checked_out",
    "Canceled": "cancelled",
    "NoShow": "no_show",
}
_COUNTRIES = {
    "US": "USA",
    "GB": "United Kingdom",
    "DE": "Germany",
    "AT": "Austria",
    "CH": "Switzerland",
    "ES": "Spain",
    "FR": "France",
    "IT": "Italy",
    "NL": "Netherlands",
    "PT": "Portugal",
}


def localized(value: Any) -> str:
    """Apaleo names are plain strings, or maps of language → text when languages=all."""
    if isinstance(value, Mapping):
        for key in ("en", "en-US", "en-GB"):
            if value.get(key):
                return str(value[key])
        return next((str(v) for v in value.values() if v), "")
    return "" if value is None else str(value)


def day(value: Any) -> date:
    """The calendar date of an Apaleo date or local date-time ('2025-03-14T16:00:00+01:00')."""
    return date.fromisoformat(str(value)[:10])


def money(value: Mapping[str, Any] | None, fallback_currency: str = "EUR") -> Money:
    value = value or {}
    amount = value.get("amount", value.get("grossAmount", 0))
    return Money(
        amount=Decimal(str(amount)), currency=str(value.get("currency") or fallback_currency)
    )


def summary_from_apaleo(payload: Mapping[str, Any]) -> PropertySummary:
    location = payload.get("location") or {}
    return PropertySummary(
        id=str(payload["id"]),
        name=localized(payload.get("name")) or str(payload["id"]),
        city=str(location.get("city") or ""),
    )


def _time(value: Any) -> str | None:
    return str(value)[:5] if value else None


def property_from_apaleo(
    payload: Mapping[str, Any],
    *,
    time_slice_definitions: Iterable[Mapping[str, Any]] = (),
    unit_groups: Iterable[Mapping[str, Any]] = (),
) -> Property:
    """A property from GET /inventory/v1/properties/{id}, its OverNight time slice definition
    (check-in/out times) and its unit groups (capacity)."""
    location = payload.get("location") or {}
    country_code = str(location.get("countryCode") or "")
    overnight = next(
        (d for d in time_slice_definitions if d.get("template") in ("OverNight", None)), {}
    )
    capacities = [int(g.get("maxPersons") or 0) for g in unit_groups]
    street = ", ".join(
        str(part) for part in (location.get("addressLine1"), location.get("addressLine2")) if part
    )
    return Property(
        id=str(payload["id"]),
        name=localized(payload.get("name")) or str(payload["id"]),
        kind="property",
        description=localized(payload.get("description")) or None,
        address=Address(
            street=street or "",
            postal_code=location.get("postalCode"),
            city=str(location.get("city") or ""),
            region=location.get("regionCode"),
            country=_COUNTRIES.get(country_code, country_code),
            country_code=country_code or None,
        ),
        timezone=str(payload.get("timeZone") or "UTC"),
        currency=str(payload.get("currencyCode") or "EUR"),
        check_in_time=_time(overnight.get("checkInTime")),
        check_out_time=_time(overnight.get("checkOutTime")),
        max_guests=max(capacities, default=0) or 1,
    )


def reservation_from_apaleo(payload: Mapping[str, Any], *, code: str | None = None) -> Reservation:
    """A reservation from GET /booking/v1/reservations(/{id}); `code` is what the guest used."""
    guest = payload.get("primaryGuest") or {}
    prop = payload.get("property") or {}
    unit = payload.get("unit") or {}
    unit_group = payload.get("unitGroup") or {}
    rate_plan = payload.get("ratePlan") or {}
    total = payload.get("totalGrossAmount")
    extras = tuple(
        localized((item.get("service") or {}).get("name"))
        for item in payload.get("services") or ()
        if (item.get("service") or {}).get("name")
    )
    return Reservation(
        id=str(payload["id"]),
        code=code or str(payload.get("externalCode") or payload["id"]),
        property_id=str(prop.get("id") or ""),
        property_name=localized(prop.get("name")) or str(prop.get("id") or ""),
        status=_STATUS.get(str(payload.get("status")), "confirmed"),
        arrival=day(payload["arrival"]),
        departure=day(payload["departure"]),
        adults=max(1, int(payload.get("adults") or 1)),
        children=len(payload.get("childrenAges") or ()),
        guest_first_name=guest.get("firstName"),
        guest_last_name=str(guest.get("lastName") or ""),
        unit_name=localized(unit.get("name")) or localized(unit_group.get("name")) or None,
        unit_group_id=unit_group.get("id"),
        rate_plan_id=rate_plan.get("id"),
        total=money(total) if total else None,
        email_hint=mask_email(guest.get("email")),
        phone_hint=mask_phone(guest.get("phone")),
        extras=extras,
    )


def nightly_availability(payload: Mapping[str, Any] | None) -> dict[str, dict[date, int]]:
    """unit group id → night → availableCount, from GET /availability/v1/unit-groups."""
    result: dict[str, dict[date, int]] = {}
    for time_slice in (payload or {}).get("timeSlices") or ():
        night = day(time_slice["from"])
        for item in time_slice.get("unitGroups") or ():
            group_id = str((item.get("unitGroup") or {}).get("id"))
            result.setdefault(group_id, {})[night] = int(item.get("availableCount") or 0)
    return result


def quote_from_offer(
    offer: Mapping[str, Any], *, property_id: str, adults: int, children: int = 0
) -> Quote:
    """A quote from one stay offer of GET /booking/v1/offers.

    Apaleo's totalGrossAmount includes VAT (listed as included taxes) and fees; city taxes
    are charged on top.
    """
    total = money(offer.get("totalGrossAmount"))
    currency = total.currency
    nights = tuple(
        NightlyRate(night=day(s["from"]), amount=money(s.get("totalGrossAmount"), currency))
        for s in offer.get("timeSlices") or ()
    )
    fees = tuple(
        Charge(
            name=localized(fee.get("name")) or "Fee", amount=money(fee.get("totalAmount"), currency)
        )
        for fee in offer.get("fees") or ()
    )
    taxes: list[Charge] = [
        Charge(
            name=f"VAT {Decimal(str(detail.get('vatPercent', 0))).normalize()}%",
            amount=money(detail.get("tax"), currency),
            included=True,
        )
        for detail in offer.get("taxDetails") or ()
        if Decimal(str((detail.get("tax") or {}).get("amount", 0))) > 0
    ]
    for city_tax in offer.get("cityTaxes") or ():
        charge = money(city_tax.get("totalGrossAmount"), currency)
        taxes.append(Charge(name=localized(city_tax.get("name")) or "City tax", amount=charge))
        total = total + charge
    return Quote(
        property_id=property_id,
        arrival=day(offer["arrival"]),
        departure=day(offer["departure"]),
        adults=adults,
        children=children,
        currency=currency,
        nights=nights,
        fees=fees,
        taxes=tuple(taxes),
        total=total,
        rate_plan=localized((offer.get("ratePlan") or {}).get("name")) or None,
    )


def _service_kind(service: Mapping[str, Any]) -> OfferKind:
    text = f"{service.get('code', '')} {localized(service.get('name'))}".lower()
    if "early" in text or "eci" in text.split():
        return "early_check_in"
    if "late" in text or "lco" in text.split():
        return "late_checkout"
    return "extra"


def upsell_from_service_offer(item: Mapping[str, Any], currency: str) -> UpsellOffer:
    """An offer from GET /booking/v1/reservations/{id}/service-offers (`services[]`)."""
    service = item.get("service") or {}
    total = item.get("totalAmount") or {}
    price = money(
        {"amount": total.get("grossAmount", 0), "currency": total.get("currency")}, currency
    )
    return UpsellOffer(
        id=f"{SERVICE_OFFER_PREFIX}{service['id']}",
        kind=_service_kind(service),
        name=localized(service.get("name")) or str(service.get("code") or service["id"]),
        description=localized(service.get("description")) or None,
        price=price,
        service_id=str(service["id"]),
    )
