"""The assistant graph with no chat model, answering from the real demo PMS tools."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import StructuredTool
from langgraph.checkpoint.memory import InMemorySaver

from tools.pms import DemoPMS, fixed_clock, pms_tools
from workflows.assistant import build_assistant_graph

CLOCK = fixed_clock(datetime(2025, 3, 10, 15, 0, tzinfo=UTC))


async def ask(tmp_path: Path, question: str, property_id: str) -> str:
    pms = DemoPMS(tmp_path / "demo.sqlite3", clock=CLOCK)
    graph = build_assistant_graph(
        model=None, tools=pms_tools(pms, clock=CLOCK), checkpointer=InMemorySaver()
    )
    state = await graph.ainvoke(
        {"messages": [HumanMessage(question)], "context": {"property_id": property_id}},
        {"configurable": {"thread_id": "guest-line"}},
    )
    await pms.aclose()
    reply = state["messages"][-1]
    assert isinstance(reply, AIMessage)
    return str(reply.content)


async def test_fallback_gives_the_wifi_password_of_the_callers_property(tmp_path: Path) -> None:
    reply = await ask(tmp_path, "What's the wifi password?", "alpine-chalet")
    assert "language model is unavailable" in reply
    assert "matterhorn88" in reply
    assert "Check-out" not in reply


async def test_fallback_answers_parking_for_a_car_free_village(tmp_path: Path) -> None:
    reply = await ask(tmp_path, "Where can I park the car?", "alpine-chalet")
    assert "Täsch" in reply
    assert "matterhorn88" not in reply


async def test_giving_booking_details_verifies_without_reading_out_documents(
    tmp_path: Path,
) -> None:
    searched: list[str] = []

    async def search_documents(query: str, property_id: str | None = None) -> str:
        searched.append(query)
        return "Guests park in the courtyard."

    search = StructuredTool.from_function(
        coroutine=search_documents, name="search_documents", description="Search the documents."
    )
    pms = DemoPMS(tmp_path / "demo.sqlite3", clock=CLOCK)
    graph = build_assistant_graph(
        model=None, tools=[*pms_tools(pms, clock=CLOCK), search], checkpointer=InMemorySaver()
    )
    state = await graph.ainvoke(
        {"messages": [HumanMessage("My confirmation code is ALP-7826 and my last name is Rossi")]},
        {"configurable": {"thread_id": "verify"}},
    )
    await pms.aclose()
    reply = str(state["messages"][-1].content)
    assert "Giulia" in reply
    assert "courtyard" not in reply
    assert searched == []
    assert state["context"]["verified"] is True
