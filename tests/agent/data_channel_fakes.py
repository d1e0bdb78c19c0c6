"""A fake LiveKit room that carries text (chat, command streams, data packets), a small real
brain (assistant graph + knowledge tools + GraphLLM), and validators for the JSON Schemas.

Every reply and event the fake room carries is validated against `schemas/` as it is sent, so
any test that produces one checks the schemas too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from audio_fakes import CapturingAudioOutput, ScriptedTTS
from graph_fakes import ScriptedChatModel, tool_call
from jsonschema import Draft202012Validator
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.room_io import RoomOptions

from agent.chat.channel import DataChannel, DataChannelConfig, attach_data_channel
from agent.chat.protocol import TOPIC_CHAT, TOPIC_COMMAND, TOPIC_EVENT, TOPIC_REPLY
from agent.graph_llm import GraphLLM
from tools.documents import DocumentStore, QdrantGateway, QdrantLocation
from tools.embeddings import HashingEmbedder
from tools.knowledge import knowledge_tools
from workflows.assistant import SPEAKING_NODES, build_assistant_graph
from workflows.registry import build_workflow_registry

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


REQUEST_SCHEMA = _validator("command-request.v1.json")
REPLY_SCHEMA = _validator("command-reply.v1.json")
EVENT_SCHEMA = _validator("agent-event.v1.json")


def check_reply(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    REPLY_SCHEMA.validate(envelope)
    return envelope


def check_event(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    EVENT_SCHEMA.validate(envelope)
    return envelope


async def eventually(predicate: Any, *, attempts: int = 500) -> None:
    """Yield to the loop until `predicate()` holds (bounded by attempts, not by time)."""
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


# -- the room ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    topic: str
    text: str
    to: tuple[str, ...]

    @property
    def json(self) -> Any:
        return json.loads(self.text)


class _TranscriptWriter:
    def __init__(self, sink: list[str], topic: str) -> None:
        self._sink = sink
        self._parts: list[str] = []
        self.topic = topic
        self.info = SimpleNamespace(stream_id=f"tr-{id(self)}")

    async def write(self, text: str) -> None:
        self._parts.append(text)

    async def aclose(self, **_: Any) -> None:
        self._sink.append("".join(self._parts))


@dataclass
class Publication:
    sid: str
    track: rtc.LocalTrack

    async def wait_for_subscription(self) -> None:
        return None


class FakeLocalParticipant:
    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.sid = "PA_agent"
        self.kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        self.name = ""
        self.metadata = ""
        self.attributes: dict[str, str] = {}
        self.track_publications: dict[str, Any] = {}
        self.sent: list[Sent] = []
        self.transcripts: list[str] = []
        self.fail_sends = False

    async def send_text(
        self,
        text: str,
        *,
        topic: str = "",
        destination_identities: list[str] | None = None,
        **_: Any,
    ) -> Any:
        if self.fail_sends:
            raise ConnectionError("the data channel is down")
        if topic == TOPIC_REPLY:
            check_reply(json.loads(text))
        elif topic == TOPIC_EVENT:
            check_event(json.loads(text))
        self.sent.append(Sent(topic, text, tuple(destination_identities or ())))
        return SimpleNamespace(stream_id=f"out-{len(self.sent)}")

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        self.attributes.update(attributes)

    async def stream_text(self, *, topic: str = "", **_: Any) -> _TranscriptWriter:
        return _TranscriptWriter(self.transcripts, topic)

    async def publish_transcription(self, transcription: Any) -> None:
        return None

    async def publish_track(self, track: rtc.LocalTrack, options: Any = None) -> Any:
        """The agent's audio track, heard by nobody: there is no SFU here."""
        publication = Publication(sid=f"TR_{len(self.track_publications)}", track=track)
        self.track_publications[publication.sid] = publication
        return publication

    async def send_bytes(self, *_: Any, **__: Any) -> None:
        return None

    def register_rpc_method(self, *_: Any, **__: Any) -> Any:
        return lambda handler: handler

    def unregister_rpc_method(self, *_: Any) -> None:
        return None


@dataclass
class FakeParticipant:
    identity: str
    attributes: dict[str, str] = field(default_factory=dict)
    kind: int = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
    can_update_own_metadata: bool = False
    sid: str = "PA_remote"
    name: str = ""
    metadata: str = ""
    disconnect_reason: int = rtc.DisconnectReason.UNKNOWN_REASON
    state: int = rtc.ParticipantState.PARTICIPANT_STATE_ACTIVE
    track_publications: dict[str, Any] = field(default_factory=dict)

    @property
    def permissions(self) -> Any:
        return SimpleNamespace(can_update_metadata=self.can_update_own_metadata)


