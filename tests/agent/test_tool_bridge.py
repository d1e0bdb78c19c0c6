"""The same LangChain tools through both paths — a LangGraph ToolNode, and a LiveKit
AgentSession driven by a scripted LiveKit LLM — with identical schemas and answers."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from livekit.agents import Agent, AgentSession, llm
from livekit.agents.llm import ChatChunk, ChoiceDelta, FunctionToolCall
from livekit.agents.llm._provider_format.openai import to_fnc_ctx
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from agent.tool_bridge import langchain_to_livekit, langchain_to_livekit_tools, livekit_schema
from tools.pms import DemoPMS, fixed_clock, pms_tools

clock = fixed_clock(datetime(2025, 3, 10, 15, 0, tzinfo=UTC))
Call = tuple[str, dict[str, Any]]


class _ScriptedStream(llm.LLMStream):
    def __init__(self, owner: llm.LLM, chunk: ChatChunk, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._chunk = chunk

    async def _run(self) -> None:
        self._event_ch.send_nowait(self._chunk)


class ScriptedLLM(llm.LLM):
    """Issues the scripted tool call for each user turn, then reads the tool's answer aloud."""

    def __init__(self, calls: Sequence[Call]) -> None:
        super().__init__()
        self._calls = list(calls)
        self.tool_schemas: list[dict[str, Any]] = []

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **_: Any,
    ) -> llm.LLMStream:
        self.tool_schemas = to_fnc_ctx(llm.ToolContext(tools or []), strict=False)
        last = chat_ctx.items[-1]
        if last.type == "function_call_output":
            delta = ChoiceDelta(role="assistant", content=last.output)
        else:
            name, args = self._calls.pop(0)
            call = FunctionToolCall(name=name, arguments=json.dumps(args), call_id=f"call_{name}")
            delta = ChoiceDelta(role="assistant", tool_calls=[call])
        return _ScriptedStream(
            self,
            ChatChunk(id="scripted", delta=delta),
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
        )


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[DemoPMS]:
    pms = DemoPMS(tmp_path / "livekit.sqlite3", clock=clock)
    yield pms
    await pms.aclose()


@pytest.fixture
async def twin(tmp_path: Path) -> AsyncIterator[DemoPMS]:
    """An identical demo PMS for the graph path, so neither path sees the other's bookings."""
    pms = DemoPMS(tmp_path / "graph.sqlite3", clock=clock)
    yield pms
    await pms.aclose()


async def run_livekit(tools: list[Any], calls: Sequence[Call]) -> tuple[list[Any], ScriptedLLM]:
    scripted = ScriptedLLM(calls)
    outputs = []
    async with AgentSession(llm=scripted) as session:
        await session.start(Agent(instructions="You help guests.", tools=tools))
        for name, _ in calls:
            result = await session.run(user_input=f"please use {name}")
            result.expect.next_event().is_function_call(name=name)
            output = result.expect.next_event().is_function_call_output()
            outputs.append(output.event().item)
            result.expect.next_event().is_message(role="assistant")
            result.expect.no_more_events()
    return outputs, scripted


async def run_graph(tools: list[Any], thread: str, calls: Sequence[Call]) -> list[ToolMessage]:
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    compiled = graph.compile()
    messages = []
    for index, (name, args) in enumerate(calls):
        call = {"name": name, "args": args, "id": f"c{index}", "type": "tool_call"}
        state = await compiled.ainvoke(
            {"messages": [AIMessage(content="", tool_calls=[call])]},
            {"configurable": {"thread_id": thread}},
        )
        messages.append(state["messages"][-1])
    return messages


CONVERSATION: list[Call] = [
    ("get_property_info", {"property_id": "harbor-view-loft", "topic": "wifi"}),
    ("list_upsell_offers", {}),
    ("find_reservation", {"confirmation_code": "HVL-3342", "last_name": "JOHNSON"}),
    ("list_upsell_offers", {}),
    ("list_gap_night_offers", {}),
    ("request_upsell", {"offer": "late checkout"}),
    ("request_upsell", {"offer": "late checkout"}),
    (
        "check_availability",
        {
            "property_id": "casa-del-sol",
            "check_in": "2025-04-08",
            "check_out": "2025-04-11",
            "guests": 4,
        },
    ),
    (
        "quote_stay",
        {
            "property_id": "alpine-chalet",
            "check_in": "2025-04-22",
            "check_out": "2025-04-20",
            "guests": 4,
        },
    ),
    ("leave_feedback", {"rating": 5, "comment": "Loved the loft"}),
]


