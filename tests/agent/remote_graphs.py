"""Graphs the test `langgraph dev` server serves (see tests/agent/conftest.py).

They are the router graph of the local GraphLLM tests — a router LLM node (never spoken),
a tool-calling model node and a LangGraph ToolNode — compiled without a checkpointer, as
an Agent Server wants them. The server runs in another process, so the scripted model
answers from the prompt instead of from a per-test script.
"""

from __future__ import annotations

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from tests.agent.graph_fakes import (
    ROUTER_SECRET,
    ScriptedChatModel,
    build_router_graph,
    room_rate_tool,
    tool_call,
    usage,
)

ANSWER = "A double room is one hundred eighty euros tonight."
BREAKFAST = "Breakfast is served from seven to ten in the garden room."
DECLINED = "Alright, I will not look it up."
LONG_ANSWER = "One two three four five six seven eight nine ten eleven twelve thirteen fourteen."


def respond(messages: list[BaseMessage]) -> AIMessage | str:
    """The concierge's reply to the conversation so far."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        return DECLINED if "declined" in str(last.content) else AIMessage(ANSWER)
    text = str(last.content).lower()
    if "how much" in text:
        call = tool_call("room_rate", {"room_type": "double"}, f"call-{len(messages)}")
        return AIMessage("Let me check.", tool_calls=[call], usage_metadata=usage(40, 6))
    if "breakfast" in text:
        return BREAKFAST
    if "count" in text:
        return LONG_ANSWER
    if "fail" in text:
        raise RuntimeError("model exploded")
    if "who are you" in text:
        system = messages[0].content if isinstance(messages[0], SystemMessage) else "nobody"
        return f"I am told: {system}"
    if "what did you" in text:
        said = [m for m in messages[:-1] if isinstance(m, AIMessage) and m.content]
        return f"I told you: {said[-1].content}" if said else "I have not said anything yet."
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    return f"Noted: {last.content} ({len(humans)} from you so far)."


def _router() -> ScriptedChatModel:
    return ScriptedChatModel(default=AIMessage(ROUTER_SECRET, usage_metadata=usage(11, 2)))


concierge = build_router_graph(
    router=_router(),
    model=ScriptedChatModel(default=respond),
    tools=[room_rate_tool(delay=0.3)],
    checkpointer=None,
)

confirming = build_router_graph(
    router=_router(),
    model=ScriptedChatModel(default=respond),
    tools=[room_rate_tool()],
    checkpointer=None,
    confirm_before_tools=True,
)

slow = build_router_graph(
    router=_router(),
    model=ScriptedChatModel(default=respond, token_delay=0.05),
    tools=[room_rate_tool(delay=30.0)],
    checkpointer=None,
)

GRAPHS = {name: f"tests.agent.remote_graphs:{name}" for name in ("concierge", "confirming", "slow")}
