"""The assistant graph end to end, with a scripted tool-calling chat model and InMemorySaver."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from tools.artifacts import ToolRole
from workflows.assistant import SPEAKING_NODES, AssistantConfig, build_assistant_graph
from workflows.confirm import interrupt_question
from workflows.fallback import extract_reservation_lookup
from workflows.history import repair_tool_pairs, split_for_summary
from workflows.speech import strip_markdown
from workflows.state import merge_context
from workflows.tool_runner import confirmation_question, context_from_artifact

# ---------------------------------------------------------------------------------------
# A scripted chat model: each call is answered by a function of what the model was given.


@dataclass
class ModelCall:
    messages: list[BaseMessage]
    tools: list[str] | None

    @property
    def system(self) -> str:
        first = self.messages[0]
        return first.text if isinstance(first, SystemMessage) else ""

    @property
    def last(self) -> BaseMessage:
        return self.messages[-1]

    @property
    def is_summary_request(self) -> bool:
        return "running notes" in self.system


Reply = AIMessage | Exception
Responder = Callable[[ModelCall], Reply]


class ScriptedChatModel(BaseChatModel):
    """Replies with `respond(call)`; streams content word by word, then any tool calls."""

    respond: Responder
    calls: list[ModelCall]
    fail_after_first_token: bool = False

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(  # type: ignore[override]
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[Any, BaseMessage]:
        return self.bind(tools=[t.name for t in tools])

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        call = ModelCall(messages=list(messages), tools=kwargs.get("tools"))
        self.calls.append(call)
        reply = self.respond(call)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages, kwargs))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError("the graph is async")

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = self._reply(messages, kwargs)
        words = reply.text.split(" ") if reply.text else []
        for i, word in enumerate(words):
            piece = word if i == 0 else f" {word}"
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
            if self.fail_after_first_token:
                raise RuntimeError("connection reset mid-stream")
        if reply.tool_calls:
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": c["name"],
                            "args": json.dumps(c["args"]),
                            "id": c["id"],
                            "index": i,
                            "type": "tool_call_chunk",
                        }
                        for i, c in enumerate(reply.tool_calls)
                    ],
                )
            )
            if run_manager:
                await run_manager.on_llm_new_token("", chunk=chunk)
            yield chunk


def scripted(respond: Responder) -> ScriptedChatModel:
    return ScriptedChatModel(respond=respond, calls=[])


def call_tool(name: str, **args: Any) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[ToolCall(name=name, args=args, id=f"call-{uuid.uuid4().hex[:8]}")]
    )


def results_this_turn(call: ModelCall) -> list[ToolMessage]:
    turn: list[ToolMessage] = []
    for message in reversed(call.messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, ToolMessage):
            turn.append(message)
    return list(reversed(turn))


# ---------------------------------------------------------------------------------------
# Tools and helpers


@dataclass
class Hotel:
    searches: list[str] = field(default_factory=list)
    upsells: list[str] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)

    def tools(self) -> list[BaseTool]:
        hotel = self

        @tool
        async def search_documents(query: str, property_id: str | None = None) -> str:
            """Search the house manuals and FAQs."""
            hotel.searches.append(query)
            if "wifi" in query.lower() or "wi-fi" in query.lower():
                return (
                    "From the Seaside Loft house manual: the Wi-Fi network is SeasideGuest "
                    "and the password is sunshine42."
                )
            return "Nothing relevant was found in the documents."

        @tool(response_format="content_and_artifact")
        async def find_reservation(
            confirmation_code: str, last_name: str
        ) -> tuple[str, dict[str, Any]]:
            """Verify a caller by confirmation code and last name."""
            if confirmation_code.upper() == "SL4821" and last_name.lower() == "berger":
                reservation = {
                    "confirmation_code": "SL4821",
                    "guest_name": "Anna Berger",
                    "property_id": "seaside-loft",
                    "arrival": "2025-07-14",
                    "departure": "2025-07-18",
                }
                learned = {
                    "verified": True,
                    "verified_reservation": reservation,
                    "reservation_code": "SL4821",
                    "guest_name": "Anna Berger",
                    "property_id": "seaside-loft",
                }
                return (
                    "Verified: Anna Berger, Seaside Loft, 14 to 18 July.",
                    {"verified": True, "reservation": reservation, "context": learned},
                )
            return "No reservation matches that code and name.", {"verified": False}

        @tool(response_format="content_and_artifact")
        async def get_property_info(property_id: str) -> tuple[str, dict[str, Any]]:
            """Facts about a property: address, check-in, Wi-Fi, parking, rules."""
            return (
                "Seaside Loft is at 12 Harbour Road. Check-in is from three in the afternoon. "
                "The Wi-Fi password is sunshine42. Parking is in the blue garage next door.",
                {
                    "property": {"id": property_id, "name": "Seaside Loft"},
                    "context": {"property_id": property_id},
                },
            )

        async def request_upsell(offer_name: str) -> str:
            hotel.upsells.append(offer_name)
            return f"Requested {offer_name}."

        async def leave_feedback(rating: int, comment: str) -> str:
            hotel.reviews.append(f"{rating}: {comment}")
            return "Thank you, the review was recorded."

        # roles tell the fallback responder which tool answers what (tools/artifacts.py)
        search_documents.metadata = {"role": ToolRole.DOCUMENT_SEARCH}
        find_reservation.metadata = {"role": ToolRole.RESERVATION_LOOKUP}
        get_property_info.metadata = {"role": ToolRole.PROPERTY_FACTS}
        return [
            search_documents,
            find_reservation,
            get_property_info,
            StructuredTool.from_function(
                coroutine=request_upsell,
                name="request_upsell",
                description="Request an upsell offer such as late checkout.",
                metadata={
                    "side_effecting": True,
                    "confirm": "Shall I request {offer_name} for you?",
                },
            ),
            StructuredTool.from_function(
                coroutine=leave_feedback,
                name="leave_feedback",
                description="Leave a review of the stay.",
                metadata={
                    "side_effecting": True,
                    "confirm": "Shall I post your {rating} star review?",
                },
            ),
        ]


def thread(name: str = "t") -> RunnableConfig:
    return {"configurable": {"thread_id": f"{name}-{uuid.uuid4().hex[:6]}"}}


async def spoken_and_hidden(
    graph: Any, payload: Any, config: RunnableConfig
) -> tuple[str, list[str]]:
    """(text a voice adapter would speak, nodes whose message output it must not speak)."""
    spoken: list[str] = []
    hidden: list[str] = []
    async for message, meta in graph.astream(payload, config, stream_mode="messages"):
        node = meta.get("langgraph_node")
        is_ai = isinstance(message, AIMessage | AIMessageChunk)
        if node in SPEAKING_NODES and is_ai and message.text:
            spoken.append(message.text)
        elif message.text:
            hidden.append(f"{node}:{message.text}")
    return "".join(spoken), hidden


def final_text(state: dict[str, Any]) -> str:
    return state["messages"][-1].text


# ---------------------------------------------------------------------------------------
# Tool calling


async def test_answers_from_a_tool_and_only_the_answer_is_spoken() -> None:
    hotel = Hotel()

    def respond(call: ModelCall) -> Reply:
        results = results_this_turn(call)
        if not results:
            return call_tool("search_documents", query="wifi password")
        return AIMessage(content=f"Sure. {results[0].text.split(': ', 1)[1]}")

    model = scripted(respond)
    graph = build_assistant_graph(model=model, tools=hotel.tools(), checkpointer=InMemorySaver())
    cfg = thread()
    spoken, hidden = await spoken_and_hidden(
        graph, {"messages": [HumanMessage("What's the wifi password?")]}, cfg
    )

    assert "password is sunshine42" in spoken
    assert "Seaside Loft house manual" not in spoken  # the raw tool output stays unspoken
    assert any(h.startswith("tools:") for h in hidden)
    assert model.calls[0].tools is not None and "search_documents" in model.calls[0].tools
    state = (await graph.aget_state(cfg)).values
    kinds = [type(m).__name__ for m in state["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]


async def test_parallel_tool_calls_each_get_their_result_in_order() -> None:
    hotel = Hotel()

    def respond(call: ModelCall) -> Reply:
        if not results_this_turn(call):
            return AIMessage(
                content="",
                tool_calls=[
                    ToolCall(name="search_documents", args={"query": "wifi"}, id="a"),
                    ToolCall(name="get_property_info", args={"property_id": "loft"}, id="b"),
                    ToolCall(name="no_such_tool", args={}, id="c"),
                ],
            )
        return AIMessage(content="Done.")

    graph = build_assistant_graph(
        model=scripted(respond), tools=hotel.tools(), checkpointer=InMemorySaver()
    )
    state = await graph.ainvoke({"messages": [HumanMessage("wifi and parking?")]}, thread())
    results = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in results] == ["a", "b", "c"]
    assert "sunshine42" in results[0].text
    assert results[2].status == "error" and "no tool called no_such_tool" in results[2].text


async def test_tools_see_the_conversation_thread_id() -> None:
    @tool
    async def whoami(config: RunnableConfig) -> str:
        """Which conversation is this?"""
        return f"thread {config['configurable']['thread_id']}"

    def respond(call: ModelCall) -> Reply:
        results = results_this_turn(call)
        return AIMessage(content=results[0].text) if results else call_tool("whoami")

    graph = build_assistant_graph(
        model=scripted(respond), tools=[whoami], checkpointer=InMemorySaver()
    )
    cfg = thread("guest")
    state = await graph.ainvoke({"messages": [HumanMessage("who am I")]}, cfg)
    assert final_text(state) == f"thread {cfg['configurable']['thread_id']}"


async def test_tool_step_cap_makes_the_model_answer_without_tools() -> None:
    hotel = Hotel()

    def respond(call: ModelCall) -> Reply:
        if call.tools:
            return call_tool("search_documents", query=f"attempt {len(call.messages)}")
        return AIMessage(content="I could not find that, sorry.")

    model = scripted(respond)
    graph = build_assistant_graph(
        model=model,
        tools=hotel.tools(),
        checkpointer=InMemorySaver(),
        config=AssistantConfig(max_tool_steps=2),
    )
    cfg = thread()
    state = await graph.ainvoke({"messages": [HumanMessage("Find the pool hours")]}, cfg)
    assert final_text(state) == "I could not find that, sorry."
    assert len(hotel.searches) == 2
    assert model.calls[-1].tools is None
    assert "used all tool lookups" in model.calls[-1].system

    # The cap is per turn: the next question may use tools again.
    await graph.ainvoke({"messages": [HumanMessage("And the sauna?")]}, cfg)
    assert len(hotel.searches) == 4


async def test_tool_calls_after_the_cap_are_dropped_and_a_reply_is_spoken() -> None:
    def respond(call: ModelCall) -> Reply:
        return call_tool("search_documents", query="again")  # ignores the unbound model

    graph = build_assistant_graph(
        model=scripted(respond),
        tools=Hotel().tools(),
        checkpointer=InMemorySaver(),
        config=AssistantConfig(max_tool_steps=1, tool_cap_reply="Sorry, I got stuck."),
    )
    cfg = thread()
    spoken, _ = await spoken_and_hidden(graph, {"messages": [HumanMessage("loop")]}, cfg)
    assert spoken == "Sorry, I got stuck."
    last = (await graph.aget_state(cfg)).values["messages"][-1]
    assert isinstance(last, AIMessage) and not last.tool_calls


async def test_tool_errors_become_speakable_results() -> None:
    async def flaky(query: str) -> str:
        raise RuntimeError("qdrant: connection refused on 10.0.0.7")

    async def slow(query: str) -> str:
        await asyncio.sleep(5)
        return "late"

    tools = [
        StructuredTool.from_function(coroutine=flaky, name="search_documents", description="x"),
        StructuredTool.from_function(coroutine=slow, name="slow_lookup", description="y"),
    ]

    def respond(call: ModelCall) -> Reply:
        results = results_this_turn(call)
        if not results:
            return AIMessage(
                content="",
                tool_calls=[
                    ToolCall(name="search_documents", args={"query": "q"}, id="1"),
                    ToolCall(name="slow_lookup", args={"query": "q"}, id="2"),
                    ToolCall(name="search_documents", args={}, id="3"),
                ],
            )
        return AIMessage(content=" | ".join(r.text for r in results))

    graph = build_assistant_graph(
        model=scripted(respond),
        tools=tools,
        checkpointer=InMemorySaver(),
        config=AssistantConfig(tool_timeout_s=0.2),
    )
    state = await graph.ainvoke({"messages": [HumanMessage("q")]}, thread())
    failed, timed_out, invalid = (m for m in state["messages"] if isinstance(m, ToolMessage))
    assert failed.status == timed_out.status == invalid.status == "error"
    assert "search documents tool failed" in failed.text
    assert "10.0.0.7" not in failed.text  # internals are logged, not spoken
    assert "took too long" in timed_out.text
    assert "query" in invalid.text and "could not use those details" in invalid.text


async def test_malformed_tool_call_is_answered_and_the_thread_stays_valid() -> None:
    def respond(call: ModelCall) -> Reply:
        if not results_this_turn(call):
            return AIMessage(
                content="",
                invalid_tool_calls=[
                    {
                        "name": "search_documents",
                        "args": "{query: wifi",
                        "id": "bad-1",
                        "error": "not valid JSON",
                        "type": "invalid_tool_call",
                    }
                ],
            )
        return AIMessage(content="Could you say that again?")

    model = scripted(respond)
    graph = build_assistant_graph(model=model, tools=Hotel().tools(), checkpointer=InMemorySaver())
    state = await graph.ainvoke({"messages": [HumanMessage("wifi?")]}, thread())
    error = next(m for m in state["messages"] if isinstance(m, ToolMessage))
    assert error.tool_call_id == "bad-1" and "malformed" in error.text
    assert final_text(state) == "Could you say that again?"


# ---------------------------------------------------------------------------------------
# Confirmation of side-effecting tools


def upsell_model() -> ScriptedChatModel:
    def respond(call: ModelCall) -> Reply:
        results = results_this_turn(call)
        if not results:
            return call_tool("request_upsell", offer_name="late checkout")
        if "declined" in results[0].text:
            return AIMessage(content="No problem, I have not requested it.")
        return AIMessage(content="Done, late checkout is requested.")

    return scripted(respond)


async def test_side_effecting_tool_runs_after_the_caller_says_yes() -> None:
    hotel = Hotel()
    graph = build_assistant_graph(
        model=upsell_model(), tools=hotel.tools(), checkpointer=InMemorySaver()
    )
    cfg = thread()
    first = await graph.ainvoke({"messages": [HumanMessage("Can I check out late?")]}, cfg)
    (pending,) = first["__interrupt__"]
    assert interrupt_question(pending.value) == "Shall I request late checkout for you?"
    assert hotel.upsells == []  # nothing happens before the answer

    done = await graph.ainvoke(Command(resume="Yes, please"), cfg)
    assert hotel.upsells == ["late checkout"]
    assert final_text(done) == "Done, late checkout is requested."


async def test_side_effecting_tool_does_not_run_when_the_caller_declines() -> None:
    hotel = Hotel()
    graph = build_assistant_graph(
        model=upsell_model(), tools=hotel.tools(), checkpointer=InMemorySaver()
    )
    cfg = thread()
    await graph.ainvoke({"messages": [HumanMessage("Can I check out late?")]}, cfg)
    done = await graph.ainvoke(Command(resume="no, don't do that"), cfg)
    assert hotel.upsells == []
    assert final_text(done) == "No problem, I have not requested it."
    declined = next(m for m in done["messages"] if isinstance(m, ToolMessage))
    assert "declined" in declined.text


async def test_each_side_effecting_call_is_confirmed_separately_and_lookups_wait() -> None:
    hotel = Hotel()

    def respond(call: ModelCall) -> Reply:
        if not results_this_turn(call):
            return AIMessage(
                content="",
                tool_calls=[
                    ToolCall(name="search_documents", args={"query": "wifi"}, id="s"),
                    ToolCall(name="request_upsell", args={"offer_name": "early check-in"}, id="u"),
                    ToolCall(
                        name="leave_feedback", args={"rating": 5, "comment": "lovely"}, id="f"
                    ),
                ],
            )
        return AIMessage(content="All set.")

    graph = build_assistant_graph(
        model=scripted(respond), tools=hotel.tools(), checkpointer=InMemorySaver()
    )
    cfg = thread()
    first = await graph.ainvoke({"messages": [HumanMessage("do it all")]}, cfg)
    assert interrupt_question(first["__interrupt__"][0].value) == (
        "Shall I request early check-in for you?"
    )
    second = await graph.ainvoke(Command(resume="yes"), cfg)
    assert interrupt_question(second["__interrupt__"][0].value) == (
        "Shall I post your 5 star review?"
    )
    assert hotel.upsells == [] and hotel.searches == []  # nothing ran between questions

    done = await graph.ainvoke(Command(resume="no"), cfg)
    assert hotel.upsells == ["early check-in"]
    assert hotel.reviews == []
    assert hotel.searches == ["wifi"]  # the lookup ran exactly once, after both answers
    assert final_text(done) == "All set."


def test_confirmation_question_tolerates_missing_or_broken_templates() -> None:
    def side_effect(template: Any) -> BaseTool:
        async def act(offer_name: str = "", nights: int = 1) -> str:
            return "ok"

        return StructuredTool.from_function(
            coroutine=act,
            name="book_gap_night",
            description="d",
            metadata={"side_effecting": True, "confirm": template},
        )

    assert (
        confirmation_question(side_effect("Book {nights} nights of {offer_name}?"), {"nights": 2})
        == "Book 2 nights of that?"
    )
    assert (
        confirmation_question(side_effect("Book {0} now?"), {"nights": 2})
        == "Shall I go ahead and book gap night?"
    )
    assert confirmation_question(side_effect(None), {}) == "Shall I go ahead and book gap night?"


# ---------------------------------------------------------------------------------------
# Context and system prompt


async def test_verified_reservation_from_a_tool_reaches_the_next_prompt() -> None:
    hotel = Hotel()

    def respond(call: ModelCall) -> Reply:
        if isinstance(call.last, HumanMessage) and "SL4821" in call.last.text:
            return call_tool("find_reservation", confirmation_code="SL4821", last_name="Berger")
        if isinstance(call.last, ToolMessage):
            return AIMessage(content="Thanks Anna, you are verified.")
        return AIMessage(content="You arrive on Monday the fourteenth of July.")

    model = scripted(respond)
    graph = build_assistant_graph(model=model, tools=hotel.tools(), checkpointer=InMemorySaver())
    cfg = thread()
    await graph.ainvoke(
        {
            "messages": [HumanMessage("My code is SL4821, name Berger")],
            "context": {"language": "en", "verified": False},
        },
        cfg,
    )
    context = (await graph.aget_state(cfg)).values["context"]
    assert context["verified"] is True
    assert context["reservation_code"] == "SL4821"
    assert context["guest_name"] == "Anna Berger"
    assert context["property_id"] == "seaside-loft"
    assert context["language"] == "en"

    # A later context update from the worker (with unknown fields as None) keeps what was learned.
    await graph.ainvoke(
        {
            "messages": [HumanMessage("When do I arrive?")],
            "context": {"language": "de", "reservation_code": None},
        },
        cfg,
    )
    system = model.calls[-1].system
    assert "verified for reservation SL4821" in system
    assert "arrival: 2025-07-14" in system
    assert "Caller's language: de" in system
    assert (await graph.aget_state(cfg)).values["context"]["verified"] is True


def test_context_is_read_only_from_the_artifacts_declared_context() -> None:
    reservation = {"id": "r-17", "code": "HB7Q2K", "property_id": "harbour-house"}
    declared = {
        "verified": True,
        "reservation": reservation,
        "context": {
            "verified": True,
            "verified_reservation": reservation,
            "reservation_code": "HB7Q2K",
            "guest_name": "Léa Dubois",
            "property_id": "harbour-house",
        },
    }
    assert context_from_artifact(declared) == declared["context"]
    # nothing is guessed from the rest of an artifact: a tool states what it learned
    assert context_from_artifact({"verified": True, "reservation": reservation}) == {}
    assert context_from_artifact({"id": "alpine-chalet", "name": "x"}) == {}
    assert context_from_artifact({"property": {"id": "alpine-chalet"}}) == {}
    assert context_from_artifact("not a mapping") == {}
    assert context_from_artifact(
        {"context": {"language": "es", "unknown": 1, "guest_name": None}}
    ) == {"language": "es"}


async def test_system_prompt_has_instructions_context_voice_rules_and_summary() -> None:
    model = scripted(lambda call: AIMessage(content="Hello!"))
    graph = build_assistant_graph(model=model, tools=[], checkpointer=InMemorySaver())
    await graph.ainvoke(
        {
            "messages": [HumanMessage("Hi")],
            "instructions": "You are Mira, the concierge of Seaside Loft.",
            "context": {"property_id": "seaside-loft", "guest_name": "Anna", "language": "fr"},
            "summary": "Earlier the caller asked about parking.",
        },
        thread(),
    )
    system = model.calls[0].system
    assert system.startswith("You are Mira, the concierge of Seaside Loft.")
    assert "Property: seaside-loft" in system
    assert "Guest name: Anna" in system
    assert "Caller's language: fr" in system
    assert "The caller is not verified" in system
    assert "no markdown" in system
    assert "Earlier the caller asked about parking." in system
    assert model.calls[0].tools is None  # no tools bound when there are none


async def test_markdown_from_the_model_is_not_kept_in_the_thread() -> None:
    model = scripted(
        lambda call: AIMessage(content="## Check-in\n- **From** 3 pm\n- See [the guide](http://x)")
    )
    graph = build_assistant_graph(model=model, tools=[], checkpointer=InMemorySaver())
    state = await graph.ainvoke({"messages": [HumanMessage("check-in?")]}, thread())
    assert final_text(state) == "Check-in\nFrom 3 pm\nSee the guide"


def test_strip_markdown_keeps_plain_text_and_words() -> None:
    plain = "It costs 2 * 3 euros, snake_case stays, and 3-4 guests fit."
    assert strip_markdown(plain) == plain
    assert (
        strip_markdown("Use `wifi_guest` and *really* __now__") == "Use wifi_guest and really now"
    )
    assert strip_markdown("| Day | Time |\n|---|---|\n| Mon | 9 |") == "Day, Time\nMon, 9"


def test_context_reducer_never_erases_with_none() -> None:
    merged = merge_context(
        {"verified": True, "reservation_code": "AB1"}, {"reservation_code": None, "language": "it"}
    )
    assert merged == {"verified": True, "reservation_code": "AB1", "language": "it"}


# ---------------------------------------------------------------------------------------
# Summarisation keeps long calls bounded


def chatty_model(with_tools: bool) -> ScriptedChatModel:
    def respond(call: ModelCall) -> Reply:
        if call.is_summary_request:
            transcript = call.last.text
            return AIMessage(
                content=f"NOTES: {transcript.count('Caller:')} more questions, about rooms."
            )
        if with_tools and isinstance(call.last, HumanMessage):
            return call_tool("search_documents", query=call.last.text)
        return AIMessage(content="Here is a fairly detailed answer about that topic for you. " * 3)

    return scripted(respond)


@pytest.mark.parametrize("with_model", [True, False])
async def test_forty_turns_keep_model_input_bounded_and_a_summary(with_model: bool) -> None:
    hotel = Hotel()
    model = chatty_model(with_tools=True) if with_model else None
    settings = AssistantConfig(token_budget=1200, keep_last_messages=6)
    graph = build_assistant_graph(
        model=model, tools=hotel.tools(), checkpointer=InMemorySaver(), config=settings
    )
    cfg = thread()
    thread_sizes: list[int] = []
    for turn in range(1, 41):
        question = f"Question {turn}: what about room {turn} and its view of the harbour?"
        state = await graph.ainvoke({"messages": [HumanMessage(question)]}, cfg)
        assert final_text(state)
        thread_sizes.append(count_tokens_approximately(state["messages"]))

    state = (await graph.aget_state(cfg)).values
    messages = state["messages"]
    one_turn = max(thread_sizes[0], 1)
    # The thread never grows past the budget by more than the turn that crossed it.
    assert max(thread_sizes) <= settings.token_budget + 2 * one_turn
    assert len(messages) < 4 * 40 / 2
    assert "Question 1:" not in " ".join(m.text for m in messages)
    assert "Question 40:" in messages[-4 if model else -2].text
    # Every tool result still follows the call that asked for it.
    assert repair_tool_pairs(messages) == messages
    if model is not None:
        assert state["summary"].startswith("NOTES:")
        answering = [c for c in model.calls if not c.is_summary_request]
        sizes = [count_tokens_approximately(c.messages) for c in answering]
        assert max(sizes) <= settings.token_budget + 1000  # system prompt and one turn on top
        assert any("NOTES:" in c.system for c in answering[-10:])
    else:
        assert "Caller: Question" in state["summary"]
        assert len(state["summary"]) <= settings.max_summary_chars


async def test_summarizer_output_is_never_spoken() -> None:
    model = chatty_model(with_tools=False)
    graph = build_assistant_graph(
        model=model,
        tools=[],
        checkpointer=InMemorySaver(),
        config=AssistantConfig(token_budget=60, keep_last_messages=2),
    )
    cfg = thread()
    await graph.ainvoke({"messages": [HumanMessage("Question one about parking?")]}, cfg)
    spoken, _ = await spoken_and_hidden(
        graph, {"messages": [HumanMessage("Question two about pets?")]}, cfg
    )
    assert any(c.is_summary_request for c in model.calls)
    assert "NOTES" not in spoken
    assert spoken.startswith("Here is a fairly detailed answer")
    state = (await graph.aget_state(cfg)).values
    assert state["summary"].startswith("NOTES:")
    assert state["messages"][0].text == "Question two about pets?"


def test_split_for_summary_cuts_only_at_a_caller_message() -> None:
    msgs: list[AnyMessage] = [
        HumanMessage("q1", id="1"),
        AIMessage("", id="2", tool_calls=[ToolCall(name="t", args={}, id="c1")]),
        ToolMessage("r1", tool_call_id="c1", id="3"),
        AIMessage("a1", id="4"),
        HumanMessage("q2", id="5"),
        AIMessage("", id="6", tool_calls=[ToolCall(name="t", args={}, id="c2")]),
        ToolMessage("r2", tool_call_id="c2", id="7"),
        AIMessage("a2", id="8"),
    ]
    older, kept = split_for_summary(msgs, keep_last=3)
    assert [m.id for m in older] == ["1", "2", "3", "4"]
    assert [m.id for m in kept] == ["5", "6", "7", "8"]
    older, kept = split_for_summary(msgs, keep_last=6)
    assert [m.id for m in kept] == ["5", "6", "7", "8"]


def test_repair_tool_pairs_closes_dangling_calls_and_drops_orphans() -> None:
    msgs: list[AnyMessage] = [
        HumanMessage("q1"),
        AIMessage("", tool_calls=[ToolCall(name="request_upsell", args={}, id="c1")]),
        HumanMessage("q2"),
        AIMessage("I was cut off here"),
        ToolMessage("orphan", tool_call_id="zz"),
    ]
    repaired = repair_tool_pairs(msgs)
    assert [type(m).__name__ for m in repaired] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "HumanMessage",
        "AIMessage",
    ]
    assert isinstance(repaired[2], ToolMessage) and repaired[2].tool_call_id == "c1"


# ---------------------------------------------------------------------------------------
# Fallback responder


async def test_no_model_answers_from_document_search_and_says_so() -> None:
    hotel = Hotel()
    graph = build_assistant_graph(model=None, tools=hotel.tools(), checkpointer=InMemorySaver())
    cfg = thread()
    spoken, _ = await spoken_and_hidden(
        graph, {"messages": [HumanMessage("What is the wifi password?")]}, cfg
    )
    assert spoken.startswith("My language model is unavailable right now")
    assert "password is sunshine42" in spoken
    assert hotel.searches == ["What is the wifi password?"]
    assert "fallback" in SPEAKING_NODES


async def test_no_model_uses_property_facts_for_the_context_property() -> None:
    tools = [t for t in Hotel().tools() if t.name != "search_documents"]
    graph = build_assistant_graph(model=None, tools=tools, checkpointer=InMemorySaver())
    state = await graph.ainvoke(
        {
            "messages": [HumanMessage("Where can I park my car?")],
            "context": {"property_id": "seaside-loft"},
        },
        thread(),
    )
    text = final_text(state)
    assert "unavailable" in text
    assert "Parking is in the blue garage next door." in text
    # Only the sentences about the question, not the whole property record.
    assert "12 Harbour Road" not in text
    assert "Check-in" not in text and "password" not in text


async def test_no_model_verifies_a_code_and_name_and_never_runs_side_effects() -> None:
    hotel = Hotel()
    graph = build_assistant_graph(model=None, tools=hotel.tools(), checkpointer=InMemorySaver())
    cfg = thread()
    state = await graph.ainvoke(
        {"messages": [HumanMessage("My confirmation code is sl4821 and my last name is Berger")]},
        cfg,
    )
    assert "Verified: Anna Berger" in final_text(state)
    assert state["context"]["verified"] is True
    await graph.ainvoke({"messages": [HumanMessage("Please request late checkout")]}, cfg)
    assert hotel.upsells == []


async def test_no_model_and_no_tools_still_replies() -> None:
    graph = build_assistant_graph(model=None, tools=[], checkpointer=None)
    state = await graph.ainvoke({"messages": [HumanMessage("Is breakfast included?")]})
    assert "language model is unavailable" in final_text(state)
    hello = await graph.ainvoke({"messages": [HumanMessage("Hello there!")]})
    assert final_text(hello).startswith("Hello!")


async def test_failing_model_is_retried_then_the_fallback_answers() -> None:
    hotel = Hotel()
    model = scripted(lambda call: RuntimeError("503 upstream unavailable"))
    graph = build_assistant_graph(
        model=model,
        tools=hotel.tools(),
        checkpointer=InMemorySaver(),
        config=AssistantConfig(model_attempts=3, model_retry_backoff_s=0),
    )
    cfg = thread()
    spoken, _ = await spoken_and_hidden(
        graph, {"messages": [HumanMessage("What's the wifi password?")]}, cfg
    )
    assert len(model.calls) == 3
    assert spoken.startswith("My language model is unavailable right now")
    assert "sunshine42" in spoken


async def test_model_failing_after_a_tool_step_falls_back_with_the_tool_result() -> None:
    hotel = Hotel()

    def respond(call: ModelCall) -> Reply:
        if isinstance(call.last, HumanMessage):
            return call_tool("get_property_info", property_id="seaside-loft")
        return TimeoutError("model timed out")

    graph = build_assistant_graph(
        model=scripted(respond),
        tools=hotel.tools(),
        checkpointer=InMemorySaver(),
        config=AssistantConfig(model_attempts=1),
    )
    state = await graph.ainvoke({"messages": [HumanMessage("When is check-in?")]}, thread())
    text = final_text(state)
    assert text.startswith("My language model is unavailable right now")
    assert "Check-in is from three in the afternoon" in text


async def test_a_reply_that_already_streamed_is_not_retried_into_a_repeat() -> None:
    model = ScriptedChatModel(
        respond=lambda call: AIMessage(content="Let me check that for you."),
        calls=[],
        fail_after_first_token=True,
    )
    graph = build_assistant_graph(
        model=model,
        tools=[],
        checkpointer=InMemorySaver(),
        config=AssistantConfig(model_attempts=3, model_retry_backoff_s=0),
    )
    spoken, _ = await spoken_and_hidden(graph, {"messages": [HumanMessage("hi")]}, thread())
    assert spoken.count("Let") == 1
    assert "language model is unavailable" in spoken


async def test_model_errors_propagate_when_the_fallback_is_disabled() -> None:
    graph = build_assistant_graph(
        model=scripted(lambda call: ValueError("bad request")),
        tools=[],
        checkpointer=InMemorySaver(),
        config=AssistantConfig(model_attempts=1, fallback_on_model_error=False),
    )
    with pytest.raises(ValueError, match="bad request"):
        await graph.ainvoke({"messages": [HumanMessage("hi")]}, thread())


def test_reservation_lookup_is_read_from_natural_phrasing() -> None:
    assert extract_reservation_lookup("code SL-4821, last name is Müller") == ("SL-4821", "Müller")
    assert extract_reservation_lookup("booked under Okafor, confirmation 7QX2PZ") == (
        "7QX2PZ",
        "Okafor",
    )
    assert extract_reservation_lookup("what time is check-in on the 14th?") is None


def test_invalid_config_is_refused() -> None:
    with pytest.raises(ValueError, match="max_tool_steps"):
        AssistantConfig(max_tool_steps=0)
