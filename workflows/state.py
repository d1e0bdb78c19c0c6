"""State of the assistant graph: the message thread plus what the conversation knows."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict, cast

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

__all__ = [
    "CONTEXT_KEYS",
    "AssistantState",
    "ConversationContext",
    "merge_context",
]


class ConversationContext(TypedDict, total=False):
    """Facts about the caller and their stay that the system prompt and tools rely on."""

    property_id: str | None
    reservation_code: str | None
    guest_name: str | None
    language: str | None
    verified: bool
    verified_reservation: dict[str, Any] | None


CONTEXT_KEYS: frozenset[str] = frozenset(ConversationContext.__annotations__)


def merge_context(
    current: ConversationContext | None, update: ConversationContext | None
) -> ConversationContext:
    """Reducer for `context`: keys in `update` win, but a None never erases a known fact.

    The worker re-sends the dispatch context when it changes; it must not wipe what the
    tools learned during the call (for example a verified reservation).
    """
    merged: dict[str, Any] = dict(current or {})
    for key, value in (update or {}).items():
        if key in CONTEXT_KEYS and value is not None:
            merged[key] = value
    return cast(ConversationContext, merged)


class AssistantState(TypedDict, total=False):
    """The checkpointed state of one conversation thread."""

    messages: Annotated[list[AnyMessage], add_messages]
    instructions: str
    context: Annotated[ConversationContext, merge_context]
    summary: str
    # Tool steps taken in the current turn; the model answers without tools at the cap.
    tool_steps: int
