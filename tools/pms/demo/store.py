"""SQLite schema and row access for the demo PMS (no business rules here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import aiosqlite

from tools.pms.demo.seed import Seed
from tools.pms.matching import normalize_code
from tools.pms.models import Money

__all__ = [
    "SCHEMA",
    "ReservationRow",
    "SeededStay",
    "create_and_seed",
    "row_to_reservation_row",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS properties (id TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    code TEXT PRIMARY KEY,
    code_key TEXT NOT NULL UNIQUE,
    property_id TEXT NOT NULL REFERENCES properties(id),
    status TEXT NOT NULL CHECK (status IN ('booked', 'cancelled', 'no_show')),
    arrival TEXT NOT NULL,
    departure TEXT NOT NULL,
    adults INTEGER NOT NULL,
    children INTEGER NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL,
    card_brand TEXT NOT NULL,
    card_last4 TEXT NOT NULL,
    card_holder TEXT NOT NULL,
    card_expiry TEXT NOT NULL,
    total_amount TEXT NOT NULL,
    currency TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_by_property ON reservations(property_id, arrival);
CREATE TABLE IF NOT EXISTS reservation_extras (
    reservation_code TEXT NOT NULL REFERENCES reservations(code),
    extra_id TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (reservation_code, extra_id)
);
CREATE TABLE IF NOT EXISTS requests (
    idempotency_key TEXT PRIMARY KEY,
    reservation_code TEXT NOT NULL REFERENCES reservations(code),
    offer_id TEXT NOT NULL,
    receipt TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    idempotency_key TEXT PRIMARY KEY,
    reservation_code TEXT NOT NULL REFERENCES reservations(code),
    property_id TEXT NOT NULL,
    rating INTEGER NOT NULL,
    comment TEXT NOT NULL,
    receipt TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


class ReservationRow:
    """One reservations row, typed; the private columns never leave the demo package."""

    __slots__ = (
        "adults",
        "arrival",
        "children",
        "code",
        "currency",
        "departure",
        "email",
        "first_name",
        "last_name",
        "phone",
        "property_id",
        "status",
        "total_amount",
    )

    def __init__(self, row: aiosqlite.Row) -> None:
        self.code: str = row["code"]
        self.property_id: str = row["property_id"]
        self.status: str = row["status"]
        self.arrival = date.fromisoformat(row["arrival"])
        self.departure = date.fromisoformat(row["departure"])
        self.adults: int = row["adults"]
        self.children: int = row["children"]
        self.first_name: str = row["first_name"]
        self.last_name: str = row["last_name"]
        self.email: str = row["email"]
        self.phone: str = row["phone"]
        self.total_amount = Decimal(row["total_amount"])
        self.currency: str = row["currency"]


@dataclass(frozen=True, slots=True)
class SeededStay:
    """What the caller priced for one seed reservation: its total and its booked extras."""

    total: Money
    extras: tuple[tuple[str, str], ...]  # (extra id, name)


def row_to_reservation_row(row: aiosqlite.Row | None) -> ReservationRow | None:
    return None if row is None else ReservationRow(row)


async def create_and_seed(
    conn: aiosqlite.Connection, seed: Seed, *, anchor: date, stays: Mapping[str, SeededStay]
) -> None:
    """Create the schema and insert the seed with dates relative to `anchor` (one transaction)."""
    await conn.executescript(SCHEMA)
    await conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = await conn.execute("SELECT value FROM meta WHERE key = 'anchor'")
        if await cursor.fetchone() is not None:
            await conn.execute("ROLLBACK")
            return
        await conn.executemany(
            "INSERT INTO properties (id, spec) VALUES (?, ?)",
            [(spec.id, spec.model_dump_json()) for spec in seed.properties],
        )
        for spec in seed.reservations:
            arrival = anchor + timedelta(days=spec.arrival_offset)
            stay = stays[spec.code]
            await conn.execute(
                "INSERT INTO reservations (code, code_key, property_id, status, arrival, "
                "departure, adults, children, first_name, last_name, email, phone, card_brand, "
                "card_last4, card_holder, card_expiry, total_amount, currency) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    spec.code,
                    normalize_code(spec.code),
                    spec.property_id,
                    spec.status,
                    arrival.isoformat(),
                    (arrival + timedelta(days=spec.nights)).isoformat(),
                    spec.adults,
                    spec.children,
                    spec.first_name,
                    spec.last_name,
                    spec.email,
                    spec.phone,
                    spec.payment.brand,
                    spec.payment.last4,
                    spec.payment.holder,
                    spec.payment.expiry,
                    str(stay.total.amount),
                    stay.total.currency,
                ),
            )
            for extra_id, name in stay.extras:
                await conn.execute(
                    "INSERT INTO reservation_extras (reservation_code, extra_id, name) "
                    "VALUES (?, ?, ?)",
                    (spec.code, extra_id, name),
                )
        await conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("anchor", anchor.isoformat()), ("seed_version", str(seed.version))],
        )
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
