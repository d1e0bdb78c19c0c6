"""The conversation side of the chat: typed messages into the thread, reply mode, sources.

* Typed chat (not starting with `/`) becomes a user turn in the same session and graph thread
  as speech; it never passes through the command pipeline, only the same rate limit.
* Reply mode of typed messages: `voice` (spoken, no transcript), `text` (transcript only, the
  audio output off for that reply) or `both` (default). Spoken turns always get both; the
  outputs are restored as soon as the typed reply is over.
* Sources: the passages behind an answer are the `sources` of the tool results GraphLLM saw
  during the turn (`ToolFinished.artifact`); they are sent when the answer is committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.pregel.protocol import PregelProtocol
from livekit.agents import AgentSession

from agent.chat.pipeline import (
    Drop,
    DropReason,
    Outcome,
    RateLimiter,
    Sender,
    Verdict,
    error_outcome,
    ignored_drop,
    rate_limited,
)
from agent.chat.protocol import AnswerSource, ErrorCode, ReplyMode
from agent.graph_llm import GraphLLM
from agent.graph_llm.events import ToolFinished
from tools.artifacts import artifact_sources
from workflows.thread import conversation_thread_id

__all__ = ["MAX_SOURCES", "Conversation", "TurnSources", "provider_label"]

logger = logging.getLogger(__name__)

MAX_SOURCES = 10
PREVIEW_CHARS = 160
_FACT_KEYS = ("property_id", "reservation_code", "guest_name", "language", "verified")


def provider_label(component: Any) -> str | None:
    """`provider/model` of a LiveKit STT/LLM/TTS, or None when absent."""
    if component is None:
        return None
    provider = str(getattr(component, "provider", "") or "unknown")
    model = str(getattr(component, "model", "") or "unknown")
    return f"{provider}/{model}"


def _clip(text: str, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class TurnSources:
    """The passages the tools of the current turn returned: best score first, one per
    (source, chunk), at most `MAX_SOURCES`. `take()` hands them over and starts afresh."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, int | None], AnswerSource] = {}

    def add(self, event: ToolFinished) -> None:
        for item in artifact_sources(event.artifact):
            cited = AnswerSource(
                source=item.source,
                title=item.title,
                chunk=item.chunk,
                score=round(item.score, 4),
                preview=item.preview or _clip(item.text),
                tool=event.name,
            )
            key = (cited.source, cited.chunk)
            if key not in self._found or self._found[key].score < cited.score:
                self._found[key] = cited

    def take(self) -> list[AnswerSource]:
        ranked = sorted(self._found.values(), key=lambda s: -s.score)[:MAX_SOURCES]
        self._found.clear()
        return ranked


