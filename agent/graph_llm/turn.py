"""One GraphLLM turn: bring the thread up to date, run the graph, speak what may be spoken.

How a turn keeps the checkpointed thread truthful:

* It starts from the thread's latest checkpoint (the *base*), sends only what the thread
  lacks, and records the base. A run that fails or is cancelled before it finishes puts
  the base back as the latest checkpoint (a LangGraph `__copy__` fork), so a half-run
  never lingers in the thread.
* A run that finished but whose user message LiveKit never committed (a discarded
  preemptive generation) is undone at the start of the next turn the same way.
* The rewind is a *copy* of the base, never a run from the base itself: LangGraph stores
  the writes of a step resumed after `interrupt()` on the checkpoint it resumed, so
  re-running from that checkpoint would replay a discarded answer. A copy carries no
  pending writes; the interrupt it was waiting on is remembered in `TurnRecord`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel.protocol import PregelProtocol
from langgraph.types import Command, Interrupt, StateSnapshot
from livekit.agents import APITimeoutError, llm, utils

from .events import ToolEventHandler, ToolFinished, ToolStarted, TurnLatency
from .interrupts import interrupt_question
from .speech import SpeechFilter, UsageTally
from .thread import (
    ChatDelta,
    SpokenSegment,
    conversation_delta,
    heard_corrections,
    instructions_text,
    to_langchain,
)
from .tracing import GraphSpanHandler

__all__ = ["GraphTurn", "ThreadMemory", "TurnOptions", "TurnRecord", "TurnSink"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnOptions:
    speaking_nodes: tuple[str, ...]
    input_keys: frozenset[str]
    slow_tool_threshold: float
    filler_text: str | None
    turn_timeout: float
    state_timeout: float
    config: RunnableConfig


@dataclass
class TurnRecord:
    """What one run did to the thread, kept until the next turn judges whether it stood."""

    thread_id: str
    chunk_id: str
    base: RunnableConfig | None = None
    """Checkpoint the run started from; None when the thread was empty."""
    base_interrupts: tuple[Interrupt, ...] = ()
    head_id: str | None = None
    """Latest checkpoint id when the run read the thread."""
    user_ids: tuple[str, ...] = ()
    accounted: set[str] = field(default_factory=set)
    """LiveKit item ids this run put into the thread (or answered an interrupt with)."""
    spoken: list[SpokenSegment] = field(default_factory=list)
    wrote: bool = False
    completed: bool = False
    restored: bool = False


@dataclass
class ThreadMemory:
    """GraphLLM's in-process knowledge about the current thread."""

    thread_id: str
    history_floor: bool = False
    accounted: set[str] = field(default_factory=set)
    last: TurnRecord | None = None
    awaiting_confirmation: bool = False


class TurnSink(Protocol):
    """Where a turn's output goes (the LiveKit LLMStream and the GraphLLM emitter)."""

    def text(self, chunk_id: str, text: str) -> None: ...
    def flush(self, chunk_id: str) -> None: ...
    def usage(self, chunk_id: str, usage: llm.CompletionUsage) -> None: ...
    def tool_started(self, event: ToolStarted) -> None: ...
    def tool_finished(self, event: ToolFinished) -> None: ...
    def model_seen(self, provider: str | None, model: str | None) -> None: ...


async def _finish_even_if_cancelled(work: Awaitable[None]) -> None:
    """Run `work` to the end even when the caller is being cancelled (once or repeatedly)."""
    task = asyncio.ensure_future(work)
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
    task.result()


