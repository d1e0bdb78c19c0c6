"""What commands may use, passed in as arguments so the command layer runs without a room."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from agent.chat.protocol import EventType
from agent.chat.reply_mode import ReplyMode
from workflows.registry import WorkflowRegistry

__all__ = [
    "CommandServices",
    "ConversationPort",
    "EventSink",
    "PendingConfirmations",
]


class ConversationPort(Protocol):
    """The running conversation as commands see it."""

    @property
    def thread_id(self) -> str: ...

    @property
    def reply_mode(self) -> ReplyMode: ...

    def set_reply_mode(self, mode: ReplyMode) -> None: ...

    def start_new_thread(self) -> str:
        """Switch the conversation to a fresh graph thread; returns its id."""
        ...

    async def facts(self) -> Mapping[str, Any]:
        """What the conversation knows (property_id, reservation_code, guest_name, ...)."""
        ...

    def status(self) -> dict[str, Any]:
        """Agent state, turn count, providers and the last turn's latency (JSON-able)."""
        ...


class EventSink(Protocol):
    def emit(self, event_type: EventType, data: dict[str, Any]) -> None: ...


class PendingConfirmations:
    """Actions a sender asked for and must confirm within `window_s` (e.g. `/reset`)."""

    def __init__(self, *, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._pending: dict[tuple[str, str], float] = {}

    def ask(self, identity: str, action: str) -> None:
        self._pending[(identity, action)] = self._clock() + self.window_s

    def take(self, identity: str, action: str) -> bool:
        """True (and forgotten) when `identity` has an unexpired request for `action`."""
        deadline = self._pending.pop((identity, action), None)
        return deadline is not None and self._clock() <= deadline


@dataclass
class CommandServices:
    conversation: ConversationPort
    events: EventSink
    tools: Mapping[str, BaseTool] = field(default_factory=dict)
    """The brain's LangChain tools by name (knowledge tools back /search and /embed)."""
    chat_model: BaseChatModel | None = None
    """The graph's chat model (backs /analyze); None when no LLM is configured."""
    workflows: WorkflowRegistry | None = None
    confirmations: PendingConfirmations = field(default_factory=PendingConfirmations)
