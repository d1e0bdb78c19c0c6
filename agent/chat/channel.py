"""Typed chat, slash commands, JSON commands and agent events, wired into a LiveKit room.

    channel = attach_data_channel(session, ctx.room, graph_llm=..., graph=..., tools=...,
                                  caller_identity=caller.identity, config=DataChannelConfig(...))
    await session.start(agent=..., room=ctx.room,
                        room_options=channel.room_options(voice_room_options(caller.identity)))
    await channel.announce()      # the welcome event, with the command list
    ...
    await channel.aclose()

* `lk.chat` from the linked caller arrives through RoomIO's text input callback: text starting
  with `/` goes to the command pipeline and is answered to the sender on `lk.chat` (readable)
  and `agent.reply` (structured); other text goes to the conversation (`conversation.py`).
* JSON requests arrive on `agent.command` as a text stream, a byte stream or a data packet;
  replies go to the sender on `agent.reply`.
* Events go to the caller on `agent.event`, one at a time and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.pregel.protocol import PregelProtocol
from livekit import rtc
from livekit.agents import AgentSession, llm
from livekit.agents.voice.events import ConversationItemAddedEvent, ErrorEvent
from livekit.agents.voice.room_io import RoomOptions, TextInputEvent, TextInputOptions

from agent.chat.conversation import Conversation, provider_label
from agent.chat.handlers import builtin_commands
from agent.chat.pipeline import (
    AccessPolicy,
    CommandPipeline,
    CommandServices,
    Drop,
    Outcome,
    PendingConfirmations,
    RateLimiter,
    Sender,
    is_command_text,
    unescape_chat,
)
from agent.chat.protocol import (
    TOPIC_CHAT,
    TOPIC_COMMAND,
    TOPIC_EVENT,
    TOPIC_REPLY,
    ErrorData,
    EventType,
    ReplyMode,
    SourcesData,
    ToolFinishedData,
    ToolStartedData,
    Welcome,
    Wire,
    event_envelope,
)
from agent.graph_llm import GraphLLM
from agent.graph_llm.events import ToolFinished, ToolStarted
from tools.artifacts import ToolRole, tools_with_role
from workflows.registry import WorkflowRegistry, build_workflow_registry

if TYPE_CHECKING:
    from agent.brain import Brain
    from agent.settings import WorkerSettings

__all__ = [
    "DataChannel",
    "DataChannelConfig",
    "EventPublisher",
    "RoomSender",
    "attach_data_channel",
    "capabilities",
    "channel_for_brain",
]

logger = logging.getLogger(__name__)

# LiveKit's error types (`LLMError.type`, ...) → the stable codes clients see
ERROR_CODES: dict[str, str] = {
    "stt_error": "stt_failed",
    "llm_error": "llm_failed",
    "realtime_model_error": "llm_failed",
    "tts_error": "tts_failed",
    "tool_error": "tool_failed",
}
_ERROR_MESSAGES = {
    "stt_failed": "Speech recognition failed.",
    "llm_failed": "The language model failed to answer.",
    "tts_failed": "Speech synthesis failed.",
    "tool_failed": "A tool failed.",
}
# what the welcome event announces for each tool role the brain has
_ROLE_CAPABILITIES = {
    ToolRole.DOCUMENT_SEARCH: "document_search",
    ToolRole.EMBEDDING_ANALYSIS: "embedding_analysis",
    ToolRole.RESERVATION_LOOKUP: "reservations",
    ToolRole.UPSELLS: "upsells",
}


@dataclasses.dataclass(frozen=True)
class DataChannelConfig:
    """The data channel's limits and defaults (built from `WorkerSettings` at the edge)."""

    reply_mode: ReplyMode = ReplyMode.BOTH
    rate_limit: int = 10
    rate_window_s: float = 10.0
    max_command_bytes: int = 16 * 1024
    max_chat_chars: int = 4000
    command_timeout_s: float = 30.0
    workflow_timeout_s: float = 120.0
    staff_role_attribute: str = "role"
    staff_roles: tuple[str, ...] = ("staff",)
    reset_confirm_window_s: float = 60.0
    send_timeout_s: float = 5.0


def capabilities(
    tools: Sequence[BaseTool], *, chat_model: bool, workflows: Sequence[str]
) -> list[str]:
    """What the agent can do, for the welcome event."""
    found = ["voice", "chat", "commands"]
    found.extend(name for role, name in _ROLE_CAPABILITIES.items() if tools_with_role(tools, role))
    if chat_model:
        found.append("text_analysis")
    if workflows:
        found.append("workflows")
    return found


