"""One GraphLLM turn: bring the thread up to date, run the graph, speak what may be spoken.

The checkpointed thread is the conversation's source of truth. Each turn GraphLLM sends
only the LiveKit items the thread has not seen (matched by LiveKit item id, which GraphLLM
uses as the LangChain message id), and, after a barge-in, a replacement for each assistant
message whose spoken text was cut short (`conversation_delta`, `heard_corrections`).

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
from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Interrupt, StateSnapshot
from livekit.agents import APITimeoutError, llm, utils

from .events import (
    GraphSpanHandler,
    ToolEventHandler,
    ToolFinished,
    ToolStarted,
    TurnLatency,
    with_handler,
)
from .speech import UNCLEAR, SpeechFilter, UsageTally, interrupt_question, is_handoff, resume_value
from .threads import GraphThreads

if TYPE_CHECKING:
    from .llm import GraphLLMStream

__all__ = [
    "ChatDelta",
    "GraphTurn",
    "SpokenSegment",
    "ThreadMemory",
    "TurnOptions",
    "TurnRecord",
    "conversation_delta",
    "heard_corrections",
    "instructions_text",
    "to_langchain",
    "turn_instructions",
]

logger = logging.getLogger(__name__)

SAY_EVENT = "graph_llm.say"
"""Custom stream event ``{"type": "graph_llm.say", "text": ...}``: speak `text` now."""
FLUSH_EVENT = "graph_llm.flush"
"""Custom stream event ``{"type": "graph_llm.flush"}``: send what was said to TTS now."""
_ASK_AGAIN = "Sorry, I need a yes or a no."


# -- what the thread lacks, and what the caller heard -----------------------------------
# LiveKit's ids for the agent instructions messages ("lk.agent_task.instructions[.dynamic]")
_INSTRUCTIONS_ID_PREFIX = "lk.agent_task.instructions"
_ROLES = ("user", "assistant", "system", "developer")


@dataclass(frozen=True)
class SpokenSegment:
    """Text GraphLLM handed to TTS, in order; `message_id` is the thread AIMessage it came
    from, or None for lines GraphLLM added itself (filler, interrupt question, apology)."""

    message_id: str | None
    text: str


@dataclass(frozen=True)
class ChatDelta:
    anchor_id: str | None = None
    """Id of the newest LiveKit item the thread already has."""
    answer: list[llm.ChatMessage] = field(default_factory=list)
    """Assistant items answering the newest user message the thread already has."""
    new: list[llm.ChatMessage] = field(default_factory=list)
    """Items the thread lacks, oldest first."""


def _text(message: llm.ChatMessage) -> str:
    return (message.text_content or "").strip()


def _is_instructions(message: llm.ChatMessage) -> bool:
    return message.id.startswith(_INSTRUCTIONS_ID_PREFIX)


def instructions_text(chat_ctx: llm.ChatContext) -> str | None:
    """The agent's instructions: LiveKit's instructions items, else the leading system items."""
    messages = chat_ctx.messages()
    tagged = [_text(m) for m in messages if _is_instructions(m)]
    if tagged:
        return "\n\n".join(t for t in tagged if t)
    leading: list[str] = []
    for message in messages:
        if message.role not in ("system", "developer"):
            break
        leading.append(_text(message))
    return "\n\n".join(t for t in leading if t) or None


def _trailing_system(items: Sequence[llm.ChatMessage]) -> int:
    """Index where the system items after the last user/assistant item begin."""
    end = len(items)
    while end > 0 and items[end - 1].role in ("system", "developer"):
        end -= 1
    return end


def turn_instructions(chat_ctx: llm.ChatContext) -> str | None:
    """Instructions LiveKit appended for this reply only (``generate_reply(instructions=)``)."""
    items = chat_ctx.messages()
    if not any(m.role in ("user", "assistant") for m in items):
        return None
    trailing = [m for m in items[_trailing_system(items) :] if not _is_instructions(m)]
    return "\n\n".join(t for t in (_text(m) for m in trailing) if t) or None


def _conversation(chat_ctx: llm.ChatContext) -> list[llm.ChatMessage]:
    items = chat_ctx.messages()
    start = 0
    if not any(_is_instructions(m) for m in items):
        # untagged leading system items are the instructions, sent separately
        while start < len(items) and items[start].role in ("system", "developer"):
            start += 1
    if any(m.role in ("user", "assistant") for m in items):
        # trailing system items are one reply's instructions, never thread history
        items = items[: _trailing_system(items)]
    return [m for m in items[start:] if m.role in _ROLES and not _is_instructions(m) and _text(m)]


def conversation_delta(
    chat_ctx: llm.ChatContext,
    known_ids: Collection[str],
    *,
    history_floor: bool,
    answer_items: int = 1,
) -> ChatDelta:
    """Split LiveKit's history into the answer to the last known turn and what is new.

    One LiveKit reply is one assistant item, so at most `answer_items` assistant items
    after the last known user line are its answer; later ones (``session.say()`` lines)
    are new.

    With `history_floor` (a thread that just replaced another one mid-call) nothing before
    the last assistant item counts as new: the old thread's history stays with it.
    """
    items = _conversation(chat_ctx)
    last_known = next((i for i in range(len(items) - 1, -1, -1) if items[i].id in known_ids), None)
    if last_known is not None:
        cursor = last_known + 1
        answer: list[llm.ChatMessage] = []
        if items[last_known].role == "user":
            while (
                cursor < len(items)
                and items[cursor].role == "assistant"
                and len(answer) < answer_items
            ):
                answer.append(items[cursor])
                cursor += 1
        return ChatDelta(anchor_id=items[last_known].id, answer=answer, new=items[cursor:])
    if history_floor:
        last_assistant = next(
            (i for i in range(len(items) - 1, -1, -1) if items[i].role == "assistant"), None
        )
        return ChatDelta(new=items[last_assistant + 1 :] if last_assistant is not None else items)
    return ChatDelta(new=items)


def to_langchain(message: llm.ChatMessage) -> BaseMessage:
    """The LangChain message for a LiveKit chat item, keeping LiveKit's id."""
    text = _text(message)
    if message.role == "user":
        return HumanMessage(content=text, id=message.id)
    if message.role == "assistant":
        return AIMessage(content=text, id=message.id)
    return SystemMessage(content=text, id=message.id)


