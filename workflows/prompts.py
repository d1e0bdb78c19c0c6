"""System prompts of the assistant graph: the voice rules, the conversation context, the summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflows.state import ConversationContext

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "SUMMARY_INSTRUCTIONS",
    "VOICE_RULES",
    "build_system_prompt",
    "render_context",
]

DEFAULT_INSTRUCTIONS = (
    "You are the voice assistant of a hospitality business. You help guests and callers "
    "with questions about properties, their stay and their reservation."
)

VOICE_RULES = """\
Your words are spoken aloud by a text-to-speech voice, so:
- Answer in one to three short sentences. Offer more detail only if the caller asks.
- Use plain spoken language only: no markdown, lists, headings, emojis, links or symbols.
- Say numbers, dates, times and money the way a person would say them, for example \
"Friday the fourteenth of March", "three in the afternoon", "one hundred and twenty euros".
- Spell out codes and passwords character by character only when the caller asks for them.
- Answer in the caller's language.
- Use the tools for facts about properties, reservations and house rules; never invent them. \
If a tool says it could not help, say so briefly and offer what you can do instead."""

SUMMARY_INSTRUCTIONS = """\
You keep the running notes of a phone conversation between a caller and an assistant. \
Merge the previous notes and the new transcript into one short paragraph of plain text. \
Keep every fact that matters later: names, confirmation codes, property, dates, numbers, \
what was verified, what was requested, agreed or declined, and open questions. \
Leave out greetings and small talk. Write at most {max_words} words."""

_MAX_RESERVATION_FIELDS = 16
_MAX_FIELD_CHARS = 120


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list | tuple | set):
        return None
    text = " ".join(str(value).split())
    return text[:_MAX_FIELD_CHARS] if text else None


def _reservation_lines(reservation: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, value in reservation.items():
        if len(lines) >= _MAX_RESERVATION_FIELDS:
            break
        if isinstance(value, Mapping):
            nested = ", ".join(
                f"{k}: {text}" for k, v in value.items() if (text := _scalar(v)) is not None
            )
            if nested:
                lines.append(f"  {key}: {nested[: _MAX_FIELD_CHARS * 2]}")
        elif (text := _scalar(value)) is not None:
            lines.append(f"  {key}: {text}")
    return lines


def render_context(context: ConversationContext | None) -> str:
    """The conversation context as prompt lines; empty when nothing is known."""
    ctx = context or {}
    lines: list[str] = []
    if property_id := ctx.get("property_id"):
        lines.append(f"- Property: {property_id}. Questions are about this property by default.")
    if guest := ctx.get("guest_name"):
        lines.append(f"- Guest name: {guest}.")
    if language := ctx.get("language"):
        lines.append(f"- Caller's language: {language}. Reply in it unless the caller switches.")
    code = ctx.get("reservation_code")
    if ctx.get("verified"):
        lines.append(
            f"- The caller is verified for reservation {code or 'on file'}. "
            "Do not ask for the confirmation code or name again."
        )
        if reservation := ctx.get("verified_reservation"):
            lines.append("- Verified reservation:")
            lines.extend(_reservation_lines(reservation))
    else:
        if code:
            lines.append(f"- Reservation code mentioned: {code} (not verified yet).")
        lines.append(
            "- The caller is not verified. Before sharing any reservation details, ask for "
            "the confirmation code and last name and check them with the reservation lookup."
        )
    return "\n".join(lines)


def build_system_prompt(
    *,
    instructions: str,
    context: ConversationContext | None,
    summary: str,
    tools_exhausted: bool = False,
) -> str:
    """Instructions, voice rules, conversation context and the summary, in that order."""
    parts = [instructions.strip() or DEFAULT_INSTRUCTIONS, VOICE_RULES]
    if rendered := render_context(context):
        parts.append(f"Conversation context:\n{rendered}")
    if summary.strip():
        parts.append(f"Summary of the earlier conversation:\n{summary.strip()}")
    if tools_exhausted:
        parts.append(
            "You have used all tool lookups for this turn. Answer now with what you already "
            "know, and say briefly if something could not be checked."
        )
    return "\n\n".join(parts)
