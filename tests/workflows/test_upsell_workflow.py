"""The upsell workflow as a caller experiences it: questions as interrupts, yes/no through
workflows.confirm, one booking even when the run is retried."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from tools.pms import DemoPMS, InMemoryVerificationStore, fixed_clock, pms_tools
from workflows.upsell import SPEAKING_NODES, build_upsell_graph

clock = fixed_clock(datetime(2025, 3, 10, 15, 0, tzinfo=UTC))


@dataclass
class Transcript:
    questions: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


async def converse(
    graph: Any, thread: str, answers: Sequence[str], *, context: dict[str, Any] | None = None
) -> Transcript:
    """Start the workflow, answer each question in turn, and record what the caller hears."""
    config = {"configurable": {"thread_id": thread}}
    start: dict[str, Any] = {"messages": [HumanMessage(content="/workflow upsell")]}
    if context:
        start["context"] = context
    transcript = Transcript()
    seen = 1
    step: Any = start
    pending = list(answers)
    while True:
        result = await graph.ainvoke(step, config)
        messages = result.get("messages", [])
        transcript.said += [str(m.content) for m in messages[seen:] if isinstance(m, AIMessage)]
        seen = len(messages)
        interrupts = result.get("__interrupt__") or ()
        if not interrupts:
            return transcript
        transcript.questions.append(interrupts[0].value["question"])
        assert pending, f"unanswered question: {transcript.questions[-1]}"
        step = Command(resume=pending.pop(0))


def graph_for(pms: DemoPMS, store: InMemoryVerificationStore | None = None) -> Any:
    return build_upsell_graph(pms, store=store, clock=clock, checkpointer=InMemorySaver())


async def test_verify_choose_confirm_and_book(pms: DemoPMS) -> None:
    heard = await converse(
        graph_for(pms),
        "call-1",
        ["it's C D S dash five one six zero", "Núñez", "the late checkout please", "yes please"],
    )
    assert heard.questions == [
        "First I need to find your booking. What's your confirmation code?",
        "And the last name on the booking?",
        "For your stay I can offer early check-in from 1 PM for 50 euros, late checkout until "
        "2 PM for 50 euros, private transfer from Málaga airport for 95 euros or welcome pack "
        "with cava and tapas for 45 euros. Which would you like?",
        "Shall I add late checkout until 2 PM for 50 euros to your reservation?",
    ]
    assert heard.said[-1].startswith("Done: late checkout until 2 PM is booked for 50 euros.")
    reservation = await pms.find_reservation("CDS-5160", "Nunez")
    assert reservation is not None and reservation.extras == ("Late checkout until 2 PM",)


async def test_no_at_the_confirmation_books_nothing(pms: DemoPMS) -> None:
    heard = await converse(
        graph_for(pms), "call-2", ["CDS-5160", "nunez", "welcome pack", "no, not today"]
    )
    assert heard.said[-1] == "All right, I haven't booked anything."
    reservation = await pms.find_reservation("CDS-5160", "Nunez")
    assert reservation is not None and reservation.extras == ()


async def test_declining_the_offers_ends_politely(pms: DemoPMS) -> None:
    heard = await converse(graph_for(pms), "call-3", ["HVL-3342", "Johnson", "no thanks"])
    assert heard.said[-1] == "No problem, I haven't added anything."
    assert len(heard.questions) == 3


async def test_an_unclear_choice_is_asked_again_once(pms: DemoPMS) -> None:
    heard = await converse(
        graph_for(pms), "call-4", ["HVL-3342", "Johnson", "the spa", "the welcome basket", "yes"]
    )
    assert heard.questions[3].startswith("Sorry, I didn't catch which one. I can offer")
    assert heard.said[-1].startswith("Done: welcome basket of Maine treats is booked for 55")


async def test_a_caller_verified_by_the_assistant_is_not_asked_again(pms: DemoPMS) -> None:
    store = InMemoryVerificationStore()
    tools = {t.name: t for t in pms_tools(pms, store=store, clock=clock)}
    await tools["find_reservation"].ainvoke(
        {"confirmation_code": "ALP-7851", "last_name": "Kjaergaard"},
        config={"configurable": {"thread_id": "call-5"}},
    )
    heard = await converse(graph_for(pms, store), "call-5", ["bringing the dog", "yes"])
    assert heard.questions[0].startswith("For your stay I can offer early check-in from noon")
    assert heard.said[-1].startswith("Done: bringing one dog is booked for CHF 175.")


async def test_dispatch_context_verifies_without_questions(pms: DemoPMS) -> None:
    heard = await converse(
        graph_for(pms),
        "call-6",
        ["raclette", "yes"],
        context={"reservation_code": "ALP-7826", "guest_name": "Giulia Rossi"},
    )
    assert heard.questions[0].startswith("For your stay I can offer late checkout until 1 PM")
    assert heard.said[-1].startswith("Done: raclette evening kit is booked for CHF 90.")


async def test_wrong_details_are_retried_until_the_lockout(pms: DemoPMS) -> None:
    answers = []
    for attempt in range(5):
        answers += [f"HVL-334{attempt + 3}", f"Jonsen {attempt}"]
    store = InMemoryVerificationStore()
    heard = await converse(graph_for(pms, store), "call-7", answers)
    assert (
        heard.said.count("That code and last name didn't match a booking. Let's try once more.")
        == 4
    )
    assert heard.said[-1].startswith("I'm sorry, that didn't match either, and I can't try again")
    # The lockout holds for the rest of the conversation, even with the right details.
    again = await converse(graph_for(pms, store), "call-7", [])
    assert again.questions == []
    assert again.said[-1].startswith("I'm sorry, I can't look up reservations on this call")


async def test_past_stays_get_no_offers(pms: DemoPMS) -> None:
    heard = await converse(graph_for(pms), "call-8", ["CDS-5102", "Garcia"])
    assert heard.said[-1] == "There are no extras I can add to your stay right now."


async def test_a_retried_booking_step_does_not_book_twice(pms: DemoPMS) -> None:
    graph = graph_for(pms)
    await converse(graph, "call-9", ["HVL-3342", "Johnson", "late checkout", "yes"])
    config = {"configurable": {"thread_id": "call-9"}}
    history = [s async for s in graph.aget_state_history(config)]
    before_book = next(s for s in history if s.next == ("book",))
    replay = await graph.ainvoke(None, before_book.config)
    assert str(replay["messages"][-1].content).startswith(
        "That's already taken care of: late checkout until 1 PM, 40 dollars"
    )
    reservation = await pms.find_reservation("HVL-3342", "Johnson")
    assert reservation is not None and reservation.extras == ("Late checkout until 1 PM",)
    assert reservation.total is not None and str(reservation.total.amount) == "1298.95"


def test_speaking_nodes_are_the_ones_that_talk() -> None:
    assert set(SPEAKING_NODES) == {"identify", "ask_name", "offer", "book"}
