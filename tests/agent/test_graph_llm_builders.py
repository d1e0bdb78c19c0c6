"""GraphLLM on graphs made by LangGraph's and LangChain's own builders, through LiveKit's
AgentSession harness: create_react_agent, create_agent, langgraph-supervisor,
langgraph-swarm and a hand-built Command(goto=...) router, with scripted chat models."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypedDict

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command
from langgraph_supervisor import create_supervisor
from langgraph_swarm import create_handoff_tool, create_swarm
from livekit.agents import Agent, AgentSession, APIConnectOptions
from livekit.agents.voice.agent_session import SessionConnectOptions
from pydantic import BaseModel

from agent.graph_llm import (
    DEFAULT_FILLER,
    GraphLLM,
    ToolFinished,
    ToolStarted,
    node_names,
    recognise_builder,
)
from tests.agent.graph_fakes import ScriptedChatModel, spoken, thread_messages, tool_call

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langgraph.prebuilt import create_react_agent

SUPERVISOR_TEXT = "SUPERVISOR-ROUTING-NOTE"
BOOKED = "Your double room is booked for tonight."


@tool
def room_rate(room_type: str) -> str:
    """Tonight's rate for a room type."""
    return f"RATE-7781: the {room_type} room is 180 euros."


def calls(name: str, args: dict[str, Any], call_id: str, text: str = "") -> AIMessage:
    return AIMessage(content=text, tool_calls=[tool_call(name, args, call_id)])


@asynccontextmanager
async def voice_session(graph_llm: GraphLLM) -> AsyncIterator[AgentSession]:
    conn = SessionConnectOptions(llm_conn_options=APIConnectOptions(max_retry=0))
    async with AgentSession(llm=graph_llm, conn_options=conn) as session:
        await session.start(Agent(instructions="You are the concierge of Hotel Aurora."))
        yield session


def react_agent(model: ScriptedChatModel, tools: list[BaseTool], **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(model, tools, **kwargs)


# -- 1. builders are recognised -----------------------------------------------------------


async def test_create_react_agent_speaks_with_its_defaults() -> None:
    model = ScriptedChatModel(
        script=[calls("room_rate", {"room_type": "double"}, "c1", "Let me check."), "180 euros."]
    )
    graph = react_agent(model, [room_rate], checkpointer=InMemorySaver())
    graph_llm = GraphLLM(graph, thread_id="react")
    async with voice_session(graph_llm) as session:
        text = spoken(await session.run(user_input="How much is a double?"))

    assert text == "Let me check. 180 euros."
    messages = await thread_messages(graph, "react")
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]


async def test_create_agent_speaks_with_its_defaults() -> None:
    model = ScriptedChatModel(script=["Breakfast is from seven to ten."])
    graph = create_agent(model, [room_rate], checkpointer=InMemorySaver())
    assert recognise_builder(graph) == "create_agent"
    async with voice_session(GraphLLM(graph, thread_id="v1")) as session:
        assert spoken(await session.run(user_input="Breakfast?")) == (
            "Breakfast is from seven to ten."
        )


def test_unknown_speaking_nodes_are_refused_with_the_real_node_names() -> None:
    sub = react_agent(ScriptedChatModel(), [room_rate], name="booker")
    graph = create_supervisor([sub], model=ScriptedChatModel()).compile(
        checkpointer=InMemorySaver()
    )
    with pytest.raises(ValueError) as error:
        GraphLLM(graph, thread_id="x", speaking_nodes=("model",))
    assert "booker/agent" in str(error.value) and "supervisor" in str(error.value)
    assert "booker/agent" in set(node_names(graph))


def test_a_graph_without_a_recognisable_answer_node_needs_speaking_nodes() -> None:
    builder = StateGraph(MessagesState)
    builder.add_node("respond", lambda state: {"messages": [AIMessage("hi")]})
    builder.add_edge(START, "respond")
    with pytest.raises(ValueError, match="respond"):
        GraphLLM(builder.compile(checkpointer=InMemorySaver()), thread_id="x")


