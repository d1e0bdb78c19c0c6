"""The running conversation (an AgentSession and its GraphLLM) as the commands see it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.pregel.protocol import PregelProtocol
from livekit.agents import AgentSession

from agent.chat.reply_mode import ReplyMode
from agent.graph_llm.events import TurnLatency
from workflows.thread import conversation_thread_id

__all__ = ["SessionConversation", "ThreadedLLM", "provider_label"]

logger = logging.getLogger(__name__)

_FACT_KEYS = ("property_id", "reservation_code", "guest_name", "language", "verified")


class ThreadedLLM(Protocol):
    """What the commands use of `agent.graph_llm.GraphLLM`."""

    thread_id: str

    @property
    def context(self) -> Mapping[str, Any]: ...

    @property
    def last_turn_latency(self) -> TurnLatency | None: ...

    @property
    def awaiting_confirmation(self) -> bool: ...


def provider_label(component: Any) -> str | None:
    """`provider/model` of a LiveKit STT/LLM/TTS, or None when absent."""
    if component is None:
        return None
    provider = str(getattr(component, "provider", "") or "unknown")
    model = str(getattr(component, "model", "") or "unknown")
    return f"{provider}/{model}"


class SessionConversation:
    """Thread identity, reply mode, facts and status of one call."""

    def __init__(
        self,
        session: AgentSession[Any],
        graph_llm: ThreadedLLM,
        *,
        graph: PregelProtocol[Any, Any, Any, Any] | None = None,
        reply_mode: ReplyMode = ReplyMode.BOTH,
        extra_providers: Mapping[str, str] | None = None,
        state_timeout_s: float = 5.0,
    ) -> None:
        self._session = session
        self._llm = graph_llm
        self._graph = graph
        self._reply_mode = reply_mode
        self._extra_providers = dict(extra_providers or {})
        self._state_timeout_s = state_timeout_s
        self._started = time.monotonic()
        self.resets = 0

    @property
    def thread_id(self) -> str:
        return self._llm.thread_id

    @property
    def reply_mode(self) -> ReplyMode:
        return self._reply_mode

    def set_reply_mode(self, mode: ReplyMode) -> None:
        self._reply_mode = mode

    def start_new_thread(self) -> str:
        new_id = conversation_thread_id(
            conversation_id=f"reset:{self._llm.thread_id}:{uuid.uuid4().hex}"
        )
        self._llm.thread_id = new_id
        self.resets += 1
        logger.info("conversation thread reset", extra={"conversation_id": new_id})
        return new_id

    async def facts(self) -> Mapping[str, Any]:
        """Dispatch facts, overlaid with what the thread learned (e.g. a verified stay)."""
        facts = {k: v for k, v in self._llm.context.items() if k in _FACT_KEYS and v is not None}
        if self._graph is None:
            return facts
        config: RunnableConfig = {"configurable": {"thread_id": self.thread_id}}
        try:
            snapshot = await asyncio.wait_for(self._graph.aget_state(config), self._state_timeout_s)
        except Exception as exc:
            logger.warning("could not read the conversation state: %s", exc)
            return facts
        values = snapshot.values if isinstance(snapshot.values, Mapping) else {}
        learned = values.get("context")
        if isinstance(learned, Mapping):
            facts.update({k: v for k, v in learned.items() if k in _FACT_KEYS and v is not None})
        return facts

    def _turns(self) -> int:
        return sum(1 for item in self._session.history.messages() if item.role == "user")

    def status(self) -> dict[str, Any]:
        session = self._session
        providers = {
            name: label
            for name, label in (
                ("stt", provider_label(session.stt)),
                ("llm", provider_label(session.llm)),
                ("tts", provider_label(session.tts)),
            )
            if label is not None
        }
        providers.update(self._extra_providers)
        latency = self._llm.last_turn_latency
        return {
            "agent_state": session.agent_state,
            "user_state": session.user_state,
            "conversation_id": self.thread_id,
            "turns": self._turns(),
            "resets": self.resets,
            "reply_mode": self._reply_mode.value,
            "awaiting_confirmation": self._llm.awaiting_confirmation,
            "providers": providers,
            "last_turn_latency": dataclasses.asdict(latency) if latency is not None else None,
            "uptime_s": round(time.monotonic() - self._started, 1),
        }
