"""The PMS as LangChain tools for the assistant (and, through the bridge, for LiveKit).

Every tool answers with a short speakable sentence plus a JSON artifact. Tools that need to
know the conversation read `config["configurable"]["thread_id"]` from the injected
`RunnableConfig`. Reservation tools work only after `find_reservation` verified the caller
in this conversation. `request_upsell` and `leave_feedback` are side-effecting: their metadata
carries the confirmation question the assistant asks before running them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, ParamSpec

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, ValidationError

from tools.artifacts import ToolRole, artifact_tool
from tools.pms.clock import Clock
from tools.pms.desk import ANONYMOUS, GuestDesk, describe_candidates
from tools.pms.errors import PMSError
from tools.pms.models import Property, Reservation, UpsellOffer
from tools.pms.phrases import (
    RATING_RANGE,
    availability_text,
    feedback_text,
    gap_offers_text,
    join_words,
    match_topics,
    offer_phrase,
    property_text,
    quote_text,
    receipt_text,
    reservation_text,
    upsell_offers_text,
)
from tools.pms.protocol import PMS
from tools.pms.stay import parse_day, stay_problem
from tools.pms.throttle import VerificationThrottle
from tools.pms.verification import VerificationStore

__all__ = ["NEEDS_VERIFICATION", "conversation_of", "pms_tools", "verified_context"]

Result = tuple[str, dict[str, Any]]
_P = ParamSpec("_P")

NEEDS_VERIFICATION = (
    "I can do that once I've found your reservation. "
    "What's your confirmation code and the last name on the booking?"
)


def conversation_of(config: RunnableConfig | None) -> str:
    """The conversation key: the graph thread id, or the shared anonymous key."""
    configurable = (config or {}).get("configurable") or {}
    thread = configurable.get("thread_id")
    return str(thread) if thread else ANONYMOUS


def verified_context(reservation: Reservation) -> dict[str, Any]:
    """The conversation-context update for a verified reservation (see workflows.state)."""
    return {
        "verified": True,
        "verified_reservation": reservation.public_dict(),
        "reservation_code": reservation.code,
        "guest_name": reservation.guest_name,
        "property_id": reservation.property_id,
    }


@dataclass(frozen=True, slots=True)
class _Stay:
    prop: Property
    arrival: date
    departure: date
    today: date


def _spoken_wait(seconds: float) -> str:
    if seconds <= 60:
        return "a moment"
    minutes = max(1, round(seconds / 60))
    return "a minute" if minutes == 1 else f"about {minutes} minutes"


def _invalid_input(error: ValidationError) -> str:
    fields = sorted({str(e["loc"][0]).replace("_", " ") for e in error.errors() if e.get("loc")})
    named = join_words(fields) or "some details"
    return f"I couldn't use the {named} as given. Could you say that again?"


def _speakable_errors(fn: Callable[_P, Awaitable[Result]]) -> Callable[_P, Awaitable[Result]]:
    """PMS errors become the sentence they carry, with the error class in the artifact."""

    @functools.wraps(fn)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Result:
        try:
            return await fn(*args, **kwargs)
        except PMSError as exc:
            return exc.speakable, {"error": type(exc).__name__}

    return wrapper


class PropertyInfoArgs(BaseModel):
    property_id: str | None = Field(
        default=None,
        description="The property's id (e.g. 'casa-del-sol') or name. Leave empty to use the "
        "caller's property.",
    )
    topic: str | None = Field(
        default=None,
        description="What the caller asks about, e.g. 'wifi', 'parking', 'check-in', "
        "'check-out', 'address', 'pets', 'quiet hours', 'house rules', 'amenities', "
        "'capacity'. Leave empty for an overview.",
    )


class FindReservationArgs(BaseModel):
    confirmation_code: str = Field(description="The booking confirmation code, e.g. 'CDS-5160'.")
    last_name: str = Field(description="The last name on the booking, as the caller said it.")


class StayArgs(BaseModel):
    property_id: str | None = Field(
        default=None,
        description="The property's id (e.g. 'alpine-chalet') or name. Leave empty to use the "
        "caller's property.",
    )
    check_in: str = Field(description="Arrival date, ISO format YYYY-MM-DD.")
    check_out: str = Field(description="Departure date, ISO format YYYY-MM-DD.")
    guests: int = Field(description="Number of guests, children included.")


class NoArgs(BaseModel):
    """No arguments: the tool works on the conversation's verified reservation."""


