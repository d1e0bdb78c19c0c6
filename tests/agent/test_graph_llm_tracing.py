"""GraphLLM's OpenTelemetry spans: one `graph_run` per turn under LiveKit's LLM request span,
a span per node, chat-model call and tool call, and nothing the caller or a tool said."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from livekit.agents import llm
from livekit.agents.telemetry import tracer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agent.graph_llm import GraphLLM
from tests.agent.graph_fakes import (
    ROUTER_SECRET,
    TOOL_SECRET,
    ScriptedChatModel,
    build_router_graph,
    room_rate_tool,
    tool_call,
    usage,
)

QUESTION = "How much is a double room tonight, my name is Erika Mustermann?"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer.set_provider(provider)
    yield exporter
    tracer.set_provider(trace.get_tracer_provider())
    provider.shutdown()


async def _turn(graph_llm: GraphLLM, text: str) -> None:
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="user", content=text)
    async with graph_llm.chat(chat_ctx=ctx) as stream:
        async for _ in stream:
            pass


async def test_a_turn_is_a_graph_run_with_node_model_and_tool_spans(
    exported: InMemorySpanExporter,
) -> None:
    model = ScriptedChatModel(
        script=[
            AIMessage(
                content="Let me check.",
                tool_calls=[tool_call("room_rate", {"room_type": "double"}, "call-7")],
                usage_metadata=usage(40, 6),
            ),
            "Sorry, I cannot see the rate right now.",
        ]
    )
    router = ScriptedChatModel(default=ROUTER_SECRET, model_name="scripted-router")
    graph = build_router_graph(
        router=router,
        model=model,
        tools=[room_rate_tool(fail=True)],
        checkpointer=InMemorySaver(),
    )
    await _turn(GraphLLM(graph, thread_id="conv-42"), QUESTION)

    spans: list[ReadableSpan] = list(exported.get_finished_spans())
    by_id = {span.context.span_id: span for span in spans}
    run = next(span for span in spans if span.name == "graph_run")
    # under LiveKit's own span for the LLM request
    assert run.parent is not None and by_id[run.parent.span_id].name.startswith("llm_request")
    assert run.attributes is not None and run.attributes["langgraph.thread_id"] == "conv-42"
    nodes = [s.attributes["langgraph.node"] for s in spans if s.name.startswith("graph_node ")]  # type: ignore[index]
    assert sorted(nodes) == ["model", "model", "router", "tools"]
    tool = next(span for span in spans if span.name == "execute_tool room_rate")
    assert tool.attributes is not None and tool.attributes["gen_ai.tool.call.id"] == "call-7"
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.parent is not None and by_id[tool.parent.span_id].name == "graph_node tools"
    chats = [span for span in spans if span.name.startswith("chat ")]
    assert {span.name for span in chats} == {"chat scripted-router", "chat scripted-voice-1"}
    tokens = [s.attributes.get("gen_ai.usage.input_tokens") for s in chats if s.attributes]
    assert 40 in tokens

    graph_spans = [s for s in spans if s.name.startswith(("graph_", "chat ", "execute_tool"))]
    text = repr([(s.name, dict(s.attributes or {}), s.status.description) for s in graph_spans])
    for private in ("Mustermann", "double", TOOL_SECRET, ROUTER_SECRET, "rate service"):
        assert private not in text, private
