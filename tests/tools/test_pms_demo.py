"""The embedded demo PMS: seed facts, rolling calendar, availability, quotes, gap nights,
upsell eligibility and idempotent requests — all against a real SQLite file."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pms_fakes import NOW, TODAY, clock

from tools.pms import DemoPMS, GapNightPolicy, OfferUnavailable, Reservation, StayRejected
from tools.pms.demo.seed import load_seed

KNOWLEDGE = Path(__file__).resolve().parents[2] / "examples" / "knowledge" / "properties"


async def found(pms: DemoPMS, code: str, name: str) -> Reservation:
    reservation = await pms.find_reservation(code, name)
    assert reservation is not None, code
    return reservation


def d(month: int, day: int) -> date:
    return date(2025, month, day)


async def test_properties_match_the_knowledge_base_facts(pms: DemoPMS) -> None:
    ids = [p.id for p in await pms.list_properties()]
    assert ids == ["alpine-chalet", "casa-del-sol", "harbor-view-loft"]

    loft = await pms.get_property("harbor-view-loft")
    assert loft is not None
    assert (loft.name, loft.kind, loft.max_guests, loft.currency) == (
        "Harbor View Loft",
        "apartment",
        4,
        "USD",
    )
    assert "12 Quay Street" in loft.address.street and loft.address.city == "Portland"
    assert (loft.check_in_time, loft.check_out_time, loft.quiet_hours) == (
        "16:00",
        "11:00",
        "22:00–07:00",
    )
    assert loft.wifi is not None and (loft.wifi.network, loft.wifi.password) == (
        "HarborLoft-Guest",
        "sailboat-2024",
    )
    assert loft.parking is not None and "P2" in loft.parking and "14" in loft.parking
    assert loft.pets is not None and loft.pets.startswith("No pets")

    chalet = await pms.get_property("alpine-chalet")
    assert chalet is not None
    assert (chalet.name, chalet.max_guests, chalet.currency) == (
        "Alpine Chalet Edelweiss",
        8,
        "CHF",
    )
    assert chalet.address.street == "Dorfstrasse 8" and chalet.address.postal_code == "3920"
    assert (chalet.check_in_time, chalet.check_out_time, chalet.quiet_hours) == (
        "15:00",
        "10:00",
        "22:00–08:00",
    )
    assert chalet.wifi is not None and chalet.wifi.password == "matterhorn88"
    assert chalet.parking is not None and "Täsch" in chalet.parking
    assert chalet.pets is not None and "two" in chalet.pets and "CHF 25" in chalet.pets
    assert {"Finnish sauna", "Wood-burning fireplace"} <= set(chalet.amenities)

    casa = await pms.get_property("casa-del-sol")
    assert casa is not None
    assert (casa.name, casa.kind, casa.max_guests, casa.currency) == (
        "Casa del Sol",
        "villa",
        6,
        "EUR",
    )
    assert casa.address.street == "Calle de la Luna 5" and casa.address.postal_code == "29601"
    assert casa.wifi is not None and (casa.wifi.network, casa.wifi.password) == (
        "CasaDelSol_5G",
        "paella-sunset",
    )
    assert casa.quiet_hours == "23:00–08:00"
    assert casa.parking is not None and "two cars" in casa.parking
    assert await pms.get_property("no-such-home") is None


@pytest.mark.parametrize(
    ("property_id", "needles"),
    [
        ("harbor-view-loft", ("HarborLoft-Guest", "sailboat-2024", "16:00", "11:00", "P2")),
        ("alpine-chalet", ("Edelweiss-Chalet", "matterhorn88", "15:00", "10:00", "Täsch")),
        ("casa-del-sol", ("CasaDelSol_5G", "paella-sunset", "16:00", "11:00", "two cars")),
    ],
)
def test_seed_agrees_with_the_shipped_knowledge_documents(
    property_id: str, needles: tuple[str, ...]
) -> None:
    folder = KNOWLEDGE / property_id
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()))
    for needle in needles:
        assert needle in text, f"{needle!r} missing from examples/knowledge/{property_id}"


def test_seed_has_enough_reservations_across_time() -> None:
    seed = load_seed()
    offsets = [r.arrival_offset for r in seed.reservations]
    assert len(seed.reservations) >= 20
    assert any(r.arrival_offset + r.nights < 0 for r in seed.reservations)  # past
    assert any(r.arrival_offset <= 0 < r.arrival_offset + r.nights for r in seed.reservations)
    assert max(offsets) > 0  # future
    assert len({r.code for r in seed.reservations}) == len(seed.reservations)


async def test_statuses_follow_the_clock(pms: DemoPMS) -> None:
    assert (await found(pms, "HVL-2041", "O'Brien")).status == "checked_out"
    lefevre = await found(pms, "HVL-3318", "Lefèvre")
    assert lefevre.status == "in_house" and lefevre.arrival == d(3, 7)
    assert (await found(pms, "HVL-3342", "Johnson")).status == "confirmed"
    assert (await found(pms, "HVL-3423", "Miller")).status == "cancelled"
    nunez = await found(pms, "CDS-5160", "Núñez")
    assert nunez.status == "confirmed" and nunez.arrival == TODAY


async def test_reservations_never_carry_full_contacts_or_payment(pms: DemoPMS) -> None:
    reservation = await found(pms, "CDS-5102", "García")
    dumped = str(reservation.public_dict())
    assert "maria.garcia@example.es" not in dumped and "612 555 821" not in dumped
    assert "9012" not in dumped and "Visa" not in dumped
    assert reservation.email_hint == "m…@example.es"
    assert reservation.phone_hint == "ending in 21"


async def test_staff_listing_covers_overlapping_stays(pms: DemoPMS) -> None:
    listed = await pms.list_reservations("harbor-view-loft", d(3, 1), d(4, 1))
    assert [r.code for r in listed] == [
        "HVL-3318",
        "HVL-3342",
        "HVL-3390",
        "HVL-3423",
        "HVL-3456",
    ]
    with pytest.raises(StayRejected):
        await pms.list_reservations("no-such-home", d(3, 1), d(4, 1))


async def test_calendar_rolls_with_the_date_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    first = DemoPMS(path, clock=clock)
    johnson = await found(first, "HVL-3342", "Johnson")
    basket = await first.request_upsell(johnson, "welcome-basket", idempotency_key="k1")
    await first.aclose()

    moments = [NOW + timedelta(days=2)]
    later = DemoPMS(path, clock=lambda: moments[-1])
    moved = await found(later, "HVL-3342", "Johnson")
    assert (moved.arrival, moved.departure) == (johnson.arrival + timedelta(days=2), d(3, 18))
    assert basket.name in moved.extras and moved.total == johnson.total + basket.price  # type: ignore[operator]

    moments.append(NOW + timedelta(days=5))  # the clock moves while the worker runs
    assert (await found(later, "HVL-3342", "Johnson")).arrival == d(3, 17)
    assert (await found(later, "HVL-3318", "Lefevre")).status == "in_house"
    await later.aclose()


async def test_availability_reports_booked_nights_and_the_next_free_window(pms: DemoPMS) -> None:
    busy = await pms.check_availability("casa-del-sol", d(3, 20), d(3, 23), 4)
    assert not busy.available and busy.quote is None
    assert busy.unavailable_nights == (d(3, 20), d(3, 21), d(3, 22))
    assert busy.next_window == (d(3, 24), d(3, 27))

    free = await pms.check_availability("casa-del-sol", d(4, 8), d(4, 11), 4)
    assert free.available and free.quote is not None
    assert free.quote.total.amount == Decimal("1080.00")

    # A cancelled booking does not block its nights.
    assert (await pms.check_availability("harbor-view-loft", d(3, 24), d(3, 27), 2)).available


@pytest.mark.parametrize(
    ("arrival", "departure", "guests", "expected"),
    [
        (d(4, 11), d(4, 8), 2, "check-out date has to be after"),
        (d(4, 8), d(4, 8), 2, "check-out date has to be after"),
        (d(3, 1), d(3, 5), 2, "already in the past"),
        (d(4, 8), d(5, 20), 2, "42 nights"),
        (d(4, 8), d(4, 11), 7, "sleeps at most 6 guests"),
        (d(4, 8), d(4, 11), 0, "How many guests"),
        (d(4, 8), d(4, 10), 2, "minimum stay at Casa del Sol is 3 nights"),
        (date(2027, 6, 1), date(2027, 6, 4), 2, "within the next two years"),
    ],
)
async def test_nonsense_stays_are_rejected_with_a_sentence(
    pms: DemoPMS, arrival: date, departure: date, guests: int, expected: str
) -> None:
    with pytest.raises(StayRejected) as caught:
        await pms.check_availability("casa-del-sol", arrival, departure, guests)
    assert expected in caught.value.speakable


async def test_unknown_property_is_a_sentence(pms: DemoPMS) -> None:
    with pytest.raises(StayRejected, match="don't know that property"):
        await pms.quote_stay("moon-base", d(4, 8), d(4, 11), 2)


async def test_quotes_add_cleaning_fees_and_local_taxes(pms: DemoPMS) -> None:
    loft = await pms.quote_stay("harbor-view-loft", d(4, 13), d(4, 15), 2)
    assert [n.amount.amount for n in loft.nights] == [Decimal("245.00"), Decimal("245.00")]
    assert loft.fees[0].amount.amount == Decimal("95.00")
    assert [(t.name, t.amount.amount) for t in loft.taxes] == [
        ("Maine lodging tax", Decimal("52.65"))
    ]
    assert (loft.total.amount, loft.total.currency) == (Decimal("637.65"), "USD")

    weekend = await pms.quote_stay("harbor-view-loft", d(5, 2), d(5, 4), 2)
    assert [n.amount.amount for n in weekend.nights] == [Decimal("285.00")] * 2

    chalet = await pms.quote_stay("alpine-chalet", d(4, 22), d(4, 25), 4)
    assert {n.amount.amount for n in chalet.nights} == {Decimal("648.00")}  # winter season
    assert chalet.taxes[0].amount.amount == Decimal("42.00")  # 3.50 × 3 nights × 4 adults
    assert (chalet.total.amount, chalet.total.currency) == (Decimal("2206.00"), "CHF")

    casa = await pms.quote_stay("casa-del-sol", d(4, 8), d(4, 11), 6)
    assert casa.taxes == () and casa.total.amount == Decimal("1080.00")

    with pytest.raises(StayRejected, match="already booked on Thursday, March 20"):
        await pms.quote_stay("casa-del-sol", d(3, 20), d(3, 23), 2)


@pytest.mark.parametrize(
    ("code", "name", "expected"),
    [
        ("HVL-3342", "Johnson", {"gap-after-2": (d(3, 16), d(3, 17)), "gap-after-1": (d(3, 16),)}),
        (
            "HVL-3390",
            "Nakamura",
            {"gap-before-2": (d(3, 16), d(3, 17)), "gap-before-1": (d(3, 17),)},
        ),
        (
            "HVL-3456",
            "Thompson",
            {"gap-after-3": (d(4, 6), d(4, 7), d(4, 8)), "gap-after-1": (d(4, 6),)},
        ),
        ("ALP-7826", "Rossi", {"gap-after-1": (d(3, 15),)}),
        ("CDS-5160", "Núñez", {"gap-after-2": (d(3, 17), d(3, 18)), "gap-after-1": (d(3, 17),)}),
        ("ALP-7863", "Weber", {}),  # open calendar after, a booking right before
        ("HVL-3318", "Lefèvre", {}),  # in house: the next guest arrives on departure day
        ("HVL-2041", "O'Brien", {}),  # past stay
        ("HVL-3423", "Miller", {}),  # cancelled
    ],
)
async def test_gap_nights_on_the_seeded_calendar(
    pms: DemoPMS, code: str, name: str, expected: dict[str, tuple[date, ...]]
) -> None:
    offers = await pms.list_gap_night_offers(await found(pms, code, name))
    assert {o.id: o.nights for o in offers} == expected
    for offer in offers:
        assert offer.discount_percent == 25 and offer.regular_price is not None
        assert offer.price.amount < offer.regular_price.amount


async def test_gap_night_prices_and_policy(tmp_path: Path) -> None:
    p = DemoPMS(tmp_path / "a.db", clock=clock)
    offers = await p.list_gap_night_offers(await found(p, "HVL-3342", "Johnson"))
    two = next(o for o in offers if o.id == "gap-after-2")
    assert two.regular_price is not None
    assert (two.regular_price.amount, two.price.amount) == (Decimal("534.10"), Decimal("400.58"))
    assert two.name == "Stay 2 more nights, until Tuesday, March 18"
    await p.aclose()

    strict = DemoPMS(
        tmp_path / "b.db", clock=clock, gap_policy=GapNightPolicy(discount_percent=40, max_nights=1)
    )
    # With a one-night maximum, Johnson's two free nights are open calendar, not a gap.
    assert await strict.list_gap_night_offers(await found(strict, "HVL-3342", "Johnson")) == []
    rossi = await strict.list_gap_night_offers(await found(strict, "ALP-7826", "Rossi"))
    assert [o.discount_percent for o in rossi] == [40]
    await strict.aclose()


@pytest.mark.parametrize(
    ("code", "name", "expected"),
    [
        # Lefèvre's stay ends the day Johnson arrives: no early check-in for Johnson.
        ("HVL-3342", "Johnson", ["late-checkout", "welcome-basket", "extra-cleaning"]),
        ("HVL-3318", "Lefèvre", ["welcome-basket", "extra-cleaning"]),
        ("ALP-7851", "Kjærgaard", ["early-check-in", "dog", "raclette-kit"]),
        ("ALP-7826", "Rossi", ["late-checkout", "raclette-kit"]),  # dog already booked
        (
            "CDS-5160",
            "Núñez",
            ["early-check-in", "late-checkout", "airport-transfer", "welcome-pack"],
        ),
        ("CDS-5102", "García", []),
    ],
)
async def test_upsells_respect_same_day_turnovers(
    pms: DemoPMS, code: str, name: str, expected: list[str]
) -> None:
    offers = await pms.list_upsell_offers(await found(pms, code, name))
    assert [o.id for o in offers] == expected


async def test_per_night_extras_are_priced_for_the_stay(pms: DemoPMS) -> None:
    offers = await pms.list_upsell_offers(await found(pms, "ALP-7851", "Kjaergaard"))
    dog = next(o for o in offers if o.id == "dog")
    assert (dog.price.amount, dog.price.currency) == (Decimal("175.00"), "CHF")


async def test_request_upsell_is_idempotent_per_key(pms: DemoPMS) -> None:
    johnson = await found(pms, "HVL-3342", "Johnson")
    first = await pms.request_upsell(johnson, "late-checkout", idempotency_key="conv-1:late")
    again = await pms.request_upsell(johnson, "late-checkout", idempotency_key="conv-1:late")
    assert not first.replayed and again.replayed
    assert again.reference == first.reference and first.status == "confirmed"

    after = await found(pms, "HVL-3342", "Johnson")
    assert after.extras == ("Late checkout until 1 PM",)
    assert after.total is not None and johnson.total is not None
    assert after.total.amount == johnson.total.amount + Decimal("40")

    # Another conversation cannot add it a second time either.
    with pytest.raises(OfferUnavailable, match="already on your reservation"):
        await pms.request_upsell(after, "late-checkout", idempotency_key="conv-2:late")


async def test_concurrent_identical_requests_book_once(pms: DemoPMS) -> None:
    johnson = await found(pms, "HVL-3342", "Johnson")
    receipts = await asyncio.gather(
        *(pms.request_upsell(johnson, "gap-after-2", idempotency_key="same") for _ in range(4))
    )
    assert len({r.reference for r in receipts}) == 1
    assert sum(not r.replayed for r in receipts) == 1
    extended = await found(pms, "HVL-3342", "Johnson")
    assert extended.departure == d(3, 18)
    assert extended.total is not None and johnson.total is not None
    assert extended.total.amount == johnson.total.amount + Decimal("400.58")


async def test_booking_a_gap_moves_the_stay_and_closes_the_gap(pms: DemoPMS) -> None:
    nakamura = await found(pms, "HVL-3390", "Nakamura")
    receipt = await pms.request_upsell(nakamura, "gap-before-1", idempotency_key="k")
    assert receipt.new_arrival == d(3, 17) and receipt.new_departure is None
    moved = await found(pms, "HVL-3390", "Nakamura")
    assert moved.arrival == d(3, 17)
    # One free night (the 16th) is left between Johnson and Nakamura: still a gap, for both.
    johnson = await found(pms, "HVL-3342", "Johnson")
    assert [o.nights for o in await pms.list_gap_night_offers(johnson)] == [(d(3, 16),)]
    with pytest.raises(OfferUnavailable):
        await pms.request_upsell(johnson, "gap-after-2", idempotency_key="other")


async def test_feedback_is_recorded_once_per_key(pms: DemoPMS) -> None:
    rossi = await found(pms, "ALP-7826", "Rossi")
    first = await pms.leave_feedback(rossi, 5, "The sauna was perfect.", idempotency_key="f1")
    again = await pms.leave_feedback(rossi, 5, "The sauna was perfect.", idempotency_key="f1")
    assert again.replayed and again.reference == first.reference
    assert await pms.feedback_count("ALP-7826") == 1
    with pytest.raises(StayRejected, match="1 to 5"):
        await pms.leave_feedback(rossi, 9, "Great", idempotency_key="f2")


async def test_clock_timezone_decides_the_local_date(tmp_path: Path) -> None:
    # 02:00 UTC on March 10 is still March 9 in Maine but already March 10 in Marbella.
    early = DemoPMS(tmp_path / "tz.db", clock=lambda: datetime(2025, 3, 10, 2, tzinfo=UTC))
    with pytest.raises(StayRejected, match="in the past"):
        await early.check_availability("casa-del-sol", d(3, 9), d(3, 12), 2)
    loft = await early.check_availability("harbor-view-loft", d(3, 9), d(3, 11), 2)
    assert not loft.available  # Lefèvre is there, but the date itself is accepted
    await early.aclose()
