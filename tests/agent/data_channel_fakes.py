"""A small real brain (assistant graph + knowledge tools + GraphLLM) and a whole call on the
shared fake room (`room_fakes`): session, RoomIO and the data channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio_fakes import CapturingAudioOutput, ScriptedTTS
from graph_fakes import ScriptedChatModel, tool_call
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.room_io import RoomOptions
from room_fakes import FakeParticipant, FakeRoom

from agent.chat.channel import DataChannel, DataChannelConfig, attach_data_channel
from agent.graph_llm import GraphLLM
from tools.documents import DocumentStore, QdrantGateway, QdrantLocation
from tools.embeddings import HashingEmbedder
from tools.knowledge import knowledge_tools
from workflows.assistant import SPEAKING_NODES, build_assistant_graph
from workflows.registry import build_workflow_registry

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
