"""GraphLLM through LiveKit's own AgentSession harness, on a real LangGraph graph.

The graph is a router LLM node (never spoken) → a tool-calling model node (spoken) ⇄ a
LangGraph ToolNode, checkpointed in memory; the chat models are scripted fakes that
stream word by word, emit tool calls and report token usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from livekit.agents import (
    Agent,
    AgentSession,
    APIConnectOptions,
    APIError,
    APITimeoutError,
    llm,
)
from livekit.agents.metrics import LLMMetrics
from livekit.agents.voice.agent_session import SessionConnectOptions

from agent.graph_llm import (
    DEFAULT_APOLOGY,
    DEFAULT_FILLER,
    GraphLLM,
    ToolFinished,
    ToolStarted,
    graph_llm_node,
)
from tests.agent.graph_fakes import (
    ROUTER_SECRET,
    TOOL_SECRET,
    ScriptedChatModel,
    add_transcript,
    build_fallback_graph,
    build_recording_graph,
    build_router_graph,
    build_subgraph_graph,
    room_rate_tool,
    spoken,
    thread_messages,
    tool_call,
    usage,
)
from tools.artifacts import artifact_context, artifact_sources

INSTRUCTIONS = "You are the concierge of Hotel Aurora."
RATE_QUESTION = "How much is a double room tonight?"
ANSWER = "A double room is one hundred eighty euros tonight."


def rate_lookup(call_id: str = "call-1", room: str = "double") -> AIMessage:
    return AIMessage(
        content="Let me check.",
        tool_calls=[tool_call("room_rate", {"room_type": room}, call_id)],
        usage_metadata=usage(40, 6),
    )


def router() -> ScriptedChatModel:
    return ScriptedChatModel(
        default=AIMessage(content=ROUTER_SECRET, usage_metadata=usage(11, 2)),
        model_name="scripted-router",
    )


def make_graph(
    model: ScriptedChatModel,
    *,
    tools: Sequence[BaseTool] | None = None,
    confirm: bool = False,
) -> Any:
    return build_router_graph(
        router=router(),
        model=model,
        tools=list(tools) if tools is not None else [room_rate_tool()],
        checkpointer=InMemorySaver(),
        confirm_before_tools=confirm,
    )


@asynccontextmanager
async def voice_session(
    graph_llm: GraphLLM, *, agent: Agent | None = None, max_retry: int = 0
) -> AsyncIterator[tuple[AgentSession, Agent]]:
    conn = SessionConnectOptions(
        llm_conn_options=APIConnectOptions(max_retry=max_retry, retry_interval=0.01)
    )
    agent = agent or Agent(instructions=INSTRUCTIONS)
    async with AgentSession(llm=graph_llm, conn_options=conn) as session:
        await session.start(agent)
        yield session, agent


def kinds(messages: Sequence[BaseMessage]) -> list[str]:
    return [type(m).__name__ for m in messages]


# -- 1. speech discipline ----------------------------------------------------------------


async def test_only_the_speaking_node_reaches_tts() -> None:
    model = ScriptedChatModel(
        script=[rate_lookup(), AIMessage(ANSWER, usage_metadata=usage(60, 9))]
    )
    graph_llm = GraphLLM(make_graph(model), thread_id="speech")
    async with voice_session(graph_llm) as (session, _):
        result = await session.run(user_input=RATE_QUESTION)

    result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    text = spoken(result)
    assert ANSWER in text
    assert text.startswith("Let me check.")
    assert ROUTER_SECRET not in text
    assert TOOL_SECRET not in text
    assert "room_type" not in text and "{" not in text


async def test_subgraph_text_is_spoken_only_when_its_parent_node_speaks() -> None:
    async def run(speaking_nodes: tuple[str, ...]) -> str:
        graph = build_subgraph_graph(
            specialist=ScriptedChatModel(default="Inner specialist notes."),
            model=ScriptedChatModel(default="Outer answer."),
            checkpointer=InMemorySaver(),
        )
        graph_llm = GraphLLM(graph, thread_id="sub", speaking_nodes=speaking_nodes)
        async with voice_session(graph_llm) as (session, _):
            return spoken(await session.run(user_input="Hello"))

    assert await run(("model",)) == "Outer answer."
    assert await run(("specialist",)) == "Inner specialist notes."
    assert await run(("specialist/model", "model")) == "Inner specialist notes. Outer answer."


async def test_finished_messages_of_non_streaming_speaking_nodes_are_spoken() -> None:
    graph = build_fallback_graph(InMemorySaver())
    graph_llm = GraphLLM(graph, thread_id="fallback", speaking_nodes=("model", "fallback"))
    async with voice_session(graph_llm) as (session, _):
        text = spoken(await session.run(user_input="Is the pool open?"))

    assert text == "My language model is unavailable right now."
    assert len(await thread_messages(graph, "fallback")) == 3


# -- 2. the thread is the source of truth -------------------------------------------------


async def test_five_turns_leave_each_message_in_the_thread_once() -> None:
    model = ScriptedChatModel(
        script=[
            rate_lookup("call-1"),
            AIMessage(ANSWER),
            "Breakfast is from seven to ten.",
            rate_lookup("call-2", "suite"),
            AIMessage("The suite is three hundred euros."),
            "You are welcome.",
            "Goodbye.",
        ]
    )
    graph = make_graph(model)
    graph_llm = GraphLLM(graph, thread_id="five")
    questions = [RATE_QUESTION, "When is breakfast?", "And a suite?", "Thanks!", "Bye."]
    async with voice_session(graph_llm) as (session, _):
        for question in questions:
            await session.run(user_input=question)

    messages = await thread_messages(graph, "five")
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    final_answers = [m for m in messages if isinstance(m, AIMessage) and not m.tool_calls]
    assert [m.content for m in humans] == questions
    assert [m.content for m in final_answers] == [
        ANSWER,
        "Breakfast is from seven to ten.",
        "The suite is three hundred euros.",
        "You are welcome.",
        "Goodbye.",
    ]
    assert sum(isinstance(m, ToolMessage) for m in messages) == 2
    assert len({m.id for m in messages}) == len(messages)
    # the model saw every earlier message exactly once on the last turn
    last_prompt = [m.content for m in model.prompts[-1] if m.type != "system"]
    assert len(last_prompt) == len(messages) - 1


# -- 3. what was heard is what is remembered ---------------------------------------------


async def test_barge_in_after_a_finished_run_keeps_only_the_heard_text() -> None:
    model = ScriptedChatModel(
        script=[
            "Breakfast is served from seven to ten in the garden room.",
            "Lunch starts at noon.",
        ]
    )
    graph = make_graph(model)
    graph_llm = GraphLLM(graph, thread_id="barge")
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="When is breakfast?")
        said = (await thread_messages(graph, "barge"))[-1]

        # what LiveKit records when the caller cuts the agent off during playout
        heard = agent.chat_ctx.copy()
        reply = heard.messages()[-1]
        reply.content = ["Breakfast is served from seven"]
        reply.interrupted = True
        await agent.update_chat_ctx(heard)
        await session.run(user_input="And lunch?")

    messages = await thread_messages(graph, "barge")
    remembered = next(m for m in messages if m.id == said.id)
    assert remembered.content == "Breakfast is served from seven"
    assert [m.content for m in messages if isinstance(m, AIMessage)] == [
        "Breakfast is served from seven",
        "Lunch starts at noon.",
    ]
    assert "garden room" not in str(model.prompts[-1])


async def test_barge_in_mid_stream_leaves_a_consistent_thread() -> None:
    long_answer = "One two three four five six seven eight nine ten eleven twelve thirteen."
    model = ScriptedChatModel(script=[long_answer, "Sure."], token_delay=0.02)
    graph = make_graph(model)
    graph_llm = GraphLLM(graph, thread_id="mid")
    async with voice_session(graph_llm) as (session, _):
        run = session.run(user_input="Count for me")
        await asyncio.sleep(0.15)
        await session.interrupt()
        played = spoken(await run)
        await session.run(user_input="Stop, thanks")

    assert played and played != long_answer
    messages = await thread_messages(graph, "mid")
    assert kinds(messages) == ["HumanMessage", "AIMessage", "HumanMessage", "AIMessage"]
    assert [m.content for m in messages] == ["Count for me", played, "Stop, thanks", "Sure."]


# -- 4. speculative runs are harmless ----------------------------------------------------


async def test_cancelled_speculative_run_leaves_the_thread_unchanged() -> None:
    model = ScriptedChatModel(script=["Hello there.", rate_lookup()], default="Ok.")
    graph = make_graph(model, tools=[room_rate_tool(delay=5.0)])
    graph_llm = GraphLLM(graph, thread_id="spec")
    tool_running = asyncio.Event()
    graph_llm.on("tool_started", lambda _: tool_running.set())
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="Hi")
        before = await thread_messages(graph, "spec")

        # LiveKit's preemptive generation: the LLM runs before the turn is final...
        guess = agent.chat_ctx.copy()
        add_transcript(guess, "What does a double cost?")
        stream = graph_llm.chat(chat_ctx=guess)
        consumer = asyncio.create_task(stream.collect())
        await asyncio.wait_for(tool_running.wait(), timeout=5)
        # ...and cancels it when the transcript changes
        await stream.aclose()
        consumer.cancel()
        after_cancel = await thread_messages(graph, "spec")

        result = await session.run(user_input="Is breakfast included?")

    assert [(m.id, m.content) for m in after_cancel] == [(m.id, m.content) for m in before]
    assert spoken(result) == "Ok."
    contents = [m.content for m in await thread_messages(graph, "spec")]
    assert contents == ["Hi", "Hello there.", "Is breakfast included?", "Ok."]


async def test_finished_but_discarded_speculative_run_is_undone_next_turn() -> None:
    model = ScriptedChatModel(script=["Hello there.", "Guessed answer.", "Real answer."])
    graph = make_graph(model)
    graph_llm = GraphLLM(graph, thread_id="spec2")
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="Hi")
        guess = agent.chat_ctx.copy()
        add_transcript(guess, "What about parking")
        assert (await graph_llm.chat(chat_ctx=guess).collect()).text == "Guessed answer."

        result = await session.run(user_input="What about parking for two cars?")

    assert spoken(result) == "Real answer."
    contents = [m.content for m in await thread_messages(graph, "spec2")]
    assert contents == ["Hi", "Hello there.", "What about parking for two cars?", "Real answer."]
    assert "Guessed answer." not in str(model.prompts[-1])


async def test_discarded_speculative_confirmation_does_not_stick() -> None:
    model = ScriptedChatModel(script=[rate_lookup()], default="Understood.")
    graph = make_graph(model, confirm=True)
    graph_llm = GraphLLM(graph, thread_id="spec3")
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input=RATE_QUESTION)
        guess = agent.chat_ctx.copy()
        add_transcript(guess, "yes")
        await graph_llm.chat(chat_ctx=guess).collect()
        # the caller actually went on: "yes... no, wait"
        await session.run(user_input="no, wait")

    messages = await thread_messages(graph, "spec3")
    tool_results = [m.content for m in messages if isinstance(m, ToolMessage)]
    assert tool_results == ["The caller declined."]
    assert TOOL_SECRET not in str(messages)


async def test_a_pending_question_survives_a_discarded_answer_and_is_asked_again() -> None:
    model = ScriptedChatModel(script=[rate_lookup()], default=ANSWER)
    graph = make_graph(model, confirm=True)
    graph_llm = GraphLLM(graph, thread_id="spec4")
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input=RATE_QUESTION)
        guess = agent.chat_ctx.copy()
        add_transcript(guess, "yes")
        await graph_llm.chat(chat_ctx=guess).collect()  # discarded
        await session.generate_reply()  # a reply with nothing new from the caller
        asked_again = agent.chat_ctx.messages()[-1].text_content
        answered = spoken(await session.run(user_input="Yes please"))

    assert asked_again == "Shall I run room_rate for you?"
    assert answered == ANSWER
    messages = await thread_messages(graph, "spec4")
    assert kinds(messages) == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]


async def test_preemptive_generation_is_unsafe_only_with_side_effecting_tools() -> None:
    model = ScriptedChatModel()
    plain = GraphLLM(make_graph(model), thread_id="a")
    risky_tool = room_rate_tool()
    risky_tool.metadata = {"side_effecting": True, "confirm": "Book {room_type}?"}
    in_graph = GraphLLM(make_graph(model, tools=[risky_tool]), thread_id="b")
    declared = GraphLLM(make_graph(model), thread_id="c", tools=[risky_tool])

    assert plain.preemptive_generation_safe
    assert not in_graph.preemptive_generation_safe
    assert in_graph.side_effecting_tools == ("room_rate",)
    assert not declared.preemptive_generation_safe


# -- 5. usage and identity --------------------------------------------------------------


async def test_token_usage_and_model_reach_session_metrics() -> None:
    model = ScriptedChatModel(
        script=[rate_lookup(), AIMessage(ANSWER, usage_metadata=usage(60, 9))]
    )
    graph_llm = GraphLLM(make_graph(model), thread_id="usage")
    metrics: list[LLMMetrics] = []
    graph_llm.on("metrics_collected", metrics.append)
    async with voice_session(graph_llm) as (session, _):
        await session.run(user_input=RATE_QUESTION)
        summary = session.usage.model_usage

    # the router (11 + 2) and both model steps (40 + 6, 60 + 9) all count
    assert graph_llm.model == "scripted-voice-1"
    assert graph_llm.provider == "scripted"
    [entry] = [u for u in summary if u.type == "llm_usage"]
    assert (entry.provider, entry.model) == ("scripted", "scripted-voice-1")
    assert (entry.input_tokens, entry.output_tokens) == (11 + 40 + 60, 2 + 6 + 9)
    assert metrics[-1].prompt_tokens == 111
    assert metrics[-1].total_tokens == 111 + 17


async def test_explicit_model_identity_wins() -> None:
    graph_llm = GraphLLM(
        make_graph(ScriptedChatModel(default="Hi.")),
        thread_id="id",
        model="gpt-4.1-mini",
        provider="openai",
    )
    async with voice_session(graph_llm) as (session, _):
        await session.run(user_input="Hello")
        [entry] = session.usage.model_usage
    assert (entry.provider, entry.model) == ("openai", "gpt-4.1-mini")


# -- 6. human in the loop ---------------------------------------------------------------


async def test_interrupt_question_is_spoken_and_the_next_turn_resumes() -> None:
    model = ScriptedChatModel(script=[rate_lookup(), AIMessage(ANSWER), "Have a nice stay."])
    graph = make_graph(model, confirm=True)
    graph_llm = GraphLLM(graph, thread_id="hitl")
    async with voice_session(graph_llm) as (session, _):
        asked = spoken(await session.run(user_input=RATE_QUESTION))
        waiting = graph_llm.awaiting_confirmation
        answered = spoken(await session.run(user_input="Yes please"))
        after = spoken(await session.run(user_input="Thanks"))

    assert asked == "Let me check. Shall I run room_rate for you?"
    assert waiting
    assert answered == ANSWER
    assert after == "Have a nice stay."
    assert not graph_llm.awaiting_confirmation
    messages = await thread_messages(graph, "hitl")
    assert [m.content for m in messages if isinstance(m, HumanMessage)] == [
        RATE_QUESTION,
        "Thanks",
    ]
    assert TOOL_SECRET in str([m.content for m in messages if isinstance(m, ToolMessage)])


async def test_declined_confirmation_skips_the_tool() -> None:
    model = ScriptedChatModel(script=[rate_lookup(), "Alright, I will not look it up."])
    graph = make_graph(model, confirm=True)
    graph_llm = GraphLLM(graph, thread_id="decline")
    async with voice_session(graph_llm) as (session, _):
        await session.run(user_input=RATE_QUESTION)
        reply = spoken(await session.run(user_input="No thanks"))

    assert reply == "Alright, I will not look it up."
    assert TOOL_SECRET not in str(await thread_messages(graph, "decline"))


# -- 7. slow tools ----------------------------------------------------------------------


async def test_slow_tools_get_one_filler_line_and_progress_events() -> None:
    two_calls = AIMessage(
        content="",
        tool_calls=[
            tool_call("room_rate", {"room_type": "double"}, "call-a"),
            tool_call("room_rate", {"room_type": "suite"}, "call-b"),
        ],
    )
    model = ScriptedChatModel(script=[two_calls, rate_lookup("call-c"), AIMessage(ANSWER)])
    graph_llm = GraphLLM(
        make_graph(model, tools=[room_rate_tool(delay=0.25)]),
        thread_id="slow",
        slow_tool_threshold=0.05,
    )
    events: list[ToolStarted | ToolFinished] = []
    graph_llm.on("tool_started", events.append)
    graph_llm.on("tool_finished", events.append)
    async with voice_session(graph_llm) as (session, _):
        text = spoken(await session.run(user_input=RATE_QUESTION))

    assert text.count(DEFAULT_FILLER) == 1
    assert text.endswith(ANSWER)
    started = [e for e in events if isinstance(e, ToolStarted)]
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert sorted(e.call_id for e in started) == ["call-a", "call-b", "call-c"]
    assert {e.call_id for e in finished} == {"call-a", "call-b", "call-c"}
    assert all(e.ok and e.duration >= 0.2 and e.name == "room_rate" for e in finished)
    assert "room_type='suite'" in {e.args_summary for e in started}
    latency = graph_llm.last_turn_latency
    assert latency is not None and latency.tool_calls == 3
    assert latency.tool_time >= 0.6
    assert latency.time_to_first_token is not None
    assert latency.graph_time >= latency.tool_time / 2


async def test_graph_llm_node_flushes_speech_around_slow_tools() -> None:
    class VoiceAgent(Agent):
        def llm_node(self, chat_ctx: Any, tools: Any, model_settings: Any) -> Any:
            return graph_llm_node(self, chat_ctx, tools, model_settings)

    model = ScriptedChatModel(script=[rate_lookup(), AIMessage(ANSWER)])
    graph_llm = GraphLLM(
        make_graph(model, tools=[room_rate_tool(delay=0.2)]),
        thread_id="flush",
        slow_tool_threshold=0.05,
    )
    agent = VoiceAgent(instructions=INSTRUCTIONS)
    async with voice_session(graph_llm, agent=agent) as (session, _):
        text = spoken(await session.run(user_input=RATE_QUESTION))

    assert text == f"Let me check. {DEFAULT_FILLER} {ANSWER}"


async def test_fast_tools_say_no_filler_and_failures_are_reported() -> None:
    model = ScriptedChatModel(script=[rate_lookup(), "The rate service is down, sorry."])
    graph_llm = GraphLLM(make_graph(model, tools=[room_rate_tool(fail=True)]), thread_id="f")
    finished: list[ToolFinished] = []
    graph_llm.on("tool_finished", finished.append)
    async with voice_session(graph_llm) as (session, _):
        text = spoken(await session.run(user_input=RATE_QUESTION))

    assert DEFAULT_FILLER not in text
    [event] = finished
    assert not event.ok
    assert event.error is not None and "rate service unavailable" in event.error


# -- 8. errors --------------------------------------------------------------------------


async def test_model_failure_is_an_apology_and_the_next_turn_works() -> None:
    model = ScriptedChatModel(script=[RuntimeError("model exploded")], default="Welcome back.")
    graph = make_graph(model)
    graph_llm = GraphLLM(graph, thread_id="err")
    errors: list[llm.LLMError] = []
    graph_llm.on("error", errors.append)
    async with voice_session(graph_llm, max_retry=2) as (session, agent):
        with pytest.raises(APIError) as failure:
            await session.run(user_input="Hello")
        apology = agent.chat_ctx.messages()[-1]
        result = await session.run(user_input="Hello again")

    assert not failure.value.retryable
    assert [e.recoverable for e in errors] == [False]  # not retried: it would fail again
    assert (apology.role, apology.text_content) == ("assistant", DEFAULT_APOLOGY)
    assert spoken(result) == "Welcome back."
    contents = [m.content for m in await thread_messages(graph, "err")]
    assert contents == ["Hello", DEFAULT_APOLOGY, "Hello again", "Welcome back."]


async def test_connection_errors_are_retried_without_a_trace() -> None:
    model = ScriptedChatModel(script=[ConnectionError("connection reset")], default="Hi there.")
    graph = make_graph(model)
    graph_llm = GraphLLM(graph, thread_id="retry")
    errors: list[llm.LLMError] = []
    graph_llm.on("error", errors.append)
    async with voice_session(graph_llm, max_retry=2) as (session, _):
        text = spoken(await session.run(user_input="Hello"))

    assert text == "Hi there."
    assert [e.recoverable for e in errors] == [True]
    assert [m.content for m in await thread_messages(graph, "retry")] == ["Hello", "Hi there."]


async def test_repeated_failures_do_not_end_the_session() -> None:
    failures = [RuntimeError(f"boom {i}") for i in range(5)]
    model = ScriptedChatModel(script=failures, default="Finally.")
    graph_llm = GraphLLM(make_graph(model), thread_id="many")
    async with voice_session(graph_llm) as (session, _):
        for attempt in range(5):
            with pytest.raises(APIError):
                await session.run(user_input=f"Try {attempt}")
        assert spoken(await session.run(user_input="Once more")) == "Finally."


async def test_a_turn_over_its_time_budget_times_out_cleanly() -> None:
    model = ScriptedChatModel(script=["Hi.", rate_lookup()], default="Ok.")
    graph = make_graph(model, tools=[room_rate_tool(delay=5.0)])
    graph_llm = GraphLLM(graph, thread_id="slowturn", turn_timeout=0.3, filler_text=None)
    async with voice_session(graph_llm, max_retry=2) as (session, agent):
        await session.run(user_input="Hello")
        before = await thread_messages(graph, "slowturn")
        with pytest.raises(APITimeoutError) as failure:
            await session.run(user_input=RATE_QUESTION)
        after = await thread_messages(graph, "slowturn")
        heard = agent.chat_ctx.messages()[-1].text_content

    assert not failure.value.retryable
    assert heard == f"Let me check. {DEFAULT_APOLOGY}"
    assert [m.id for m in after] == [m.id for m in before]


# -- thread identity, instructions and context -------------------------------------------


async def test_reset_starts_a_new_thread_without_the_old_history() -> None:
    model = ScriptedChatModel(default="Noted.")
    graph = make_graph(model)
    graph_llm = GraphLLM(graph, thread_id="old")
    async with voice_session(graph_llm) as (session, _):
        await session.run(user_input="My name is Ada")
        await session.run(user_input="I arrive Friday")
        graph_llm.thread_id = "new"
        await session.run(user_input="Start over please")

    assert [m.content for m in await thread_messages(graph, "new")] == [
        "Start over please",
        "Noted.",
    ]
    assert len(await thread_messages(graph, "old")) == 4


async def test_instructions_and_context_are_sent_only_when_they_change() -> None:
    writes: dict[str, list[Any]] = {"instructions": [], "context": []}
    model = ScriptedChatModel(default="Noted.")
    graph = build_recording_graph(model, writes)
    graph_llm = GraphLLM(graph, thread_id="ctx", context={"property_id": "aurora"})
    async with voice_session(graph_llm) as (session, agent):
        await session.run(user_input="One")
        await session.run(user_input="Two")
        graph_llm.update_context({"guest_name": "Ada"})
        await agent.update_instructions("You are the night concierge.")
        await session.run(user_input="Three")
        await session.run(user_input="Four")

    assert writes["instructions"] == [INSTRUCTIONS, "You are the night concierge."]
    assert writes["context"] == [
        {"property_id": "aurora"},
        {"property_id": "aurora", "guest_name": "Ada"},
    ]
    assert [m.content for m in model.prompts[-1][:1]] == ["You are the night concierge."]


async def test_a_graph_without_a_checkpointer_is_rejected() -> None:
    graph = build_router_graph(
        router=router(), model=ScriptedChatModel(), tools=[], checkpointer=None
    )
    with pytest.raises(ValueError, match="checkpointer"):
        GraphLLM(graph, thread_id="x")


async def test_tool_finished_events_carry_the_tools_artifact_in_the_documented_shape() -> None:
    @tool(response_format="content_and_artifact")
    async def room_rate(room_type: str) -> tuple[str, dict[str, Any]]:
        """Nightly rate of a room type."""
        return "A double is 120 euros.", {
            "ok": True,
            "context": {"property_id": "harbor-view-loft", "not_a_fact": 1},
            "sources": [
                {"source": "rates.md", "title": "Rates", "chunk": 2, "score": 0.9},
                {"title": "no source named"},
            ],
        }

    model = ScriptedChatModel(script=[rate_lookup(), AIMessage(ANSWER)])
    graph_llm = GraphLLM(make_graph(model, tools=[room_rate]), thread_id="artifact")
    finished: list[ToolFinished] = []
    graph_llm.on("tool_finished", finished.append)
    async with voice_session(graph_llm) as (session, _):
        await session.run(user_input=RATE_QUESTION)

    (event,) = finished
    assert artifact_context(event.artifact) == {"property_id": "harbor-view-loft"}
    assert [(s.source, s.chunk, s.score) for s in artifact_sources(event.artifact)] == [
        ("rates.md", 2, 0.9)
    ]
