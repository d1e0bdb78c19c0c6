"""Calendar rules shared by the backends: gap nights and same-day turnovers.

A gap is a short run of free nights squeezed between a reservation and the next booking
(or today, looking backwards) — nights that rarely sell on their own, so they are offered to
the adjacent guest at a discount. A run longer than the policy's maximum is open calendar,
not a gap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

__all__ = ["GapNightPolicy", "GapRun", "find_gaps"]

Side = Literal["before", "after"]


@dataclass(frozen=True, slots=True)
class GapNightPolicy:
    """How gap nights are offered: the discount and the longest run that still counts."""

    discount_percent: int = 25
    max_nights: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.discount_percent < 100:
            raise ValueError("gap-night discount must be between 0 and 99 percent")
        if self.max_nights < 1:
            raise ValueError("gap-night maximum must be at least one night")

    def search_window(self, arrival: date, departure: date) -> tuple[date, date]:
        """[start, end) around a stay: one night past the longest gap shows a run is bounded."""
        reach = timedelta(days=self.max_nights + 1)
        return arrival - reach, departure + reach


@dataclass(frozen=True, slots=True)
class GapRun:
    side: Side
    nights: tuple[date, ...]  # in calendar order


def _run(
    start: date, step: int, is_free: Callable[[date], bool], today: date, limit: int
) -> tuple[list[date], bool]:
    """Free nights walking from `start` by `step` days; bounded when a blocked night ends them."""
    nights: list[date] = []
    night = start
    while len(nights) <= limit:
        if night < today or not is_free(night):
            return nights, True
        nights.append(night)
        night += timedelta(days=step)
    return nights, False


def find_gaps(
    arrival: date,
    departure: date,
    is_free: Callable[[date], bool],
    *,
    today: date,
    policy: GapNightPolicy,
) -> list[GapRun]:
    """The bounded runs of free nights right before arrival and right after departure.

    `is_free(night)` says whether the night starting on that date is unbooked; nights before
    `today` count as blocked (they can no longer be sold).
    """
    gaps: list[GapRun] = []
    before, bounded = _run(arrival - timedelta(days=1), -1, is_free, today, policy.max_nights)
    if before and bounded:
        gaps.append(GapRun(side="before", nights=tuple(sorted(before))))
    after, bounded = _run(departure, 1, is_free, today, policy.max_nights)
    if after and bounded:
        gaps.append(GapRun(side="after", nights=tuple(after)))
    return gaps