class Conversation:
    """One call's conversation: thread identity, reply mode, typed turns, facts and status."""

    def __init__(
        self,
        session: AgentSession[Any],
        graph_llm: GraphLLM,
        *,
        graph: PregelProtocol[Any, Any, Any, Any] | None = None,
        limiter: RateLimiter | None = None,
        reply_mode: ReplyMode = ReplyMode.BOTH,
        max_chat_chars: int = 4000,
        extra_providers: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._session = session
        self._llm = graph_llm
        self._graph = graph
        self.limiter = limiter or RateLimiter()
        self.reply_mode = reply_mode
        self.max_chat_chars = max_chat_chars
        self._extra_providers = dict(extra_providers or {})
        self._timeout_s = timeout_s
        self._started = time.monotonic()
        self._typed_replies = 0
        self.resets = 0
        self.sources = TurnSources()

    @property
    def thread_id(self) -> str:
        return self._llm.thread_id

    def start_new_thread(self) -> str:
        new_id = conversation_thread_id(
            conversation_id=f"reset:{self._llm.thread_id}:{uuid.uuid4().hex}"
        )
        self._llm.thread_id = new_id
        self.resets += 1
        self.sources.take()
        logger.info("conversation thread reset", extra={"conversation_id": new_id})
        return new_id

    # -- typed chat ------------------------------------------------------------------------

    @property
    def typed_reply_in_progress(self) -> bool:
        """True while the outputs are switched for a typed message's reply."""
        return self._typed_replies > 0

    def screen(self, text: str, sender: Sender, *, request_id: str) -> Outcome | None:
        """None when a typed message may go to the conversation, else its refusal or drop."""
        if sender.ignored:
            return ignored_drop(sender)
        if not text.strip():
            return Drop(DropReason.EMPTY)
        verdict, retry_after = self.limiter.check(sender.identity)
        if verdict is Verdict.DROP:
            return Drop(DropReason.RATE_FLOOD)
        if verdict is Verdict.REFUSE:
            return rate_limited(self.limiter, request_id, None, retry_after, chat=True)
        if len(text) > self.max_chat_chars:
            return error_outcome(
                request_id,
                None,
                ErrorCode.MESSAGE_TOO_LARGE,
                f"your message is {len(text)} characters long; the limit is {self.max_chat_chars}",
                chat=True,
            )
        return None

    async def submit_typed(self, text: str) -> None:
        """Answer `text` as a user turn, in the current reply mode."""
        session = self._session
        try:
            interrupted = session.interrupt()
        except RuntimeError:
            interrupted = None  # the current speech may not be interrupted; queue behind it
        if interrupted is not None:
            # bounded wait that leaves LiveKit's future alone if it takes longer
            await asyncio.wait({interrupted}, timeout=self._timeout_s)
        self._begin_typed(self.reply_mode)
        try:
            handle = session.generate_reply(user_input=text)
        except RuntimeError as exc:
            self._end_typed()
            logger.warning("could not answer a typed message: %s", exc)
            return
        handle.add_done_callback(lambda _: self._end_typed())

    def _begin_typed(self, mode: ReplyMode) -> None:
        self._typed_replies += 1
        self._switch_outputs(audio=mode.speaks, transcript=mode.writes)

    def _end_typed(self) -> None:
        # overlapping typed replies are counted: outputs come back after the last one
        self._typed_replies = max(self._typed_replies - 1, 0)
        if self._typed_replies == 0:
            self._switch_outputs(audio=True, transcript=True)

    def _switch_outputs(self, *, audio: bool, transcript: bool) -> None:
        # toggling an output the session does not have only logs a warning in LiveKit
        output = self._session.output
        if output.audio is not None and output.audio_enabled != audio:
            output.set_audio_enabled(audio)
        if output.transcription is not None and output.transcription_enabled != transcript:
            output.set_transcription_enabled(transcript)

    # -- what commands read ------------------------------------------------------------------

    async def facts(self) -> Mapping[str, Any]:
        """Dispatch facts, overlaid with what the thread learned (e.g. a verified stay)."""
        facts = {k: v for k, v in self._llm.context.items() if k in _FACT_KEYS and v is not None}
        if self._graph is None:
            return facts
        config: RunnableConfig = {"configurable": {"thread_id": self.thread_id}}
        try:
            snapshot = await asyncio.wait_for(self._graph.aget_state(config), self._timeout_s)
        except Exception as exc:
            logger.warning("could not read the conversation state: %s", exc)
            return facts
        values = snapshot.values if isinstance(snapshot.values, Mapping) else {}
        learned = values.get("context")
        if isinstance(learned, Mapping):
            facts.update({k: v for k, v in learned.items() if k in _FACT_KEYS and v is not None})
        return facts

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
            "turns": sum(1 for item in session.history.messages() if item.role == "user"),
            "resets": self.resets,
            "reply_mode": self.reply_mode.value,
            "awaiting_confirmation": self._llm.awaiting_confirmation,
            "providers": providers,
            "last_turn_latency": dataclasses.asdict(latency) if latency is not None else None,
            "uptime_s": round(time.monotonic() - self._started, 1),
        }
