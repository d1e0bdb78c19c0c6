"""The upsell workflow: find the caller's reservation, offer what fits, confirm, book.

    identify ──verified──▶ offer ──▶ confirm ──▶ book ──▶ END
        │                    ▲
        └──▶ ask_code ──▶ ask_name ──(no match)──▶ ask_code …

Questions to the caller are LangGraph interrupts (spoken by GraphLLM); the final yes/no goes
through `workflows.confirm.confirm`. Runnable by the assistant and by `/workflow upsell`.
`build_offer_workflow` is shared with the gap-night workflow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt

from tools.pms import PMS, GuestDesk, PMSError, Reservation, UpsellOffer, conversation_of
from tools.pms.clock import Clock
from tools.pms.matching import code_from_speech, last_name_from_speech
from tools.pms.phrases import join_words, offer_phrase, receipt_text
from tools.pms.verification import VerificationStore
from workflows.confirm import confirm, is_affirmative
from workflows.state import ConversationContext, merge_context

__all__ = [
    "SPEAKING_NODES",
    "WORKFLOW_NAME",
    "OfferFlowState",
    "OfferLister",
    "build_offer_workflow",
    "build_upsell_graph",
]

WORKFLOW_NAME = "upsell"
# Nodes whose AI messages are meant to be spoken (questions are spoken from interrupts).
SPEAKING_NODES: tuple[str, ...] = ("identify", "ask_name", "offer", "book")

OfferLister = Callable[[PMS, Reservation], Awaitable[list[UpsellOffer]]]

_NEGATIVE = ("no", "none", "nothing", "neither", "not", "nope", "nah", "don't", "cancel")
_MAX_CHOICE_TRIES = 2


class OfferFlowState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    context: Annotated[ConversationContext, merge_context]
    verified: bool
    said_code: str
    status: Literal["offering", "declined", "no_offers", "locked", "booked", "failed"]
    choice_tries: int
    chosen: dict[str, Any] | None
    only_offer: bool
    confirmed: bool


def _say(text: str) -> dict[str, Any]:
    return {"messages": [AIMessage(content=text)]}


def _declines(answer: Any) -> bool:
    text = str(answer).casefold()
    return any(word in text.replace(",", " ").split() for word in _NEGATIVE)


def build_offer_workflow(
    desk: GuestDesk,
    *,
    lister: OfferLister,
    lead: str,
    nothing_to_offer: str,
    checkpointer: BaseCheckpointSaver | None = None,
    name: str = WORKFLOW_NAME,
) -> CompiledStateGraph:
    """A verify → offer → confirm → book graph over the offers `lister` returns."""

    async def identify(state: OfferFlowState, config: RunnableConfig) -> dict[str, Any]:
        conversation = conversation_of(config)
        if await desk.reservation(conversation) is not None:
            return {"verified": True}
        context = state.get("context") or {}
        code, guest = context.get("reservation_code"), context.get("guest_name")
        if code and guest:
            result = await desk.verify(conversation, code, guest)
            if result.outcome == "verified":
                return {"verified": True}
        if await desk.locked(conversation):
            return {"verified": False, "status": "locked"} | _say(
                "I'm sorry, I can't look up reservations on this call any more. "
                "Please contact the team directly."
            )
        return {"verified": False}

    def ask_code(state: OfferFlowState) -> dict[str, Any]:
        answer = interrupt(
            {
                "type": "ask",
                "question": "First I need to find your booking. What's your confirmation code?",
            }
        )
        return {"said_code": code_from_speech(str(answer))}

    async def ask_name(state: OfferFlowState, config: RunnableConfig) -> dict[str, Any]:
        answer = interrupt({"type": "ask", "question": "And the last name on the booking?"})
        conversation = conversation_of(config)
        result = await desk.verify(
            conversation, state.get("said_code", ""), last_name_from_speech(str(answer))
        )
        if result.outcome == "verified":
            return {"verified": True}
        if result.outcome == "locked":
            return {"verified": False, "status": "locked"} | _say(
                "I'm sorry, that didn't match either, and I can't try again on this call. "
                "Please contact the team directly."
            )
        if result.outcome == "wait":
            return {"verified": False} | _say(
                "There have been several unsuccessful attempts for those details, so I have "
                "to pause a moment. Let's try once more shortly."
            )
        return {"verified": False} | _say(
            "That code and last name didn't match a booking. Let's try once more."
        )

    async def offer(state: OfferFlowState, config: RunnableConfig) -> dict[str, Any]:
        conversation = conversation_of(config)
        reservation = await desk.reservation(conversation)
        if reservation is None:
            return {"status": "failed"} | _say("I couldn't open your reservation just now.")
        try:
            offers = await lister(desk.pms, reservation) if reservation.is_active else []
        except PMSError as exc:
            return {"status": "failed"} | _say(exc.speakable)
        if not offers:
            return {"status": "no_offers"} | _say(nothing_to_offer)
        if len(offers) == 1:
            return {"status": "offering", "chosen": offers[0].public_dict(), "only_offer": True}
        tries = state.get("choice_tries", 0)
        listing = join_words([offer_phrase(o) for o in offers], conjunction="or")
        prompt = f"{lead} {listing}. Which would you like?"
        if tries:
            prompt = f"Sorry, I didn't catch which one. I can offer {listing}."
        answer = interrupt({"type": "choose", "question": prompt})
        if _declines(answer) and not is_affirmative(answer):
            return {"status": "declined"} | _say("No problem, I haven't added anything.")
        choice = await desk.resolve_offer(conversation, reservation, str(answer), offers)
        if choice.offer is not None:
            return {"status": "offering", "chosen": choice.offer.public_dict(), "only_offer": False}
        if tries + 1 >= _MAX_CHOICE_TRIES:
            return {"status": "declined"} | _say(
                "I'll leave it there for now; just ask me again whenever you like."
            )
        return {"status": "offering", "chosen": None, "choice_tries": tries + 1}

    def confirm_choice(state: OfferFlowState) -> dict[str, Any]:
        phrase = offer_phrase(UpsellOffer.model_validate(state.get("chosen")))
        question = f"Shall I add {phrase} to your reservation?"
        if state.get("only_offer"):
            question = f"{lead} {phrase}. Shall I add it to your reservation?"
        return {"confirmed": confirm(question)}

    async def book(state: OfferFlowState, config: RunnableConfig) -> dict[str, Any]:
        if not state.get("confirmed"):
            return {"status": "declined"} | _say("All right, I haven't booked anything.")
        chosen = UpsellOffer.model_validate(state.get("chosen"))
        conversation = conversation_of(config)
        reservation = await desk.reservation(conversation)
        if reservation is None:
            return {"status": "failed"} | _say("I couldn't open your reservation just now.")
        try:
            receipt = await desk.request(conversation, reservation, chosen.id, chosen.name)
        except PMSError as exc:
            return {"status": "failed"} | _say(exc.speakable)
        _, today = await desk.property_and_today(reservation.property_id)
        return {"status": "booked"} | _say(receipt_text(receipt, today))

    def after_verifying(state: OfferFlowState) -> str:
        if state.get("verified"):
            return "offer"
        return END if state.get("status") == "locked" else "ask_code"

    def after_offer(state: OfferFlowState) -> str:
        if state.get("status") != "offering":
            return END
        return "confirm" if state.get("chosen") else "offer"

    graph = StateGraph(OfferFlowState)
    graph.add_node("identify", identify)
    graph.add_node("ask_code", ask_code)
    graph.add_node("ask_name", ask_name)
    graph.add_node("offer", offer)
    graph.add_node("confirm", confirm_choice)
    graph.add_node("book", book)
    graph.add_edge(START, "identify")
    graph.add_conditional_edges("identify", after_verifying, ["offer", "ask_code", END])
    graph.add_edge("ask_code", "ask_name")
    graph.add_conditional_edges("ask_name", after_verifying, ["offer", "ask_code", END])
    graph.add_conditional_edges("offer", after_offer, ["confirm", "offer", END])
    graph.add_edge("confirm", "book")
    graph.add_edge("book", END)
    return graph.compile(checkpointer=checkpointer, name=name)


async def _upsell_offers(pms: PMS, reservation: Reservation) -> list[UpsellOffer]:
    return await pms.list_upsell_offers(reservation)


def build_upsell_graph(
    pms: PMS,
    *,
    store: VerificationStore | None = None,
    desk: GuestDesk | None = None,
    clock: Clock | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph:
    """Offer early check-in, late checkout and extras for the caller's stay.

    Share `store` (or `desk`) with `pms_tools` so a caller verified by the assistant is not
    asked again.
    """
    return build_offer_workflow(
        desk or GuestDesk(pms, store=store, clock=clock),
        lister=_upsell_offers,
        lead="For your stay I can offer",
        nothing_to_offer="There are no extras I can add to your stay right now.",
        checkpointer=checkpointer,
        name=WORKFLOW_NAME,
    )