class GraphTurn:
    """Runs the graph once for one LiveKit LLM request."""

    def __init__(
        self,
        *,
        graph: PregelProtocol[Any, Any, Any, Any],
        checkpointer: BaseCheckpointSaver[Any],
        options: TurnOptions,
        memory: ThreadMemory,
        chat_ctx: llm.ChatContext,
        context: Mapping[str, Any],
        sink: TurnSink,
        requested_at: float,
    ) -> None:
        self._graph = graph
        self._checkpointer = checkpointer
        self._options = options
        self._memory = memory
        self._chat_ctx = chat_ctx
        self._context = dict(context)
        self._sink = sink
        self._requested_at = requested_at
        self.record = TurnRecord(thread_id=memory.thread_id, chunk_id=utils.shortuuid("graph_"))
        self._speech = SpeechFilter(options.speaking_nodes)
        self._usage = UsageTally()
        self._first_text_at: float | None = None
        self._state_time = 0.0
        self._graph_time = 0.0
        self._tool_time = 0.0
        self._tool_calls = 0
        self._unflushed = False
        self._filler_said = False
        self._timers: dict[str, asyncio.TimerHandle] = {}

    # -- public ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Speak a line GraphLLM adds itself (not part of any thread message)."""
        self._speak(text, None)

    def latency(self) -> TurnLatency:
        now = time.perf_counter()
        ttft = None if self._first_text_at is None else self._first_text_at - self._requested_at
        return TurnLatency(
            time_to_first_token=ttft,
            state_time=self._state_time,
            graph_time=self._graph_time,
            tool_time=self._tool_time,
            tool_calls=self._tool_calls,
            total_time=now - self._requested_at,
        )

    async def run(self) -> None:
        started = time.perf_counter()
        try:
            graph_input = await self._prepare()
            self._state_time = time.perf_counter() - started
            if graph_input is None:
                return
            await self._run_graph(graph_input)
        except BaseException:
            if self.record.wrote and not self.record.completed:
                await _finish_even_if_cancelled(self._restore(self.record))
                self.record.restored = True
            raise
        finally:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    # -- preparing the input -------------------------------------------------------------

    def _thread_config(self) -> RunnableConfig:
        base = self._options.config
        return {
            **base,
            "configurable": {**base.get("configurable", {}), "thread_id": self._memory.thread_id},
        }

    def _run_config(self) -> RunnableConfig:
        """The thread config plus what tracers group a conversation's runs by."""
        config = self._thread_config()
        thread_id = self._memory.thread_id
        tags = list(config.get("tags", []))
        if (tag := f"thread_id:{thread_id}") not in tags:
            tags.append(tag)
        config["tags"] = tags
        config["metadata"] = {**config.get("metadata", {}), "thread_id": thread_id}
        return config

    async def _with_timeout(self, work: Awaitable[Any]) -> Any:
        return await asyncio.wait_for(work, timeout=self._options.state_timeout)

    async def _restore(self, record: TurnRecord) -> None:
        """Make `record.base` the thread's latest checkpoint again."""
        try:
            if record.base is None:
                await self._with_timeout(self._checkpointer.adelete_thread(record.thread_id))
            else:
                await self._with_timeout(
                    self._graph.aupdate_state(record.base, None, as_node="__copy__")
                )
        except Exception:
            logger.exception("could not rewind the thread after an unfinished graph run")

    def _superseded(self, prior: TurnRecord) -> bool:
        if prior.thread_id != self._memory.thread_id or not prior.wrote:
            return False
        if not prior.completed:
            return True
        committed = {m.id for m in self._chat_ctx.messages()}
        return not all(uid in committed for uid in prior.user_ids)

    async def _prepare(self) -> dict[str, Any] | Command[Any] | None:
        memory, record = self._memory, self.record
        prior = memory.last
        rebased = prior is not None and self._superseded(prior)
        if prior is not None and rebased:
            memory.accounted -= prior.accounted
            if not prior.restored:
                await self._restore(prior)
                prior.restored = True
        snapshot: StateSnapshot = await self._with_timeout(
            self._graph.aget_state(self._thread_config())
        )
        record.head_id = snapshot.config.get("configurable", {}).get("checkpoint_id")
        untouched = prior is not None and not prior.wrote and prior.head_id == record.head_id
        if prior is not None and (rebased or untouched):
            # a rewound copy has no interrupt writes: the pending question lives on in memory
            record.base, record.base_interrupts = prior.base, prior.base_interrupts
        else:
            record.base = snapshot.config if record.head_id else None
            record.base_interrupts = tuple(snapshot.interrupts)

        values = snapshot.values if isinstance(snapshot.values, dict) else {}
        thread_messages: dict[str, BaseMessage] = {
            m.id: m for m in values.get("messages", ()) if isinstance(m, BaseMessage) and m.id
        }
        delta = conversation_delta(
            self._chat_ctx,
            thread_messages.keys() | memory.accounted,
            history_floor=memory.history_floor,
        )
        corrections = (
            [] if rebased or prior is None else self._corrections(prior, delta, thread_messages)
        )
        users = [m for m in delta.new if m.role == "user"]
        record.user_ids = tuple(m.id for m in users)
        updates = self._state_updates(values)
        memory.last = record
        memory.history_floor = False

        if record.base_interrupts:
            if not users:
                # nothing answered the pending question: ask it again, run nothing
                self._speak_questions(record.base_interrupts)
                record.completed = True
                return None
            record.accounted = {m.id for m in users}
            memory.accounted |= record.accounted
            record.wrote = True
            if corrections:
                updates["messages"] = corrections
            answer = " ".join((m.text_content or "").strip() for m in users)
            return Command(resume=answer, update=updates or None)

        record.accounted = {m.id for m in delta.new}
        memory.accounted |= record.accounted
        record.wrote = True
        return {"messages": [*corrections, *(to_langchain(m) for m in delta.new)], **updates}

    def _corrections(
        self, prior: TurnRecord, delta: ChatDelta, thread: Mapping[str, BaseMessage]
    ) -> list[BaseMessage]:
        """Replace what the last run said with what the caller actually heard."""
        if not prior.completed or not any(s.message_id for s in prior.spoken):
            return []
        if delta.anchor_id is None or delta.anchor_id not in prior.user_ids:
            return []
        if delta.answer and not any(m.interrupted for m in delta.answer):
            return []
        # raw text: it keeps any expressive markup, exactly as the graph produced it
        heard = " ".join((m.raw_text_content or "").strip() for m in delta.answer)
        return heard_corrections(prior.spoken, heard, thread)

    def _state_updates(self, values: Mapping[str, Any]) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        keys = self._options.input_keys
        if "instructions" in keys:
            instructions = instructions_text(self._chat_ctx)
            if instructions is not None and values.get("instructions") != instructions:
                updates["instructions"] = instructions
        if "context" in keys and self._context:
            current = dict(values.get("context") or {})
            merged = {**current, **self._context}
            if merged != current:
                updates["context"] = merged
        return updates

    # -- running the graph ---------------------------------------------------------------

    async def _run_graph(self, graph_input: dict[str, Any] | Command[Any]) -> None:
        handler = ToolEventHandler(
            thread_id=self._memory.thread_id,
            on_started=self._tool_started,
            on_finished=self._tool_finished,
        )
        # Parented on the current span: LiveKit's LLM request span for this turn.
        spans = GraphSpanHandler(thread_id=self._memory.thread_id)
        config = self._run_config()
        callbacks = config.get("callbacks")
        if isinstance(callbacks, BaseCallbackManager):
            manager = callbacks.copy()
            manager.add_handler(handler, inherit=True)
            manager.add_handler(spans, inherit=True)
            config["callbacks"] = manager
        else:
            config["callbacks"] = [*(callbacks or []), handler, spans]
        interrupts: dict[str, Interrupt] = {}
        started = time.perf_counter()
        deadline = asyncio.timeout(self._options.turn_timeout)
        try:
            async with deadline:
                stream = self._graph.astream(
                    graph_input, config, stream_mode=["messages", "updates"], subgraphs=True
                )
                async with contextlib.aclosing(stream):  # type: ignore[type-var]
                    async for _namespace, mode, data in stream:
                        if mode == "messages":
                            self._on_message(*data)
                        elif mode == "updates" and isinstance(data, dict):
                            for item in data.get("__interrupt__", ()):
                                interrupts.setdefault(item.id, item)
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise APITimeoutError(
                f"the graph turn took longer than {self._options.turn_timeout:g} s",
                retryable=False,
            ) from exc
        finally:
            self._graph_time = time.perf_counter() - started
            spans.close()
        self.record.completed = True
        self._memory.awaiting_confirmation = bool(interrupts)
        if interrupts:
            self._speak_questions(tuple(interrupts.values()))
        if (usage := self._usage.completion_usage()) is not None:
            self._sink.usage(self.record.chunk_id, usage)

    def _on_message(self, message: BaseMessage, metadata: dict[str, Any]) -> None:
        self._usage.add(message)
        text = self._speech.speakable(message, metadata)
        if text:
            if self._first_text_at is None:
                self._sink.model_seen(metadata.get("ls_provider"), metadata.get("ls_model_name"))
            self._speak(text, message.id)

    def _speak_questions(self, interrupts: Sequence[Interrupt]) -> None:
        questions = [interrupt_question(item.value) for item in interrupts]
        self._speak(" ".join(dict.fromkeys(questions)), None)

    def _speak(self, text: str, message_id: str | None) -> None:
        spoken = self.record.spoken
        if spoken and spoken[-1].message_id == message_id and message_id is not None:
            spoken[-1] = SpokenSegment(message_id, spoken[-1].text + text)
        else:
            if spoken and not spoken[-1].text[-1:].isspace() and not text[:1].isspace():
                text = " " + text
            spoken.append(SpokenSegment(message_id, text))
        if self._first_text_at is None:
            self._first_text_at = time.perf_counter()
        self._unflushed = True
        self._sink.text(self.record.chunk_id, text)

    # -- tools ---------------------------------------------------------------------------

    def _tool_started(self, event: ToolStarted) -> None:
        self._tool_calls += 1
        if self._unflushed:
            # let TTS say what the model said before the tool, instead of after it
            self._sink.flush(self.record.chunk_id)
            self._unflushed = False
        if self._options.filler_text and not self._filler_said:
            loop = asyncio.get_running_loop()
            self._timers[event.call_id] = loop.call_later(
                self._options.slow_tool_threshold, self._tool_is_slow
            )
        self._sink.tool_started(event)

    def _tool_finished(self, event: ToolFinished) -> None:
        if (timer := self._timers.pop(event.call_id, None)) is not None:
            timer.cancel()
        self._tool_time += event.duration
        self._sink.tool_finished(event)

    def _tool_is_slow(self) -> None:
        if self._filler_said or self.record.completed or not self._options.filler_text:
            return
        self._filler_said = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._speak(self._options.filler_text, None)
        self._sink.flush(self.record.chunk_id)
        self._unflushed = False
