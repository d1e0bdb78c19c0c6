"""Read the dates a caller (or a model) gives, and reject stays that make no sense.

Every problem comes back as a sentence the agent can say, never as an exception.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.pms.errors import StayRejected
from tools.pms.models import Availability, Property, Quote
from tools.pms.phrases import cannot_quote, say_date

__all__ = [
    "MAX_ADVANCE_DAYS",
    "MAX_NIGHTS",
    "local_today",
    "nights_between",
    "parse_day",
    "quote_of",
    "stay_problem",
]

MAX_NIGHTS = 30
MAX_ADVANCE_DAYS = 730

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_ISO = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_MONTH_FIRST = re.compile(r"^([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?$")
_DAY_FIRST = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]+)\.?(?:,?\s+(\d{4}))?$")
_WEEKDAY_PREFIX = re.compile(
    r"^(monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun)"
    r"[.,]?\s+"
)


def local_today(now: datetime, timezone: str | None) -> date:
    """The calendar date at the property right now (UTC when the zone is unknown)."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date()


def _build(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_day(text: str | None, *, today: date) -> date | None:
    """ISO dates, 'today'/'tomorrow', 'March 14', '14 March 2026'; None when unreadable.

    Without a year, the next occurrence on or after today is meant.
    """
    if not text:
        return None
    cleaned = " ".join(text.strip().lower().split())
    if cleaned in ("today", "tonight"):
        return today
    if cleaned == "tomorrow":
        return today + timedelta(days=1)
    if match := _ISO.match(cleaned):
        return _build(int(match[1]), int(match[2]), int(match[3]))
    cleaned = _WEEKDAY_PREFIX.sub("", cleaned)
    month_name, day_text, year_text = "", "", None
    if match := _MONTH_FIRST.match(cleaned):
        month_name, day_text, year_text = match[1], match[2], match[3]
    elif match := _DAY_FIRST.match(cleaned):
        day_text, month_name, year_text = match[1], match[2], match[3]
    month = _MONTHS.get(month_name)
    if month is None or not day_text:
        return None
    if year_text:
        return _build(int(year_text), month, int(day_text))
    candidate = _build(today.year, month, int(day_text))
    if candidate is not None and candidate < today:
        candidate = _build(today.year + 1, month, int(day_text))
    return candidate


def nights_between(arrival: date, departure: date) -> list[date]:
    return [arrival + timedelta(days=i) for i in range((departure - arrival).days)]


def stay_problem(
    arrival: date,
    departure: date,
    guests: int,
    *,
    today: date,
    prop: Property,
) -> str | None:
    """Why this stay cannot be booked as asked, in one sentence; None when it is plausible."""
    if departure <= arrival:
        return (
            "The check-out date has to be after the check-in date. "
            "Which nights would you like to stay?"
        )
    if arrival < today:
        return (
            f"{say_date(arrival, today=today)} is already in the past. "
            "Which dates from today onwards would you like?"
        )
    if (arrival - today).days > MAX_ADVANCE_DAYS:
        return "I can only look at dates within the next two years."
    nights = (departure - arrival).days
    if nights > MAX_NIGHTS:
        return (
            f"That would be {nights} nights; I can look up stays of up to {MAX_NIGHTS} nights. "
            "For a longer stay, please contact the team directly."
        )
    if guests < 1:
        return "How many guests will be staying?"
    if guests > prop.max_guests:
        return (
            f"{prop.name} sleeps at most {prop.max_guests} guests, "
            f"so it can't take a group of {guests}."
        )
    if nights < prop.min_nights:
        return f"The minimum stay at {prop.name} is {prop.min_nights} nights."
    return None


def quote_of(availability: Availability, *, name: str) -> Quote:
    """The stay's quote; `StayRejected` naming the taken nights when the stay has none."""
    if availability.quote is None:
        raise StayRejected(cannot_quote(name, availability.unavailable_nights))
    return availability.quote
