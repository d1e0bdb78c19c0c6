"""The gap-night workflow on the seeded demo calendar: offer, confirm, extend the stay."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from tools.pms import DemoPMS, fixed_clock
from workflows.gap_nights import WORKFLOW_NAME, build_gap_nights_graph

clock = fixed_clock(datetime(2025, 3, 10, 15, 0, tzinfo=UTC))


async def run(
    pms: DemoPMS, thread: str, context: dict[str, Any], answers: list[str]
) -> tuple[list[str], str]:
    """(questions heard, last thing said) for one pass through the workflow."""
    graph = build_gap_nights_graph(pms, clock=clock, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": thread}}
    step: Any = {"messages": [HumanMessage(content="/workflow gap_nights")], "context": context}
    questions: list[str] = []
    while True:
        result = await graph.ainvoke(step, config)
        if not result.get("__interrupt__"):
            last = result["messages"][-1]
            assert isinstance(last, AIMessage)
            return questions, str(last.content)
        questions.append(result["__interrupt__"][0].value["question"])
        step = Command(resume=answers.pop(0))


async def test_a_single_gap_is_offered_and_confirmed_in_one_question(pms: DemoPMS) -> None:
    questions, said = await run(
        pms, "g1", {"reservation_code": "ALP-7826", "guest_name": "Giulia Rossi"}, ["yes"]
    )
    assert questions == [
        "The nights next to your stay are free, and discounted: stay 1 more night, until "
        "Sunday, March 16, for CHF 560.75. Shall I add it to your reservation?"
    ]
    assert said.startswith(
        "Done: you now check out on Sunday, March 16. The extra nights cost CHF 560.75."
    )
    rossi = await pms.find_reservation("ALP-7826", "Rossi")
    assert rossi is not None and rossi.departure == date(2025, 3, 16)


async def test_choosing_one_of_several_gap_offers(pms: DemoPMS) -> None:
    questions, said = await run(
        pms,
        "g2",
        {"reservation_code": "HVL-3342", "guest_name": "Derek Johnson"},
        ["just the 1 more night", "yes"],
    )
    assert questions[0] == (
        "The nights next to your stay are free, and discounted: stay 2 more nights, until "
        "Tuesday, March 18, for 400.58 dollars; or stay 1 more night, until Monday, March 17, "
        "for 200.29 dollars. Which would you like?"
    )
    assert questions[1] == (
        "Shall I add stay 1 more night, until Monday, March 17, for 200.29 dollars to your "
        "reservation?"
    )
    assert "you now check out on Monday, March 17" in said
    johnson = await pms.find_reservation("HVL-3342", "Johnson")
    assert johnson is not None and johnson.departure == date(2025, 3, 17)


async def test_saying_no_keeps_the_stay_as_it_was(pms: DemoPMS) -> None:
    _, said = await run(
        pms,
        "g3",
        {"reservation_code": "CDS-5160", "guest_name": "Núñez"},
        [
            "two nights",
            "no",
        ],
    )
    assert said == "All right, I haven't booked anything."
    nunez = await pms.find_reservation("CDS-5160", "Nunez")
    assert nunez is not None and nunez.departure == date(2025, 3, 17)


async def test_no_gap_means_no_offer(pms: DemoPMS) -> None:
    questions, said = await run(
        pms, "g4", {"reservation_code": "ALP-7863", "guest_name": "Lukas Weber"}, []
    )
    assert questions == []
    assert said == "There are no discounted nights next to your stay right now."


def test_workflow_name_matches_the_command() -> None:
    assert WORKFLOW_NAME == "gap_nights"
