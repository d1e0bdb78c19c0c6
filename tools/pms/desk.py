"""The guest desk: verification gating, property resolution and offer handling per conversation.

Shared by the LangChain tools and the upsell / gap-night workflows so both follow the same
rules: reservation details only after confirmation code + last name match, at most
`max_failures` failed attempts per conversation, failed attempts also throttled per
reservation code and last name across conversations (`tools.pms.throttle`), and side effects
keyed per conversation and offer so a repeated or speculative run cannot book twice.

Verified status belongs to the caller: the desk of one call is bound to the caller's
authenticated key, and every record it keeps is scoped by (caller, conversation), so another
identity on the same thread, or the same caller on a new thread, starts unverified.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from tools.pms.clock import Clock, utc_now
from tools.pms.matching import name_variants, normalize_code
from tools.pms.models import (
    FeedbackReceipt,
    Property,
    PropertySummary,
    Reservation,
    UpsellOffer,
    UpsellReceipt,
)
from tools.pms.phrases import join_words
from tools.pms.protocol import PMS
from tools.pms.stay import local_today
from tools.pms.throttle import InMemoryVerificationThrottle, VerificationThrottle, targets_for
from tools.pms.verification import InMemoryVerificationStore, VerificationStore, VerifiedGuest

__all__ = [
    "ANONYMOUS",
    "MAX_FAILED_VERIFICATIONS",
    "GuestDesk",
    "OfferChoice",
    "Verification",
    "describe_candidates",
]

MAX_FAILED_VERIFICATIONS = 5
# Conversations without a thread id share this key for failed attempts and never stay verified.
ANONYMOUS = "anonymous"

_WORDS = re.compile(r"[a-z0-9]+")
# fmt: off
_STOP_WORDS = frozenset({
    "the", "a", "an", "for", "to", "of", "and", "with", "from", "until", "on", "my", "please",
    "pm", "am", "i", "want", "like", "would", "book", "add", "that", "this",
})
# fmt: on
# Words shared by several offers ("check", "night") weigh less when matching a caller's words.
_GENERIC = frozenset({"check", "in", "out", "stay", "night"})
_NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6"}
_ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4}
_KIND_HINTS = {
    "late_checkout": ("late", "check out", "checkout"),
    "early_check_in": ("early", "check in", "checkin"),
    "gap_night": ("night",),
}


def _folded(text: str) -> str:
    variants = sorted(name_variants(text))
    return variants[0] if variants else ""


def _tokens(text: str) -> set[str]:
    """Content words, singular ('nights' → 'night'), digits for number words, and
    'checkout' = 'check out'."""
    folded = text.casefold().replace("-", " ").replace("checkout", "check out")
    folded = folded.replace("checkin", "check in")
    words = {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORDS.findall(folded)}
    words = {_NUMBERS.get(w, w) for w in words}
    return {w for w in words if w not in _STOP_WORDS}


def _kinds(text: str) -> set[str]:
    folded = text.casefold().replace("-", " ")
    return {kind for kind, hints in _KIND_HINTS.items() if any(h in folded for h in hints)}


def _score(wanted: set[str], offer_text: str) -> float:
    """Distinctive shared words (numbers included) count 1, generic ones a quarter."""
    shared = wanted & _tokens(offer_text)
    return sum(0.25 if w in _GENERIC else 1.0 for w in shared)


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of one verification attempt (locked: too many failures already)."""

    outcome: Literal["verified", "mismatch", "locked", "wait", "incomplete"]
    reservation: Reservation | None = None
    attempts_left: int = 0
    # "wait" and target locks: seconds until that code or name may be tried again
    retry_after_s: float = 0.0


@dataclass(frozen=True, slots=True)
class OfferChoice:
    """What an offer name said by the caller resolved to."""

    offer: UpsellOffer | None
    already_requested: str | None = None  # offer id this conversation requested before
    ambiguous: tuple[UpsellOffer, ...] = ()