async def test_an_answer_nobody_speaks_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    builder = StateGraph(MessagesState)
    builder.add_node("respond", lambda state: {"messages": [AIMessage("Hello there.")]})
    builder.add_node("model", lambda state: {})
    builder.add_edge(START, "respond")
    builder.add_edge("respond", "model")
    graph_llm = GraphLLM(builder.compile(checkpointer=InMemorySaver()), thread_id="quiet")
    with caplog.at_level(logging.WARNING, logger="agent.graph_llm.turn"):
        async with voice_session(graph_llm) as session:
            await session.run(user_input="Hi")
    assert any(
        "nothing was spoken" in r.getMessage() and "respond" in r.getMessage()
        for r in caplog.records
    )


# -- 2. multi-agent graphs -----------------------------------------------------------------


async def test_supervisor_speaks_its_workers_never_its_routing_or_handoffs() -> None:
    booker_model = ScriptedChatModel(script=[BOOKED])
    booker = react_agent(booker_model, [room_rate], name="booker")
    supervisor_model = ScriptedChatModel(
        script=[
            calls("transfer_to_booker", {}, "h1", SUPERVISOR_TEXT),
            f"{SUPERVISOR_TEXT}: done.",
        ]
    )
    graph = create_supervisor([booker], model=supervisor_model).compile(
        checkpointer=InMemorySaver()
    )
    graph_llm = GraphLLM(graph, thread_id="sup")
    async with voice_session(graph_llm) as session:
        text = spoken(await session.run(user_input="Book me a double room."))

    assert text == BOOKED
    assert "Transferring" not in text and SUPERVISOR_TEXT not in text
    messages = await thread_messages(graph, "sup")
    assert sum(isinstance(m, HumanMessage) for m in messages) == 1
    assert any(isinstance(m, AIMessage) and m.content == BOOKED for m in messages)


async def test_swarm_speaks_every_agent_and_the_active_agent_persists() -> None:
    alice_model = ScriptedChatModel(script=[calls("transfer_to_bob", {}, "h1")])
    bob_model = ScriptedChatModel(script=["Bob here, I handle billing.", "Your bill is paid."])
    alice = react_agent(
        alice_model, [room_rate, create_handoff_tool(agent_name="bob")], name="alice"
    )
    bob = react_agent(bob_model, [create_handoff_tool(agent_name="alice")], name="bob")
    graph = create_swarm([alice, bob], default_active_agent="alice").compile(
        checkpointer=InMemorySaver()
    )
    assert recognise_builder(graph) == "swarm"
    graph_llm = GraphLLM(graph, thread_id="swarm")
    async with voice_session(graph_llm) as session:
        first = spoken(await session.run(user_input="I have a billing question."))
        second = spoken(await session.run(user_input="Is my bill paid?"))

    assert first == "Bob here, I handle billing."
    assert second == "Your bill is paid."
    assert len(alice_model.prompts) == 1  # the second turn went straight to bob
    state = await graph.aget_state({"configurable": {"thread_id": "swarm"}})
    assert state.values["active_agent"] == "bob"


