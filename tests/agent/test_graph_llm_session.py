"""LiveKit's session API keeps GraphLLM's thread true, and nodes speak on their own through
LangGraph's custom stream — all through LiveKit's AgentSession harness with real graphs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from livekit.agents import Agent, AgentSession, APIConnectOptions, llm
from livekit.agents.voice.agent_session import SessionConnectOptions

from agent.graph_llm import FLUSH_EVENT, SAY_EVENT, GraphLLM
from tests.agent.audio_fakes import CapturingAudioOutput, ScriptedTTS
from tests.agent.graph_fakes import (
    ScriptedChatModel,
    build_recording_graph,
    spoken,
    thread_messages,
)

INSTRUCTIONS = "You are the concierge of Hotel Aurora."


@asynccontextmanager
async def voice_session(
    graph_llm: GraphLLM, **session_kwargs: Any
) -> AsyncIterator[tuple[AgentSession, Agent]]:
    conn = SessionConnectOptions(llm_conn_options=APIConnectOptions(max_retry=0))
    agent = Agent(instructions=INSTRUCTIONS)
    async with AgentSession(llm=graph_llm, conn_options=conn, **session_kwargs) as session:
        if "tts" in session_kwargs:
            session.output.audio = CapturingAudioOutput()
        await session.start(agent)
        yield session, agent


def prompt_texts(model: ScriptedChatModel, index: int = -1) -> list[tuple[str, str]]:
    return [(m.type, str(m.content)) for m in model.prompts[index]]


async def test_a_said_line_reaches_the_thread_and_the_next_prompt() -> None:
    model = ScriptedChatModel(script=["Welcome to Hotel Aurora.", "It closes at nine."])
    graph = create_agent(model, [], checkpointer=InMemorySaver())
    async with voice_session(GraphLLM(graph, thread_id="say")) as (session, _):
        await session.run(user_input="Hello")
        await session.say("By the way, the pool is open today.", add_to_chat_ctx=True)
        await session.run(user_input="When does it close?")

    assert ("ai", "By the way, the pool is open today.") in prompt_texts(model)
    contents = [m.content for m in await thread_messages(graph, "say")]
    assert contents == [
        "Hello",
        "Welcome to Hotel Aurora.",
        "By the way, the pool is open today.",
        "When does it close?",
        "It closes at nine.",
    ]


async def test_a_handoff_to_a_fresh_agent_keeps_the_heard_turns() -> None:
    model = ScriptedChatModel(script=["One.", "Two.", "Three."])
    graph = create_agent(model, [], checkpointer=InMemorySaver())
    async with voice_session(GraphLLM(graph, thread_id="handoff")) as (session, _):
        await session.run(user_input="first")
        await session.run(user_input="second")
        session.update_agent(Agent(instructions="You are the spa desk."))
        await asyncio.sleep(0.05)
        assert spoken(await session.run(user_input="third")) == "Three."

    contents = [m.content for m in await thread_messages(graph, "handoff")]
    assert contents == ["first", "One.", "second", "Two.", "third", "Three."]
    assert [c for t, c in prompt_texts(model) if t != "system"] == contents[:-1]


async def test_an_edited_chat_context_keeps_the_heard_turns() -> None:
    model = ScriptedChatModel(script=["One.", "Two.", "Three."])
    graph = create_agent(model, [], checkpointer=InMemorySaver())
    async with voice_session(GraphLLM(graph, thread_id="edit")) as (session, agent):
        await session.run(user_input="first")
        await session.run(user_input="second")
        await agent.update_chat_ctx(llm.ChatContext.empty())
        await session.run(user_input="third")

    contents = [m.content for m in await thread_messages(graph, "edit")]
    assert contents == ["first", "One.", "second", "Two.", "third", "Three."]


async def test_one_off_instructions_apply_to_that_reply_only() -> None:
    writes: dict[str, list[Any]] = {"instructions": [], "context": []}
    model = ScriptedChatModel(script=["Bonjour.", "Hello again."])
    graph = build_recording_graph(model, writes)
    async with voice_session(GraphLLM(graph, thread_id="once")) as (session, _):
        await session.run(user_input="Hi")
        await session.generate_reply(instructions="Answer in French.")
        await session.run(user_input="And now?")

    system_prompts = [str(p[0].content) for p in model.prompts]
    assert "Answer in French." not in system_prompts[0]
    assert "Answer in French." in system_prompts[1]
    assert "Answer in French." not in system_prompts[2]
    assert INSTRUCTIONS in system_prompts[2]
    assert not any(isinstance(m, SystemMessage) for m in await thread_messages(graph, "once"))


async def test_one_off_instructions_reach_a_graph_without_an_instructions_key() -> None:
    model = ScriptedChatModel(script=["Hi.", "Bonjour.", "Hello again."])
    graph = create_agent(model, [], checkpointer=InMemorySaver())
    async with voice_session(GraphLLM(graph, thread_id="once-plain")) as (session, _):
        await session.run(user_input="Hi")
        await session.generate_reply(instructions="Answer in French.")
        await session.run(user_input="And now?")

    assert ("system", "Answer in French.") in prompt_texts(model, 1)
    assert ("system", "Answer in French.") not in prompt_texts(model, 2)
    assert not any(isinstance(m, SystemMessage) for m in await thread_messages(graph, "once-plain"))


async def test_agent_instructions_a_graph_cannot_take_are_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    graph = create_agent(ScriptedChatModel(), [], checkpointer=InMemorySaver())
    with caplog.at_level(logging.WARNING, logger="agent.graph_llm.turn"):
        async with voice_session(GraphLLM(graph, thread_id="warn")) as (session, _):
            await session.run(user_input="Hi")
            await session.run(user_input="Hi again")
    warnings = [r for r in caplog.records if "'instructions'" in r.getMessage()]
    assert len(warnings) == 1


def speaking_node_graph(delay: float) -> Any:
    async def lookup(state: MessagesState) -> dict[str, Any]:
        write = get_stream_writer()
        write({"type": SAY_EVENT, "text": "Let me check that for you"})
        write({"type": FLUSH_EVENT})
        await asyncio.sleep(delay)
        return {"messages": [AIMessage("A double room is 180 euros tonight.")]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", lookup)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile(checkpointer=InMemorySaver())


async def test_a_node_speaks_and_flushes_in_a_bare_session() -> None:
    tts = ScriptedTTS(seconds_per_char=0.001)
    graph = speaking_node_graph(delay=0.3)
    async with voice_session(GraphLLM(graph, thread_id="custom"), tts=tts) as (session, _):
        text = spoken(await session.run(user_input="How much is a double?"))

    assert text == "Let me check that for you A double room is 180 euros tonight."
    requests = [r.text.strip() for r in tts.requests]
    # the line had no sentence end; only the flush sent it to TTS before the answer
    assert requests[0] == "Let me check that for you"
    assert requests[-1] == "A double room is 180 euros tonight."
    assert tts.requests[0].at < tts.requests[-1].at
    contents = [m.content for m in await thread_messages(graph, "custom")]
    assert contents == ["How much is a double?", "A double room is 180 euros tonight."]


async def test_typed_lines_arriving_together_are_all_kept() -> None:
    model = ScriptedChatModel(
        script=["Answer to both lines, in full."] * 3, token_delay=0.02, first_token_delay=0.05
    )
    graph = create_agent(model, [], checkpointer=InMemorySaver())
    async with voice_session(GraphLLM(graph, thread_id="typed")) as (session, _):
        await session.run(user_input="Hello")
        handles = []
        for line in ("I need a taxi", "at six tomorrow"):
            session.interrupt()  # what the data channel does for each typed line
            handles.append(session.generate_reply(user_input=line))
        await handles[-1]
        await asyncio.sleep(0.1)

    humans = [m.content for m in await thread_messages(graph, "typed") if m.type == "human"]
    assert humans == ["Hello", "I need a taxi", "at six tomorrow"]
    last_prompt = [c for t, c in prompt_texts(model) if t == "human"]
    assert last_prompt == ["Hello", "I need a taxi", "at six tomorrow"]