class FakeStreamReader:
    """A text or byte stream as the SDK hands it to a stream handler."""

    _ids = itertools.count(1)

    def __init__(self, chunks: Sequence[str | bytes], *, topic: str) -> None:
        self._chunks = list(chunks)
        self.closed = False
        self.read_chunks = 0
        size = sum(len(c.encode() if isinstance(c, str) else c) for c in chunks)
        self.info = SimpleNamespace(
            stream_id=f"stream-{next(self._ids)}", topic=topic, size=size, attributes={}
        )

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        for chunk in self._chunks:
            if self.closed:
                return
            self.read_chunks += 1
            await asyncio.sleep(0)
            yield chunk
        self.closed = True

    async def read_all(self) -> str:
        return "".join([str(c) async for c in self])

    def close(self) -> None:
        self.closed = True


class FakeRoom(rtc.EventEmitter[str]):
    """Enough of `rtc.Room` for RoomIO (text only) and the data channel."""

    def __init__(self, name: str = "room-1", agent_identity: str = "agent-1") -> None:
        super().__init__()
        self.name = name
        self.metadata = ""
        self.local_participant = FakeLocalParticipant(agent_identity)
        self.remote_participants: dict[str, FakeParticipant] = {}
        self.connection_state = rtc.ConnectionState.CONN_CONNECTED
        self.text_handlers: dict[str, Any] = {}
        self.byte_handlers: dict[str, Any] = {}

    def isconnected(self) -> bool:
        return self.connection_state == rtc.ConnectionState.CONN_CONNECTED

    def join(self, participant: FakeParticipant) -> FakeParticipant:
        self.remote_participants[participant.identity] = participant
        self.emit("participant_connected", participant)
        self.emit("participant_active", participant)
        return participant

    def register_text_stream_handler(self, topic: str, handler: Any) -> None:
        if topic in self.text_handlers:
            raise ValueError(f"text stream handler for topic '{topic}' already set")
        self.text_handlers[topic] = handler

    def unregister_text_stream_handler(self, topic: str) -> None:
        self.text_handlers.pop(topic, None)

    def register_byte_stream_handler(self, topic: str, handler: Any) -> None:
        if topic in self.byte_handlers:
            raise ValueError(f"byte stream handler for topic '{topic}' already set")
        self.byte_handlers[topic] = handler

    def unregister_byte_stream_handler(self, topic: str) -> None:
        self.byte_handlers.pop(topic, None)

    async def disconnect(self) -> None:
        self.connection_state = rtc.ConnectionState.CONN_DISCONNECTED

    # -- what remote participants send ------------------------------------------------------

    def type_chat(self, identity: str, text: str) -> FakeStreamReader:
        reader = FakeStreamReader([text], topic=TOPIC_CHAT)
        self.text_handlers[TOPIC_CHAT](reader, identity)
        return reader

    def stream_command(
        self, identity: str, payload: str | Mapping[str, Any], *, chunk: int = 1024
    ) -> FakeStreamReader:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        if isinstance(payload, Mapping):
            REQUEST_SCHEMA.validate(payload)
        chunks = [text[i : i + chunk] for i in range(0, len(text), chunk)] or [""]
        reader = FakeStreamReader(chunks, topic=TOPIC_COMMAND)
        self.text_handlers[TOPIC_COMMAND](reader, identity)
        return reader

    def stream_command_bytes(self, identity: str, payload: bytes) -> FakeStreamReader:
        reader = FakeStreamReader(
            [payload[i : i + 512] for i in range(0, len(payload), 512)], topic=TOPIC_COMMAND
        )
        self.byte_handlers[TOPIC_COMMAND](reader, identity)
        return reader

    def publish_command(
        self, identity: str | None, payload: bytes, *, topic: str = TOPIC_COMMAND
    ) -> None:
        participant = self.remote_participants.get(identity) if identity else None
        packet = rtc.DataPacket(
            data=payload,
            kind=rtc.DataPacketKind.KIND_RELIABLE,
            participant=participant,  # type: ignore[arg-type]
            topic=topic,
        )
        self.emit("data_received", packet)

    # -- what the agent sent ---------------------------------------------------------------

    def sent(self, topic: str, to: str | None = None) -> list[Sent]:
        return [
            s
            for s in self.local_participant.sent
            if s.topic == topic and (to is None or to in s.to)
        ]

    def replies(self, to: str) -> list[dict[str, Any]]:
        return [s.json for s in self.sent(TOPIC_REPLY, to)]

    def chats(self, to: str) -> list[str]:
        return [s.text for s in self.sent(TOPIC_CHAT, to)]

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = [s.json for s in self.sent(TOPIC_EVENT)]
        return [e for e in found if kind is None or e["type"] == kind]


# -- a small real brain ----------------------------------------------------------------------

HOUSE_DOCS = {
    "wifi.md": (
        "# Wi-Fi\n\nThe Wi-Fi network is CasaGuest and the Wi-Fi password is sunflower42. "
        "The router is in the hallway cupboard; restart it if the internet is slow."
    ),
    "parking.md": (
        "# Parking\n\nGuests park for free in the courtyard. The gate code is 4711. "
        "Electric cars can charge at the wall box next to the gate."
    ),
    "checkout.md": (
        "# Check-out\n\nCheck-out is at 11 am. Leave the keys in the key box by the door "
        "and put used towels in the bathtub."
    ),
}