async def test_hand_built_command_router_is_silent() -> None:
    def route(state: MessagesState) -> Command[Any]:
        note = AIMessage("ROUTER: sending this to billing")
        return Command(goto="billing", update={"messages": [note]})

    def billing(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("Billing speaking, how can I help?")]}

    def rooms(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("Rooms speaking.")]}

    builder = StateGraph(MessagesState)
    builder.add_node("router", route, destinations=("billing", "rooms"))
    builder.add_node("billing", billing)
    builder.add_node("rooms", rooms)
    builder.add_edge(START, "router")
    builder.add_edge("billing", END)
    builder.add_edge("rooms", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    graph_llm = GraphLLM(graph, thread_id="router", speaking_nodes=("billing", "rooms"))
    async with voice_session(graph_llm) as session:
        text = spoken(await session.run(user_input="A question about my bill."))
    assert text == "Billing speaking, how can I help?"


# -- 3. sync tools -------------------------------------------------------------------------


async def test_sync_tools_report_on_the_loop_and_say_the_filler_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @tool
    def slow_rate(room_type: str) -> str:
        """Tonight's rate, from a slow service."""
        time.sleep(0.6)
        return "180 euros"

    model = ScriptedChatModel(
        script=[
            AIMessage(
                content="",
                tool_calls=[
                    tool_call("slow_rate", {"room_type": "double"}, "c1"),
                    tool_call("slow_rate", {"room_type": "suite"}, "c2"),
                ],
            ),
            "Both are 180 euros.",
        ]
    )
    graph = create_agent(model, [slow_rate], checkpointer=InMemorySaver())
    graph_llm = GraphLLM(graph, thread_id="sync", slow_tool_threshold=0.2)
    loop_thread = threading.get_ident()
    seen: list[tuple[str, str, int]] = []
    graph_llm.on("tool_started", lambda e: seen.append(("start", e.call_id, threading.get_ident())))
    graph_llm.on("tool_finished", lambda e: seen.append(("end", e.call_id, threading.get_ident())))
    with caplog.at_level(logging.WARNING):
        async with voice_session(graph_llm) as session:
            text = spoken(await session.run(user_input="Rates for a double and a suite?"))

    assert text.count(DEFAULT_FILLER) == 1 and text.endswith("Both are 180 euros.")
    assert sorted((kind, call) for kind, call, _ in seen) == [
        ("end", "c1"),
        ("end", "c2"),
        ("start", "c1"),
        ("start", "c2"),
    ]
    assert {thread for _, _, thread in seen} == {loop_thread}
    assert not [r for r in caplog.records if "callback" in r.getMessage().lower()]


async def test_sync_worker_nodes_of_a_supervisor_report_tools_on_the_loop() -> None:
    booker_model = ScriptedChatModel(
        script=[calls("room_rate", {"room_type": "double"}, "c1"), BOOKED]
    )
    booker = react_agent(booker_model, [room_rate], name="booker")
    supervisor_model = ScriptedChatModel(script=[calls("transfer_to_booker", {}, "h1"), "done"])
    graph = create_supervisor([booker], model=supervisor_model).compile(
        checkpointer=InMemorySaver()
    )
    graph_llm = GraphLLM(graph, thread_id="sup-tools")
    events: list[ToolStarted | ToolFinished] = []
    threads: set[int] = set()

    def record(event: ToolStarted | ToolFinished) -> None:
        events.append(event)
        threads.add(threading.get_ident())

    graph_llm.on("tool_started", record)
    graph_llm.on("tool_finished", record)
    async with voice_session(graph_llm) as session:
        text = spoken(await session.run(user_input="Book a double."))
    await asyncio.sleep(0)
    assert text == BOOKED
    assert [(type(e).__name__, e.name) for e in events if e.name == "room_rate"] == [
        ("ToolStarted", "room_rate"),
        ("ToolFinished", "room_rate"),
    ]
    assert threads == {threading.get_ident()}


# -- 6. state schemas ----------------------------------------------------------------------


class PlainState(TypedDict):
    messages: list[Any]


class SubclassedState(MessagesState):
    mood: str


class PydanticState(BaseModel):
    messages: Annotated[list[AnyMessage], add_messages]


def test_a_messages_channel_without_a_reducer_is_refused() -> None:
    builder = StateGraph(PlainState)
    builder.add_node("model", lambda state: {})
    builder.add_edge(START, "model")
    with pytest.raises(ValueError, match="add_messages"):
        GraphLLM(builder.compile(checkpointer=InMemorySaver()), thread_id="x")


async def test_messages_state_subclass_and_pydantic_states_keep_history() -> None:
    for schema in (SubclassedState, PydanticState):
        model = ScriptedChatModel(script=["One.", "Two."])

        async def respond(state: Any, model: ScriptedChatModel = model) -> dict[str, Any]:
            messages = state["messages"] if isinstance(state, dict) else state.messages
            return {"messages": [await model.ainvoke(messages)]}

        builder = StateGraph(schema)
        builder.add_node("model", respond)
        builder.add_edge(START, "model")
        graph = builder.compile(checkpointer=InMemorySaver())
        async with voice_session(GraphLLM(graph, thread_id="s")) as session:
            await session.run(user_input="first")
            assert spoken(await session.run(user_input="second")) == "Two."
        messages = await thread_messages(graph, "s")
        assert [m.content for m in messages] == ["first", "One.", "second", "Two."]
        assert not any(isinstance(m, ToolMessage) for m in messages)
