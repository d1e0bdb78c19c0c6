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
from langchain_core.messages import AIMessage, BaseMessage, RemoveMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.constants import INTERRUPT
from langgraph.pregel.protocol import PregelProtocol
from langgraph.types import Command, Interrupt, StateSnapshot, StreamMode
from livekit.agents import APITimeoutError, llm, utils

from .events import ToolEventHandler, ToolFinished, ToolStarted, TurnLatency
from .interrupts import UNCLEAR, interrupt_question, resume_value
from .speech import SpeechFilter, UsageTally, is_handoff
from .thread import (
    ChatDelta,
    SpokenSegment,
    conversation_delta,
    heard_corrections,
    instructions_text,
    to_langchain,
    turn_instructions,
)
from .tracing import GraphSpanHandler

__all__ = ["GraphTurn", "ThreadMemory", "TurnOptions", "TurnRecord", "TurnSink"]

logger = logging.getLogger(__name__)

SAY_EVENT = "graph_llm.say"
"""Custom stream event ``{"type": "graph_llm.say", "text": ...}``: speak `text` now."""
FLUSH_EVENT = "graph_llm.flush"
"""Custom stream event ``{"type": "graph_llm.flush"}``: send what was said to TTS now."""
_ASK_AGAIN = "Sorry, I need a yes or a no."
_MODES: tuple[StreamMode, ...] = ("messages", "updates")
# "custom" carries a node's own speech (SAY_EVENT / FLUSH_EVENT); it costs LangGraph about a
# tenth of the time to first token, so it is on only for graphs that may use it
_NODE_SPEECH_MODES: tuple[StreamMode, ...] = ("messages", "updates", "custom")


def _schema(item: Interrupt) -> Any:
    return getattr(item, "response_schema", None)


@dataclass(frozen=True)
class TurnOptions:
    speaking_nodes: tuple[str, ...]
    input_keys: frozenset[str]
    slow_tool_threshold: float
    filler_text: str | None
    turn_timeout: float
    state_timeout: float
    config: RunnableConfig
    node_speech: bool = True


@dataclass
class TurnRecord:
    """What one run did to the thread, kept until the next turn judges whether it stood."""

    thread_id: str
    chunk_id: str
    base: RunnableConfig | None = None
    """Checkpoint the run started from; None when the thread was empty."""
    base_interrupts: tuple[Interrupt, ...] = ()
    base_subgraphs: tuple[tuple[str, RunnableConfig], ...] = ()
    """(node name, checkpoint) of each subgraph paused inside at the base checkpoint."""
    head_id: str | None = None
    """Latest checkpoint id when the run read the thread."""
    user_ids: tuple[str, ...] = ()
    anchor_id: str | None = None
    typed: tuple[llm.ChatMessage, ...] = ()
    """User lines without a transcript confidence (typed, or `generate_reply(user_input=)`)."""
    """Newest LiveKit item the thread already had when the run started."""
    accounted: set[str] = field(default_factory=set)
    """LiveKit item ids this run put into the thread (or answered an interrupt with)."""
    spoken: list[SpokenSegment] = field(default_factory=list)
    wrote: bool = False
    completed: bool = False
    restored: bool = False
    resume_failed: bool = False
    """The run answered an interrupt and the graph failed on the answer: drop the question."""