class GuestDesk:
    """Verification, property and offer rules for one PMS, shared by tools and workflows."""

    def __init__(
        self,
        pms: PMS,
        *,
        store: VerificationStore | None = None,
        throttle: VerificationThrottle | None = None,
        clock: Clock | None = None,
        max_failures: int = MAX_FAILED_VERIFICATIONS,
        caller: str | None = None,
    ) -> None:
        self.pms = pms
        self.store: VerificationStore = store or InMemoryVerificationStore()
        self.throttle: VerificationThrottle = throttle or InMemoryVerificationThrottle()
        self.clock = clock or utc_now
        self.max_failures = max_failures
        # Hashed: store keys name the caller without carrying their identity.
        self._caller = (
            hashlib.sha256(f"caller\x1f{caller}".encode()).hexdigest()[:24] if caller else None
        )

    def _key(self, conversation: str) -> str:
        """The store key of this caller's records in `conversation`."""
        return conversation if self._caller is None else f"{self._caller}:{conversation}"

    # -- verification ----------------------------------------------------------------------

    async def locked(self, conversation: str) -> bool:
        return await self.store.failures(self._key(conversation)) >= self.max_failures

    async def verify(self, conversation: str, code: str, last_name: str) -> Verification:
        key = self._key(conversation)
        failures = await self.store.failures(key)
        if failures >= self.max_failures:
            return Verification("locked")
        said_code, said_name = normalize_code(code), _folded(last_name)
        if not said_code or not said_name:
            return Verification("incomplete", attempts_left=self.max_failures - failures)
        targets = targets_for(said_code, said_name)
        attempt = await self.throttle.begin(targets)
        if not attempt.allowed:
            return Verification(
                "locked" if attempt.locked else "wait",
                attempts_left=self.max_failures - failures,
                retry_after_s=attempt.retry_after_s,
            )
        try:
            reservation = await self.pms.find_reservation(code, last_name)
        except BaseException:
            await self.throttle.succeeded(targets)  # an outage is not a wrong guess
            raise
        if reservation is None:
            await self.throttle.failed(targets, attempt)
            failures = await self.store.record_failure(key)
            left = max(0, self.max_failures - failures)
            return Verification("locked" if left == 0 else "mismatch", attempts_left=left)
        await self.throttle.succeeded(targets)
        if conversation != ANONYMOUS:
            await self.store.remember(
                key,
                VerifiedGuest(
                    code=reservation.code,
                    last_name=reservation.guest_last_name,
                    property_id=reservation.property_id,
                ),
            )
        return Verification("verified", reservation, self.max_failures - failures)

    async def reservation(self, conversation: str) -> Reservation | None:
        """This caller's verified reservation in `conversation`, as the PMS has it now."""
        guest = await self.store.verified(self._key(conversation))
        if guest is None:
            return None
        return await self.pms.find_reservation(guest.code, guest.last_name)

    # -- properties ------------------------------------------------------------------------

    async def properties(self) -> list[PropertySummary]:
        return await self.pms.list_properties()

    async def resolve_property(
        self, hint: str | None, conversation: str
    ) -> tuple[Property | None, list[PropertySummary]]:
        """(property, candidates): the property meant by `hint` (an id, a name or a city), else
        the verified guest's property, else the only one; candidates when it stays unclear."""
        summaries = await self.pms.list_properties()
        chosen: PropertySummary | None = None
        if hint and hint.strip():
            wanted = _folded(hint)
            for summary in summaries:
                names = (_folded(summary.id), _folded(summary.name), _folded(summary.city))
                if wanted and any(wanted == n or (len(wanted) > 3 and wanted in n) for n in names):
                    chosen = summary
                    break
            if chosen is None:
                for summary in summaries:
                    if _folded(summary.name) in wanted or _folded(summary.city) in wanted:
                        chosen = summary
                        break
            if chosen is None:
                return None, summaries
        else:
            guest = await self.store.verified(self._key(conversation))
            if guest is not None:
                chosen = next((s for s in summaries if s.id == guest.property_id), None)
            elif len(summaries) == 1:
                chosen = summaries[0]
        if chosen is None:
            return None, summaries
        return await self.pms.get_property(chosen.id), summaries

    def today_at(self, prop: Property) -> date:
        return local_today(self.clock(), prop.timezone)

    async def property_and_today(self, property_id: str) -> tuple[Property | None, date]:
        """A stay's property and its local date (the clock's UTC date if the property is gone)."""
        prop = await self.pms.get_property(property_id)
        return prop, self.today_at(prop) if prop else self.clock().date()

    # -- offers ----------------------------------------------------------------------------

    async def resolve_offer(
        self, conversation: str, reservation: Reservation, said: str, offers: list[UpsellOffer]
    ) -> OfferChoice:
        """Match what the caller (or model) named to an offer id or name."""
        text = said.strip()
        by_id = {o.id: o for o in offers}
        if text in by_id:
            return OfferChoice(by_id[text])
        requested = await self.requested(conversation, reservation)
        if text in requested:
            return OfferChoice(None, already_requested=text)
        wanted = _tokens(text)
        if not wanted:
            return OfferChoice(None)
        # "the second one" picks by position in the list the caller heard.
        ordinals = [_ORDINALS[w] for w in wanted if w in _ORDINALS]
        if len(ordinals) == 1 and not wanted - set(_ORDINALS) - {"1", "option"}:
            position = ordinals[0]
            return OfferChoice(offers[position] if position < len(offers) else None)
        # Offers requested earlier in this conversation are no longer listed; a repeat of one
        # must be recognised rather than matched to a different offer.
        candidates: list[tuple[str, str, UpsellOffer | None]] = [(o.id, o.name, o) for o in offers]
        candidates += [(oid, name, None) for oid, name in requested.items() if oid not in by_id]
        # "late checkout" must never resolve to early check-in: a named kind narrows the field.
        kinds = _kinds(text)
        if kinds:
            candidates = [c for c in candidates if _kinds(f"{c[1]} {c[0]}") & kinds]
        scored = [(_score(wanted, f"{name} {oid}"), oid, name, o) for oid, name, o in candidates]
        best = max((score for score, *_ in scored), default=0.0)
        if best < 1:
            return OfferChoice(None)
        top = [entry for entry in scored if entry[0] == best]
        if len(top) > 1:
            exact = [entry for entry in top if _tokens(entry[2]) <= wanted]
            top = exact if len(exact) == 1 else top
        if len(top) > 1:
            return OfferChoice(None, ambiguous=tuple(o for *_, o in top if o is not None))
        _, offer_id, _, offer = top[0]
        return OfferChoice(offer) if offer is not None else OfferChoice(None, offer_id)

    def _scope(self, conversation: str, reservation: Reservation) -> str:
        return f"{self._key(conversation)}:{reservation.code}"

    async def requested(self, conversation: str, reservation: Reservation) -> dict[str, str]:
        """Offers this caller requested for `reservation` in this conversation: id → name."""
        return await self.store.requested(self._scope(conversation, reservation))

    def request_key(self, conversation: str, reservation: Reservation, offer_id: str) -> str:
        return f"{self._scope(conversation, reservation)}:{offer_id}"

    async def request(
        self, conversation: str, reservation: Reservation, offer_id: str, name: str
    ) -> UpsellReceipt:
        receipt = await self.pms.request_upsell(
            reservation,
            offer_id,
            idempotency_key=self.request_key(conversation, reservation, offer_id),
        )
        await self.store.record_request(self._scope(conversation, reservation), offer_id, name)
        return receipt

    async def feedback(
        self, conversation: str, reservation: Reservation, rating: int, comment: str
    ) -> FeedbackReceipt:
        digest = hashlib.sha256(f"{rating}:{' '.join(comment.split())}".encode()).hexdigest()
        key = f"{self._scope(conversation, reservation)}:feedback:{digest[:16]}"
        return await self.pms.leave_feedback(reservation, rating, comment, idempotency_key=key)


def describe_candidates(summaries: list[PropertySummary]) -> str:
    return join_words([f"{s.name} in {s.city}" for s in summaries], conjunction="or")
