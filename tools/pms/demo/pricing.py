"""Prices for the demo PMS: nightly rates by weekday and season, cleaning fee, local taxes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from tools.pms.demo.seed import PropertySpec
from tools.pms.models import Charge, Money, NightlyRate, Quote
from tools.pms.stay import nights_between

__all__ = ["nightly_rate", "price_nights", "quote"]

_HUNDRED = Decimal(100)


def nightly_rate(spec: PropertySpec, night: date) -> Money:
    rates = spec.rates
    amount = rates.weekend if night.weekday() in rates.weekend_nights else rates.base
    for season in rates.seasons:
        if night.month in season.months:
            amount = amount * season.multiplier
            break
    return Money(amount=amount, currency=spec.currency)


def _taxes(spec: PropertySpec, taxable: Money, nights: int, adults: int) -> tuple[Charge, ...]:
    charges = []
    for tax in spec.taxes:
        amount = Decimal(0)
        if tax.percent is not None:
            amount += taxable.amount * tax.percent / _HUNDRED
        if tax.per_adult_night is not None:
            amount += tax.per_adult_night * nights * adults
        charges.append(Charge(name=tax.name, amount=Money(amount=amount, currency=spec.currency)))
    return tuple(charges)


def price_nights(
    spec: PropertySpec,
    nights: Sequence[date],
    *,
    adults: int,
    discount_percent: int = 0,
) -> tuple[Money, Money]:
    """(price with taxes, price before discount) for extra nights, without the cleaning fee."""
    factor = (_HUNDRED - Decimal(discount_percent)) / _HUNDRED
    regular = Money.zero(spec.currency)
    for night in nights:
        regular = regular + nightly_rate(spec, night)
    discounted = regular.times(factor)

    def with_taxes(base: Money) -> Money:
        total = base
        for charge in _taxes(spec, base, len(nights), adults):
            total = total + charge.amount
        return total

    return with_taxes(discounted), with_taxes(regular)


def quote(spec: PropertySpec, arrival: date, departure: date, adults: int, children: int) -> Quote:
    """A full stay quote: every night's rate, the cleaning fee and the taxes on top."""
    nights = tuple(
        NightlyRate(night=night, amount=nightly_rate(spec, night))
        for night in nights_between(arrival, departure)
    )
    accommodation = Money.zero(spec.currency)
    for night in nights:
        accommodation = accommodation + night.amount
    cleaning = Money(amount=spec.cleaning_fee, currency=spec.currency)
    taxes = _taxes(spec, accommodation + cleaning, len(nights), adults)
    total = accommodation + cleaning
    for tax in taxes:
        total = total + tax.amount
    return Quote(
        property_id=spec.id,
        arrival=arrival,
        departure=departure,
        adults=adults,
        children=children,
        currency=spec.currency,
        nights=nights,
        fees=(Charge(name="Cleaning fee", amount=cleaning),),
        taxes=taxes,
        total=total,
        rate_plan="Flexible rate",
    )
