"""The `PMS` protocol on top of the Apaleo REST API.

Endpoints used: inventory (properties, unit groups), settings (time slice definitions for
check-in/out times), booking (reservations by externalCode / bookingId / id / textSearch,
stay offers, service offers, book-service, JSON-patch of the reservation comment) and
availability (unit groups per night).

Extras are Apaleo services offered for the reservation and are booked directly. Gap nights
and feedback have no booking endpoint of their own: they are written to the reservation's
comment for the front office, so their receipts say "requested".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from tools.pms.apaleo.client import ApaleoClient, ApaleoNotFound
from tools.pms.apaleo.mapping import (
    SERVICE_OFFER_PREFIX,
    nightly_availability,
    property_from_apaleo,
    quote_from_offer,
    reservation_from_apaleo,
    summary_from_apaleo,
    upsell_from_service_offer,
)
from tools.pms.calendar import GapNightPolicy
from tools.pms.clock import Clock, utc_now
from tools.pms.errors import OfferUnavailable, StayRejected
from tools.pms.ledger import InMemoryLedger, RequestLedger
from tools.pms.matching import names_match, normalize_code
from tools.pms.models import (
    Availability,
    FeedbackReceipt,
    Money,
    Property,
    PropertySummary,
    Quote,
    Reservation,
    UpsellOffer,
    UpsellReceipt,
)
from tools.pms.offers import gap_night_offers
from tools.pms.phrases import (
    NO_LONGER_OFFERED,
    RESERVATION_GONE,
    join_words,
    no_longer_offered,
    say_date,
    say_money,
    unknown_property,
)
from tools.pms.receipts import feedback_receipt, require_rating, upsell_receipt
from tools.pms.stay import local_today, nights_between, quote_of, stay_problem

__all__ = ["ApaleoPMS"]

_PAGE_SIZE = 100
_MAX_PAGES = 20
_EXPAND = "booker,services"
_HUNDRED = Decimal(100)

_Receipt = TypeVar("_Receipt", UpsellReceipt, FeedbackReceipt)


class ApaleoPMS:
    backend = "apaleo"

    def __init__(
        self,
        client: ApaleoClient,
        *,
        clock: Clock | None = None,
        gap_policy: GapNightPolicy | None = None,
        ledger: RequestLedger | None = None,
        channel_code: str = "Direct",
    ) -> None:
        self._client = client
        self._clock = clock or utc_now
        self._policy = gap_policy or GapNightPolicy()
        self._ledger = ledger or InMemoryLedger()
        self._channel = channel_code

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- helpers -----------------------------------------------------------------------------

    async def _pages(self, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, _MAX_PAGES + 1):
            body = await self._client.get_json(
                path, {**params, "pageNumber": page, "pageSize": _PAGE_SIZE}
            )
            batch = (body or {}).get(key) or []
            items.extend(batch)
            if not batch or len(items) >= int((body or {}).get("count") or 0):
                break
        return items

    async def _property(self, property_id: str) -> Property | None:
        try:
            payload = await self._client.get_json(f"/inventory/v1/properties/{property_id}")
        except ApaleoNotFound:
            return None
        if not payload:
            return None
        definitions = await self._client.get_json(
            f"/settings/v1/properties/{property_id}/time-slice-definitions"
        )
        groups = await self._unit_groups(property_id)
        return property_from_apaleo(
            payload,
            time_slice_definitions=(definitions or {}).get("timeSliceDefinitions") or (),
            unit_groups=groups,
        )

    async def _unit_groups(self, property_id: str) -> list[dict[str, Any]]:
        return await self._pages(
            "/inventory/v1/unit-groups", "unitGroups", {"propertyId": property_id}
        )

    async def _service_offers(self, reservation: Reservation) -> list[dict[str, Any]]:
        """The services Apaleo offers for the stay, on their default dates."""
        body = await self._client.get_json(
            f"/booking/v1/reservations/{reservation.id}/service-offers",
            {"channelCode": self._channel, "onlyDefaultDates": "true"},
        )
        return list((body or {}).get("services") or ())

    async def _require_property(self, property_id: str) -> Property:
        prop = await self._property(property_id)
        if prop is None:
            raise StayRejected(unknown_property())
        return prop

    def _today(self, prop_timezone: str) -> date:
        return local_today(self._clock(), prop_timezone)

    async def _once(
        self, key: str, kind: type[_Receipt], make: Callable[[], Awaitable[_Receipt]]
    ) -> _Receipt:
        """The receipt of the first request under `key`; a retry gets it back, marked replayed."""

        async def action() -> str:
            return (await make()).model_dump_json()

        raw, replayed = await self._ledger.run_once(key, action)
        receipt = kind.model_validate_json(raw)
        return receipt.model_copy(update={"replayed": True}) if replayed else receipt

    # -- properties and reservations --------------------------------------------------------

    async def list_properties(self) -> list[PropertySummary]:
        items = await self._pages("/inventory/v1/properties", "properties", {})
        return [summary_from_apaleo(p) for p in items if not p.get("isArchived")]

    async def get_property(self, property_id: str) -> Property | None:
        return await self._property(property_id)

    async def _by_code(self, code: str) -> list[tuple[str, dict[str, Any]]]:
        """(matched code, payload) for reservations whose externalCode, bookingId or id is
        the code said, trying those filters in that order."""
        wanted = normalize_code(code)
        spoken = " ".join(code.split())

        def owned(rows: Any) -> list[tuple[str, dict[str, Any]]]:
            matches = []
            for row in rows or ():
                ids = (row.get("externalCode"), row.get("bookingId"), row.get("id"))
                match = next((str(v) for v in ids if v and normalize_code(str(v)) == wanted), None)
                if match is not None:
                    matches.append((match, row))
            return matches

        for field in ("externalCode", "bookingId"):
            body = await self._client.get_json(
                "/booking/v1/reservations", {field: spoken, "expand": _EXPAND}
            )
            if found := owned((body or {}).get("reservations")):
                return found
        try:
            direct = await self._client.get_json(
                f"/booking/v1/reservations/{spoken}", {"expand": _EXPAND}
            )
        except ApaleoNotFound:
            direct = None
        if direct and (found := owned([direct])):
            return found
        # textSearch also matches names; only rows that own the code count.
        body = await self._client.get_json(
            "/booking/v1/reservations", {"textSearch": spoken, "expand": _EXPAND}
        )
        return owned((body or {}).get("reservations"))

    async def find_reservation(self, code: str, last_name: str) -> Reservation | None:
        if not normalize_code(code):
            return None
        matches = [
            reservation_from_apaleo(payload, code=used)
            for used, payload in await self._by_code(code)
            if names_match(last_name, str((payload.get("primaryGuest") or {}).get("lastName")))
        ]
        if not matches:
            return None
        live = [r for r in matches if r.status != "cancelled"] or matches
        return min(live, key=lambda r: r.arrival)

    async def list_reservations(
        self, property_id: str, start: date, end: date
    ) -> list[Reservation]:
        items = await self._pages(
            "/booking/v1/reservations",
            "reservations",
            {
                "propertyIds": property_id,
                "dateFilter": "Stay",
                "from": f"{start.isoformat()}T00:00:00Z",
                "to": f"{end.isoformat()}T00:00:00Z",
                "expand": _EXPAND,
            },
        )
        reservations = [reservation_from_apaleo(p) for p in items]
        overlapping = [r for r in reservations if r.arrival < end and r.departure > start]
        return sorted(overlapping, key=lambda r: r.arrival)

    async def _reservation_payload(self, reservation_id: str) -> dict[str, Any]:
        payload = await self._client.get_json(
            f"/booking/v1/reservations/{reservation_id}", {"expand": _EXPAND}
        )
        if not payload:
            raise OfferUnavailable(RESERVATION_GONE)
        return dict(payload)

    # -- availability and prices --------------------------------------------------------------

    async def _nights(
        self, property_id: str, start: date, end: date, *, unit_group: str | None = None
    ) -> dict[str, dict[date, int]]:
        body = await self._client.get_json(
            "/availability/v1/unit-groups",
            {
                "propertyId": property_id,
                "from": start.isoformat(),
                "to": (end - timedelta(days=1)).isoformat(),
                "unitGroupIds": unit_group,
            },
        )
        return nightly_availability(body)

    async def _offers(
        self,
        property_id: str,
        arrival: date,
        departure: date,
        adults: int,
        *,
        unit_group: str | None = None,
    ) -> list[dict[str, Any]]:
        body = await self._client.get_json(
            "/booking/v1/offers",
            {
                "propertyId": property_id,
                "arrival": arrival.isoformat(),
                "departure": departure.isoformat(),
                "adults": adults,
                "channelCode": self._channel,
                "unitGroupIds": unit_group,
            },
        )
        return [o for o in (body or {}).get("offers") or () if int(o.get("availableUnits") or 0)]

    async def check_availability(
        self, property_id: str, arrival: date, departure: date, guests: int
    ) -> Availability:
        prop = await self._require_property(property_id)
        problem = stay_problem(
            arrival, departure, guests, today=self._today(prop.timezone), prop=prop
        )
        if problem:
            raise StayRejected(problem)
        groups = await self._unit_groups(property_id)
        fitting = {str(g["id"]) for g in groups if int(g.get("maxPersons") or 0) >= guests}
        nights = nights_between(arrival, departure)
        counts = await self._nights(property_id, arrival, departure)
        blocked = tuple(
            night
            for night in nights
            if not any(counts.get(g, {}).get(night, 0) > 0 for g in fitting)
        )
        free_throughout = any(
            all(counts.get(g, {}).get(night, 0) > 0 for night in nights) for g in fitting
        )
        quote = None
        if free_throughout:
            offers = await self._offers(property_id, arrival, departure, guests)
            if offers:
                cheapest = min(offers, key=lambda o: Decimal(str(o["totalGrossAmount"]["amount"])))
                quote = quote_from_offer(cheapest, property_id=property_id, adults=guests)
        return Availability(
            property_id=property_id,
            arrival=arrival,
            departure=departure,
            guests=guests,
            available=quote is not None,
            unavailable_nights=blocked,
            min_nights=prop.min_nights,
            quote=quote,
        )

    async def quote_stay(
        self, property_id: str, arrival: date, departure: date, guests: int
    ) -> Quote:
        availability = await self.check_availability(property_id, arrival, departure, guests)
        return quote_of(availability, name="That property")

    # -- upsells and gap nights -----------------------------------------------------------------

    async def list_upsell_offers(self, reservation: Reservation) -> list[UpsellOffer]:
        if not reservation.is_active:
            return []
        currency = _currency(reservation)
        booked = set(reservation.extras)
        offers = [
            upsell_from_service_offer(item, currency)
            for item in await self._service_offers(reservation)
        ]
        return [o for o in offers if o.name not in booked]

    async def list_gap_night_offers(self, reservation: Reservation) -> list[UpsellOffer]:
        if not reservation.is_active or not reservation.unit_group_id:
            return []
        prop = await self._require_property(reservation.property_id)
        group = reservation.unit_group_id
        start, end = self._policy.search_window(reservation.arrival, reservation.departure)
        counts = (await self._nights(reservation.property_id, start, end, unit_group=group)).get(
            group, {}
        )
        stay = set(nights_between(reservation.arrival, reservation.departure))

        async def price(nights: Sequence[date]) -> tuple[Money, Money]:
            offers = await self._offers(
                reservation.property_id,
                nights[0],
                nights[-1] + timedelta(days=1),
                reservation.adults,
                unit_group=group,
            )
            same_rate = [
                o for o in offers if (o.get("ratePlan") or {}).get("id") == reservation.rate_plan_id
            ]
            candidates = same_rate or offers
            if not candidates:
                raise OfferUnavailable("Those nights can no longer be booked.")
            regular = min(
                (
                    quote_from_offer(o, property_id=prop.id, adults=reservation.adults).total
                    for o in candidates
                ),
                key=lambda m: m.amount,
            )
            factor = (_HUNDRED - Decimal(self._policy.discount_percent)) / _HUNDRED
            return regular.times(factor), regular

        return await gap_night_offers(
            reservation,
            lambda night: night not in stay and counts.get(night, 0) > 0,
            today=self._today(prop.timezone),
            policy=self._policy,
            price=price,
        )

    async def request_upsell(
        self, reservation: Reservation, offer_id: str, *, idempotency_key: str
    ) -> UpsellReceipt:
        return await self._once(
            f"upsell:{idempotency_key}",
            UpsellReceipt,
            lambda: self._book(reservation, offer_id, idempotency_key),
        )

    async def _book(self, reservation: Reservation, offer_id: str, key: str) -> UpsellReceipt:
        if offer_id.startswith(SERVICE_OFFER_PREFIX):
            return await self._book_service(reservation, offer_id, key)
        offers = await self.list_gap_night_offers(reservation)
        offer = next((o for o in offers if o.id == offer_id), None)
        if offer is None:
            raise OfferUnavailable(NO_LONGER_OFFERED)
        nights = join_words([say_date(n) for n in offer.nights])
        regular = say_money(offer.regular_price) if offer.regular_price else "the regular rate"
        await self._append_comment(
            reservation.id,
            f"Gap-night request from the voice assistant: {nights} for {say_money(offer.price)} "
            f"({offer.discount_percent}% off {regular}). Please confirm with the guest.",
        )
        return upsell_receipt(
            offer, reservation_code=reservation.code, status="requested", created_at=self._clock()
        )

    async def _book_service(
        self, reservation: Reservation, offer_id: str, key: str
    ) -> UpsellReceipt:
        item = next(
            (
                s
                for s in await self._service_offers(reservation)
                if f"{SERVICE_OFFER_PREFIX}{(s.get('service') or {}).get('id')}" == offer_id
            ),
            None,
        )
        if item is None:
            raise OfferUnavailable(no_longer_offered("extra"))
        offer = upsell_from_service_offer(item, _currency(reservation))
        count = int(item.get("count") or 1)
        dates = [
            {"serviceDate": str(d["serviceDate"])[:10], "count": count}
            for d in item.get("dates") or ()
            if d.get("isDefaultDate", True)
        ]
        await self._client.request(
            "PUT",
            f"/booking/v1/reservation-actions/{reservation.id}/book-service",
            json={"serviceId": offer.service_id, "count": count, "dates": dates},
            headers={"Idempotency-Key": key},
        )
        return upsell_receipt(
            offer, reservation_code=reservation.code, status="confirmed", created_at=self._clock()
        )

    async def _append_comment(self, reservation_id: str, line: str) -> None:
        payload = await self._reservation_payload(reservation_id)
        current = str(payload.get("comment") or "")
        updated = f"{current}\n{line}" if current else line
        await self._client.request(
            "PATCH",
            f"/booking/v1/reservations/{reservation_id}",
            json=[{"op": "add", "path": "/comment", "value": updated}],
        )

    async def leave_feedback(
        self, reservation: Reservation, rating: int, comment: str, *, idempotency_key: str
    ) -> FeedbackReceipt:
        require_rating(rating)

        async def record() -> FeedbackReceipt:
            text = " ".join(comment.split())
            await self._append_comment(
                reservation.id, f"Guest feedback via the voice assistant: {rating}/5. {text}"
            )
            return feedback_receipt(reservation.code, rating, created_at=self._clock())

        return await self._once(f"feedback:{idempotency_key}", FeedbackReceipt, record)


def _currency(reservation: Reservation) -> str:
    """The stay's currency, for service prices Apaleo sends without one (EUR when unknown)."""
    return reservation.total.currency if reservation.total else "EUR"
