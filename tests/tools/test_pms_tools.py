"""The LangChain tools: names and schemas, speakable answers, nonsense inputs answered with a
sentence, and confirmed side effects that cannot book twice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool
from pms_fakes import TODAY, call_tool, clock, tools_by_name

from tools.pms import DemoPMS, GuestDesk, Money, pms_tools
from tools.pms.phrases import join_words, mask_email, mask_phone, say_date, say_money, say_time
from tools.pms.stay import parse_day

TOOL_NAMES = [
    "get_property_info",
    "find_reservation",
    "check_availability",
    "quote_stay",
    "list_upsell_offers",
    "request_upsell",
    "list_gap_night_offers",
    "leave_feedback",
]


@pytest.fixture
def tools(pms: DemoPMS) -> dict[str, Any]:
    return tools_by_name(pms_tools(pms, clock=clock))


async def say(tools: dict[str, Any], name: str, thread: str = "t1", **args: Any) -> str:
    return str((await call_tool(tools[name], args, thread_id=thread)).content)


def test_speech_helpers() -> None:
    assert say_date(date(2025, 3, 14)) == "Friday, March 14"
    assert say_date(date(2026, 1, 2), today=TODAY) == "Friday, January 2, 2026"
    assert say_money(Money(amount=Decimal("189"), currency="EUR")) == "189 euros"
    assert say_money(Money(amount=Decimal("240"), currency="CHF")) == "CHF 240"
    assert say_money(Money(amount=Decimal("1240.5"), currency="USD")) == "1,240.50 dollars"
    assert say_money(Money(amount=Decimal("1"), currency="USD")) == "1 dollar"
    assert [say_time(t) for t in ("16:00", "10:30", "12:00", "00:00", "22:00")] == [
        "4 PM",
        "10:30 AM",
        "noon",
        "midnight",
        "10 PM",
    ]
    assert join_words(["a", "b", "c"], conjunction="or") == "a, b or c"
    assert join_words(["one, two", "three"]) == "one, two; and three"
    assert mask_email("maria.garcia@example.es") == "m…@example.es"
    assert mask_phone("+34 612 555 821") == "ending in 21"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-04-08", date(2025, 4, 8)),
        ("2025-04-08T00:00:00", date(2025, 4, 8)),
        ("April 8", date(2025, 4, 8)),
        ("Tuesday, April 8th", date(2025, 4, 8)),
        ("8 April 2026", date(2026, 4, 8)),
        ("March 1", date(2026, 3, 1)),  # already past this year: next year's
        ("tomorrow", date(2025, 3, 11)),
        ("February 30", None),
        ("next friday-ish", None),
        ("", None),
    ],
)
def test_dates_are_read_leniently(text: str, expected: date | None) -> None:
    assert parse_day(text, today=TODAY) == expected


def test_tools_have_the_fixed_names_and_clean_schemas(tools: dict[str, Any]) -> None:
    assert list(tools) == TOOL_NAMES
    for tool in tools.values():
        schema = convert_to_openai_tool(tool)["function"]
        assert "config" not in schema["parameters"].get("properties", {})
        assert tool.description and len(tool.description) > 40
        assert tool.response_format == "content_and_artifact"
    find = convert_to_openai_tool(tools["find_reservation"])["function"]["parameters"]
    assert find["required"] == ["confirmation_code", "last_name"]
    stay = convert_to_openai_tool(tools["check_availability"])["function"]["parameters"]
    assert set(stay["required"]) == {"check_in", "check_out", "guests"}


def test_only_the_side_effecting_tools_ask_for_confirmation(tools: dict[str, Any]) -> None:
    confirming = {
        n: t.metadata["confirm"] for n, t in tools.items() if t.metadata.get("side_effecting")
    }
    assert set(confirming) == {"request_upsell", "leave_feedback"}
    assert (
        confirming["request_upsell"].format(offer="late checkout until 2 PM")
        == "Shall I add late checkout until 2 PM to your reservation?"
    )
    assert (
        confirming["leave_feedback"].format(rating=4, comment="x")
        == "Shall I pass your 4-star feedback on to the team?"
    )


async def test_property_info_answers_the_topic_asked(tools: dict[str, Any]) -> None:
    wifi = await say(
        tools, "get_property_info", property_id="harbor-view-loft", topic="wifi password"
    )
    assert wifi == "The Wi-Fi network is HarborLoft-Guest and the password is sailboat-2024."
    parking = await say(
        tools, "get_property_info", property_id="Alpine Chalet", topic="where do I park?"
    )
    assert "Täsch" in parking and "shuttle train" in parking
    quiet = await say(tools, "get_property_info", property_id="casa del sol", topic="quiet hours")
    assert quiet == "Quiet hours are from 11 PM to 8 AM."
    times = await say(
        tools, "get_property_info", property_id="zermatt", topic="check-in and check out"
    )
    assert "Check-in is from 3 PM." in times and "Check-out is by 10 AM." in times
    overview = await say(tools, "get_property_info", property_id="marbella")
    assert overview.startswith("Casa del Sol is a villa in Marbella that sleeps up to 6 guests.")
    unknown_topic = await say(
        tools, "get_property_info", property_id="casa-del-sol", topic="helipad"
    )
    assert unknown_topic.startswith("The booking system has no details about helipad")


async def test_property_comes_from_the_verified_reservation_when_not_named(
    tools: dict[str, Any],
) -> None:
    ask = await say(tools, "get_property_info", topic="wifi")
    assert ask.startswith("Which home do you mean: Alpine Chalet Edelweiss in Zermatt")
    await say(tools, "find_reservation", confirmation_code="ALP-7826", last_name="Rossi")
    assert "Edelweiss-Chalet" in await say(tools, "get_property_info", topic="wifi")


async def test_unknown_property_lists_the_real_ones(tools: dict[str, Any]) -> None:
    message = await call_tool(
        tools["check_availability"],
        {
            "property_id": "Moon Base",
            "check_in": "2025-04-08",
            "check_out": "2025-04-11",
            "guests": 2,
        },
    )
    assert message.content.startswith("I don't know a property called Moon Base.")
    assert "Casa del Sol in Marbella" in message.content
    assert message.artifact["error"] == "unknown_property"


async def test_find_reservation_reads_the_stay_naturally(tools: dict[str, Any]) -> None:
    johnson = await say(
        tools, "find_reservation", confirmation_code="HVL-3342", last_name="Johnson"
    )
    assert johnson == (
        "Thank you, Derek. I found reservation HVL-3342 at Harbor View Loft: Wednesday, March 12 "
        "to Sunday, March 16, 4 nights for 2 guests. Check-in is from 4 PM. Check-out is by 11 AM. "
        "The total is 1,258.95 dollars."
    )
    rossi = await say(
        tools, "find_reservation", "t2", confirmation_code="ALP-7826", last_name="Rossi"
    )
    assert rossi.startswith(
        "Thank you, Giulia. You're staying at Alpine Chalet Edelweiss until Saturday, March 15."
    )
    assert "Extras on the booking: Bringing one dog." in rossi and "CHF" in rossi
    past = await say(
        tools, "find_reservation", "t3", confirmation_code="HVL-2041", last_name="O'Brien"
    )
    assert past == (
        "Thank you, Patricia. Your stay at Harbor View Loft, Wednesday, January 29 to Sunday, "
        "February 2, has already ended."
    )
    cancelled = await say(
        tools, "find_reservation", "t4", confirmation_code="CDS-5190", last_name="Dubois"
    )
    assert "was cancelled" in cancelled


async def test_availability_and_quotes_are_speakable(tools: dict[str, Any]) -> None:
    free = await say(
        tools,
        "check_availability",
        property_id="casa-del-sol",
        check_in="2025-04-08",
        check_out="2025-04-11",
        guests=4,
    )
    assert free == (
        "Good news: Casa del Sol is free Tuesday, April 8 until Friday, April 11, 3 nights for "
        "4 guests. The total would be 1,080 euros, fees and taxes included."
    )
    busy = await say(
        tools,
        "check_availability",
        property_id="casa-del-sol",
        check_in="March 20",
        check_out="March 23",
        guests=2,
    )
    assert busy == (
        "Sorry, Casa del Sol is already booked on Thursday, March 20; Friday, March 21; and "
        "Saturday, March 22. The next free 3 nights start on Monday, March 24, until Thursday, "
        "March 27."
    )
    quote = await say(
        tools,
        "quote_stay",
        property_id="alpine-chalet",
        check_in="2025-04-22",
        check_out="2025-04-25",
        guests=4,
    )
    assert quote == (
        "For 3 nights at Alpine Chalet Edelweiss, Tuesday, April 22 to Friday, April 25, for "
        "4 guests: the nights come to CHF 1,944 at CHF 648 a night. On top of that there is a "
        "cleaning fee of CHF 220 and Zermatt visitor tax of CHF 42. The total is CHF 2,206."
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            {"check_in": "2025-04-11", "check_out": "2025-04-08", "guests": 2},
            "check-out date has to be after",
        ),
        (
            {"check_in": "2025-03-01", "check_out": "2025-03-04", "guests": 2},
            "Saturday, March 1 is already in the past",
        ),
        (
            {"check_in": "2025-04-01", "check_out": "2025-05-15", "guests": 2},
            "That would be 44 nights",
        ),
        (
            {"check_in": "2025-04-08", "check_out": "2025-04-11", "guests": 12},
            "sleeps at most 6 guests",
        ),
        ({"check_in": "2025-04-08", "check_out": "2025-04-11", "guests": -1}, "How many guests"),
        ({"check_in": "someday", "check_out": "later", "guests": 2}, "I didn't catch the dates"),
        (
            {"check_in": "2025-04-08", "check_out": "2025-04-11", "guests": "lots"},
            "couldn't use the guests",
        ),
        ({"check_in": "2025-04-08", "guests": 2}, "couldn't use the check out"),
    ],
)
@pytest.mark.parametrize("tool", ["check_availability", "quote_stay"])
async def test_nonsense_inputs_get_a_sentence_not_an_exception(
    tools: dict[str, Any], tool: str, args: dict[str, Any], expected: str
) -> None:
    message = await call_tool(tools[tool], {"property_id": "casa-del-sol", **args})
    assert expected in message.content
    assert message.content.endswith(("?", "."))


async def test_upsell_request_confirms_books_and_replays(
    pms: DemoPMS, tools: dict[str, Any]
) -> None:
    await say(tools, "find_reservation", confirmation_code="CDS-5160", last_name="Nunez")
    offers = await say(tools, "list_upsell_offers")
    assert offers == (
        "For your stay I can offer early check-in from 1 PM for 50 euros, late checkout until "
        "2 PM for 50 euros, private transfer from Málaga airport for 95 euros or welcome pack "
        "with cava and tapas for 45 euros. Would you like any of these?"
    )
    done = await call_tool(tools["request_upsell"], {"offer": "the late checkout"})
    assert done.content.startswith("Done: late checkout until 2 PM is booked for 50 euros.")
    assert done.artifact["context"]["verified_reservation"]["extras"] == [
        "Late checkout until 2 PM"
    ]

    again = await say(tools, "request_upsell", offer="late checkout")
    assert again.startswith("That's already taken care of: late checkout until 2 PM, 50 euros")
    by_id = await say(tools, "request_upsell", offer="late-checkout")
    assert by_id.startswith("That's already taken care of")
    reservation = await pms.find_reservation("CDS-5160", "Nunez")
    assert reservation is not None and reservation.extras == ("Late checkout until 2 PM",)

    # A different conversation of the same guest cannot book it twice either.
    await say(tools, "find_reservation", "t9", confirmation_code="CDS-5160", last_name="Nunez")
    other = await say(tools, "request_upsell", "t9", offer="Late checkout until 2 PM")
    assert other == "Late checkout until 2 PM is already on your reservation."
    assert (await pms.find_reservation("CDS-5160", "Nunez")).extras == ("Late checkout until 2 PM",)  # type: ignore[union-attr]


async def test_unclear_offers_are_asked_about(tools: dict[str, Any]) -> None:
    await say(tools, "find_reservation", confirmation_code="HVL-3342", last_name="Johnson")
    unknown = await say(tools, "request_upsell", offer="a helicopter tour")
    assert unknown.startswith("I couldn't find an offer called a helicopter tour for your stay.")
    assert "late checkout until 1 PM for 40 dollars" in unknown
    ambiguous = await say(tools, "request_upsell", offer="more night")
    assert ambiguous.startswith("Did you mean stay 2 more nights") or ambiguous.startswith(
        "Did you mean Stay"
    )


async def test_gap_nights_through_the_tools(tools: dict[str, Any]) -> None:
    await say(tools, "find_reservation", confirmation_code="HVL-3342", last_name="Johnson")
    listing = await say(tools, "list_gap_night_offers")
    assert listing == (
        "The nights next to your stay are free, at 25 percent off: stay 2 more nights, until "
        "Tuesday, March 18, for 400.58 dollars instead of 534.10 dollars; or stay 1 more night, "
        "until Monday, March 17, for 200.29 dollars instead of 267.05 dollars. Would you like "
        "one of these?"
    )
    booked = await call_tool(
        tools["request_upsell"], {"offer": "Stay 2 more nights, until Tuesday, March 18"}
    )
    assert booked.content.startswith(
        "Done: you now check out on Tuesday, March 18. The extra nights cost 400.58 dollars."
    )
    assert booked.artifact["context"]["verified_reservation"]["departure"] == "2025-03-18"
    assert await say(tools, "list_gap_night_offers") == (
        "There are no discounted nights next to your stay right now."
    )


async def test_extras_are_refused_for_past_stays(tools: dict[str, Any]) -> None:
    await say(tools, "find_reservation", confirmation_code="CDS-5102", last_name="García")
    past = await say(tools, "list_upsell_offers")
    assert (
        past
        == "Extras can only be added to upcoming or current stays, and this stay has already ended."
    )
    assert "already ended" in await say(tools, "request_upsell", offer="welcome pack")


async def test_feedback_is_validated_and_recorded_once(pms: DemoPMS, tools: dict[str, Any]) -> None:
    await say(tools, "find_reservation", confirmation_code="ALP-7826", last_name="Rossi")
    assert "from 1 to 5 stars" in await say(tools, "leave_feedback", rating=0, comment="meh")
    assert "What would you like me to pass on" in await say(
        tools, "leave_feedback", rating=4, comment="  "
    )
    first = await say(tools, "leave_feedback", rating=5, comment="Wonderful sauna!")
    assert first.startswith("Thank you. I've passed your 5-star feedback on to the team.")
    again = await say(tools, "leave_feedback", rating=5, comment="Wonderful  sauna!")
    assert again == "I've already passed that feedback on. Thank you again."
    assert await pms.feedback_count("ALP-7826") == 1


async def test_offer_names_resolve_safely(pms: DemoPMS) -> None:
    desk = GuestDesk(pms, clock=clock)
    johnson = await pms.find_reservation("HVL-3342", "Johnson")
    assert johnson is not None
    offers = await pms.list_upsell_offers(johnson) + await pms.list_gap_night_offers(johnson)

    async def pick(text: str) -> str | None:
        choice = await desk.resolve_offer("c", johnson, text, offers)
        return choice.offer.id if choice.offer else None

    assert await pick("early check-in") is None  # not offered, so never late checkout instead
    assert await pick("late check out please") == "late-checkout"
    assert await pick("two more nights") == "gap-after-2"
    assert await pick("just one night") == "gap-after-1"
    assert await pick("Monday, March 17") == "gap-after-1"
    assert await pick("the second one") == offers[1].id
    assert await pick("welcome-basket") == "welcome-basket"
    assert await pick("a pony") is None