async def memory_store(directory: Path) -> DocumentStore:
    for name, text in HOUSE_DOCS.items():
        (directory / name).write_text(text, encoding="utf-8")
    store = DocumentStore(
        QdrantGateway(QdrantLocation()),
        HashingEmbedder(),
        min_score=HashingEmbedder.suggested_min_score,
    )
    await store.ingest([directory])
    return store


@dataclass
class SmallBrain:
    llm: GraphLLM
    graph: Any
    tools: list[BaseTool]
    thread_id: str
    chat_model: BaseChatModel | None


def small_brain(
    *, model: BaseChatModel | None, tools: Sequence[BaseTool], thread_id: str = "thread-test"
) -> SmallBrain:
    graph = build_assistant_graph(model=model, tools=tools, checkpointer=InMemorySaver())
    graph_llm = GraphLLM(
        graph,
        thread_id=thread_id,
        speaking_nodes=SPEAKING_NODES,
        tools=tools,
        filler_text=None,
    )
    return SmallBrain(graph_llm, graph, list(tools), thread_id, model)


def store_tools(store: DocumentStore) -> list[BaseTool]:
    return knowledge_tools(store)


# -- a whole call: session + RoomIO on the fake room + data channel ----------------------------

CALLER = "caller-1"
WIFI_ANSWER = "The Wi-Fi password is sunflower42."


def concierge(messages: list[BaseMessage]) -> AIMessage | str:
    """A scripted model: looks up Wi-Fi questions with search_documents, rates with room_rate."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        if "sunflower42" in str(last.content):
            return WIFI_ANSWER
        return "Sorry, I couldn't look that up."
    text = str(last.content).lower()
    if "wi-fi" in text or "wifi" in text:
        return AIMessage(
            content="", tool_calls=[tool_call("search_documents", {"query": "wifi password"}, "c1")]
        )
    if "rate" in text:
        return AIMessage(
            content="", tool_calls=[tool_call("room_rate", {"room_type": "suite"}, "c2")]
        )
    return f"You said: {last.content}"


@dataclass
class Call:
    room: FakeRoom
    session: AgentSession[Any]
    channel: DataChannel
    brain: SmallBrain
    tts: ScriptedTTS | None
    speaker: CapturingAudioOutput | None

    def say(self, text: str) -> Any:
        """A spoken turn (what STT would hand over), through LiveKit's own test harness."""
        return self.session.run(user_input=text, input_modality="audio")

    async def thread(self, thread_id: str | None = None) -> list[BaseMessage]:
        config = {"configurable": {"thread_id": thread_id or self.brain.llm.thread_id}}
        snapshot = await self.brain.graph.aget_state(config)
        return list(snapshot.values.get("messages", []))

    async def humans(self, thread_id: str | None = None) -> list[str]:
        return [str(m.content) for m in await self.thread(thread_id) if isinstance(m, HumanMessage)]

    def user_items(self) -> list[str]:
        return [m.text_content or "" for m in self.session.history.messages() if m.role == "user"]


async def start_call(
    tmp_path: Path,
    *,
    participants: Sequence[FakeParticipant] = (),
    config: DataChannelConfig | None = None,
    extra_tools: Sequence[BaseTool] = (),
    with_audio: bool = False,
    with_model: bool = True,
) -> Call:
    store = await memory_store(tmp_path)
    tools = [*store_tools(store), *extra_tools]
    model = ScriptedChatModel(default=concierge) if with_model else None
    brain = small_brain(model=model, tools=tools)
    room = FakeRoom()
    room.join(FakeParticipant(CALLER))
    for participant in participants:
        room.join(participant)
    speech = ScriptedTTS(seconds_per_char=0.0005) if with_audio else None
    session: AgentSession[Any] = AgentSession(
        llm=brain.llm,
        tts=speech,  # type: ignore[arg-type]
        vad=None,
        turn_handling={"turn_detection": "manual"},
    )
    speaker = CapturingAudioOutput() if with_audio else None
    if speaker is not None:
        session.output.audio = speaker
    channel = attach_data_channel(
        session,
        room,  # type: ignore[arg-type]
        graph_llm=brain.llm,
        graph=brain.graph,
        tools=brain.tools,
        caller_identity=CALLER,
        config=config or DataChannelConfig(),
        chat_model=model,
        workflows=build_workflow_registry(store=store, model=None),
        extra_providers={"embeddings": "hashing"},
        agent_name="voice-agent",
        greeting="Hello!",
    )
    await session.start(  # type: ignore[call-overload]
        agent=Agent(instructions="You are the concierge."),
        room=room,  # type: ignore[arg-type]
        room_options=channel.room_options(
            RoomOptions(participant_identity=CALLER, audio_input=False, audio_output=False)
        ),
    )
    await channel.announce()
    return Call(room, session, channel, brain, speech, speaker)
