"""The pure pieces of GraphLLM: history delta, heard-text corrections, errors, speech."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, RemoveMessage, ToolMessage
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError, llm
from livekit.agents.types import FlushSentinel

from agent.graph_llm import to_api_error
from agent.graph_llm.events import summarize_args
from agent.graph_llm.speech import (
    UNCLEAR,
    SpeechFilter,
    UsageTally,
    flush_chunk,
    interrupt_question,
    resume_value,
    speech_segments,
    spoken_yes_no,
)
from agent.graph_llm.turn import (
    SpokenSegment,
    conversation_delta,
    heard_corrections,
    instructions_text,
)
from tests.agent.graph_fakes import usage


def chat(*items: tuple[str, str, str]) -> llm.ChatContext:
    ctx = llm.ChatContext()
    for item_id, role, text in items:
        ctx.add_message(role=role, content=text, id=item_id)  # type: ignore[arg-type]
    return ctx


# -- conversation_delta / instructions ----------------------------------------------------


def test_delta_is_what_follows_the_answer_to_the_last_known_user_message() -> None:
    ctx = chat(
        ("lk.agent_task.instructions", "system", "Be kind."),
        ("u1", "user", "Hi"),
        ("a1", "assistant", "Hello!"),
        ("u2", "user", "Rates?"),
        ("a2", "assistant", "Let me see."),
        ("u3", "user", "A suite"),
        ("u4", "user", "for two"),
    )
    delta = conversation_delta(ctx, {"u1", "u2"}, history_floor=False)
    assert delta.anchor_id == "u2"
    assert [m.id for m in delta.answer] == ["a2"]
    assert [m.id for m in delta.new] == ["u3", "u4"]


def test_delta_after_a_known_assistant_item_has_no_answer() -> None:
    ctx = chat(("g", "assistant", "Welcome!"), ("u1", "user", "Hi"))
    delta = conversation_delta(ctx, {"g"}, history_floor=False)
    assert delta.answer == []
    assert [m.id for m in delta.new] == ["u1"]


def test_a_new_thread_gets_the_whole_session_unless_it_replaced_another() -> None:
    ctx = chat(
        ("u1", "user", "Old question"),
        ("a1", "assistant", "Old answer"),
        ("s1", "system", "Greet the caller again"),
        ("u2", "user", "New question"),
    )
    assert [m.id for m in conversation_delta(ctx, set(), history_floor=False).new] == [
        "u1",
        "a1",
        "s1",
        "u2",
    ]
    assert [m.id for m in conversation_delta(ctx, set(), history_floor=True).new] == ["s1", "u2"]


def test_empty_items_and_instructions_are_never_part_of_the_delta() -> None:
    ctx = chat(
        ("lk.agent_task.instructions", "system", "Be kind."),
        ("u0", "user", "   "),
        ("u1", "user", "Hi"),
    )
    assert [m.id for m in conversation_delta(ctx, set(), history_floor=False).new] == ["u1"]


def test_instructions_come_from_livekit_instruction_items_else_leading_system_items() -> None:
    tagged = chat(
        ("x", "system", "Not this"),
        ("lk.agent_task.instructions", "system", "Be kind."),
        ("lk.agent_task.instructions.dynamic", "system", "It is night."),
    )
    assert instructions_text(tagged) == "Be kind.\n\nIt is night."
    plain = chat(("s", "system", "Be brief."), ("u", "user", "Hi"), ("s2", "system", "Later"))
    assert instructions_text(plain) == "Be brief."
    assert instructions_text(chat(("u", "user", "Hi"))) is None


# -- heard_corrections ------------------------------------------------------------------


def test_a_cut_answer_is_replaced_by_the_heard_part_with_the_same_id() -> None:
    lookup = AIMessage("Let me check.", id="m1", tool_calls=[_call("c1")])
    answer = AIMessage("The double is 180 euros tonight.", id="m2")
    spoken = [
        SpokenSegment("m1", "Let me check."),
        SpokenSegment(None, " One moment."),
        SpokenSegment("m2", " The double is 180 euros tonight."),
    ]
    fixes = heard_corrections(
        spoken, "Let me check. One moment. The double is", {"m1": lookup, "m2": answer}
    )
    assert len(fixes) == 1
    assert (fixes[0].id, fixes[0].content) == ("m2", "The double is")
    assert isinstance(fixes[0], AIMessage)


def test_unheard_messages_are_removed_but_tool_calls_are_kept() -> None:
    lookup = AIMessage("Let me check.", id="m1", tool_calls=[_call("c1")])
    answer = AIMessage("It is 180 euros.", id="m2")
    spoken = [SpokenSegment("m1", "Let me check."), SpokenSegment("m2", " It is 180 euros.")]
    fixes = heard_corrections(spoken, "", {"m1": lookup, "m2": answer})
    emptied, removed = fixes
    assert isinstance(emptied, AIMessage)
    assert (emptied.id, emptied.content, emptied.tool_calls[0]["id"]) == ("m1", "", "c1")
    assert isinstance(removed, RemoveMessage) and removed.id == "m2"


def test_fully_heard_answers_need_no_correction() -> None:
    answer = AIMessage("It is 180 euros.", id="m2")
    spoken = [SpokenSegment("m2", "It is 180 euros.")]
    assert heard_corrections(spoken, "It is  180 euros.", {"m2": answer}) == []


def _call(call_id: str) -> dict[str, object]:
    return {"name": "room_rate", "args": {}, "id": call_id, "type": "tool_call"}


# -- errors -----------------------------------------------------------------------------


class _ProviderStatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class _SdkConnectionError(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (TimeoutError(), APITimeoutError, True),
        (httpx.ReadTimeout("slow"), APITimeoutError, True),
        (_ProviderStatusError(429), APIStatusError, True),
        (_ProviderStatusError(503), APIStatusError, True),
        (_ProviderStatusError(401), APIStatusError, False),
        (ConnectionResetError(), APIConnectionError, True),
        (_SdkConnectionError(), APIConnectionError, True),
        (ValueError("bad state"), APIError, False),
    ],
)
def test_failures_map_to_livekit_errors(
    exc: Exception, kind: type[APIError], retryable: bool
) -> None:
    error = to_api_error(exc)
    assert type(error) is kind
    assert error.retryable is retryable
    assert type(exc).__name__ in str(error)


def test_livekit_errors_pass_through() -> None:
    original = APIConnectionError("down", retryable=False)
    assert to_api_error(original) is original


# -- speech ------------------------------------------------------------------------------


def test_speaking_paths_match_nodes_and_their_subgraphs() -> None:
    speech = SpeechFilter(("model", "agent/answer"))
    chunk = AIMessageChunk(content="hi")
    top = {"langgraph_node": "model", "langgraph_checkpoint_ns": "model:1"}
    router = {"langgraph_node": "router", "langgraph_checkpoint_ns": "router:2"}
    nested = {"langgraph_node": "answer", "langgraph_checkpoint_ns": "agent:3|answer:4"}
    nested_other = {"langgraph_node": "model", "langgraph_checkpoint_ns": "agent:3|model:5"}
    assert speech.speakable(chunk, top) == "hi"
    assert speech.speakable(chunk, router) == ""
    assert speech.speakable(chunk, nested) == "hi"
    assert speech.speakable(chunk, nested_other) == ""
    assert speech.speakable(ToolMessage("secret", tool_call_id="c"), top) == ""


def test_usage_is_summed_and_mapped_to_livekit_fields() -> None:
    tally = UsageTally()
    assert tally.completion_usage() is None
    first = AIMessage("a", usage_metadata=usage(100, 10))
    cached = usage(50, 5)
    cached["input_token_details"] = {"cache_read": 30}
    cached["output_token_details"] = {"reasoning": 2}
    tally.add(first)
    tally.add(AIMessage("b", usage_metadata=cached))
    tally.add(ToolMessage("no usage", tool_call_id="c"))
    result = tally.completion_usage()
    assert result is not None
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (150, 15, 165)
    assert (result.prompt_cached_tokens, result.reasoning_tokens) == (30, 2)


async def test_flush_markers_become_flush_sentinels() -> None:
    async def chunks() -> AsyncIterator[llm.ChatChunk]:
        yield llm.ChatChunk(id="x", delta=llm.ChoiceDelta(role="assistant", content="One."))
        yield flush_chunk("x")
        await asyncio.sleep(0)
        yield llm.ChatChunk(id="x", delta=llm.ChoiceDelta(role="assistant", content="Two."))

    out = [item async for item in speech_segments(chunks())]
    assert isinstance(out[1], FlushSentinel)
    assert [c.delta.content for c in out if isinstance(c, llm.ChatChunk) and c.delta] == [
        "One.",
        "Two.",
    ]


def test_tool_arguments_are_summarized_on_one_short_line() -> None:
    assert summarize_args({"room_type": "double", "nights": 2}) == "room_type='double', nights=2"
    long = summarize_args({"note": "x" * 500})
    assert len(long) == 160 and long.endswith("…")


@pytest.mark.parametrize(
    ("answer", "meaning"),
    [
        ("Yes, please.", True),
        ("Sure, go ahead", True),
        ("Okay", True),
        ("No thanks.", False),
        ("Don't do that", False),
        ("Actually, forget it", False),
        ("I'm not sure", None),
        ("Yes... no, wait", None),
        ("What time is breakfast?", None),
    ],
)
def test_spoken_yes_no(answer: str, meaning: bool | None) -> None:
    assert spoken_yes_no(answer) is meaning


def test_human_in_the_loop_answers_use_the_middleware_format() -> None:
    batched = {
        "action_requests": [{"name": "book_room", "args": {}}, {"name": "send_receipt"}],
        "review_configs": [],
    }
    assert resume_value(batched, "yes") == {"decisions": [{"type": "approve"}] * 2}
    rejected = resume_value(batched, "no")["decisions"]
    assert [d["type"] for d in rejected] == ["reject", "reject"]
    per_call = {"type": "tool_approval", "name": "book_room", "args": {}, "tool_call_id": "c"}
    assert resume_value(per_call, "go ahead") == {"type": "approve"}
    assert resume_value(per_call, "hmm") is UNCLEAR
    assert resume_value("How many nights?", "three") == "three"
    assert resume_value("Ok?", "yes", {"type": "boolean"}) is True
    assert interrupt_question(per_call) == "Shall I go ahead with book room?"
    assert interrupt_question(batched) == "Shall I go ahead with book room and send receipt?"
