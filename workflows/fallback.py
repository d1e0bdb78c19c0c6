"""The deterministic fallback responder: answers from tools when no language model can.

Used when no chat model is configured (the embedded default for `console --text` without
keys) or when the model keeps failing. It looks the caller's words up with the read-only
tools that are bound — document search, property facts, reservation lookup — and says
plainly that the language model is unavailable. It never runs side-effecting tools.

Its lookups are not written to the thread as tool messages, so the document passages it
quoted travel with its AIMessage instead, in `response_metadata["sources"]` (see
`fallback_sources`): metadata survives checkpointing and is never sent to a chat model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig

from tools.artifacts import ToolRole, artifact_sources, tools_with_role
from workflows.document_qa import extractive_answer, relevant_hits
from workflows.fallback_wording import FALLBACK_WORDINGS, FallbackWording, wording_for
from workflows.history import current_turn, last_user_text, message_text
from workflows.speech import first_sentences, strip_markdown
from workflows.state import ConversationContext, merge_context
from workflows.tool_runner import ToolOutcome, ToolRunner, is_side_effecting

__all__ = [
    "FALLBACK_MODEL_NAME",
    "SOURCES_METADATA_KEY",
    "FallbackReply",
    "FallbackResponder",
    "FallbackWording",
    "citation",
    "cited_sources",
    "extract_reservation_lookup",
    "fallback_sources",
    "property_topics",
    "wording_for",
]

# The fallback AIMessage's response_metadata: its model name, and the passages it quoted.
FALLBACK_MODEL_NAME = "fallback"
SOURCES_METADATA_KEY = "sources"
_PREVIEW_CHARS = 160


_GREETING = re.compile(
    r"^\W*(hi|hello|hey|hallo|hola|bonjour|salut|ciao|buongiorno|buonasera|ol[aá]|oi|hoi|"
    r"good (morning|afternoon|evening)|guten (morgen|tag|abend)|gr[üu]ezi|servus|"
    r"buenos d[ií]as|buenas (tardes|noches)|bom dia|boa (tarde|noite)|"
    r"goedemorgen|goedemiddag|goedenavond|goedendag)\b[\w\s,!.]{0,24}$",
    re.IGNORECASE,
)
_THANKS = re.compile(
    r"^\W*(thanks?|thank you|cheers|danke|vielen dank|gracias|merci|grazie|obrigad[oa]|"
    r"bedankt|dank (je|u)( wel)?)\b[\w\s,!.]{0,24}$",
    re.IGNORECASE,
)
# Questions about the caller's own booking, answered from it once they are verified.
_ABOUT_BOOKING = re.compile(
    r"\b(reservations?|bookings?|booked|my stay|my room|total|price|cost|pay\w*|bill|"
    r"extras?|dates?|nights?|leave|leaving|departure|arrival|arrive|"
    r"buchung|reservierung|r[ée]servation|reserva|prenotazione|boeking)\b",
    re.IGNORECASE,
)
_TOPICS: dict[str, str] = {
    "wifi": r"wi-?fi|wlan|wireless|internet|password|network",
    "parking": r"park|parking|parken|parkplatz|car|cars|garage",
    "check-in": r"check[- ]?in|arriv\w*|anreise|keys?|door code|self check[- ]?in",
    "check-out": r"check[- ]?out|depart\w*|abreise",
    "address": r"address|adresse|located|location|directions?",
    "rules": r"house rules?|rules|quiet hours?|smoking|noise|part(y|ies)",
    "pets": r"pets?|dogs?|cats?|haustier\w*",
    "amenities": r"amenit\w*|pool|gym|sauna|breakfast|kitchen|towels?|laundry",
    "capacity": r"capacity|sleeps|how many (people|guests)",
}
_TOPIC_PATTERNS = {
    name: re.compile(rf"\b({pattern})\b", re.IGNORECASE) for name, pattern in _TOPICS.items()
}
_CODE = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[^\W\d_])[^\W_][\w-]{3,14}[^\W_]\b")
_NAME = re.compile(
    r"\b(?:last name|surname|family name|name is|name's|under the name|booked under|booked as)"
    r"\s+(?:is\s+)?(?P<name>[^\W\d_][^\s,.;!?]*)",
    re.IGNORECASE,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def extract_reservation_lookup(text: str) -> tuple[str, str] | None:
    """(confirmation_code, last_name) when the caller's words contain both, else None."""
    code = _CODE.search(text)
    name = _NAME.search(text)
    if code is None or name is None:
        return None
    return code.group(0).upper(), name.group("name").strip("'’-")


def property_topics(question: str) -> list[re.Pattern[str]]:
    """Patterns of the property topics (Wi-Fi, parking, check-in, ...) the question is about."""
    return [pattern for pattern in _TOPIC_PATTERNS.values() if pattern.search(question)]


