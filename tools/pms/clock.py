"""The clock the PMS layer reads; injectable so tests and demos are deterministic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "fixed_clock", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def fixed_clock(moment: datetime) -> Clock:
    """A clock frozen at `moment` (naive values are taken as UTC)."""
    frozen = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return lambda: frozen