@dataclass
class ThreadMemory:
    """GraphLLM's in-process knowledge about the current thread."""

    thread_id: str
    history_floor: bool = False
    accounted: set[str] = field(default_factory=set)
    last: TurnRecord | None = None
    awaiting_confirmation: bool = False
    one_off_ids: list[str] = field(default_factory=list)
    """Thread ids of one-off instruction messages to remove on the next turn."""
    warned_instructions: bool = False


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
        self._pending: tuple[Interrupt, ...] = ()
        """Interrupts the thread waits on after the latest run of this turn."""
        self._followups: list[llm.ChatMessage] = []
        """User lines after the one that answered an interrupt, run after it in order."""
        self._resuming = False
        self._unspoken: dict[str, str] = {}
        """Node paths of silent nodes that produced AI text, by checkpoint namespace."""

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
            while self._followups and (graph_input := self._followup_input()) is not None:
                await self._run_graph(graph_input)
            self._finish()
        except BaseException as exc:
            if self.record.wrote and not self.record.completed:
                self.record.resume_failed = self._resuming and isinstance(exc, Exception)
                if self.record.resume_failed:
                    self._memory.awaiting_confirmation = False
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
                copied = await self._with_timeout(
                    self._graph.aupdate_state(record.base, None, as_node="__copy__")
                )
                if record.base_subgraphs:
                    await self._with_timeout(self._restore_subgraphs(record, copied))
        except Exception:
            logger.exception("could not rewind the thread after an unfinished graph run")

    async def _paused_subgraphs(
        self, snapshot: StateSnapshot
    ) -> tuple[tuple[str, RunnableConfig], ...]:
        """The latest checkpoint of each subgraph task paused at an interrupt."""
        paused: list[tuple[str, RunnableConfig]] = []
        for task in snapshot.tasks:
            state = task.state
            if not task.interrupts or not isinstance(state, dict):
                continue
            if not state.get("configurable", {}).get("checkpoint_ns"):
                continue
            found = await self._with_timeout(self._checkpointer.aget_tuple(state))
            if found is not None:
                paused.append((task.name, found.config))
        return tuple(paused)

    async def _restore_subgraphs(self, record: TurnRecord, copied: RunnableConfig) -> None:
        """Give each paused subgraph its pre-run checkpoint under the copy's new task ids.

        A copy gets a new checkpoint id, hence new task ids and fresh subgraph namespaces;
        without this the sub-agent would start over instead of resuming where it paused.
        """
        snapshot: StateSnapshot = await self._graph.aget_state(copied)
        new_ids = {task.name: task.id for task in snapshot.tasks}
        for name, old in record.base_subgraphs:
            found = await self._checkpointer.aget_tuple(old)
            if found is None or name not in new_ids:
                continue
            target: RunnableConfig = {
                "configurable": {
                    "thread_id": record.thread_id,
                    "checkpoint_ns": f"{name}:{new_ids[name]}",
                    "checkpoint_id": None,
                }
            }
            saved = await self._checkpointer.aput(
                target, found.checkpoint, found.metadata, found.checkpoint["channel_versions"]
            )
            # only the question itself: other writes on it came from the discarded run
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in found.pending_writes or ():
                if channel == INTERRUPT:
                    by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                await self._checkpointer.aput_writes(saved, writes, task_id)

    def _superseded(self, prior: TurnRecord) -> bool:
        if prior.thread_id != self._memory.thread_id or not prior.wrote:
            return False
        if not prior.completed:
            return True
        committed = {m.id for m in self._chat_ctx.messages()}
        if all(uid in committed for uid in prior.user_ids):
            return False
        # a discarded preemptive run shares the history it built on; a handoff to an agent
        # with a fresh context or an edited history (update_chat_ctx) does not
        return prior.anchor_id is None or prior.anchor_id in committed

    async def _prepare(self) -> dict[str, Any] | Command[Any] | None:
        memory, record = self._memory, self.record
        prior = memory.last
        rebased = prior is not None and self._superseded(prior)
        carried: list[llm.ChatMessage] = []
        if prior is not None and rebased:
            # LiveKit drops a typed line whose reply was interrupted before it was scheduled
            # (the next typed line interrupts it); the caller still typed it
            present = {m.id for m in self._chat_ctx.messages()}
            carried = [m for m in prior.typed if m.id not in present]
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
            record.base_subgraphs = prior.base_subgraphs
            if prior.resume_failed:
                # the graph could not use the answer: a fresh input starts over from START
                record.base_interrupts = ()
        else:
            record.base = snapshot.config if record.head_id else None
            record.base_interrupts = tuple(snapshot.interrupts)
            if record.base_interrupts:
                record.base_subgraphs = await self._paused_subgraphs(snapshot)

        values = snapshot.values if isinstance(snapshot.values, dict) else {}
        thread_messages: dict[str, BaseMessage] = {
            m.id: m for m in values.get("messages", ()) if isinstance(m, BaseMessage) and m.id
        }
        delta = conversation_delta(
            self._chat_ctx,
            thread_messages.keys() | memory.accounted,
            history_floor=memory.history_floor,
            # a reply that said nothing left no assistant item to take as its answer
            answer_items=1 if prior is None or rebased or prior.spoken else 0,
        )
        record.anchor_id = delta.anchor_id
        corrections = (
            [] if rebased or prior is None else self._corrections(prior, delta, thread_messages)
        )
        fresh = {m.id for m in delta.new}
        new_items = [*(m for m in carried if m.id not in fresh), *delta.new]
        users = [m for m in new_items if m.role == "user"]
        # carried lines never reach LiveKit's history, so only fresh ones prove a run stood
        record.user_ids = tuple(m.id for m in users if m.id in fresh)
        record.typed = tuple(m for m in users if m.transcript_confidence is None)
        updates = self._state_updates(values)
        one_off = self._one_off_removals(thread_messages)
        memory.last = record
        memory.history_floor = False

        if record.base_interrupts:
            if not users:
                # nothing answered the pending question: ask it again, run nothing
                self._speak_questions(record.base_interrupts)
                record.completed = True
                return None
            resume = self._resume(record.base_interrupts, users[0])
            if resume is None:
                # neither yes nor no: ask again without touching the thread
                record.accounted = {users[0].id}
                memory.accounted |= record.accounted
                self._speak_questions(record.base_interrupts, again=True)
                record.completed = True
                return None
            record.accounted = {m.id for m in users}
            memory.accounted |= record.accounted
            record.wrote = True
            # each later line is its own turn, never merged into this answer
            self._followups = users[1:]
            if corrections or one_off:
                updates["messages"] = [*one_off, *corrections]
            return Command(resume=resume, update=updates or None)

        record.accounted = {m.id for m in new_items}
        memory.accounted |= record.accounted
        record.wrote = True
        new = [to_langchain(m) for m in new_items]
        return {"messages": [*one_off, *corrections, *new, *self._turn_system()], **updates}

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

    def _one_off_removals(self, thread: Mapping[str, BaseMessage]) -> list[BaseMessage]:
        """Removals of the last reply's one-off instructions (they applied to it alone)."""
        # a rewound run took its one-off message with it
        removals: list[BaseMessage] = [
            RemoveMessage(id=i) for i in self._memory.one_off_ids if i in thread
        ]
        self._memory.one_off_ids = []
        return removals

    def _turn_system(self) -> list[BaseMessage]:
        """This reply's own instructions as a SystemMessage, for graphs without that key."""
        if "instructions" in self._options.input_keys:
            return []
        text = turn_instructions(self._chat_ctx)
        if text is None:
            return []
        message = SystemMessage(content=text, id=utils.shortuuid("graph_llm_turn_"))
        self._memory.one_off_ids.append(str(message.id))
        return [message]

    def _state_updates(self, values: Mapping[str, Any]) -> dict[str, Any]:
        updates: dict[str, Any] = {}
        keys = self._options.input_keys
        if "instructions" in keys:
            instructions = instructions_text(self._chat_ctx)
            extra = turn_instructions(self._chat_ctx)
            if extra is not None:
                # for this reply only: the next turn writes the agent's own text back
                instructions = f"{instructions}\n\n{extra}" if instructions else extra
            if instructions is not None and values.get("instructions") != instructions:
                updates["instructions"] = instructions
        elif not self._memory.warned_instructions and instructions_text(self._chat_ctx):
            self._memory.warned_instructions = True
            logger.warning(
                "the graph has no 'instructions' state key, so the Agent's instructions do "
                "not reach it; give the graph its system prompt (create_agent(system_prompt="
                "...)) or add an 'instructions' key (see docs/graph-llm.md)"
            )
        if "context" in keys and self._context:
            current = dict(values.get("context") or {})
            merged = {**current, **self._context}
            if merged != current:
                updates["context"] = merged
        return updates

    def _resume(self, pending: Sequence[Interrupt], answer: llm.ChatMessage) -> Any | None:
        """The resume value for the first pending interrupt (by id when several wait)."""
        target = pending[0]
        value = resume_value(target.value, (answer.text_content or "").strip(), _schema(target))
        if value is UNCLEAR:
            return None
        self._resuming = True
        return {target.id: value} if len(pending) > 1 else value

    def _followup_input(self) -> dict[str, Any] | Command[Any] | None:
        line = self._followups.pop(0)
        if self._pending:
            resume = self._resume(self._pending, line)
            if resume is None:
                self._followups.insert(0, line)
                return None
            return Command(resume=resume)
        self._resuming = False
        return {"messages": [to_langchain(line)]}

    def _finish(self) -> None:
        self._memory.awaiting_confirmation = bool(self._pending)
        if self._pending:
            self._speak_questions(self._pending)
        elif self._unspoken and not any(s.message_id for s in self.record.spoken):
            logger.warning(
                "the graph answered but nothing was spoken: its answer came from %s, which "
                "is not among speaking_nodes %s",
                ", ".join(dict.fromkeys(self._unspoken.values())),
                list(self._options.speaking_nodes),
                extra={"thread_id": self.record.thread_id},
            )
        if (usage := self._usage.completion_usage()) is not None:
            self._sink.usage(self.record.chunk_id, usage)

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
                    graph_input,
                    config,
                    stream_mode=list(_NODE_SPEECH_MODES if self._options.node_speech else _MODES),
                    subgraphs=True,
                )
                async with contextlib.aclosing(stream):  # type: ignore[type-var]
                    async for _namespace, mode, data in stream:
                        if mode == "messages":
                            self._on_message(*data)
                        elif mode == "updates" and isinstance(data, dict):
                            for item in data.get("__interrupt__", ()):
                                interrupts.setdefault(item.id, item)
                        elif mode == "custom":
                            self._on_custom(data)
                if isinstance(graph_input, Command) and isinstance(graph_input.resume, dict):
                    # a resume by id leaves the other interrupts pending without re-raising
                    snapshot = await self._with_timeout(self._graph.aget_state(config))
                    for item in snapshot.interrupts:
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
        self._pending = tuple(interrupts.values())

    def _on_message(self, message: BaseMessage, metadata: dict[str, Any]) -> None:
        self._usage.add(message)
        text = self._speech.speakable(message, metadata)
        if text:
            if self._first_text_at is None:
                self._sink.model_seen(metadata.get("ls_provider"), metadata.get("ls_model_name"))
            self._speak(text, message.id)
        elif isinstance(message, AIMessage):
            # checked once per node: this runs for every token of a silent node
            key = str(metadata.get("langgraph_checkpoint_ns") or metadata.get("langgraph_node"))
            if key not in self._unspoken and message.text.strip() and not is_handoff(message):
                self._unspoken[key] = "/".join(SpeechFilter.node_path(metadata)) or "?"

    def _on_custom(self, data: Any) -> None:
        """A node's own speech through `get_stream_writer()` (see SAY_EVENT, FLUSH_EVENT)."""
        if not isinstance(data, Mapping):
            return
        kind = data.get("type")
        if kind == SAY_EVENT and isinstance(data.get("text"), str) and data["text"].strip():
            self._speak(data["text"], None)
        elif kind == FLUSH_EVENT and self._unflushed:
            self._sink.flush(self.record.chunk_id)
            self._unflushed = False

    def _speak_questions(self, interrupts: Sequence[Interrupt], *, again: bool = False) -> None:
        # one question at a time: each answer resumes exactly one interrupt
        question = interrupt_question(interrupts[0].value)
        self._speak(f"{_ASK_AGAIN} {question}" if again else question, None)

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