def _relevant_sentences(text: str, topics: Sequence[re.Pattern[str]], max_chars: int) -> str:
    """Sentences of `text` that mention the question's topics, else its opening."""
    sentences = [s.strip() for s in _SENTENCE_SPLIT.split(text) if s.strip()]
    matching = [s for s in sentences if any(t.search(s) for t in topics)]
    return first_sentences(" ".join(matching or sentences), max_chars)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?…" else f"{text}."


def _lower_first(text: str) -> str:
    """Lower-case the first letter so it reads mid-sentence; "I" and acronyms stay."""
    first = text.split(" ", 1)[0]
    if first == "I" or first.startswith(("I'", "I’")) or first.isupper():
        return text
    return text[:1].lower() + text[1:]


def _preview(item: Mapping[str, Any]) -> str:
    preview = item.get("preview")
    if isinstance(preview, str) and preview:
        return preview
    flat = " ".join(str(item.get("text", "")).split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"


def _score(value: Any) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return round(float(value), 4) if is_number else 0.0


def citation(item: Mapping[str, Any], tool: str) -> dict[str, Any] | None:
    """One cited passage as the caller's app sees it (source file, title, chunk, score,
    preview, tool); None when the item names no source."""
    source = item.get("source")
    if not isinstance(source, str) or not source:
        return None
    chunk = item.get("chunk")
    return {
        "source": source,
        "title": str(item.get("title") or ""),
        "chunk": chunk if isinstance(chunk, int) and not isinstance(chunk, bool) else None,
        "score": _score(item.get("score")),
        "preview": _preview(item),
        "tool": tool,
    }


def cited_sources(message: ToolMessage) -> list[dict[str, Any]]:
    """The passages a tool result's artifact cites, in artifact order."""
    tool = message.name or "tool"
    return [
        cited
        for source in artifact_sources(message.artifact)
        if (cited := citation(source.model_dump(), tool)) is not None
    ]


def fallback_sources(message: AIMessage) -> list[dict[str, Any]]:
    """The passages a fallback answer quoted, read back from its response metadata."""
    metadata = message.response_metadata
    stored = metadata.get(SOURCES_METADATA_KEY)
    if metadata.get("model_name") != FALLBACK_MODEL_NAME or not isinstance(stored, list):
        return []
    return [
        cited
        for item in stored
        if isinstance(item, Mapping)
        and (cited := citation(item, str(item.get("tool") or "tool"))) is not None
    ]


def _passages(message: ToolMessage) -> list[dict[str, Any]] | None:
    """The cited passages (with their text) a tool returned, or None if it returned none."""
    artifact = message.artifact
    if not isinstance(artifact, dict) or not isinstance(artifact.get("sources"), list):
        return None
    hits = [
        h
        for h in artifact["sources"]
        if isinstance(h, dict) and all(isinstance(h.get(k), str) for k in ("text", "title"))
    ]
    return hits if len(hits) == len(artifact["sources"]) else None


def _verified_lookup(context: ConversationContext) -> tuple[str, str] | None:
    """The verified booking's code and last name, to look it up again for a question."""
    booking = context.get("verified_reservation") or {}
    code, last_name = booking.get("code"), booking.get("guest_last_name")
    if isinstance(code, str) and code and isinstance(last_name, str) and last_name:
        return code, last_name
    return None


def _quoted_sources(message: ToolMessage, trim: str, question: str) -> list[dict[str, Any]]:
    """The cited passages behind a fact: for a search, only the hits relevant to the question."""
    cited = cited_sources(message)
    hits = _passages(message) if trim == "passages" else None
    if hits is None:
        return cited
    wanted = {(h.get("source"), h.get("chunk")) for h in relevant_hits(question, hits)}
    return [c for c in cited if (c["source"], c["chunk"]) in wanted]


@dataclass(frozen=True, slots=True)
class FallbackReply:
    text: str
    context: ConversationContext
    # Passages behind the facts this reply quotes from its own lookups (not earlier ones,
    # whose tool messages are already in the thread).
    sources: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> AIMessage:
        """The reply as the fallback node stores it in the thread."""
        metadata: dict[str, Any] = {"model_name": FALLBACK_MODEL_NAME}
        if self.sources:
            metadata[SOURCES_METADATA_KEY] = self.sources
        return AIMessage(content=self.text, response_metadata=metadata)


class FallbackResponder:
    """Builds a spoken answer from read-only tools, deterministically."""

    def __init__(
        self,
        runner: ToolRunner,
        wordings: Mapping[str, FallbackWording] = FALLBACK_WORDINGS,
        *,
        max_chars: int,
        fact_chars: int,
    ) -> None:
        self._runner = runner
        self._wordings = wordings
        self._max_chars = max_chars
        self._fact_chars = fact_chars

    def _tool_for(self, role: ToolRole) -> str | None:
        """The first read-only tool declaring `role` (tools/artifacts.py), by name."""
        for tool in tools_with_role(self._runner.tools, role):
            if not is_side_effecting(tool):
                return tool.name
        return None

    def _call(self, role: ToolRole, candidates: Mapping[str, Any], index: int) -> ToolCall | None:
        """A call to the `role` tool using whichever candidate args its schema has; None if
        no such tool or its arguments cannot be filled."""
        name = self._tool_for(role)
        if name is None:
            return None
        props, required = self._runner.parameters(name)
        args = {k: v for k, v in candidates.items() if k in props and v not in (None, "")}
        if not required <= args.keys():
            return None
        return ToolCall(name=name, args=args, id=f"fallback-{index}", type="tool_call")

    def _plan(self, question: str, context: ConversationContext) -> list[tuple[ToolCall, str]]:
        """The lookups for this question, each with how to trim its output."""
        plan: list[tuple[ToolCall, str]] = []
        property_id = context.get("property_id")
        lookup = extract_reservation_lookup(question)
        if lookup is None and context.get("verified") and _ABOUT_BOOKING.search(question):
            lookup = _verified_lookup(context)
        if lookup:
            # Looked up again even when verified: the booking is the answer to repeat.
            call = self._call(
                ToolRole.RESERVATION_LOOKUP,
                {"confirmation_code": lookup[0], "last_name": lookup[1]},
                0,
            )
            if call:
                plan.append((call, "whole"))
        if property_id and property_topics(question):
            # A property tool that takes a topic picks the matching facts from the question.
            call = self._call(
                ToolRole.PROPERTY_FACTS, {"property_id": property_id, "topic": question}, 1
            )
            if call:
                plan.append((call, "topic"))
        looked_up_booking = bool(plan) and plan[0][1] == "whole"
        if looked_up_booking and not property_topics(question):
            return plan  # a caller giving their booking details is not asking the documents
        call = self._call(
            ToolRole.DOCUMENT_SEARCH, {"query": question, "property_id": property_id}, 2
        )
        if call:
            plan.append((call, "passages"))
        return plan

    def _fact(self, message: ToolMessage, trim: str, question: str) -> str:
        if trim == "passages":
            # Search output is written for a model; speak the passages' own best sentences.
            hits = _passages(message)
            if hits is not None:
                # A passage that shares no word with the question is not an answer to it.
                relevant = relevant_hits(question, hits)
                if not relevant:
                    return ""
                return first_sentences(extractive_answer(question, relevant, 2), self._fact_chars)
        text = strip_markdown(message_text(message))
        if trim == "topic":
            topics = property_topics(question)
            return _sentence(_relevant_sentences(text, topics, self._fact_chars))
        return _sentence(first_sentences(text, self._fact_chars))

    async def answer(
        self,
        messages: Sequence[AnyMessage],
        context: ConversationContext,
        config: RunnableConfig,
    ) -> FallbackReply:
        question = last_user_text(messages)
        wording = wording_for(context.get("language"), self._wordings)
        earlier = [
            m
            for m in current_turn(messages)
            if isinstance(m, ToolMessage) and m.status != "error" and message_text(m)
        ]
        facts = [self._fact(m, "whole", question) for m in earlier]
        if not facts:
            if not question:
                return FallbackReply(wording.not_heard, {})
            if _GREETING.match(question):
                return FallbackReply(wording.greeting, {})
            if _THANKS.match(question):
                return FallbackReply(wording.thanks, {})
        plan = self._plan(question, context) if question else []
        outcomes: list[ToolOutcome] = []
        if plan:
            outcomes = await self._runner.run_many([call for call, _ in plan], config)
        learned: ConversationContext = {}
        problems: list[str] = []
        sources: list[dict[str, Any]] = []
        for (_, trim), outcome in zip(plan, outcomes, strict=True):
            learned = merge_context(learned, outcome.context)
            if outcome.message.status == "error":
                problems.append(_sentence(first_sentences(message_text(outcome.message), 160)))
            elif fact := self._fact(outcome.message, trim, question):
                facts.append(fact)
                sources.extend(_quoted_sources(outcome.message, trim, question))
        facts = list(dict.fromkeys(f for f in facts if f))
        if facts:
            text = wording.found.format(facts=" ".join(facts))
        elif problems:
            text = wording.lookup_failed.format(problem=_lower_first(problems[0]))
        elif not plan:
            text = wording.no_tools
        else:
            text = wording.nothing_found
        return FallbackReply(first_sentences(text, self._max_chars), learned, sources)
