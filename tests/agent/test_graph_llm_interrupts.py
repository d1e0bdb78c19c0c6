"""Interrupts as LangGraph and LangChain raise them, through LiveKit's AgentSession harness:
HumanInTheLoopMiddleware (batched and per call), several pending interrupts, answers the
graph cannot use, and later lines that must not be merged into an answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt
from livekit.agents import Agent, AgentSession, APIConnectOptions, APIError
from livekit.agents.voice.agent_session import SessionConnectOptions

from agent.graph_llm import DEFAULT_APOLOGY, GraphLLM
from tests.agent.graph_fakes import (
    ScriptedChatModel,
    add_transcript,
    spoken,
    thread_messages,
    tool_call,
)
from workflows.checkpoint import open_checkpointer

BOOKINGS: list[str] = []


@tool
def book_room(room_type: str) -> str:
    """Book a room for tonight."""
    BOOKINGS.append(room_type)
    return f"booked a {room_type} room"


@tool
def send_receipt(email: str) -> str:
    """Email the receipt."""
    BOOKINGS.append(f"receipt:{email}")
    return "receipt sent"


@asynccontextmanager
async def voice_session(graph_llm: GraphLLM) -> AsyncIterator[tuple[AgentSession, Agent]]:
    conn = SessionConnectOptions(llm_conn_options=APIConnectOptions(max_retry=0))
    agent = Agent(instructions="You are the concierge of Hotel Aurora.")
    async with AgentSession(llm=graph_llm, conn_options=conn) as session:
        await session.start(agent)
        yield session, agent


def booking_call(*names: str) -> AIMessage:
    args = {"book_room": {"room_type": "double"}, "send_receipt": {"email": "ada@example.com"}}
    return AIMessage(
        content="",
        tool_calls=[tool_call(n, args[n], f"call-{i}") for i, n in enumerate(names)],
    )


def hitl_agent(model: ScriptedChatModel, **middleware: Any) -> Any:
    gate = HumanInTheLoopMiddleware(
        interrupt_on={"book_room": True, "send_receipt": True}, **middleware
    )
    return create_agent(
        model, [book_room, send_receipt], middleware=[gate], checkpointer=InMemorySaver()
    )


async def test_human_in_the_loop_yes_approves_and_no_rejects() -> None:
    BOOKINGS.clear()
    model = ScriptedChatModel(
        script=[
            booking_call("book_room"),
            "Your double room is booked.",
            booking_call("book_room"),
            "All right, I have not booked it.",
        ]
    )
    graph = hitl_agent(model)
    graph_llm = GraphLLM(graph, thread_id="hitl")
    async with voice_session(graph_llm) as (session, _):
        asked = spoken(await session.run(user_input="Book me a double room."))
        assert asked == "Shall I go ahead with book room?"
        assert graph_llm.awaiting_confirmation
        assert spoken(await session.run(user_input="Yes, please.")) == (
            "Your double room is booked."
        )
        assert BOOKINGS == ["double"]
        spoken(await session.run(user_input="Book another double."))
        assert spoken(await session.run(user_input="No, forget it.")) == (
            "All right, I have not booked it."
        )
    assert BOOKINGS == ["double"]
    assert not graph_llm.awaiting_confirmation
    messages = await thread_messages(graph, "hitl")
    rejected = [m for m in messages if isinstance(m, ToolMessage) and m.status == "error"]
    assert len(rejected) == 1 and "rejected" in str(rejected[0].content)


async def test_an_unclear_answer_asks_again_and_runs_nothing() -> None:
    BOOKINGS.clear()
    model = ScriptedChatModel(script=[booking_call("book_room"), "Booked."])
    graph = hitl_agent(model)
    graph_llm = GraphLLM(graph, thread_id="unclear")
    async with voice_session(graph_llm) as (session, _):
        await session.run(user_input="Book me a double room.")
        again = spoken(await session.run(user_input="What is the weather like?"))
        assert "yes or a no" in again and "book room" in again
        assert BOOKINGS == [] and len(model.prompts) == 1
        assert spoken(await session.run(user_input="Okay, go ahead.")) == "Booked."
    assert BOOKINGS == ["double"]


async def test_per_call_interrupts_are_asked_and_resumed_one_at_a_time_by_id() -> None:
    BOOKINGS.clear()
    model = ScriptedChatModel(
        script=[booking_call("book_room", "send_receipt"), "Booked, and no receipt."]
    )
    graph = hitl_agent(model, interrupt_mode="per_call")
    graph_llm = GraphLLM(graph, thread_id="per-call")
    async with voice_session(graph_llm) as (session, _):
        first = spoken(await session.run(user_input="Book a double and email the receipt."))
        state = await graph.aget_state({"configurable": {"thread_id": "per-call"}})
        assert len(state.interrupts) == 2
        second = spoken(await session.run(user_input="Yes."))
        assert {first, second} == {
            "Shall I go ahead with book room?",
            "Shall I go ahead with send receipt?",
        }
        answer = "No." if second.endswith("send receipt?") else "Yes."
        final = spoken(await session.run(user_input=answer))
    assert final == "Booked, and no receipt."
    assert BOOKINGS == ["double"]
    assert not graph_llm.awaiting_confirmation


def two_questions_graph(answers: dict[str, Any]) -> Any:
    def ask_nights(state: MessagesState) -> dict[str, Any]:
        answers["nights"] = interrupt("How many nights?")
        return {}

    def ask_room(state: MessagesState) -> dict[str, Any]:
        answers["room"] = interrupt({"question": "Which room type?"})
        return {}

    def model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"{answers['nights']} nights in a {answers['room']}.")]}

    builder = StateGraph(MessagesState)
    builder.add_node("ask_nights", ask_nights)
    builder.add_node("ask_room", ask_room)
    builder.add_node("model", model)
    builder.add_edge(START, "ask_nights")
    builder.add_edge(START, "ask_room")
    builder.add_edge(["ask_nights", "ask_room"], "model")
    builder.add_edge("model", END)
    return builder.compile(checkpointer=InMemorySaver())


async def test_parallel_interrupts_each_get_their_own_answer() -> None:
    answers: dict[str, Any] = {}
    graph = two_questions_graph(answers)
    graph_llm = GraphLLM(graph, thread_id="two")
    async with voice_session(graph_llm) as (session, _):
        first = spoken(await session.run(user_input="I'd like to book."))
        second = spoken(await session.run(user_input="three" if "nights" in first else "suite"))
        assert {first, second} == {"How many nights?", "Which room type?"}
        final = spoken(await session.run(user_input="three" if "nights" in second else "suite"))
    assert answers == {"nights": "three", "room": "suite"}
    assert final == "three nights in a suite."


def nights_graph() -> Any:
    def route(state: MessagesState) -> str:
        return "ask" if "book" in str(state["messages"][-1].content).lower() else "model"

    def ask(state: MessagesState) -> dict[str, Any]:
        nights = int(interrupt("How many nights?"))  # a spoken "many" breaks this
        return {"messages": [AIMessage(f"Booked for {nights} nights.")]}

    def model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("Breakfast is from seven to ten.")]}

    builder = StateGraph(MessagesState)
    builder.add_node("ask", ask)
    builder.add_node("model", model)
    builder.add_conditional_edges(START, route, ["ask", "model"])
    builder.add_edge("ask", END)
    builder.add_edge("model", END)
    return builder.compile(checkpointer=InMemorySaver())


async def test_an_answer_the_graph_cannot_use_leaves_a_working_thread() -> None:
    graph = nights_graph()
    graph_llm = GraphLLM(graph, thread_id="nights", speaking_nodes=("ask", "model"))
    async with voice_session(graph_llm) as (session, agent):
        assert spoken(await session.run(user_input="Book a room.")) == "How many nights?"
        with pytest.raises(APIError):
            await session.run(user_input="Quite a few.")
        assert agent.chat_ctx.messages()[-1].text_content == DEFAULT_APOLOGY
        assert not graph_llm.awaiting_confirmation
        assert spoken(await session.run(user_input="When is breakfast?")) == (
            "Breakfast is from seven to ten."
        )
        assert spoken(await session.run(user_input="Book a room.")) == "How many nights?"
        assert spoken(await session.run(user_input="2")) == "Booked for 2 nights."
    contents = [m.content for m in await thread_messages(graph, "nights")]
    # the failed answer and the apology stay in the conversation, the question does not
    assert contents[:4] == ["Book a room.", "Quite a few.", DEFAULT_APOLOGY, "When is breakfast?"]


async def test_a_later_line_is_never_merged_into_the_answer() -> None:
    answers: dict[str, Any] = {}

    def ask(state: MessagesState) -> dict[str, Any]:
        answers["confirm"] = interrupt("Shall I book the spa at five?")
        return {"messages": [AIMessage(f"Noted: {answers['confirm']}.")]}

    def model(state: MessagesState) -> dict[str, Any]:
        last = str(state["messages"][-1].content)
        return {"messages": [AIMessage(f"You said: {last}")]}

    def route(state: MessagesState) -> str:
        return "ask" if "spa" in str(state["messages"][-1].content) else "model"

    builder = StateGraph(MessagesState)
    builder.add_node("ask", ask)
    builder.add_node("model", model)
    builder.add_conditional_edges(START, route, ["ask", "model"])
    builder.add_edge("ask", END)
    builder.add_edge("model", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    graph_llm = GraphLLM(graph, thread_id="later", speaking_nodes=("ask", "model"))
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="Book the spa.")
        # a typed "yes" lands in the history right before the spoken "forget it"
        ctx = agent.chat_ctx.copy()
        ctx.add_message(role="user", content="yes")
        await agent.update_chat_ctx(ctx)
        text = spoken(await session.run(user_input="Actually, forget it."))
    assert answers == {"confirm": "yes"}
    assert text == "Noted: yes. You said: Actually, forget it."
    humans = [m.content for m in await thread_messages(graph, "later") if m.type == "human"]
    # the answer lives in the interrupt's resume value; the later line is its own message
    assert humans == ["Book the spa.", "Actually, forget it."]


async def test_a_subgraph_interrupt_after_a_discarded_answer_does_not_rerun_the_sub_agent() -> None:
    await _subgraph_interrupt_case(InMemorySaver())


async def test_the_same_subgraph_resume_on_redis(redis_url: str) -> None:
    async with open_checkpointer(redis_url=redis_url, sqlite_path=None) as saver:
        await _subgraph_interrupt_case(saver)


async def _subgraph_interrupt_case(saver: Any) -> None:
    BOOKINGS.clear()
    model = ScriptedChatModel(script=[booking_call("book_room")], default="Booked it.")
    sub_agent = create_agent(
        model,
        [book_room],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"book_room": True})],
    )
    builder = StateGraph(MessagesState)
    builder.add_node("booking", sub_agent)
    builder.add_edge(START, "booking")
    builder.add_edge("booking", END)
    graph = builder.compile(checkpointer=saver)
    graph_llm = GraphLLM(graph, thread_id="sub-hitl", speaking_nodes=("booking",))
    async with voice_session(graph_llm) as (session, agent):
        assert spoken(await session.run(user_input="Book a double.")) == (
            "Shall I go ahead with book room?"
        )
        calls_before = len(model.prompts)
        # a preemptive "yes" runs to the end, then LiveKit discards it
        guess = agent.chat_ctx.copy()
        add_transcript(guess, "yes")
        guessed = await graph_llm.chat(chat_ctx=guess).collect()
        assert guessed.text == "Booked it." and BOOKINGS == ["double"]
        BOOKINGS.clear()
        answered = spoken(await session.run(user_input="Yes, go ahead."))

    assert answered == "Booked it."
    assert BOOKINGS == ["double"]
    # the rewound answer resumed the sub-agent where it paused: its model ran only once more
    # for the guess and once more for the real answer, never again for the tool call
    assert len(model.prompts) == calls_before + 2
    messages = await thread_messages(graph, "sub-hitl")
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
