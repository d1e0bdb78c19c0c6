"""The embedded demo PMS: a SQLite file created on first use from the shipped seed.

The calendar rolls: the seed's reservations are placed relative to the clock's date when the
file is created, and whenever the date moves on every stay date moves with it, so the demo
always has past, current and upcoming stays. Inject a clock for deterministic runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path

import aiosqlite

from tools.pms.calendar import GapNightPolicy
from tools.pms.clock import Clock, utc_now
from tools.pms.demo import pricing
from tools.pms.demo.seed import DEFAULT_SEED_PATH, PropertySpec, Seed, load_seed
from tools.pms.demo.store import (
    ReservationRow,
    SeededStay,
    create_and_seed,
    row_to_reservation_row,
)
from tools.pms.errors import OfferUnavailable, StayRejected
from tools.pms.matching import names_match, normalize_code
from tools.pms.models import (
    Availability,
    FeedbackReceipt,
    Money,
    Property,
    PropertySummary,
    Quote,
    Reservation,
    ReservationStatus,
    UpsellOffer,
    UpsellReceipt,
)
from tools.pms.offers import gap_night_offers
from tools.pms.phrases import (
    NO_LONGER_OFFERED,
    RESERVATION_GONE,
    mask_email,
    mask_phone,
    unknown_property,
)
from tools.pms.receipts import feedback_receipt, require_rating, upsell_receipt
from tools.pms.stay import local_today, nights_between, quote_of, stay_problem

__all__ = ["DemoPMS"]

_NEXT_WINDOW_SEARCH_DAYS = 90


class DemoPMS:
    """`PMS` backed by a local SQLite file; safe for several workers sharing the file."""

    backend = "demo"

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock | None = None,
        gap_policy: GapNightPolicy | None = None,
        seed_path: Path = DEFAULT_SEED_PATH,
        rolling: bool = True,
        timeout_s: float = 5.0,
    ) -> None:
        self._path = Path(path)
        self._clock = clock or utc_now
        self._policy = gap_policy or GapNightPolicy()
        self._seed_path = seed_path
        self._rolling = rolling
        self._timeout_s = timeout_s
        self._conn: aiosqlite.Connection | None = None
        self._specs: dict[str, PropertySpec] = {}
        self._anchor: date | None = None
        self._open_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def _db(self) -> aiosqlite.Connection:
        if self._conn is None:
            async with self._open_lock:
                if self._conn is None:
                    self._conn = await self._open()
        if self._rolling and self._anchor != self._clock().date():
            await self._roll(self._conn)
        return self._conn

    async def _open(self) -> aiosqlite.Connection:
        seed = await asyncio.to_thread(load_seed, self._seed_path)
        await asyncio.to_thread(self._path.parent.mkdir, parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self._path, timeout=self._timeout_s, isolation_level=None)
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute("PRAGMA foreign_keys = ON")
            await create_and_seed(
                conn, seed, anchor=self._clock().date(), stays=self._price_seed(seed)
            )
            cursor = await conn.execute("SELECT spec FROM properties ORDER BY id")
            rows = await cursor.fetchall()
            specs = [PropertySpec.model_validate_json(row["spec"]) for row in rows]
            self._specs = {spec.id: spec for spec in specs}
            self._anchor = await self._read_anchor(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    def _price_seed(self, seed: Seed) -> dict[str, SeededStay]:
        specs = {spec.id: spec for spec in seed.properties}
        anchor = self._clock().date()
        stays: dict[str, SeededStay] = {}
        for res in seed.reservations:
            spec = specs[res.property_id]
            arrival = anchor + timedelta(days=res.arrival_offset)
            departure = arrival + timedelta(days=res.nights)
            total = pricing.quote(spec, arrival, departure, res.adults, res.children).total
            extras: list[tuple[str, str]] = []
            for extra_id in res.extras:
                extra = spec.extra(extra_id)
                if extra is None:
                    raise ValueError(f"seed reservation {res.code} books unknown extra {extra_id}")
                nights = res.nights if extra.pricing == "per_night" else 1
                total = total + Money(amount=extra.price * nights, currency=spec.currency)
                extras.append((extra.id, extra.name))
            stays[res.code] = SeededStay(total=total, extras=tuple(extras))
        return stays

    @staticmethod
    async def _read_anchor(conn: aiosqlite.Connection) -> date:
        cursor = await conn.execute("SELECT value FROM meta WHERE key = 'anchor'")
        row = await cursor.fetchone()
        if row is None:
            raise RuntimeError("demo PMS database has no anchor date")
        return date.fromisoformat(row["value"])

    @asynccontextmanager
    async def _writing(self, conn: aiosqlite.Connection) -> AsyncIterator[None]:
        """One write transaction at a time in this process; `BEGIN IMMEDIATE` across processes."""
        async with self._write_lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise

    async def _roll(self, conn: aiosqlite.Connection) -> None:
        """Shift every stay by the days elapsed since the anchor, once per date change."""
        today = self._clock().date()
        async with self._writing(conn):
            anchor = await self._read_anchor(conn)
            shift = (today - anchor).days
            if shift:
                modifier = f"{shift:+d} days"
                await conn.execute(
                    "UPDATE reservations SET arrival = date(arrival, ?), "
                    "departure = date(departure, ?)",
                    (modifier, modifier),
                )
                await conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'anchor'", (today.isoformat(),)
                )
        self._anchor = today

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # -- lookups ---------------------------------------------------------------------------

    def _spec(self, property_id: str) -> PropertySpec | None:
        return self._specs.get(property_id)

    def _require_spec(self, property_id: str) -> PropertySpec:
        spec = self._spec(property_id)
        if spec is None:
            raise StayRejected(unknown_property("homes"))
        return spec

    def _today(self, spec: PropertySpec) -> date:
        return local_today(self._clock(), spec.timezone)

    async def list_properties(self) -> list[PropertySummary]:
        await self._db()
        return [spec.public().summary() for spec in self._specs.values()]

    async def get_property(self, property_id: str) -> Property | None:
        await self._db()
        spec = self._spec(property_id)
        return None if spec is None else spec.public()

    async def _row(self, conn: aiosqlite.Connection, code: str) -> ReservationRow | None:
        cursor = await conn.execute(
            "SELECT * FROM reservations WHERE code_key = ?", (normalize_code(code),)
        )
        return row_to_reservation_row(await cursor.fetchone())

    async def _extras(self, conn: aiosqlite.Connection, code: str) -> dict[str, str]:
        cursor = await conn.execute(
            "SELECT extra_id, name FROM reservation_extras WHERE reservation_code = ? "
            "ORDER BY rowid",
            (code,),
        )
        return {row["extra_id"]: row["name"] for row in await cursor.fetchall()}

    def _status(self, row: ReservationRow, spec: PropertySpec) -> ReservationStatus:
        if row.status == "cancelled":
            return "cancelled"
        if row.status == "no_show":
            return "no_show"
        today = self._today(spec)
        if row.departure < today:
            return "checked_out"
        if row.arrival < today:
            return "in_house"
        return "confirmed"

    async def _to_model(self, conn: aiosqlite.Connection, row: ReservationRow) -> Reservation:
        spec = self._require_spec(row.property_id)
        extras = await self._extras(conn, row.code)
        return Reservation(
            id=row.code,
            code=row.code,
            property_id=row.property_id,
            property_name=spec.name,
            status=self._status(row, spec),
            arrival=row.arrival,
            departure=row.departure,
            adults=row.adults,
            children=row.children,
            guest_first_name=row.first_name,
            guest_last_name=row.last_name,
            unit_name=spec.unit_name,
            total=Money(amount=row.total_amount, currency=row.currency),
            email_hint=mask_email(row.email),
            phone_hint=mask_phone(row.phone),
            extras=tuple(extras.values()),
        )

    async def find_reservation(self, code: str, last_name: str) -> Reservation | None:
        conn = await self._db()
        row = await self._row(conn, code)
        if row is None or not names_match(last_name, row.last_name):
            return None
        return await self._to_model(conn, row)

    async def list_reservations(
        self, property_id: str, start: date, end: date
    ) -> list[Reservation]:
        conn = await self._db()
        self._require_spec(property_id)
        cursor = await conn.execute(
            "SELECT * FROM reservations WHERE property_id = ? AND arrival < ? AND departure > ? "
            "ORDER BY arrival",
            (property_id, end.isoformat(), start.isoformat()),
        )
        rows = [ReservationRow(row) for row in await cursor.fetchall()]
        return [await self._to_model(conn, row) for row in rows]

    async def _occupied(
        self,
        conn: aiosqlite.Connection,
        property_id: str,
        start: date,
        end: date,
        *,
        exclude: str | None = None,
    ) -> set[date]:
        """Nights in [start, end) taken by live bookings (other than `exclude`)."""
        cursor = await conn.execute(
            "SELECT code, arrival, departure FROM reservations WHERE property_id = ? "
            "AND status = 'booked' AND arrival < ? AND departure > ?",
            (property_id, end.isoformat(), start.isoformat()),
        )
        nights: set[date] = set()
        for row in await cursor.fetchall():
            if row["code"] == exclude:
                continue
            nights.update(
                nights_between(
                    date.fromisoformat(row["arrival"]), date.fromisoformat(row["departure"])
                )
            )
        return {night for night in nights if start <= night < end}

    # -- availability and prices -------------------------------------------------------------

    def _check(self, spec: PropertySpec, arrival: date, departure: date, guests: int) -> None:
        problem = stay_problem(arrival, departure, guests, today=self._today(spec), prop=spec)
        if problem:
            raise StayRejected(problem)

    async def check_availability(
        self, property_id: str, arrival: date, departure: date, guests: int
    ) -> Availability:
        conn = await self._db()
        spec = self._require_spec(property_id)
        self._check(spec, arrival, departure, guests)
        length = (departure - arrival).days
        horizon = departure + timedelta(days=_NEXT_WINDOW_SEARCH_DAYS + length)
        occupied = await self._occupied(conn, property_id, arrival, horizon)
        blocked = tuple(n for n in nights_between(arrival, departure) if n in occupied)
        return Availability(
            property_id=property_id,
            arrival=arrival,
            departure=departure,
            guests=guests,
            available=not blocked,
            unavailable_nights=blocked,
            min_nights=spec.min_nights,
            next_window=_next_window(occupied, arrival, length) if blocked else None,
            quote=None if blocked else pricing.quote(spec, arrival, departure, guests, 0),
        )

    async def quote_stay(
        self, property_id: str, arrival: date, departure: date, guests: int
    ) -> Quote:
        availability = await self.check_availability(property_id, arrival, departure, guests)
        return quote_of(availability, name=self._require_spec(property_id).name)

    # -- upsells and gap nights ----------------------------------------------------------------

    async def _upsell_offers(
        self, conn: aiosqlite.Connection, reservation: Reservation
    ) -> tuple[list[UpsellOffer], dict[str, str]]:
        """(offers still possible, extras already booked by id)."""
        booked = await self._extras(conn, reservation.code)
        if not reservation.is_active:
            return [], booked
        spec = self._require_spec(reservation.property_id)
        today = self._today(spec)
        occupied = await self._occupied(
            conn,
            reservation.property_id,
            reservation.arrival - timedelta(days=1),
            reservation.departure + timedelta(days=1),
            exclude=reservation.code,
        )
        offers: list[UpsellOffer] = []
        for extra in spec.extras:
            if extra.id in booked:
                continue
            if extra.kind == "early_check_in" and (
                reservation.arrival < today or reservation.arrival - timedelta(days=1) in occupied
            ):
                continue
            if extra.kind == "late_checkout" and (
                reservation.departure < today or reservation.departure in occupied
            ):
                continue
            nights = 1
            if extra.pricing == "per_night":
                nights = (reservation.departure - max(reservation.arrival, today)).days
                if nights < 1:
                    continue
            offers.append(
                UpsellOffer(
                    id=extra.id,
                    kind=extra.kind,
                    name=extra.name,
                    description=extra.description,
                    price=Money(amount=extra.price * nights, currency=spec.currency),
                    time=extra.time,
                )
            )
        return offers, booked

    async def _gap_offers(
        self, conn: aiosqlite.Connection, reservation: Reservation
    ) -> list[UpsellOffer]:
        if not reservation.is_active:
            return []
        spec = self._require_spec(reservation.property_id)
        start, end = self._policy.search_window(reservation.arrival, reservation.departure)
        occupied = await self._occupied(
            conn, reservation.property_id, start, end, exclude=reservation.code
        )

        async def price(nights: Sequence[date]) -> tuple[Money, Money]:
            return pricing.price_nights(
                spec,
                nights,
                adults=reservation.adults,
                discount_percent=self._policy.discount_percent,
            )

        return await gap_night_offers(
            reservation,
            lambda night: night not in occupied,
            today=self._today(spec),
            policy=self._policy,
            price=price,
        )

    async def list_upsell_offers(self, reservation: Reservation) -> list[UpsellOffer]:
        conn = await self._db()
        offers, _ = await self._upsell_offers(conn, await self._current(conn, reservation))
        return offers

    async def list_gap_night_offers(self, reservation: Reservation) -> list[UpsellOffer]:
        conn = await self._db()
        return await self._gap_offers(conn, await self._current(conn, reservation))

    async def _current(self, conn: aiosqlite.Connection, reservation: Reservation) -> Reservation:
        """The reservation as stored now (dates may have changed since it was read)."""
        row = await self._row(conn, reservation.code)
        if row is None:
            raise OfferUnavailable(RESERVATION_GONE)
        return await self._to_model(conn, row)

    async def _replay(self, conn: aiosqlite.Connection, key: str) -> UpsellReceipt | None:
        cursor = await conn.execute(
            "SELECT receipt FROM requests WHERE idempotency_key = ?", (key,)
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        receipt = UpsellReceipt.model_validate_json(row["receipt"])
        return receipt.model_copy(update={"replayed": True})

    async def request_upsell(
        self, reservation: Reservation, offer_id: str, *, idempotency_key: str
    ) -> UpsellReceipt:
        conn = await self._db()
        async with self._writing(conn):
            receipt = await self._replay(conn, idempotency_key)
            if receipt is None:
                receipt = await self._book(conn, reservation, offer_id, idempotency_key)
        return receipt

    async def _book(
        self, conn: aiosqlite.Connection, reservation: Reservation, offer_id: str, key: str
    ) -> UpsellReceipt:
        current = await self._current(conn, reservation)
        offers, booked = await self._upsell_offers(conn, current)
        offers += await self._gap_offers(conn, current)
        offer = next((o for o in offers if o.id == offer_id), None)
        if offer is None:
            if offer_id in booked:
                raise OfferUnavailable(f"{booked[offer_id]} is already on your reservation.")
            raise OfferUnavailable(NO_LONGER_OFFERED)
        new_arrival, new_departure = current.arrival, current.departure
        if offer.kind == "gap_night":
            new_arrival = min(current.arrival, offer.nights[0])
            new_departure = max(current.departure, offer.nights[-1] + timedelta(days=1))
        else:
            await conn.execute(
                "INSERT INTO reservation_extras (reservation_code, extra_id, name) "
                "VALUES (?, ?, ?)",
                (current.code, offer.id, offer.name),
            )
        total = (current.total or Money.zero(offer.price.currency)) + offer.price
        await conn.execute(
            "UPDATE reservations SET arrival = ?, departure = ?, total_amount = ? WHERE code = ?",
            (new_arrival.isoformat(), new_departure.isoformat(), str(total.amount), current.code),
        )
        receipt = upsell_receipt(
            offer,
            reservation_code=current.code,
            status="confirmed",
            created_at=self._clock(),
            new_arrival=new_arrival if new_arrival != current.arrival else None,
            new_departure=new_departure if new_departure != current.departure else None,
        )
        await conn.execute(
            "INSERT INTO requests (idempotency_key, reservation_code, offer_id, receipt, "
            "created_at) VALUES (?, ?, ?, ?, ?)",
            (
                key,
                current.code,
                offer.id,
                receipt.model_dump_json(),
                receipt.created_at.isoformat(),
            ),
        )
        return receipt

    async def leave_feedback(
        self, reservation: Reservation, rating: int, comment: str, *, idempotency_key: str
    ) -> FeedbackReceipt:
        require_rating(rating)
        conn = await self._db()
        async with self._writing(conn):
            cursor = await conn.execute(
                "SELECT receipt FROM feedback WHERE idempotency_key = ?", (idempotency_key,)
            )
            row = await cursor.fetchone()
            if row is not None:
                return FeedbackReceipt.model_validate_json(row["receipt"]).model_copy(
                    update={"replayed": True}
                )
            receipt = feedback_receipt(reservation.code, rating, created_at=self._clock())
            await conn.execute(
                "INSERT INTO feedback (idempotency_key, reservation_code, property_id, "
                "rating, comment, receipt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    idempotency_key,
                    reservation.code,
                    reservation.property_id,
                    rating,
                    comment.strip(),
                    receipt.model_dump_json(),
                    receipt.created_at.isoformat(),
                ),
            )
        return receipt

    async def feedback_count(self, reservation_code: str) -> int:
        """How many feedback entries a reservation has (for staff tooling and tests)."""
        conn = await self._db()
        cursor = await conn.execute(
            "SELECT COUNT(*) AS n FROM feedback WHERE reservation_code = ?", (reservation_code,)
        )
        row = await cursor.fetchone()
        return int(row["n"]) if row is not None else 0


def _next_window(occupied: set[date], arrival: date, length: int) -> tuple[date, date] | None:
    """The first stay of the same length, starting on a later day, with no night taken."""
    for shift in range(1, _NEXT_WINDOW_SEARCH_DAYS + 1):
        start = arrival + timedelta(days=shift)
        end = start + timedelta(days=length)
        if not any(n in occupied for n in nights_between(start, end)):
            return start, end
    return None
