"""Sources of answers the fallback responder gives when no chat model is configured.

The fallback runs the document tools itself; the data channel still tells the caller's app
which documents an answer came from, from the tool results the turn produced.
Real knowledge tools on in-memory Qdrant, the real assistant graph, and (end
to end) a real AgentSession on the fake room, which validates every event against
`schemas/agent-event.v1.json` as it is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from data_channel_fakes import (
    CALLER,
    SmallBrain,
    memory_store,
    small_brain,
    start_call,
    store_tools,
)
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from livekit.agents import AgentSession
from room_fakes import EVENT_SCHEMA, FakeRoom, eventually

from agent.chat.conversation import TurnSources
from agent.graph_llm.events import ToolEventHandler
from workflows.fallback import fallback_sources

WIFI_QUESTION = "What's the Wi-Fi password?"


async def _no_model_brain(tmp_path: Path) -> SmallBrain:
    store = await memory_store(tmp_path)
    return small_brain(model=None, tools=store_tools(store))


async def _turn(brain: SmallBrain, text: str, sources: TurnSources) -> AIMessage:
    """One graph turn, its tool results collected the way GraphLLM reports them."""
    handler = ToolEventHandler(
        thread_id=brain.thread_id, on_started=lambda _: None, on_finished=sources.add
    )
    config: RunnableConfig = {
        "configurable": {"thread_id": brain.thread_id},
        "callbacks": [handler],
    }
    result = await brain.graph.ainvoke({"messages": [HumanMessage(text)]}, config)
    answer = result["messages"][-1]
    assert isinstance(answer, AIMessage)
    return answer


async def test_the_sources_of_a_no_model_answer_come_from_its_tool_results(
    tmp_path: Path,
) -> None:
    brain = await _no_model_brain(tmp_path)
    turn = TurnSources()
    answer = await _turn(brain, WIFI_QUESTION, turn)
    assert "sunflower42" in answer.text
    sources = turn.take()
    assert sources, "a fallback answer quoting a document must report it"
    best = sources[0]
    assert best.source.endswith("wifi.md")
    assert best.chunk == 0 and best.score > 0
    assert "sunflower42" in best.preview
    assert best.tool == "search_documents"
    assert [s.score for s in sources] == sorted((s.score for s in sources), reverse=True)
    quoted = {s["source"] for s in fallback_sources(answer)}
    assert best.source in quoted


async def test_the_next_turn_does_not_repeat_the_previous_answers_sources(
    tmp_path: Path,
) -> None:
    brain = await _no_model_brain(tmp_path)
    turn = TurnSources()
    await _turn(brain, WIFI_QUESTION, turn)
    assert turn.take()
    thanks = await _turn(brain, "Thanks!", turn)
    assert "welcome" in thanks.text
    assert turn.take() == []


# -- end to end: a call whose brain has no chat model ------------------------------------------


@pytest.fixture
async def no_model_call(tmp_path: Path) -> AsyncIterator[tuple[FakeRoom, AgentSession[Any]]]:
    call = await start_call(tmp_path, with_model=False)
    yield call.room, call.session
    await call.channel.aclose()
    await call.session.aclose()


async def test_a_no_model_answer_sends_a_sources_event_to_the_caller(
    no_model_call: tuple[FakeRoom, AgentSession[Any]],
) -> None:
    room, session = no_model_call
    await session.run(user_input="Hello there!", input_modality="audio")
    room.type_chat(CALLER, WIFI_QUESTION)
    await eventually(lambda: room.events("sources"))
    answers = [m for m in session.history.messages() if m.role == "assistant"]
    greeting, wifi = answers[0], answers[-1]
    assert "unavailable" in (greeting.text_content or "")
    assert "sunflower42" in (wifi.text_content or "")
    # Only the answer that quoted a document gets an event, and it names that answer.
    [event] = room.events("sources")
    EVENT_SCHEMA.validate(event)
    data = event["data"]
    assert data["message_id"] == wifi.id
    best = data["sources"][0]
    assert best["source"].endswith("wifi.md")
    assert best["chunk"] == 0 and best["score"] > 0
    assert best["tool"] == "search_documents"
    assert "sunflower42" in best["preview"]
    assert all(s.to == (CALLER,) for s in room.sent("agent.event"))