def _normalized(text: str) -> str:
    return " ".join(text.split())


def _allocate_heard(spoken: Sequence[SpokenSegment], heard: str) -> dict[str, str]:
    """How much of each spoken AIMessage the caller heard, walking segments in order."""
    rest = _normalized(heard)
    result: dict[str, str] = {}
    for segment in spoken:
        said = _normalized(segment.text)
        if not said:
            continue
        rest = rest.lstrip()
        if rest.startswith(said):
            taken, rest = said, rest[len(said) :]
        elif said.startswith(rest):
            taken, rest = rest, ""
        else:
            # a TTS-aligned transcript can differ in form; fall back to position
            taken, rest = rest[: len(said)].strip(), rest[len(said) :]
        if segment.message_id is not None and taken:
            previous = result.get(segment.message_id)
            result[segment.message_id] = f"{previous} {taken}" if previous else taken
    return result


def heard_corrections(
    spoken: Sequence[SpokenSegment], heard: str, thread: Mapping[str, BaseMessage]
) -> list[BaseMessage]:
    """Replacements (same id) for thread AIMessages the caller heard only part of.

    A message heard not at all is removed, unless it carries tool calls (their results
    follow it in the thread), in which case only its text is emptied.
    """
    heard_by_id = _allocate_heard(spoken, heard)
    spoken_by_id: dict[str, str] = {}
    for segment in spoken:
        if segment.message_id is not None:
            previous = spoken_by_id.get(segment.message_id, "")
            spoken_by_id[segment.message_id] = f"{previous} {segment.text.strip()}".strip()
    corrections: list[BaseMessage] = []
    for message_id, said in spoken_by_id.items():
        original = thread.get(message_id)
        if not isinstance(original, AIMessage):
            continue
        heard_text = heard_by_id.get(message_id, "")
        if heard_text == _normalized(said):
            continue
        if not heard_text and not original.tool_calls:
            corrections.append(RemoveMessage(id=message_id))
        else:
            corrections.append(original.model_copy(update={"content": heard_text}))
    return corrections


# -- the turn ------------------------------------------------------------------------------


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
    """Newest LiveKit item the thread already had when the run started."""
    typed: tuple[llm.ChatMessage, ...] = ()
    """User lines without a transcript confidence (typed, or `generate_reply(user_input=)`)."""
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
        threads: GraphThreads,
        options: TurnOptions,
        memory: ThreadMemory,
        chat_ctx: llm.ChatContext,
        context: Mapping[str, Any],
        sink: GraphLLMStream,
        requested_at: float,
    ) -> None:
        self._threads = threads
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
            await self._with_timeout(
                self._threads.restore(record.thread_id, record.base, record.base_subgraphs)
            )
        except Exception:
            logger.exception("could not rewind the thread after an unfinished graph run")

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
            self._threads.read(self._thread_config())
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
                record.base_subgraphs = await self._with_timeout(
                    self._threads.paused_subgraphs(snapshot)
                )

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
        config = with_handler(self._run_config(), spans)
        interrupts: dict[str, Interrupt] = {}
        started = time.perf_counter()
        deadline = asyncio.timeout(self._options.turn_timeout)
        try:
            async with deadline:
                stream = self._threads.run(
                    graph_input, config, handler, custom=self._options.node_speech
                )
                async with contextlib.aclosing(stream):  # type: ignore[type-var]
                    async for kind, data in stream:
                        if kind == "messages":
                            self._on_message(*data)
                        elif kind == "interrupt":
                            interrupts.setdefault(data.id, data)
                        elif kind == "custom":
                            self._on_custom(data)
                if isinstance(graph_input, Command) and isinstance(graph_input.resume, dict):
                    # a resume by id leaves the other interrupts pending without re-raising
                    snapshot = await self._with_timeout(self._threads.read(self._thread_config()))
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
