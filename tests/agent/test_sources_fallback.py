"""Sources of answers the fallback responder gives when no chat model is configured.

The fallback looks documents up itself and records what it quoted on its AIMessage rather
than as tool messages; the data channel must still tell the caller's app which documents an
answer came from. Real knowledge tools on in-memory Qdrant, the real assistant graph, and (end
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
    EVENT_SCHEMA,
    FakeRoom,
    SmallBrain,
    eventually,
    memory_store,
    small_brain,
    start_call,
    store_tools,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from livekit.agents import AgentSession

from agent.chat.sources import answer_sources, sources_from_messages
from workflows.fallback import SOURCES_METADATA_KEY, fallback_sources

WIFI_QUESTION = "What's the Wi-Fi password?"


async def _no_model_brain(tmp_path: Path) -> SmallBrain:
    store = await memory_store(tmp_path)
    return small_brain(model=None, tools=store_tools(store))


async def _turn(brain: SmallBrain, text: str) -> AIMessage:
    config: RunnableConfig = {"configurable": {"thread_id": brain.thread_id}}
    result = await brain.graph.ainvoke({"messages": [HumanMessage(text)]}, config)
    answer = result["messages"][-1]
    assert isinstance(answer, AIMessage)
    return answer


async def test_the_sources_of_a_no_model_answer_are_read_from_the_thread(tmp_path: Path) -> None:
    brain = await _no_model_brain(tmp_path)
    answer = await _turn(brain, WIFI_QUESTION)
    assert "sunflower42" in answer.text
    sources = await answer_sources(brain.graph, brain.thread_id)
    assert sources, "a fallback answer quoting a document must report it"
    best = sources[0]
    assert best["source"].endswith("wifi.md")
    assert best["chunk"] == 0 and best["score"] > 0
    assert "sunflower42" in best["preview"]
    assert best["tool"] == "search_documents"
    assert [s["score"] for s in sources] == sorted((s["score"] for s in sources), reverse=True)
    assert {s["source"] for s in sources} == {s["source"] for s in fallback_sources(answer)}


async def test_the_next_turn_does_not_repeat_the_previous_answers_sources(
    tmp_path: Path,
) -> None:
    brain = await _no_model_brain(tmp_path)
    await _turn(brain, WIFI_QUESTION)
    thanks = await _turn(brain, "Thanks!")
    assert "welcome" in thanks.text
    assert await answer_sources(brain.graph, brain.thread_id) == []


def test_tool_results_and_the_fallback_answer_of_one_turn_are_merged() -> None:
    # The model searched, then failed; the fallback searched again and answered.
    thread = [
        HumanMessage("old question"),
        AIMessage(
            "old answer",
            response_metadata={
                "model_name": "fallback",
                SOURCES_METADATA_KEY: [{"source": "old.md", "chunk": 0, "score": 0.9}],
            },
        ),
        HumanMessage("wifi?"),
        AIMessage("", tool_calls=[{"name": "search_documents", "args": {}, "id": "a"}]),
        ToolMessage(
            "...",
            tool_call_id="a",
            name="search_documents",
            artifact={"hits": [{"source": "wifi.md", "chunk": 0, "score": 0.4, "text": "pw"}]},
        ),
        AIMessage(
            "found it",
            response_metadata={
                "model_name": "fallback",
                SOURCES_METADATA_KEY: [
                    {
                        "source": "wifi.md",
                        "title": "Wi-Fi",
                        "chunk": 0,
                        "score": 0.45,
                        "preview": "pw",
                        "tool": "search_documents",
                    },
                    {
                        "source": "router.md",
                        "title": "Router",
                        "chunk": 3,
                        "score": 0.2,
                        "preview": "reset",
                        "tool": "search_documents",
                    },
                ],
            },
        ),
    ]
    sources = sources_from_messages(thread)
    assert [(s["source"], s["chunk"], s["score"]) for s in sources] == [
        ("wifi.md", 0, 0.45),
        ("router.md", 3, 0.2),
    ]
    assert sources[1] == {
        "source": "router.md",
        "title": "Router",
        "chunk": 3,
        "score": 0.2,
        "preview": "reset",
        "tool": "search_documents",
    }


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
