"""Say dates, times, money and lists the way a person would on the phone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from tools.pms.models import Money

__all__ = [
    "join_words",
    "mask_email",
    "mask_phone",
    "plural",
    "say_date",
    "say_money",
    "say_range",
    "say_time",
]

_CURRENCY_WORDS = {
    "USD": ("dollar", "dollars"),
    "EUR": ("euro", "euros"),
    "GBP": ("pound", "pounds"),
    "AUD": ("Australian dollar", "Australian dollars"),
    "CAD": ("Canadian dollar", "Canadian dollars"),
}


def say_date(day: date, *, today: date | None = None) -> str:
    """'Friday, March 14', with the year only when it is not the current one."""
    text = f"{day:%A}, {day:%B} {day.day}"
    if today is not None and day.year != today.year:
        text += f", {day.year}"
    return text


def say_range(start: date, end: date, *, today: date | None = None) -> str:
    return f"{say_date(start, today=today)} to {say_date(end, today=today)}"


def say_time(value: str | None) -> str:
    """'16:00' → '4 PM', '12:00' → 'noon', '10:30' → '10:30 AM'; other text unchanged."""
    if not value:
        return "the usual time"
    try:
        hour_text, minute_text = value.strip()[:5].split(":")
        hour, minute = int(hour_text), int(minute_text)
    except ValueError:
        return value
    if not (0 <= hour < 24 and 0 <= minute < 60):
        return value
    if minute == 0 and hour == 12:
        return "noon"
    if minute == 0 and hour == 0:
        return "midnight"
    suffix = "AM" if hour < 12 else "PM"
    hour12 = hour % 12 or 12
    return f"{hour12} {suffix}" if minute == 0 else f"{hour12}:{minute:02d} {suffix}"


def _amount(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def say_money(money: Money) -> str:
    """'189 euros', '1,240.50 dollars', 'CHF 240'."""
    number = _amount(money.amount)
    words = _CURRENCY_WORDS.get(money.currency)
    if words is None:
        return f"{money.currency} {number}"
    singular, many = words
    return f"{number} {singular if money.amount == 1 else many}"


def plural(count: int, noun: str, many: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def join_words(items: Sequence[str], *, conjunction: str = "and") -> str:
    """'a, b and c'; items that contain commas are separated by semicolons instead."""
    items = [item for item in items if item]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    separator = "; " if any("," in item for item in items) else ", "
    last = f"{separator.strip()} {conjunction}" if separator == "; " else f" {conjunction}"
    return f"{separator.join(items[:-1])}{last} {items[-1]}"


def mask_email(email: str | None) -> str | None:
    """'maria.garcia@example.es' → 'm…@example.es' (never the full address)."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}" if local else None


def mask_phone(phone: str | None) -> str | None:
    """Only the last two digits: 'ending in 21'."""
    digits = [ch for ch in phone or "" if ch.isdigit()]
    if len(digits) < 4:
        return None
    return f"ending in {''.join(digits[-2:])}"
