"""Typed chat, slash commands, JSON commands and agent events, wired into a LiveKit room.

    channel = attach_data_channel(session, ctx.room, brain=brain,
                                  caller_identity=caller.identity,
                                  config=DataChannelConfig.from_settings(settings))
    await session.start(agent=..., room=ctx.room,
                        room_options=channel.room_options(voice_room_options(caller.identity)))
    await channel.announce()      # the welcome event, with the command list
    ...
    await channel.aclose()

* `lk.chat` from the linked caller arrives through RoomIO's text input callback
  (`TextInputOptions(text_input_cb=...)`): plain text becomes a user turn in the same session
  and graph thread as speech; text starting with `/` goes to the command layer and is
  answered to the sender on `lk.chat` (readable) and `agent.reply` (structured).
* JSON requests arrive on `agent.command` as a text stream, a byte stream or a data packet;
  replies go to the sender on `agent.reply`.
* Events go to the caller on `agent.event`.

The command layer itself (`agent.commands`) has no room: this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.pregel.protocol import PregelProtocol
from livekit import rtc
from livekit.agents import AgentSession, llm
from livekit.agents.voice.events import ConversationItemAddedEvent, ErrorEvent
from livekit.agents.voice.room_io import RoomOptions, TextInputEvent, TextInputOptions

from agent.chat.access import AccessPolicy, Sender
from agent.chat.conversation import SessionConversation, ThreadedLLM, provider_label
from agent.chat.dispatcher import CommandDispatcher, Drop, Outcome
from agent.chat.events import (
    ERROR_CODES,
    EventPublisher,
    error_event_data,
    tool_finished_data,
    tool_started_data,
)
from agent.chat.handlers import builtin_commands
from agent.chat.parsing import is_command_text, unescape_chat
from agent.chat.protocol import (
    PROTOCOL_VERSION,
    TOPIC_CHAT,
    TOPIC_COMMAND,
    TOPIC_EVENT,
    TOPIC_REPLY,
    EventType,
)
from agent.chat.rate_limit import RateLimiter
from agent.chat.registry import CommandRegistry
from agent.chat.reply_mode import OutputSwitch
from agent.chat.services import CommandServices, PendingConfirmations
from agent.chat.settings import DataChannelConfig
from agent.chat.sources import answer_sources
from agent.graph_llm.events import ToolFinished, ToolStarted
from workflows.registry import WorkflowRegistry, build_workflow_registry

if TYPE_CHECKING:
    from agent.brain import Brain
    from agent.settings import WorkerSettings

__all__ = ["BrainHandles", "DataChannel", "RoomSender", "attach_data_channel", "capabilities"]

logger = logging.getLogger(__name__)


class BrainHandles(Protocol):
    """What the data channel uses of `agent.brain.Brain`."""

    @property
    def llm(self) -> llm.LLM: ...
    @property
    def graph(self) -> PregelProtocol[Any, Any, Any, Any]: ...
    @property
    def tools(self) -> Sequence[BaseTool]: ...


def capabilities(
    tool_names: Sequence[str], *, chat_model: bool, workflows: Sequence[str]
) -> list[str]:
    """What the agent can do, for the welcome event."""
    found = ["voice", "chat", "commands"]
    names = set(tool_names)
    if "search_documents" in names:
        found.append("document_search")
    if "embed_text" in names:
        found.append("embedding_analysis")
    if "find_reservation" in names:
        found.append("reservations")
    if "list_upsell_offers" in names:
        found.append("upsells")
    if chat_model:
        found.append("text_analysis")
    if workflows:
        found.append("workflows")
    return found


def _threaded(candidate: llm.LLM) -> ThreadedLLM:
    for name in ("thread_id", "context", "last_turn_latency", "awaiting_confirmation"):
        if not hasattr(candidate, name):
            raise TypeError(
                f"the data channel needs a GraphLLM; {type(candidate).__name__} has no {name}"
            )
    return cast(ThreadedLLM, candidate)


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
        dispatcher: CommandDispatcher,
        conversation: SessionConversation,
        events: EventPublisher,
        policy: AccessPolicy,
        sender: RoomSender,
        caller_identity: str,
        config: DataChannelConfig,
        welcome: dict[str, Any],
    ) -> None:
        self._out = sender
        self.session = session
        self.room = room
        self.dispatcher = dispatcher
        self.conversation = conversation
        self.events = events
        self.policy = policy
        self.caller_identity = caller_identity
        self.config = config
        self._welcome = welcome
        self._output = OutputSwitch(session.output)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: list[Callable[[], None]] = []
        self._closed = False

    @property
    def typed_reply_in_progress(self) -> bool:
        """True while the outputs are switched for a typed message's reply."""
        return self._output.active

    # -- set-up ----------------------------------------------------------------------------

    def text_input_options(self) -> TextInputOptions:
        return TextInputOptions(text_input_cb=self.on_text_input)

    def room_options(self, base: RoomOptions) -> RoomOptions:
        """`base` with this channel's `lk.chat` handling (pass to `session.start`)."""
        return dataclasses.replace(base, text_input=self.text_input_options())

    def _listen(self, emitter: Any, event: str, callback: Callable[..., Any]) -> None:
        emitter.on(event, callback)
        self._unsubscribe.append(lambda: emitter.off(event, callback))

    def _bind(self, graph_llm: llm.LLM, graph: PregelProtocol[Any, Any, Any, Any] | None) -> None:
        room = self.room
        room.register_text_stream_handler(TOPIC_COMMAND, self._on_command_text_stream)
        self._unsubscribe.append(lambda: room.unregister_text_stream_handler(TOPIC_COMMAND))
        room.register_byte_stream_handler(TOPIC_COMMAND, self._on_command_byte_stream)
        self._unsubscribe.append(lambda: room.unregister_byte_stream_handler(TOPIC_COMMAND))
        self._listen(room, "data_received", self._on_data_packet)
        self._listen(room, "participant_connected", self._on_participant_connected)
        self._listen(graph_llm, "tool_started", self._on_tool_started)
        self._listen(graph_llm, "tool_finished", self._on_tool_finished)
        self._listen(self.session, "error", self._on_session_error)
        if graph is not None:
            self._listen(
                self.session,
                "conversation_item_added",
                lambda ev: self._on_item_added(ev, graph),
            )
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

    # -- who is talking ----------------------------------------------------------------------

    def _sender(self, identity: str, participant: Any = None) -> Sender:
        if participant is None:
            participant = self.room.remote_participants.get(identity)
        return self.policy.classify(
            identity,
            participant,
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
            outcome = await self.dispatcher.handle_chat_command(
                event.text, sender, request_id=request_id
            )
            await self._deliver(outcome, identity)
            return
        text = unescape_chat(event.text).strip()
        refusal = self.dispatcher.screen_chat_message(
            text, sender, request_id=request_id, max_chars=self.config.max_chat_chars
        )
        if refusal is not None:
            await self._deliver(refusal, identity)
            return
        await self._submit_typed(text)

    async def _submit_typed(self, text: str) -> None:
        session = self.session
        try:
            interrupted = session.interrupt()
        except RuntimeError:
            interrupted = None  # the current speech may not be interrupted; queue behind it
        if interrupted is not None:
            # bounded wait that leaves LiveKit's future alone if it takes longer
            await asyncio.wait({interrupted}, timeout=self.config.send_timeout_s)
        self._output.begin(self.conversation.reply_mode)
        try:
            handle = session.generate_reply(user_input=text)
        except RuntimeError as exc:
            self._output.end()
            logger.warning("could not answer a typed message: %s", exc)
            return
        handle.add_done_callback(lambda _: self._output.end())

    # -- agent.command ----------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work, name="data_channel")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_command_text_stream(self, reader: rtc.TextStreamReader, identity: str) -> None:
        self._spawn(self._read_text_stream(reader, identity))

    def _on_command_byte_stream(self, reader: rtc.ByteStreamReader, identity: str) -> None:
        self._spawn(self._read_byte_stream(reader, identity))

    def _on_data_packet(self, packet: rtc.DataPacket) -> None:
        if packet.topic != TOPIC_COMMAND:
            return
        if packet.participant is None:
            logger.debug("dropped a command packet sent by a server SDK (no sender to answer)")
            return
        self._spawn(self._command(bytes(packet.data), packet.participant.identity))

    async def _read_text_stream(self, reader: rtc.TextStreamReader, identity: str) -> None:
        limit = self.config.max_command_bytes
        parts: list[str] = []
        size = 0
        try:
            async for chunk in reader:
                parts.append(chunk)
                size += len(chunk.encode("utf-8", "surrogatepass"))
                if size > limit:
                    reader.close()  # no need to read what will be refused
                    break
        except rtc.StreamError as exc:
            logger.info("dropped an aborted command stream from %s: %s", identity, exc)
            return
        await self._command("".join(parts), identity)

    async def _read_byte_stream(self, reader: rtc.ByteStreamReader, identity: str) -> None:
        limit = self.config.max_command_bytes
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in reader:
                parts.append(chunk)
                size += len(chunk)
                if size > limit:
                    reader.close()
                    break
        except rtc.StreamError as exc:
            logger.info("dropped an aborted command stream from %s: %s", identity, exc)
            return
        await self._command(b"".join(parts), identity)

    async def _command(self, payload: bytes | str, identity: str) -> None:
        outcome = await self.dispatcher.handle_envelope(payload, self._sender(identity))
        await self._deliver(outcome, identity)

    # -- sending ---------------------------------------------------------------------------

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
        self.events.emit(EventType.TOOL_FINISHED, tool_finished_data(event))
        if not event.ok:
            self.events.emit(
                EventType.ERROR,
                error_event_data(
                    "tool_failed", recoverable=True, source=event.name, detail=event.error
                ),
            )

    def _on_session_error(self, event: ErrorEvent) -> None:
        kind = str(getattr(event.error, "type", ""))
        code = ERROR_CODES.get(kind)
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

    def _on_item_added(
        self, event: ConversationItemAddedEvent, graph: PregelProtocol[Any, Any, Any, Any]
    ) -> None:
        item = event.item
        if not isinstance(item, llm.ChatMessage) or item.role != "assistant":
            return
        self._spawn(self._emit_sources(item.id, graph))

    async def _emit_sources(
        self, message_id: str, graph: PregelProtocol[Any, Any, Any, Any]
    ) -> None:
        thread_id = self.conversation.thread_id
        try:
            sources = await answer_sources(graph, thread_id)
        except Exception as exc:
            logger.warning("could not read the sources of an answer: %s", exc)
            return
        if sources:
            self.events.emit(
                EventType.SOURCES,
                {"message_id": message_id, "conversation_id": thread_id, "sources": sources},
            )

    # -- shutdown --------------------------------------------------------------------------

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


def _welcome(
    registry: CommandRegistry,
    caller: Sender,
    *,
    agent_name: str | None,
    greeting: str | None,
    capability_list: list[str],
    reply_mode: str,
) -> dict[str, Any]:
    return {
        "agent": agent_name,
        "greeting": greeting,
        "capabilities": capability_list,
        "commands": [spec.describe() for spec in registry.available_to(caller)],
        "reply_mode": reply_mode,
        "protocol": {
            "version": PROTOCOL_VERSION,
            "topics": {
                "chat": TOPIC_CHAT,
                "command": TOPIC_COMMAND,
                "reply": TOPIC_REPLY,
                "event": TOPIC_EVENT,
            },
        },
    }


def attach_data_channel(
    session: AgentSession[Any],
    room: rtc.Room,
    *,
    brain: BrainHandles,
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
    config = config or DataChannelConfig()
    graph_llm = _threaded(brain.llm)
    tools = {tool.name: tool for tool in brain.tools}
    conversation = SessionConversation(
        session,
        graph_llm,
        graph=brain.graph,
        reply_mode=config.reply_mode,
        extra_providers=extra_providers,
    )
    policy = AccessPolicy(
        role_attribute=config.staff_role_attribute, staff_roles=config.staff_roles
    )
    registry = CommandRegistry.of(builtin_commands(workflow_timeout_s=config.workflow_timeout_s))
    out = RoomSender(room, timeout_s=config.send_timeout_s)

    async def send_event(payload: str) -> None:
        await out.send(payload, TOPIC_EVENT, caller_identity)

    events = EventPublisher(send_event)
    services = CommandServices(
        conversation=conversation,
        events=events,
        tools=tools,
        chat_model=chat_model,
        workflows=workflows,
        confirmations=PendingConfirmations(window_s=config.reset_confirm_window_s),
    )
    dispatcher = CommandDispatcher(
        registry,
        services,
        limiter=RateLimiter(limit=config.rate_limit, window_s=config.rate_window_s),
        max_bytes=config.max_command_bytes,
        timeout_s=config.command_timeout_s,
    )
    caller = policy.classify(
        caller_identity,
        room.remote_participants.get(caller_identity),
        local_identity=room.local_participant.identity,
        linked_identity=caller_identity,
    )
    welcome = _welcome(
        registry,
        caller,
        agent_name=agent_name,
        greeting=greeting,
        capability_list=capabilities(
            list(tools),
            chat_model=chat_model is not None,
            workflows=workflows.names() if workflows is not None else [],
        ),
        reply_mode=config.reply_mode.value,
    )
    channel = DataChannel(
        session=session,
        room=room,
        dispatcher=dispatcher,
        conversation=conversation,
        events=events,
        policy=policy,
        sender=out,
        caller_identity=caller_identity,
        config=config,
        welcome=welcome,
    )
    channel._bind(brain.llm, brain.graph)
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
        brain=brain,
        caller_identity=caller_identity,
        config=DataChannelConfig.from_settings(settings),
        chat_model=brain.chat_model,
        workflows=build_workflow_registry(
            store=brain.documents, model=brain.chat_model, pms=brain.pms, desk=brain.desk
        ),
        extra_providers=brain.providers,
        agent_name=settings.agent_name,
        greeting=brain.greeting,
    )
