"""The assistant graph with no chat model, answering from the real demo PMS tools."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage
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