def error_event_data(
    code: str, *, recoverable: bool, source: str | None = None, detail: str | None = None
) -> ErrorData:
    return ErrorData.model_validate(
        {
            "code": code,
            "message": _ERROR_MESSAGES.get(code, "Something failed."),
            "recoverable": recoverable,
            "source": source,
            "detail": detail,
        }
    )


def tool_started_data(event: ToolStarted) -> ToolStartedData:
    return ToolStartedData(name=event.name, call_id=event.call_id, args_summary=event.args_summary)


def tool_finished_data(event: ToolFinished) -> ToolFinishedData:
    return ToolFinishedData(
        name=event.name,
        call_id=event.call_id,
        ok=event.ok,
        duration_s=round(event.duration, 3),
        error=event.error,
    )


class EventPublisher:
    """Queues events and sends them one at a time, in order; never blocks the emitter.

    When the queue is full (a stalled connection), new events are dropped and counted.
    """

    def __init__(self, send: Callable[[str], Awaitable[None]], *, max_queue: int = 256) -> None:
        self._send = send
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.sent = 0

    def emit(self, event_type: EventType, data: Wire) -> None:
        payload = event_envelope(event_type, data).model_dump_json()
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="agent_event_publisher"
            )

    async def _drain(self) -> None:
        while not self._queue.empty():
            payload = self._queue.get_nowait()
            try:
                await self._send(payload)
                self.sent += 1
            except Exception as exc:
                logger.warning("could not send an agent event: %s", exc)

    async def flush(self) -> None:
        """Wait until every queued event has been sent (or failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class RoomSender:
    """Sends text to one participant on a topic, with a timeout; failures are logged."""

    def __init__(self, room: rtc.Room, *, timeout_s: float) -> None:
        self._room = room
        self._timeout_s = timeout_s

    async def send(self, text: str, topic: str, identity: str) -> None:
        if not self._room.isconnected():
            return
        try:
            await asyncio.wait_for(
                self._room.local_participant.send_text(
                    text, topic=topic, destination_identities=[identity]
                ),
                self._timeout_s,
            )
        except Exception as exc:
            logger.warning("could not send on %s to %s: %s", topic, identity, exc)


class DataChannel:
    """One call's data channel. Create it with `attach_data_channel`."""

    def __init__(
        self,
        *,
        session: AgentSession[Any],
        room: rtc.Room,
        pipeline: CommandPipeline,
        conversation: Conversation,
        events: EventPublisher,
        policy: AccessPolicy,
        sender: RoomSender,
        caller_identity: str,
        config: DataChannelConfig,
        welcome: Welcome,
    ) -> None:
        self._out = sender
        self.session = session
        self.room = room
        self.pipeline = pipeline
        self.conversation = conversation
        self.events = events
        self.policy = policy
        self.caller_identity = caller_identity
        self.config = config
        self._welcome = welcome
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: list[Callable[[], None]] = []
        self._closed = False

    @property
    def typed_reply_in_progress(self) -> bool:
        return self.conversation.typed_reply_in_progress

    # -- set-up ----------------------------------------------------------------------------

    def room_options(self, base: RoomOptions) -> RoomOptions:
        """`base` with this channel's `lk.chat` handling (pass to `session.start`)."""
        return dataclasses.replace(
            base, text_input=TextInputOptions(text_input_cb=self.on_text_input)
        )

    def _listen(self, emitter: Any, event: str, callback: Callable[..., Any]) -> None:
        emitter.on(event, callback)
        self._unsubscribe.append(lambda: emitter.off(event, callback))

    def _bind(self, graph_llm: GraphLLM) -> None:
        room = self.room
        room.register_text_stream_handler(TOPIC_COMMAND, self._on_command_stream)
        self._unsubscribe.append(lambda: room.unregister_text_stream_handler(TOPIC_COMMAND))
        room.register_byte_stream_handler(TOPIC_COMMAND, self._on_command_stream)
        self._unsubscribe.append(lambda: room.unregister_byte_stream_handler(TOPIC_COMMAND))
        self._listen(room, "data_received", self._on_data_packet)
        self._listen(room, "participant_connected", self._on_participant_connected)
        self._listen(graph_llm, "tool_started", self._on_tool_started)
        self._listen(graph_llm, "tool_finished", self._on_tool_finished)
        self._listen(self.session, "error", self._on_session_error)
        self._listen(self.session, "conversation_item_added", self._on_item_added)
        with contextlib.suppress(RuntimeError):
            # the session already runs with a room: take over its `lk.chat` callback
            self.session.room_io.register_text_input(self.on_text_input)

    async def idle(self) -> None:
        """Wait until every command received so far has been handled and answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def announce(self) -> None:
        """Send the welcome event (what the agent can do, the caller's commands)."""
        self.events.emit(EventType.WELCOME, self._welcome)

    def _sender(self, identity: str, participant: rtc.RemoteParticipant | None = None) -> Sender:
        return self.policy.classify(
            identity,
            participant or self.room.remote_participants.get(identity),
            local_identity=self.room.local_participant.identity,
            linked_identity=self.caller_identity,
        )

    # -- lk.chat ---------------------------------------------------------------------------

    async def on_text_input(self, session: AgentSession[Any], event: TextInputEvent) -> None:
        """RoomIO's `text_input_cb`: RoomIO passes only the linked participant's chat."""
        participant = event.participant
        identity = participant.identity if participant is not None else self.caller_identity
        sender = self._sender(identity, participant)
        stream_id = event.info.stream_id if event.info is not None else uuid.uuid4().hex[:12]
        request_id = f"chat-{stream_id}"
        if is_command_text(event.text):
            outcome = await self.pipeline.handle_chat_command(
                event.text, sender, request_id=request_id
            )
            await self._deliver(outcome, identity)
            return
        text = unescape_chat(event.text).strip()
        refusal = self.conversation.screen(text, sender, request_id=request_id)
        if refusal is not None:
            await self._deliver(refusal, identity)
            return
        await self.conversation.submit_typed(text)

    # -- agent.command ----------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work, name="data_channel")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_command_stream(
        self, reader: rtc.TextStreamReader | rtc.ByteStreamReader, identity: str
    ) -> None:
        self._spawn(self._read_stream(reader, identity))

    def _on_data_packet(self, packet: rtc.DataPacket) -> None:
        if packet.topic != TOPIC_COMMAND:
            return
        if packet.participant is None:
            logger.debug("dropped a command packet sent by a server SDK (no sender to answer)")
            return
        self._spawn(self._command(bytes(packet.data), packet.participant.identity))

    async def _read_stream(
        self, reader: rtc.TextStreamReader | rtc.ByteStreamReader, identity: str
    ) -> None:
        """Read a text or byte stream, stopping once it is over the size limit."""
        chunks: list[bytes] = []
        size = 0
        stream: AsyncIterable[str | bytes] = reader
        try:
            async for chunk in stream:
                data = chunk.encode("utf-8", "surrogatepass") if isinstance(chunk, str) else chunk
                chunks.append(data)
                size += len(data)
                if size > self.config.max_command_bytes:
                    reader.close()  # no need to read what will be refused
                    break
        except rtc.StreamError as exc:
            logger.info("dropped an aborted command stream from %s: %s", identity, exc)
            return
        await self._command(b"".join(chunks), identity)

    async def _command(self, payload: bytes | str, identity: str) -> None:
        outcome = await self.pipeline.handle_envelope(payload, self._sender(identity))
        await self._deliver(outcome, identity)

    async def _deliver(self, outcome: Outcome, identity: str) -> None:
        if isinstance(outcome, Drop):
            logger.debug("dropped a message from %s: %s", identity, outcome.reason.value)
            return
        await self._out.send(outcome.payload, TOPIC_REPLY, identity)
        if outcome.chat_text:
            await self._out.send(outcome.chat_text, TOPIC_CHAT, identity)

    # -- events ----------------------------------------------------------------------------

    def _on_participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self.caller_identity:
            self.events.emit(EventType.WELCOME, self._welcome)

    def _on_tool_started(self, event: ToolStarted) -> None:
        self.events.emit(EventType.TOOL_STARTED, tool_started_data(event))

    def _on_tool_finished(self, event: ToolFinished) -> None:
        self.conversation.sources.add(event)
        self.events.emit(EventType.TOOL_FINISHED, tool_finished_data(event))
        if not event.ok:
            self.events.emit(
                EventType.ERROR,
                error_event_data(
                    "tool_failed", recoverable=True, source=event.name, detail=event.error
                ),
            )

    def _on_session_error(self, event: ErrorEvent) -> None:
        code = ERROR_CODES.get(str(getattr(event.error, "type", "")))
        if code is None:
            return
        self.events.emit(
            EventType.ERROR,
            error_event_data(
                code,
                recoverable=bool(getattr(event.error, "recoverable", False)),
                source=provider_label(event.source),
            ),
        )

    def _on_item_added(self, event: ConversationItemAddedEvent) -> None:
        item = event.item
        if not isinstance(item, llm.ChatMessage) or item.role != "assistant":
            return
        sources = self.conversation.sources.take()
        if sources:
            self.events.emit(
                EventType.SOURCES,
                SourcesData(
                    message_id=item.id,
                    conversation_id=self.conversation.thread_id,
                    sources=sources,
                ),
            )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for unsubscribe in reversed(self._unsubscribe):
            with contextlib.suppress(Exception):
                unsubscribe()
        self._unsubscribe.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.events.aclose()