def _masked(text: str) -> str:
    return re.sub(r"\b(REQ|FB)-[0-9A-F]{8}\b", r"\1-…", text)


async def test_both_paths_give_the_same_answers(demo: DemoPMS, twin: DemoPMS) -> None:
    lk_tools = langchain_to_livekit_tools(pms_tools(demo, clock=clock), thread_id="call-42")
    lk_outputs, _ = await run_livekit(lk_tools, CONVERSATION)
    graph_outputs = await run_graph(pms_tools(twin, clock=clock), "call-42", CONVERSATION)

    lk_text = [_masked(item.output) for item in lk_outputs]
    graph_text = [_masked(str(message.content)) for message in graph_outputs]
    assert lk_text == graph_text
    assert not any(item.is_error for item in lk_outputs)
    assert lk_text[1].startswith("I can do that once I've found your reservation.")
    assert lk_text[3].startswith("For your stay I can offer late checkout until 1 PM")
    assert lk_text[5].startswith("Done: late checkout until 1 PM is booked for 40 dollars.")
    assert lk_text[6].startswith("That's already taken care of")
    assert lk_text[8].startswith("The check-out date has to be after the check-in date.")
    # Both paths booked exactly once on their own PMS.
    for pms in (demo, twin):
        johnson = await pms.find_reservation("HVL-3342", "Johnson")
        assert johnson is not None and johnson.extras == ("Late checkout until 1 PM",)


async def test_livekit_llm_sees_the_langchain_schemas(demo: DemoPMS) -> None:
    tools = pms_tools(demo, clock=clock)
    _, scripted = await run_livekit(
        langchain_to_livekit_tools(tools, thread_id="t"), [("list_upsell_offers", {})]
    )
    sent_by_langchain = [convert_to_openai_tool(t) for t in tools]
    assert scripted.tool_schemas == sent_by_langchain
    for tool in tools:
        schema = livekit_schema(tool)
        assert schema["name"] == tool.name and schema["description"] == tool.description
        assert "config" not in json.dumps(schema["parameters"])


async def test_thread_id_source_is_read_at_each_call(demo: DemoPMS) -> None:
    current = ["call-a"]
    tools = langchain_to_livekit_tools(pms_tools(demo, clock=clock), thread_id=lambda: current[0])
    calls: list[Call] = [
        ("find_reservation", {"confirmation_code": "CDS-5160", "last_name": "Nunez"}),
        ("list_upsell_offers", {}),
    ]
    outputs, _ = await run_livekit(tools, calls)
    assert outputs[1].output.startswith("For your stay I can offer early check-in")
    current[0] = "call-b"  # e.g. the caller reset the conversation
    after, _ = await run_livekit(tools, [("list_upsell_offers", {})])
    assert after[0].output.startswith("I can do that once I've found your reservation.")


@pytest.mark.parametrize(
    ("answer", "booked"), [(False, ()), (True, ("Welcome basket of Maine treats",))]
)
async def test_confirm_hook_guards_side_effects_in_direct_mode(
    demo: DemoPMS, answer: bool, booked: tuple[str, ...]
) -> None:
    asked: list[str] = []

    async def confirm(question: str) -> bool:
        asked.append(question)
        return answer

    tools = langchain_to_livekit_tools(pms_tools(demo, clock=clock), thread_id="c", confirm=confirm)
    outputs, _ = await run_livekit(
        tools,
        [
            ("find_reservation", {"confirmation_code": "HVL-3342", "last_name": "Johnson"}),
            ("request_upsell", {"offer": "welcome basket"}),
        ],
    )
    assert asked == ["Shall I add welcome basket to your reservation?"]
    if not answer:
        assert outputs[1].output == "The caller declined, so nothing was done."
    johnson = await demo.find_reservation("HVL-3342", "Johnson")
    assert johnson is not None and johnson.extras == booked


async def test_a_failing_tool_becomes_a_tool_error_for_the_llm() -> None:
    async def broken(text: str) -> str:
        raise RuntimeError("database on fire")

    tool = StructuredTool.from_function(
        coroutine=broken, name="broken_tool", description="Always fails, for the test."
    )
    outputs, _ = await run_livekit([langchain_to_livekit(tool)], [("broken_tool", {"text": "x"})])
    assert outputs[0].is_error
    assert outputs[0].output == "broken_tool failed: RuntimeError"