class RequestUpsellArgs(BaseModel):
    offer: str = Field(
        description="The offer to book, by its name as listed by list_upsell_offers or "
        "list_gap_night_offers (e.g. 'Late checkout until 2 PM') or its id."
    )


class FeedbackArgs(BaseModel):
    rating: int = Field(description="Rating from 1 (poor) to 5 (excellent).")
    comment: str = Field(description="The caller's feedback in their own words.")


def pms_tools(
    pms: PMS,
    *,
    store: VerificationStore | None = None,
    throttle: VerificationThrottle | None = None,
    clock: Clock | None = None,
    desk: GuestDesk | None = None,
) -> list[BaseTool]:
    """`get_property_info`, `find_reservation`, `check_availability`, `quote_stay`,
    `list_upsell_offers`, `request_upsell`, `list_gap_night_offers`, `leave_feedback`.

    Pass the same `store` (or `desk`) to the workflows so verification is shared.
    """
    desk = desk or GuestDesk(pms, store=store, throttle=throttle, clock=clock)

    async def property_or_question(hint: str | None, conversation: str) -> Property | Result:
        prop, candidates = await desk.resolve_property(hint, conversation)
        if prop is not None:
            return prop
        choices = describe_candidates(candidates)
        lead = f"I don't know a property called {hint}. " if hint else ""
        return (
            f"{lead}Which home do you mean: {choices}?",
            {"error": "unknown_property", "properties": [c.public_dict() for c in candidates]},
        )

    async def verified(conversation: str) -> Reservation | Result:
        reservation = await desk.reservation(conversation)
        if reservation is None:
            return NEEDS_VERIFICATION, {"needs_verification": True}
        return reservation

    @_speakable_errors
    async def get_property_info(
        config: RunnableConfig, property_id: str | None = None, topic: str | None = None
    ) -> Result:
        found = await property_or_question(property_id, conversation_of(config))
        if not isinstance(found, Property):
            return found
        topics = match_topics(topic)
        text = property_text(found, topics, topic)
        return text, {
            "property": found.public_dict(),
            "topics": topics,
            "context": {"property_id": found.id},
        }

    @_speakable_errors
    async def find_reservation(
        confirmation_code: str, last_name: str, config: RunnableConfig
    ) -> Result:
        conversation = conversation_of(config)
        result = await desk.verify(conversation, confirmation_code, last_name)
        if result.outcome == "locked":
            return (
                "I'm sorry, I can't look up reservations on this call after several "
                "unsuccessful attempts. Please contact the team directly.",
                {"verified": False, "locked": True},
            )
        if result.outcome == "wait":
            return (
                "There have been several unsuccessful attempts for those details, so I have "
                f"to pause for {_spoken_wait(result.retry_after_s)}. Let's try again then.",
                {"verified": False, "retry_after_s": round(result.retry_after_s, 1)},
            )
        if result.outcome == "incomplete":
            return (
                "I need both the confirmation code and the last name on the booking.",
                {"verified": False, "attempts_left": result.attempts_left},
            )
        if result.outcome == "mismatch" or result.reservation is None:
            return (
                "I couldn't find a reservation with that code and last name. Could you spell "
                "the confirmation code for me, and the last name on the booking?",
                {"verified": False, "attempts_left": result.attempts_left},
            )
        reservation = result.reservation
        prop, today = await desk.property_and_today(reservation.property_id)
        return reservation_text(reservation, prop, today), {
            "verified": True,
            "reservation": reservation.public_dict(),
            "context": verified_context(reservation),
        }

    async def stay_request(
        config: RunnableConfig, property_id: str | None, check_in: str, check_out: str, guests: int
    ) -> _Stay | Result:
        found = await property_or_question(property_id, conversation_of(config))
        if not isinstance(found, Property):
            return found
        today = desk.today_at(found)
        arrival, departure = parse_day(check_in, today=today), parse_day(check_out, today=today)
        if arrival is None or departure is None:
            return (
                "I didn't catch the dates. What are the check-in and check-out dates, "
                "for example March 14 to March 17?",
                {"error": "unreadable_dates"},
            )
        problem = stay_problem(arrival, departure, guests, today=today, prop=found)
        if problem:
            return problem, {"error": "invalid_stay"}
        return _Stay(found, arrival, departure, today)

    @_speakable_errors
    async def check_availability(
        check_in: str,
        check_out: str,
        guests: int,
        config: RunnableConfig,
        property_id: str | None = None,
    ) -> Result:
        stay = await stay_request(config, property_id, check_in, check_out, guests)
        if not isinstance(stay, _Stay):
            return stay
        availability = await pms.check_availability(
            stay.prop.id, stay.arrival, stay.departure, guests
        )
        return availability_text(availability, stay.prop, stay.today), availability.public_dict()

    @_speakable_errors
    async def quote_stay(
        check_in: str,
        check_out: str,
        guests: int,
        config: RunnableConfig,
        property_id: str | None = None,
    ) -> Result:
        stay = await stay_request(config, property_id, check_in, check_out, guests)
        if not isinstance(stay, _Stay):
            return stay
        quote = await pms.quote_stay(stay.prop.id, stay.arrival, stay.departure, guests)
        return quote_text(quote, stay.prop, stay.today), quote.public_dict()

    def inactive_text(reservation: Reservation) -> str | None:
        if reservation.is_active:
            return None
        ended = {"cancelled": "was cancelled", "no_show": "was marked as a no-show"}
        state = ended.get(reservation.status, "has already ended")
        return f"Extras can only be added to upcoming or current stays, and this stay {state}."

    async def offers_for_verified(
        config: RunnableConfig,
        listing: Callable[[Reservation], Awaitable[list[UpsellOffer]]],
        spoken: Callable[[list[UpsellOffer]], str],
    ) -> Result:
        found = await verified(conversation_of(config))
        if not isinstance(found, Reservation):
            return found
        if text := inactive_text(found):
            return text, {"offers": []}
        offers = await listing(found)
        return spoken(offers), {"offers": [o.public_dict() for o in offers]}

    @_speakable_errors
    async def list_upsell_offers(config: RunnableConfig) -> Result:
        return await offers_for_verified(config, pms.list_upsell_offers, upsell_offers_text)

    @_speakable_errors
    async def list_gap_night_offers(config: RunnableConfig) -> Result:
        return await offers_for_verified(config, pms.list_gap_night_offers, gap_offers_text)

    @_speakable_errors
    async def request_upsell(offer: str, config: RunnableConfig) -> Result:
        conversation = conversation_of(config)
        found = await verified(conversation)
        if not isinstance(found, Reservation):
            return found
        if text := inactive_text(found):
            return text, {"error": "inactive_reservation"}
        offers = await pms.list_upsell_offers(found) + await pms.list_gap_night_offers(found)
        choice = await desk.resolve_offer(conversation, found, offer, offers)
        if choice.ambiguous:
            names = join_words([o.name for o in choice.ambiguous], conjunction="or")
            return f"Did you mean {names}?", {"error": "ambiguous_offer"}
        if choice.offer is not None:
            offer_id, name = choice.offer.id, choice.offer.name
        elif choice.already_requested is not None:
            offer_id = choice.already_requested
            name = (await desk.requested(conversation, found))[offer_id]
        elif offer.strip() and any(offer.strip().lower() in e.lower() for e in found.extras):
            return f"{offer.strip()} is already on your reservation.", {"error": "already_booked"}
        else:
            available = join_words([offer_phrase(o) for o in offers], conjunction="or")
            tail = f" I can offer {available}." if available else ""
            return (
                f"I couldn't find an offer called {offer} for your stay.{tail}",
                {"error": "unknown_offer"},
            )
        receipt = await desk.request(conversation, found, offer_id, name)
        updated = await desk.reservation(conversation) or found
        _, today = await desk.property_and_today(found.property_id)
        return receipt_text(receipt, today), {
            "receipt": receipt.public_dict(),
            "context": verified_context(updated),
        }

    @_speakable_errors
    async def leave_feedback(rating: int, comment: str, config: RunnableConfig) -> Result:
        conversation = conversation_of(config)
        if not 1 <= rating <= 5:
            return f"{RATING_RANGE} How many stars would you give?", {"error": "invalid_rating"}
        if not comment.strip():
            return "What would you like me to pass on to the team?", {"error": "empty_comment"}
        found = await verified(conversation)
        if not isinstance(found, Reservation):
            return found
        receipt = await desk.feedback(conversation, found, rating, comment)
        return feedback_text(receipt), {"receipt": receipt.public_dict()}

    def make(
        fn: Callable[..., Awaitable[Result]],
        schema: type[BaseModel],
        description: str,
        metadata: dict[str, Any] | None = None,
    ) -> BaseTool:
        return artifact_tool(
            fn,
            args_schema=schema,
            description=description,
            metadata=metadata,
            handle_validation_error=_invalid_input,
        )

    return [
        make(
            get_property_info,
            PropertyInfoArgs,
            "Facts about one of our holiday homes from the booking system: address, check-in "
            "and check-out times, Wi-Fi name and password, parking, pets, quiet hours, house "
            "rules, amenities and how many guests it sleeps. Use it for practical questions "
            "about a property; no verification needed.",
            {"role": ToolRole.PROPERTY_FACTS},
        ),
        make(
            find_reservation,
            FindReservationArgs,
            "Find and verify the caller's reservation from its confirmation code and the "
            "guest's last name. Call this before anything about an existing booking. After "
            "several failed attempts it refuses, so ask the caller to spell the code.",
            {"role": ToolRole.RESERVATION_LOOKUP},
        ),
        make(
            check_availability,
            StayArgs,
            "Check whether a property is free for given check-in and check-out dates and "
            "number of guests; gives the total price when it is, or the next free dates.",
            {"role": ToolRole.AVAILABILITY},
        ),
        make(
            quote_stay,
            StayArgs,
            "Price a stay: nightly rates, cleaning fee, taxes and the total in the property's "
            "currency, for given dates and guests.",
        ),
        make(
            list_upsell_offers,
            NoArgs,
            "List the extras the verified caller can add to their stay: early check-in, late "
            "checkout and other extras, with prices. Needs find_reservation first.",
            {"role": ToolRole.UPSELLS},
        ),
        make(
            request_upsell,
            RequestUpsellArgs,
            "Book one extra or gap-night offer for the verified caller's stay, named as listed "
            "by list_upsell_offers or list_gap_night_offers. The caller is asked to confirm "
            "first; repeating the same request does not book twice.",
            {"side_effecting": True, "confirm": "Shall I add {offer} to your reservation?"},
        ),
        make(
            list_gap_night_offers,
            NoArgs,
            "List discounted free nights right before or after the verified caller's stay "
            "(gap nights between bookings). Needs find_reservation first.",
        ),
        make(
            leave_feedback,
            FeedbackArgs,
            "Pass the verified caller's feedback or review about their stay on to the team, "
            "with a rating from 1 to 5. The caller is asked to confirm first.",
            {
                "side_effecting": True,
                "confirm": "Shall I pass your {rating}-star feedback on to the team?",
            },
        ),
    ]
