"""Find the gap runs next to a stay and turn them into gap-night offers priced by the backend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta

from tools.pms.calendar import GapNightPolicy, GapRun, find_gaps
from tools.pms.errors import OfferUnavailable
from tools.pms.models import Money, Reservation, UpsellOffer
from tools.pms.phrases import plural, say_date

__all__ = ["GapPricer", "gap_night_offers", "gap_offer_id"]

# (nights) -> (discounted price, regular price)
GapPricer = Callable[[Sequence[date]], Awaitable[tuple[Money, Money]]]


def gap_offer_id(side: str, count: int) -> str:
    return f"gap-{side}-{count}"


def _options(run: GapRun) -> list[tuple[date, ...]]:
    """The whole gap, plus a single night when the gap is longer (both stay contiguous)."""
    counts = sorted({len(run.nights), 1}, reverse=True)
    if run.side == "after":
        return [run.nights[:count] for count in counts]
    return [run.nights[-count:] for count in counts]


async def gap_night_offers(
    reservation: Reservation,
    is_free: Callable[[date], bool],
    *,
    today: date,
    policy: GapNightPolicy,
    price: GapPricer,
) -> list[UpsellOffer]:
    """Offers for the bounded free runs around the stay; a run the backend cannot price
    (`OfferUnavailable`) is left out, the others are still offered."""
    runs = find_gaps(
        reservation.arrival, reservation.departure, is_free, today=today, policy=policy
    )
    offers: list[UpsellOffer] = []
    for run in runs:
        try:
            offers += await _run_offers(run, policy=policy, price=price)
        except OfferUnavailable:
            continue
    return offers


async def _run_offers(
    run: GapRun, *, policy: GapNightPolicy, price: GapPricer
) -> list[UpsellOffer]:
    offers: list[UpsellOffer] = []
    for nights in _options(run):
        count = len(nights)
        discounted, regular = await price(nights)
        if run.side == "after":
            until = nights[-1] + timedelta(days=1)
            name = f"Stay {plural(count, 'more night')}, until {say_date(until)}"
            description = f"Extend your stay so you check out on {say_date(until)}."
        else:
            name = f"Arrive {plural(count, 'night')} earlier, on {say_date(nights[0])}"
            description = f"Start your stay on {say_date(nights[0])} instead."
        offers.append(
            UpsellOffer(
                id=gap_offer_id(run.side, count),
                kind="gap_night",
                name=name,
                description=description,
                price=discounted,
                regular_price=regular,
                discount_percent=policy.discount_percent,
                nights=tuple(nights),
            )
        )
    return offers
