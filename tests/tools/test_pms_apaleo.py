"""The Apaleo adapter against a local HTTP server speaking the documented endpoints:
OAuth2 token caching and refresh, retries (429 Retry-After, 5xx), speakable failures, and the
mapping of real-shaped payloads to the PMS models."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from pms_fakes import NOW, TODAY, SleepRecorder, call_tool, clock, tools_by_name
from pms_fakes.apaleo_server import CLIENT_ID, CLIENT_SECRET, FakeApaleo, Fault
from pydantic import ValidationError

from tools.pms import (
    ApaleoClient,
    ApaleoPMS,
    DemoPMS,
    PMSConfigError,
    PMSUnavailable,
    Reservation,
    StayRejected,
    build_pms,
    pms_tools,
)
from tools.pms.apaleo import pms as apaleo_pms_module
from tools.settings import ToolsSettings


def d(month: int, day: int) -> date:
    return date(2025, month, day)


@dataclass
class Rig:
    fake: FakeApaleo
    pms: ApaleoPMS
    sleeps: SleepRecorder
    now: list[float]


@pytest.fixture
async def fake() -> AsyncIterator[FakeApaleo]:
    server = FakeApaleo(today=TODAY)
    await server.start()
    yield server
    await server.stop()


def make_client(
    fake: FakeApaleo, sleeps: SleepRecorder, now: list[float], secret: str = CLIENT_SECRET
) -> ApaleoClient:
    return ApaleoClient(
        base_url=fake.url,
        identity_url=fake.url,
        client_id=CLIENT_ID,
        client_secret=secret,
        timeout_s=5.0,
        sleep=sleeps,
        monotonic=lambda: now[0],
        wall_clock=lambda: NOW,
    )


@pytest.fixture
async def rig(fake: FakeApaleo) -> AsyncIterator[Rig]:
    sleeps, now = SleepRecorder(), [1000.0]
    pms = ApaleoPMS(make_client(fake, sleeps, now), clock=clock)
    yield Rig(fake, pms, sleeps, now)
    await pms.aclose()


async def found(pms: ApaleoPMS, code: str, name: str) -> Reservation:
    reservation = await pms.find_reservation(code, name)
    assert reservation is not None, code
    return reservation


# -- authentication --------------------------------------------------------------------------


async def test_token_is_fetched_once_with_client_credentials_and_reused(rig: Rig) -> None:
    await rig.pms.list_properties()
    await rig.pms.get_property("BER")
    assert rig.fake.token_requests == 1
    token_call = rig.fake.calls("POST", "/connect/token")[0]
    assert token_call.body == "grant_type=client_credentials"
    assert token_call.headers["Authorization"].startswith("Basic ")
    api_calls = [c for c in rig.fake.log if c.path != "/connect/token"]
    assert {c.headers["Authorization"] for c in api_calls} == {"Bearer tok-1"}


async def test_token_is_refreshed_shortly_before_it_expires(rig: Rig) -> None:
    await rig.pms.list_properties()
    rig.now[0] += 3600 - 61  # still more than the 60 s margin left
    await rig.pms.list_properties()
    assert rig.fake.token_requests == 1
    rig.now[0] += 2  # inside the margin: refresh before Apaleo would reject it
    await rig.pms.list_properties()
    assert rig.fake.token_requests == 2
    assert rig.fake.log[-1].headers["Authorization"] == "Bearer tok-2"


async def test_a_401_fetches_a_new_token_and_retries_once(rig: Rig) -> None:
    await rig.pms.list_properties()
    rig.fake.revoke_tokens()  # e.g. the client secret was rotated server-side
    names = [p.name for p in await rig.pms.list_properties()]
    assert names == ["Spree Lofts Berlin"]
    assert rig.fake.token_requests == 2
    statuses = [c.headers["Authorization"] for c in rig.fake.calls("GET", "/inventory")]
    assert statuses[-2:] == ["Bearer tok-1", "Bearer tok-2"]


async def test_rejected_credentials_become_a_speakable_error(fake: FakeApaleo) -> None:
    pms = ApaleoPMS(make_client(fake, SleepRecorder(), [0.0], secret="wrong"), clock=clock)
    with pytest.raises(PMSUnavailable) as caught:
        await pms.list_properties()
    assert "can't reach the booking system" in caught.value.speakable
    assert "rejected the credentials" in str(caught.value)
    await pms.aclose()


# -- retries --------------------------------------------------------------------------------------


async def test_429_waits_as_long_as_retry_after_says(rig: Rig) -> None:
    rig.fake.fail("/inventory/v1/properties", Fault(429, {"Retry-After": "3"}))
    assert [p.id for p in await rig.pms.list_properties()] == ["BER"]
    assert rig.sleeps.delays == [3.0]


async def test_retry_after_as_an_http_date(rig: Rig) -> None:
    rig.fake.fail(
        "/inventory/v1/properties", Fault(503, {"Retry-After": "Mon, 10 Mar 2025 15:00:07 GMT"})
    )
    await rig.pms.list_properties()
    assert rig.sleeps.delays == [7.0]


async def test_5xx_is_retried_with_growing_backoff(rig: Rig) -> None:
    rig.fake.fail("/inventory/v1/properties", Fault(502), Fault(503))
    assert [p.id for p in await rig.pms.list_properties()] == ["BER"]
    first, second = rig.sleeps.delays
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0


async def test_persistent_5xx_becomes_a_sentence_from_the_tool(rig: Rig) -> None:
    rig.fake.fail("/booking/v1/reservations", *[Fault(503)] * 4)
    tools = tools_by_name(pms_tools(rig.pms, clock=clock))
    message = await call_tool(
        tools["find_reservation"], {"confirmation_code": "BDC-4455667788", "last_name": "Odegard"}
    )
    assert message.content.startswith("I can't reach the booking system right now.")
    assert message.artifact == {"error": "PMSUnavailable"}
    assert len(rig.sleeps.delays) == 3  # four attempts in all


async def test_unsafe_writes_are_not_repeated_after_a_server_error(rig: Rig) -> None:
    odegard = await found(rig.pms, "BDC-4455667788", "Ødegård")
    rig.fake.fail("/booking/v1/reservations/QHWTXNBV-1", Fault(500, method="PATCH"))
    with pytest.raises(PMSUnavailable):
        await rig.pms.leave_feedback(odegard, 4, "Lovely view", idempotency_key="f1")
    assert len(rig.fake.calls("PATCH", "/booking/v1/reservations/QHWTXNBV-1")) == 1
    # A 429 means "not processed", so even the write is retried — and the claim was released.
    rig.fake.fail("/booking/v1/reservations/QHWTXNBV-1", Fault(429, method="PATCH"))
    receipt = await rig.pms.leave_feedback(odegard, 4, "Lovely view", idempotency_key="f1")
    assert not receipt.replayed
    assert rig.fake.reservations["QHWTXNBV-1"]["comment"].endswith("4/5. Lovely view")


# -- mapping --------------------------------------------------------------------------------------


async def test_properties_map_from_inventory_and_settings(rig: Rig) -> None:
    assert [(p.id, p.city) for p in await rig.pms.list_properties()] == [("BER", "Berlin")]
    prop = await rig.pms.get_property("BER")
    assert prop is not None
    assert (prop.name, prop.currency, prop.timezone) == (
        "Spree Lofts Berlin",
        "EUR",
        "Europe/Berlin",
    )
    assert prop.address.one_line() == "Stralauer Allee 12, 10245 Berlin, Germany"
    assert (prop.check_in_time, prop.check_out_time, prop.max_guests) == ("15:00", "11:00", 4)
    assert prop.wifi is None  # Apaleo has no Wi-Fi field; the documents answer that
    assert await rig.pms.get_property("NOPE") is None


async def test_reservation_found_by_external_code_maps_the_stay(rig: Rig) -> None:
    res = await found(rig.pms, "bdc-4455667788", "ODEGARD")
    assert (res.id, res.code, res.status) == ("QHWTXNBV-1", "BDC-4455667788", "confirmed")
    assert (res.arrival, res.departure, res.adults, res.children) == (d(3, 13), d(3, 16), 2, 1)
    assert (res.guest_first_name, res.guest_last_name) == ("Zoë", "Ødegård")
    assert (res.unit_group_id, res.rate_plan_id, res.unit_name) == (
        "BER-LOFT",
        "BER-FLEX-LOFT",
        "River Loft",
    )
    assert res.total is not None and (res.total.amount, res.total.currency) == (
        Decimal("630.00"),
        "EUR",
    )
    assert (res.email_hint, res.phone_hint) == ("z…@example.no", "ending in 01")
    dumped = str(res.public_dict())
    assert "411111" not in dumped and "zoe.odegard" not in dumped and "912 55" not in dumped
    assert rig.fake.calls("GET", "/booking/v1/reservations")[0].query["externalCode"] == (
        "bdc-4455667788"
    )


async def test_reservation_found_by_booking_id_and_by_reservation_id(rig: Rig) -> None:
    berg = await found(rig.pms, "QHWTXNBV", "Berg")
    assert (berg.id, berg.code, berg.unit_group_id) == ("QHWTXNBV-2", "QHWTXNBV", "BER-STU")
    schmidt = await found(rig.pms, "klmnopqr-1", "schmidt")
    assert schmidt.status == "in_house"
    assert (await found(rig.pms, "ZXCVBNMA-1", "Weiss")).status == "checked_out"
    assert (await found(rig.pms, "ASDFGHJK-1", "Kowalczyk")).status == "cancelled"


async def test_text_search_never_verifies_by_name_alone(rig: Rig) -> None:
    # textSearch matches guest names too; a name is not a confirmation code.
    assert await rig.pms.find_reservation("Kowalczyk", "Kowalczyk") is None
    assert await rig.pms.find_reservation("QHWTXNBV-1", "Berg") is None  # right code, wrong guest
    searched = rig.fake.calls("GET", "/booking/v1/reservations")
    assert any(c.query.get("textSearch") == "Kowalczyk" for c in searched)


async def test_staff_listing_pages_through_reservations(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apaleo_pms_module, "_PAGE_SIZE", 2)
    listed = await rig.pms.list_reservations("BER", d(3, 10), d(3, 20))
    assert [r.id for r in listed] == ["KLMNOPQR-1", "QHWTXNBV-1", "QHWTXNBV-2", "WERTZUIO-1"]
    pages = [c.query["pageNumber"] for c in rig.fake.calls("GET", "/booking/v1/reservations")]
    assert pages == ["1", "2"]  # stops once `count` items have arrived
    assert rig.fake.calls("GET", "/booking/v1/reservations")[0].query["dateFilter"] == "Stay"


async def test_availability_uses_unit_groups_that_fit_the_party(rig: Rig) -> None:
    couple = await rig.pms.check_availability("BER", d(3, 13), d(3, 15), 2)
    assert couple.available and couple.quote is not None
    quote = couple.quote
    assert [n.amount.amount for n in quote.nights] == [Decimal("120.00"), Decimal("140.00")]
    assert [(t.name, t.amount.amount, t.included) for t in quote.taxes] == [
        ("VAT 7%", Decimal("17.01"), True),
        ("Berlin city tax", Decimal("18.22"), False),
    ]
    assert quote.total.amount == Decimal("278.22") and quote.rate_plan == "Flexible"

    family = await rig.pms.check_availability("BER", d(3, 13), d(3, 15), 4)
    assert not family.available and family.unavailable_nights == (d(3, 13), d(3, 14))
    unit_group_calls = rig.fake.calls("GET", "/availability/v1/unit-groups")
    assert unit_group_calls[-1].query == {
        "propertyId": "BER",
        "from": "2025-03-13",
        "to": "2025-03-14",
    }


async def test_nonsense_stays_are_refused_before_calling_apaleo(rig: Rig) -> None:
    with pytest.raises(StayRejected, match="sleeps at most 4 guests"):
        await rig.pms.quote_stay("BER", d(4, 1), d(4, 3), 5)
    with pytest.raises(StayRejected, match="check-out date has to be after"):
        await rig.pms.quote_stay("BER", d(4, 3), d(4, 1), 2)
    with pytest.raises(StayRejected, match="don't know that property"):
        await rig.pms.quote_stay("NOPE", d(4, 1), d(4, 3), 2)
    assert rig.fake.calls("GET", "/booking/v1/offers") == []


async def test_service_offers_become_upsells_and_book_once(rig: Rig) -> None:
    odegard = await found(rig.pms, "BDC-4455667788", "Odegard")
    offers = {o.id: o for o in await rig.pms.list_upsell_offers(odegard)}
    assert {(o.kind, o.name, o.price.amount) for o in offers.values()} == {
        ("early_check_in", "Early check-in", Decimal("30.00")),
        ("late_checkout", "Late check-out", Decimal("25.00")),
        ("extra", "Breakfast basket", Decimal("162.00")),  # 18 × 3 guests × 3 nights
    }
    receipt = await rig.pms.request_upsell(odegard, "service-BER-LCO", idempotency_key="c1:lco")
    again = await rig.pms.request_upsell(odegard, "service-BER-LCO", idempotency_key="c1:lco")
    assert receipt.status == "confirmed" and again.replayed
    assert again.reference == receipt.reference
    puts = rig.fake.calls("PUT", "/booking/v1/reservation-actions/QHWTXNBV-1/book-service")
    assert len(puts) == 1
    assert puts[0].body == {
        "serviceId": "BER-LCO",
        "count": 1,
        "dates": [{"serviceDate": "2025-03-15", "count": 1}],
    }
    assert puts[0].headers["Idempotency-Key"] == "c1:lco"
    refreshed = await found(rig.pms, "BDC-4455667788", "Odegard")
    assert "Late check-out" in refreshed.extras
    assert "service-BER-LCO" not in {o.id for o in await rig.pms.list_upsell_offers(refreshed)}


async def test_gap_nights_follow_unit_group_availability(rig: Rig) -> None:
    odegard = await found(rig.pms, "BDC-4455667788", "Odegard")
    offers = {o.id: o for o in await rig.pms.list_gap_night_offers(odegard)}
    # The loft is free from the 16th until Nowak arrives on the 18th, and from today until
    # Ødegård's arrival on the 13th.
    assert {k: o.nights for k, o in offers.items()} == {
        "gap-before-3": (d(3, 10), d(3, 11), d(3, 12)),
        "gap-before-1": (d(3, 12),),
        "gap-after-2": (d(3, 16), d(3, 17)),
        "gap-after-1": (d(3, 16),),
    }
    after = offers["gap-after-2"]
    assert after.regular_price is not None
    assert (after.regular_price.amount, after.price.amount) == (
        Decimal("449.44"),
        Decimal("337.08"),
    )

    receipt = await rig.pms.request_upsell(odegard, "gap-after-2", idempotency_key="c1:gap")
    assert receipt.status == "requested"
    comment = rig.fake.reservations["QHWTXNBV-1"]["comment"]
    assert comment.startswith("Gap-night request from the voice assistant: Sunday, March 16")
    assert "337.08 euros" in comment
    await rig.pms.request_upsell(odegard, "gap-after-2", idempotency_key="c1:gap")
    assert len(rig.fake.calls("PATCH", "/booking/v1/reservations/QHWTXNBV-1")) == 1


async def test_tools_work_end_to_end_on_apaleo(rig: Rig) -> None:
    tools = tools_by_name(pms_tools(rig.pms, clock=clock))
    found_msg = await call_tool(
        tools["find_reservation"], {"confirmation_code": "QHWTXNBV-1", "last_name": "Ødegård"}
    )
    assert found_msg.content.startswith(
        "Thank you, Zoë. I found reservation QHWTXNBV-1 at Spree Lofts Berlin: Thursday, "
        "March 13 to Sunday, March 16, 3 nights for 3 guests. Check-in is from 3 PM."
    )
    offers = await call_tool(tools["list_upsell_offers"], {})
    assert "late check-out for 25 euros" in offers.content
    booked = await call_tool(tools["request_upsell"], {"offer": "late check-out"})
    assert booked.content.startswith("Done: late check-out is booked for 25 euros.")
    quote = await call_tool(
        tools["quote_stay"],
        {
            "property_id": "Spree Lofts",
            "check_in": "2025-03-13",
            "check_out": "2025-03-15",
            "guests": 2,
        },
    )
    assert quote.content.endswith(
        "On top of that there is Berlin city tax of 18.22 euros. The price includes VAT 7%. "
        "The total is 278.22 euros."
    )


# -- configuration ----------------------------------------------------------------------------


def settings(**values: str) -> ToolsSettings:
    return ToolsSettings.model_validate(values)


async def test_build_pms_picks_the_backend_from_settings(tmp_path: Path) -> None:
    demo = build_pms(settings(DATA_DIR=str(tmp_path)).pms_config())
    assert isinstance(demo, DemoPMS)
    assert len(await demo.list_properties()) == 3
    assert (tmp_path / "demo_pms.sqlite3").exists()
    await demo.aclose()

    apaleo = build_pms(
        settings(
            PMS_BACKEND="apaleo",
            APALEO_CLIENT_ID="id",
            APALEO_CLIENT_SECRET="secret",
            PMS_GAP_NIGHT_DISCOUNT_PCT="30",
        ).pms_config()
    )
    assert isinstance(apaleo, ApaleoPMS) and apaleo.backend == "apaleo"
    await apaleo.aclose()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {
                "PMS_BACKEND": "apaleo",
                "APALEO_CLIENT_ID": "id",
                "APALEO_CLIENT_SECRET": "s",
                "APALEO_BASE_URL": "api.apaleo.com",
            },
            "APALEO_BASE_URL must be an http(s) URL",
        ),
        (
            {
                "PMS_BACKEND": "apaleo",
                "APALEO_CLIENT_ID": "id",
                "APALEO_CLIENT_SECRET": "s",
                "APALEO_IDENTITY_URL": "ftp://identity",
            },
            "APALEO_IDENTITY_URL must be an http(s) URL",
        ),
    ],
)
def test_misconfigured_apaleo_fails_with_one_clear_line(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(PMSConfigError, match=re.escape(message)) as caught:
        build_pms(settings(**values).pms_config())
    assert "\n" not in str(caught.value)


def test_misconfigured_demo_and_missing_credentials_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(PMSConfigError, match="PMS_DEMO_PATH must name a file"):
        build_pms(settings(PMS_DEMO_PATH=str(tmp_path)).pms_config())
    with pytest.raises(ValidationError, match="needs APALEO_CLIENT_ID and APALEO_CLIENT_SECRET"):
        settings(PMS_BACKEND="apaleo")