def attach_data_channel(
    session: AgentSession[Any],
    room: rtc.Room,
    *,
    graph_llm: GraphLLM,
    graph: PregelProtocol[Any, Any, Any, Any] | None,
    tools: Sequence[BaseTool],
    caller_identity: str,
    config: DataChannelConfig | None = None,
    chat_model: BaseChatModel | None = None,
    workflows: WorkflowRegistry | None = None,
    extra_providers: Mapping[str, str] | None = None,
    agent_name: str | None = None,
    greeting: str | None = None,
) -> DataChannel:
    """Wire typed chat, commands and events for one call. Call before or after
    `session.start`; before, pass `channel.room_options(...)` to `session.start`."""
    if not isinstance(graph_llm, GraphLLM):
        raise TypeError(f"the data channel needs a GraphLLM, not {type(graph_llm).__name__}")
    config = config or DataChannelConfig()
    limiter = RateLimiter(limit=config.rate_limit, window_s=config.rate_window_s)
    conversation = Conversation(
        session,
        graph_llm,
        graph=graph,
        limiter=limiter,
        reply_mode=config.reply_mode,
        max_chat_chars=config.max_chat_chars,
        extra_providers=extra_providers,
        timeout_s=config.send_timeout_s,
    )
    policy = AccessPolicy(
        role_attribute=config.staff_role_attribute, staff_roles=config.staff_roles
    )
    out = RoomSender(room, timeout_s=config.send_timeout_s)

    async def send_event(payload: str) -> None:
        await out.send(payload, TOPIC_EVENT, caller_identity)

    events = EventPublisher(send_event)
    services = CommandServices(
        conversation=conversation,
        events=events,
        tools=list(tools),
        chat_model=chat_model,
        workflows=workflows,
        confirmations=PendingConfirmations(window_s=config.reset_confirm_window_s),
    )
    pipeline = CommandPipeline(
        builtin_commands(workflow_timeout_s=config.workflow_timeout_s),
        services,
        limiter=limiter,
        max_bytes=config.max_command_bytes,
        timeout_s=config.command_timeout_s,
    )
    caller = policy.classify(
        caller_identity,
        room.remote_participants.get(caller_identity),
        local_identity=room.local_participant.identity,
        linked_identity=caller_identity,
    )
    welcome = Welcome(
        agent=agent_name,
        greeting=greeting,
        capabilities=capabilities(
            tools,
            chat_model=chat_model is not None,
            workflows=workflows.names() if workflows is not None else [],
        ),
        commands=[spec.describe() for spec in pipeline.available_to(caller)],
        reply_mode=config.reply_mode,
    )
    channel = DataChannel(
        session=session,
        room=room,
        pipeline=pipeline,
        conversation=conversation,
        events=events,
        policy=policy,
        sender=out,
        caller_identity=caller_identity,
        config=config,
        welcome=welcome,
    )
    channel._bind(graph_llm)
    return channel


def channel_for_brain(
    session: AgentSession[Any],
    room: rtc.Room,
    *,
    brain: Brain,
    caller_identity: str,
    settings: WorkerSettings,
) -> DataChannel:
    """The worker's data channel for one call: the brain's tools, model, PMS and workflows."""
    return attach_data_channel(
        session,
        room,
        graph_llm=brain.llm,
        graph=brain.graph,
        tools=brain.tools,
        caller_identity=caller_identity,
        config=settings.data_channel_config(),
        chat_model=brain.chat_model,
        workflows=build_workflow_registry(
            store=brain.documents, model=brain.chat_model, pms=brain.pms, desk=brain.desk
        ),
        extra_providers=brain.providers,
        agent_name=settings.agent_name,
        greeting=brain.greeting,
    )
