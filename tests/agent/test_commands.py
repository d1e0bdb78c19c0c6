"""The command layer without a room: every command's good and bad paths, authorization,
rate limits, timeouts and protocol errors. Every reply is checked against the JSON Schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import pytest
from data_channel_fakes import (
    SmallBrain,
    memory_store,
    small_brain,
    store_tools,
)
from graph_fakes import ScriptedChatModel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from livekit.agents import AgentSession
from room_fakes import FakeParticipant, FakeRoom, check_event, check_reply

from agent.chat.channel import EventPublisher, RoomSender
from agent.chat.conversation import Conversation, TurnSources
from agent.chat.handlers import builtin_commands
from agent.chat.pipeline import (
    AccessPolicy,
    CommandPipeline,
    CommandServices,
    Drop,
    DropReason,
    PendingConfirmations,
    RateLimiter,
    Reply,
    Sender,
)
from agent.chat.protocol import TOPIC_EVENT, EventType, ReplyMode, ReplyModeData
from agent.graph_llm.events import ToolFinished
from tools.pms import DemoPMS, fixed_clock
from workflows.confirm import confirm
from workflows.registry import Workflow, WorkflowParam, build_workflow_registry

CALLER = Sender("caller-1", is_linked=True, is_staff=False)
STAFF = Sender("staff-1", is_linked=False, is_staff=True)
STRANGER = Sender("guest-2", is_linked=False, is_staff=False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HangingChatModel(ScriptedChatModel):
    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)
        return await super()._agenerate(*args, **kwargs)


class CheckoutState(TypedDict, total=False):
    offer: str
    recorded: bool


def late_checkout_workflow(requests: list[str]) -> Workflow:
    """A side-effecting workflow that asks before it records."""

    async def offer(state: CheckoutState) -> dict[str, Any]:
        if confirm(f"Shall I request {state['offer']} for you?"):
            requests.append(state["offer"])
            return {"recorded": True}
        return {"recorded": False}

    builder = StateGraph(CheckoutState)
    builder.add_node("offer", offer)
    builder.add_edge(START, "offer")
    builder.add_edge("offer", END)
    return Workflow(
        name="late_checkout",
        description="Request a late checkout.",
        graph=builder.compile(checkpointer=InMemorySaver()),
        make_input=lambda params, context: {"offer": params.get("offer", "late checkout")},
        read_result=lambda values: (
            "Requested." if values.get("recorded") else "Nothing was requested.",
            {"recorded": bool(values.get("recorded"))},
        ),
        params=(WorkflowParam("offer", "what to request"),),
        side_effecting=True,
    )


@dataclass
class Layer:
    dispatcher: CommandPipeline
    publisher: EventPublisher
    room: FakeRoom
    conversation: Conversation
    brain: SmallBrain
    clock: FakeClock
    requests: list[str]

    async def events(self, kind: str) -> list[dict[str, Any]]:
        """The agent events of `kind` the caller received (the room checks their schema)."""
        await self.publisher.flush()
        return [e["data"] for e in self.room.events(kind)]

    async def send(self, sender: Sender, envelope: dict[str, Any] | str | bytes) -> dict[str, Any]:
        payload = json.dumps(envelope) if isinstance(envelope, dict) else envelope
        outcome = await self.dispatcher.handle_envelope(payload, sender)
        assert isinstance(outcome, Reply), outcome
        assert json.loads(outcome.payload) == outcome.envelope
        assert outcome.chat_text is None
        return dict(check_reply(outcome.envelope))

    async def command(
        self, sender: Sender, command: str, args: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"v": 1, "id": f"r-{command}", "command": command}
        if args is not None:
            request["args"] = args
        return await self.send(sender, request)

    async def chat(self, sender: Sender, text: str) -> tuple[dict[str, Any], str]:
        outcome = await self.dispatcher.handle_chat_command(text, sender, request_id="chat-1")
        assert isinstance(outcome, Reply), outcome
        assert outcome.chat_text
        return dict(check_reply(outcome.envelope)), outcome.chat_text


async def build_layer(
    tmp_path: Path,
    *,
    chat_model: Any = None,
    with_store: bool = True,
    timeout_s: float = 10.0,
    limit: int = 1000,
    pms: Any = None,
) -> Layer:
    store = await memory_store(tmp_path) if with_store else None
    tools = store_tools(store) if store is not None else []
    brain = small_brain(model=None, tools=tools)
    clock = FakeClock()
    requests: list[str] = []
    room = FakeRoom()
    out = RoomSender(room, timeout_s=timeout_s)

    async def send_event(payload: str) -> None:
        await out.send(payload, TOPIC_EVENT, CALLER.identity)

    publisher = EventPublisher(send_event)
    session: AgentSession[Any] = AgentSession(llm=brain.llm)
    limiter = RateLimiter(limit=limit, window_s=10, clock=clock)
    conversation = Conversation(
        session,
        brain.llm,
        graph=brain.graph,
        limiter=limiter,
        extra_providers={"embeddings": "hashing"},
    )
    workflows = build_workflow_registry(
        store=store, model=None, pms=pms, extra=[late_checkout_workflow(requests)]
    )
    services = CommandServices(
        conversation=conversation,
        events=publisher,
        tools=tools,
        chat_model=chat_model,
        workflows=workflows,
        confirmations=PendingConfirmations(window_s=60, clock=clock),
    )
    dispatcher = CommandPipeline(
        (builtin_commands(workflow_timeout_s=timeout_s)),
        services,
        limiter=limiter,
        timeout_s=timeout_s,
    )
    return Layer(dispatcher, publisher, room, conversation, brain, clock, requests)


@pytest.fixture
async def layer(tmp_path: Path) -> AsyncIterator[Layer]:
    yield await build_layer(tmp_path)


def error_code(reply: dict[str, Any]) -> str:
    assert reply["ok"] is False, reply
    return str(reply["error"]["code"])


# -- protocol errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code", "echoed_id"),
    [
        ("not json", "invalid_json", None),
        (b"\xff\xfe{", "invalid_json", None),
        ('{"v": 1, "id": "a", "command": "help"', "invalid_json", None),
        ("[1, 2]", "invalid_envelope", None),
        ('"help"', "invalid_envelope", None),
        ('{"id": "a", "command": "help"}', "invalid_envelope", "a"),
        ('{"v": "1", "id": "a", "command": "help"}', "invalid_envelope", "a"),
        ('{"v": true, "id": "a", "command": "help"}', "invalid_envelope", "a"),
        ('{"v": 2, "id": "a", "command": "help"}', "unsupported_version", "a"),
        ('{"v": 1, "command": "help"}', "invalid_envelope", None),
        ('{"v": 1, "id": 7, "command": "help"}', "invalid_envelope", None),
        ('{"v": 1, "id": "", "command": "help"}', "invalid_envelope", None),
        ('{"v": 1, "id": "a", "command": 5}', "invalid_envelope", "a"),
        ('{"v": 1, "id": "a", "command": "help", "args": []}', "invalid_envelope", "a"),
        ('{"v": 1, "id": "a", "command": "help", "extra": 1}', "invalid_envelope", "a"),
        ('{"v": 1, "id": "a", "command": "Help Me"}', "unknown_command", "a"),
        ('{"v": 1, "id": "a", "command": "teleport"}', "unknown_command", "a"),
    ],
)
async def test_bad_envelopes_get_a_stable_error_code(
    layer: Layer, payload: str | bytes, code: str, echoed_id: str | None
) -> None:
    reply = await layer.send(CALLER, payload)
    assert error_code(reply) == code
    assert reply["id"] == echoed_id
    assert reply["error"]["message"]


async def test_an_id_longer_than_128_characters_is_refused(layer: Layer) -> None:
    reply = await layer.send(CALLER, {"v": 1, "id": "x" * 129, "command": "help"})
    assert error_code(reply) == "invalid_envelope"
    assert "128" in reply["error"]["message"]


async def test_unknown_command_lists_what_the_sender_may_use(layer: Layer) -> None:
    reply = await layer.command(CALLER, "teleport")
    assert error_code(reply) == "unknown_command"
    assert "search" in reply["error"]["message"]
    assert "status" not in reply["error"]["message"]
    assert reply["error"]["usage"] == "/help"


async def test_oversized_requests_are_refused_before_parsing(layer: Layer) -> None:
    big = json.dumps({"v": 1, "id": "big", "command": "search", "args": {"q": "x" * 20_000}})
    reply = await layer.send(CALLER, big)
    assert error_code(reply) == "message_too_large"
    assert "16384" in reply["error"]["message"]
    _, text = await layer.chat(CALLER, "/search " + "x" * 20_000)
    assert "limit" in text


async def test_deeply_nested_json_is_an_error_not_a_crash(layer: Layer) -> None:
    reply = await layer.send(CALLER, "[" * 5000 + "]" * 5000)
    assert error_code(reply) in {"invalid_json", "invalid_envelope"}


# -- /help ---------------------------------------------------------------------------------


async def test_help_lists_only_the_commands_the_sender_may_use(layer: Layer) -> None:
    reply = await layer.command(CALLER, "help")
    names = [c["name"] for c in reply["data"]["commands"]]
    assert names == ["help", "search", "embed", "analyze", "workflow", "mode"]
    staff = await layer.command(STAFF, "help")
    assert {c["name"] for c in staff["data"]["commands"]} >= {"status", "reset"}
    _, text = await layer.chat(CALLER, "/help")
    assert "/search <query> — top documents" in text
    assert "/status" not in text


async def test_help_for_one_command_and_for_unknown_or_forbidden_ones(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, "/help /embed")
    assert reply["data"]["commands"][0]["usage"] == "/embed <text>"
    assert text.startswith("/embed <text>")
    assert error_code((await layer.chat(CALLER, "/help status"))[0]) == "forbidden"
    assert error_code((await layer.chat(CALLER, "/help nope"))[0]) == "unknown_command"
    bad, text = await layer.chat(CALLER, "/help a b")
    assert error_code(bad) == "invalid_arguments"
    assert "Usage: /help [command]" in text


# -- /search and /embed --------------------------------------------------------------------


async def test_search_returns_sources_with_scores(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, "/search what is the wifi password")
    results = reply["data"]["results"]
    assert results[0]["source"].endswith("wifi.md")
    assert results[0]["title"] == "Wi-Fi"
    assert results[0]["score"] > 0
    assert "sunflower42" in results[0]["preview"]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert "Wi-Fi" in text and "score" in text


async def test_search_without_a_query_explains_the_usage(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, "/search")
    assert error_code(reply) == "invalid_arguments"
    assert reply["error"]["usage"] == "/search <query>"
    assert "query is required" in text
    wrong = await layer.command(CALLER, "search", {"query": 42})
    assert error_code(wrong) == "invalid_arguments"
    extra = await layer.command(CALLER, "search", {"query": "wifi", "k": 3})
    assert "k is not an argument" in extra["error"]["message"]


async def test_search_with_nothing_relevant_says_so(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, "/search zzzz qqqq xxxx")
    assert reply["ok"] and reply["data"]["results"] == []
    assert text.startswith("Nothing relevant found")


async def test_knowledge_commands_without_a_document_store_are_unavailable(
    tmp_path: Path,
) -> None:
    layer = await build_layer(tmp_path, with_store=False)
    for command in ("/search wifi", "/embed wifi"):
        reply, text = await layer.chat(CALLER, command)
        assert error_code(reply) == "unavailable"
        assert "no document store is configured" in text


async def test_embed_reports_model_dimensions_and_nearest_documents(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, "/embed free parking in the courtyard")
    data = reply["data"]
    assert data["model"].startswith("hashing")
    assert data["dimensions"] > 16
    assert data["nearest"][0]["source"].endswith("parking.md")
    assert f"{data['dimensions']} dimensions" in text


# -- /analyze ------------------------------------------------------------------------------


async def test_analyze_returns_summary_key_points_and_sentiment(tmp_path: Path) -> None:
    model = ScriptedChatModel(
        script=[
            'Here you go: ```json\n{"summary": "A happy guest.", "key_points": '
            '["great view", "quiet"], "sentiment": "Positive"}\n```'
        ]
    )
    layer = await build_layer(tmp_path, chat_model=model, with_store=False)
    reply, text = await layer.chat(CALLER, "/analyze The view was great and it was so quiet!")
    assert reply["data"] == {
        "summary": "A happy guest.",
        "key_points": ["great view", "quiet"],
        "sentiment": "positive",
    }
    assert "Sentiment: positive" in text
    prompt = model.prompts[0][-1].content
    assert "The view was great" in prompt and "<text>" in prompt


async def test_analyze_without_a_model_says_how_to_configure_one(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, "/analyze hello")
    assert error_code(reply) == "unavailable"
    assert "OPENAI_API_KEY" in text


async def test_analyze_with_an_unreadable_model_answer_fails_clearly(tmp_path: Path) -> None:
    layer = await build_layer(tmp_path, chat_model=ScriptedChatModel(script=["no idea"]))
    reply, _ = await layer.chat(CALLER, "/analyze hello")
    assert error_code(reply) == "command_failed"
    assert "JSON" in reply["error"]["message"]


async def test_a_model_that_hangs_hits_the_command_timeout(tmp_path: Path) -> None:
    model = HangingChatModel(script=['{"summary": "s", "sentiment": "neutral"}'])
    layer = await build_layer(tmp_path, chat_model=model, with_store=False, timeout_s=0.05)
    reply, text = await layer.chat(CALLER, "/analyze hello")
    assert error_code(reply) == "timeout"
    assert "longer than 0.05 seconds" in text
    # the layer still answers afterwards
    assert (await layer.command(CALLER, "help"))["ok"]


# -- /workflow -----------------------------------------------------------------------------


async def test_workflow_alone_lists_what_the_sender_may_run(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, "/workflow")
    assert [w["name"] for w in reply["data"]["workflows"]] == ["document_qa"]
    assert "document_qa question=…" in text
    staff = await layer.command(STAFF, "workflow")
    assert [w["name"] for w in staff["data"]["workflows"]] == ["document_qa", "late_checkout"]


async def test_document_qa_workflow_reports_progress_and_a_sourced_answer(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, '/workflow document_qa question="where can I park"')
    data = reply["data"]
    assert data["status"] == "finished"
    assert "courtyard" in data["result"]["answer"]
    assert data["result"]["sources"][0]["source"].endswith("parking.md")
    assert "courtyard" in text
    progress = await layer.events("workflow_progress")
    assert progress[0]["status"] == "started"
    assert [p["step"] for p in progress if p["status"] == "step"] == [
        "input",
        "embed",
        "search",
        "answer",
        "respond",
    ]
    assert progress[-1]["status"] == "finished"
    assert {p["run_id"] for p in progress} == {data["run_id"]}


async def test_workflow_argument_problems_name_the_fix(layer: Layer) -> None:
    missing, text = await layer.chat(CALLER, "/workflow document_qa")
    assert error_code(missing) == "invalid_arguments"
    assert "needs question" in text and "Usage: /workflow" in text
    unknown = await layer.command(CALLER, "workflow", {"name": "teleport"})
    assert "available: document_qa" in unknown["error"]["message"]
    bad_param = await layer.command(
        CALLER, "workflow", {"name": "document_qa", "params": {"colour": "red"}}
    )
    assert "has no parameter colour" in bad_param["error"]["message"]
    unbalanced, _ = await layer.chat(CALLER, '/workflow document_qa question="where')
    assert error_code(unbalanced) == "invalid_arguments"
    two_names, _ = await layer.chat(CALLER, "/workflow document_qa upsell")
    assert error_code(two_names) == "invalid_arguments"


async def test_side_effecting_workflows_need_staff_and_confirm_before_recording(
    layer: Layer,
) -> None:
    refused, text = await layer.chat(CALLER, "/workflow late_checkout")
    assert error_code(refused) == "forbidden"
    assert "staff only" in text
    asked, text = await layer.chat(STAFF, "/workflow late_checkout offer=2pm-checkout")
    assert asked["data"]["status"] == "waiting"
    assert asked["data"]["result"]["question"] == "Shall I request 2pm-checkout for you?"
    assert "answer=<your answer>" in text
    assert layer.requests == []
    done, text = await layer.chat(STAFF, "/workflow late_checkout answer=yes")
    assert done["data"]["status"] == "finished"
    assert done["data"]["result"] == {"recorded": True}
    assert layer.requests == ["2pm-checkout"]
    again, _ = await layer.chat(STAFF, "/workflow late_checkout answer=yes")
    assert error_code(again) == "invalid_arguments"
    assert "not waiting" in again["error"]["message"]
    assert layer.requests == ["2pm-checkout"]


async def test_declining_a_workflow_question_records_nothing(layer: Layer) -> None:
    await layer.command(STAFF, "workflow", {"name": "late_checkout"})
    done = await layer.command(STAFF, "workflow", {"name": "late_checkout", "answer": "no"})
    assert done["data"]["result"] == {"recorded": False}
    assert layer.requests == []


async def test_upsell_workflow_books_with_the_demo_pms_after_questions(tmp_path: Path) -> None:
    pms = DemoPMS(
        tmp_path / "demo.sqlite3", clock=fixed_clock(datetime(2025, 3, 10, 15, tzinfo=UTC))
    )
    try:
        layer = await build_layer(tmp_path, with_store=False, pms=pms)
        listing = await layer.command(STAFF, "workflow")
        assert {"upsell", "gap_nights"} <= {w["name"] for w in listing["data"]["workflows"]}
        caller_listing = await layer.command(CALLER, "workflow")
        assert [w["name"] for w in caller_listing["data"]["workflows"]] == []
        assert (
            error_code(await layer.command(CALLER, "workflow", {"name": "upsell"})) == "forbidden"
        )

        asked, text = await layer.chat(STAFF, "/workflow upsell code=CDS-5160 last_name=Núñez")
        assert asked["data"]["status"] == "waiting"
        assert "Which would you like?" in text and "late checkout until 2 PM" in text
        confirm_question, _ = await layer.chat(
            STAFF, '/workflow upsell answer="the late checkout please"'
        )
        assert confirm_question["data"]["text"] == (
            "Shall I add late checkout until 2 PM for 50 euros to your reservation?"
        )
        done, text = await layer.chat(STAFF, "/workflow upsell answer=yes")
        assert done["data"]["status"] == "finished"
        assert done["data"]["result"]["status"] == "booked"
        assert text.startswith("Done: late checkout until 2 PM is booked")
        reservation = await pms.find_reservation("CDS-5160", "Nunez")
        assert reservation is not None and reservation.extras == ("Late checkout until 2 PM",)
    finally:
        await pms.aclose()


# -- /status, /reset, /mode ------------------------------------------------------------------


async def test_status_is_for_staff_and_reports_the_conversation(layer: Layer) -> None:
    refused, text = await layer.chat(CALLER, "/status")
    assert error_code(refused) == "forbidden"
    assert "staff only" in text
    reply, text = await layer.chat(STAFF, "/status")
    data = reply["data"]
    assert data["conversation_id"] == layer.brain.llm.thread_id
    assert data["turns"] == 0
    assert data["providers"]["embeddings"] == "hashing"
    assert data["providers"]["llm"].startswith("langgraph/")
    assert data["last_turn_latency"] is None
    assert f"Conversation: {layer.brain.llm.thread_id}" in text
    assert error_code((await layer.chat(STAFF, "/status now"))[0]) == "invalid_arguments"


async def test_reset_asks_first_then_starts_a_new_thread(layer: Layer) -> None:
    before = layer.brain.llm.thread_id
    assert error_code((await layer.chat(CALLER, "/reset"))[0]) == "forbidden"
    asked, text = await layer.chat(STAFF, "/reset")
    assert asked["data"]["status"] == "confirmation_required"
    assert "/reset confirm" in text
    assert layer.brain.llm.thread_id == before
    done, text = await layer.chat(STAFF, "/reset confirm")
    assert done["data"]["status"] == "reset"
    assert done["data"]["previous_conversation_id"] == before
    assert layer.brain.llm.thread_id == done["data"]["conversation_id"] != before
    (reset_event,) = await layer.events("thread_reset")
    assert reset_event["conversation_id"] == layer.brain.llm.thread_id
    again = await layer.command(STAFF, "reset", {"confirm": True})
    assert error_code(again) == "nothing_to_confirm"


async def test_a_reset_confirmation_expires(layer: Layer) -> None:
    before = layer.brain.llm.thread_id
    await layer.chat(STAFF, "/reset")
    layer.clock.now += 61
    late, _ = await layer.chat(STAFF, "/reset confirm")
    assert error_code(late) == "nothing_to_confirm"
    assert layer.brain.llm.thread_id == before
    assert error_code((await layer.chat(STAFF, "/reset please"))[0]) == "invalid_arguments"


async def test_mode_shows_and_changes_the_reply_mode(layer: Layer) -> None:
    reply, text = await layer.chat(CALLER, "/mode")
    assert reply["data"] == {"mode": "both", "changed": False}
    reply, text = await layer.chat(CALLER, "/mode TEXT")
    assert reply["data"] == {"mode": "text", "changed": True}
    assert layer.conversation.reply_mode is ReplyMode.TEXT
    assert await layer.events("reply_mode") == [{"mode": "text"}]
    bad, text = await layer.chat(CALLER, "/mode loud")
    assert error_code(bad) == "invalid_arguments"
    assert "Usage: /mode [voice|text|both]" in text
    assert layer.conversation.reply_mode is ReplyMode.TEXT


# -- who may do what -----------------------------------------------------------------------


def test_staff_comes_only_from_attributes_the_participant_cannot_set() -> None:
    policy = AccessPolicy()

    def classify(participant: FakeParticipant) -> Sender:
        return policy.classify(
            participant.identity, participant, local_identity="agent-1", linked_identity="c"
        )

    assert classify(FakeParticipant("s", {"role": "staff"})).is_staff
    assert not classify(
        FakeParticipant("s", {"role": "staff"}, can_update_own_metadata=True)
    ).is_staff
    assert not classify(FakeParticipant("s", {"role": "guest"})).is_staff
    assert not classify(FakeParticipant("s", {"staff": "true"})).is_staff
    agent = FakeParticipant("bot", {"role": "staff"}, kind=4)
    assert classify(agent).ignored and not classify(agent).is_staff
    assert classify(FakeParticipant("c")).is_linked
    custom = AccessPolicy(role_attribute="team", staff_roles=("front-desk", "manager"))
    assert custom.is_staff(FakeParticipant("m", {"team": "manager"}))
    assert not custom.is_staff(FakeParticipant("m", {"role": "staff"}))


async def test_participants_other_than_the_caller_and_staff_are_refused(layer: Layer) -> None:
    reply = await layer.command(STRANGER, "help")
    assert error_code(reply) == "not_allowed"
    assert "caller" in reply["error"]["message"]


async def test_own_identity_and_other_agents_are_dropped_without_reply(layer: Layer) -> None:
    me = Sender("agent-1", is_linked=False, is_staff=False, is_self=True)
    bot = Sender("bot", is_linked=False, is_staff=False, is_agent=True)
    request = json.dumps({"v": 1, "id": "a", "command": "help"})
    assert await layer.dispatcher.handle_envelope(request, me) == Drop(DropReason.OWN_IDENTITY)
    assert await layer.dispatcher.handle_envelope(request, bot) == Drop(
        DropReason.AGENT_PARTICIPANT
    )


async def test_rate_limit_refuses_politely_then_drops_a_flood(tmp_path: Path) -> None:
    layer = await build_layer(tmp_path, with_store=False, limit=10)
    for _ in range(10):
        assert (await layer.command(CALLER, "help"))["ok"]
    refused, text = await layer.chat(CALLER, "/help")
    assert error_code(refused) == "rate_limited"
    assert refused["error"]["retry_after_s"] > 0
    assert text.startswith("Sorry, that's more than 10 messages in 10 seconds")
    for _ in range(9):
        assert error_code(await layer.command(CALLER, "help")) == "rate_limited"
    request = json.dumps({"v": 1, "id": "a", "command": "help"})
    assert await layer.dispatcher.handle_envelope(request, CALLER) == Drop(DropReason.RATE_FLOOD)
    # other participants have their own budget
    assert (await layer.command(STAFF, "help"))["ok"]
    layer.clock.now += 10.5
    assert (await layer.command(CALLER, "help"))["ok"]


async def test_a_failing_command_is_an_internal_error_and_the_layer_carries_on(
    layer: Layer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(layer.conversation, "status", broken)
    reply = await layer.command(STAFF, "status")
    assert error_code(reply) == "internal_error"
    assert "boom" not in reply["error"]["message"]
    assert (await layer.command(STAFF, "help"))["ok"]


async def test_typed_messages_are_screened_for_size_rate_and_emptiness(tmp_path: Path) -> None:
    layer = await build_layer(tmp_path, with_store=False, limit=2)
    screen = layer.conversation.screen
    layer.conversation.max_chat_chars = 10
    assert screen("hello", CALLER, request_id="c1") is None
    too_long = screen("x" * 11, CALLER, request_id="c2")
    assert isinstance(too_long, Reply) and too_long.chat_text
    assert check_reply(too_long.envelope)["error"]["code"] == "message_too_large"
    assert "limit is 10" in too_long.chat_text
    limited = screen("hello", CALLER, request_id="c3")
    assert isinstance(limited, Reply)
    assert check_reply(limited.envelope)["error"]["code"] == "rate_limited"
    assert screen("   ", CALLER, request_id="c4") == Drop(DropReason.EMPTY)
    layer.clock.now += 11
    layer.conversation.max_chat_chars = 20
    assert screen("hello again", CALLER, request_id="c5") is None


async def test_events_are_sent_in_order_and_a_stalled_channel_drops_new_ones() -> None:
    sent: list[str] = []
    gate = asyncio.Event()

    async def send(payload: str) -> None:
        await gate.wait()
        sent.append(payload)

    publisher = EventPublisher(send, max_queue=3)
    for index in range(5):
        publisher.emit(
            EventType.REPLY_MODE, ReplyModeData(mode=["voice", "text", "both"][index % 3])
        )
    gate.set()
    await publisher.flush()
    assert [json.loads(p)["data"]["mode"] for p in sent] == ["voice", "text", "both"]
    assert publisher.dropped == 2
    for payload in sent:
        check_event(json.loads(payload))
    await publisher.aclose()


async def test_chat_commands_tolerate_case_and_any_whitespace(layer: Layer) -> None:
    for text in ("/SEARCH wifi", "  /search\twifi", "/search\nwifi password", "/search\u3000wifi"):
        reply, _ = await layer.chat(CALLER, text)
        assert reply["ok"], (text, reply)
        assert reply["data"]["results"][0]["source"].endswith("wifi.md")


def finished(name: str, artifact: Any) -> ToolFinished:
    return ToolFinished(name, "call", "", "thread", 0.01, True, artifact=artifact)


def test_sources_come_from_the_turns_tool_results_best_first_without_duplicates() -> None:
    def cited(*items: tuple[str, int, float]) -> dict[str, Any]:
        return {
            "sources": [
                {"source": s, "chunk": c, "score": x, "text": "t " * 200} for s, c, x in items
            ]
        }

    turn = TurnSources()
    turn.add(finished("search_documents", cited(("old.md", 0, 0.9))))
    assert [s.source for s in turn.take()] == ["old.md"]  # an answer took the previous turn's
    turn.add(
        finished("search_documents", cited(("a.md", 0, 0.3), ("b.md", 1, 0.5), ("a.md", 0, 0.4)))
    )
    turn.add(
        finished(
            "answer_from_documents",
            {"sources": [{"source": "c.md", "chunk": 2, "score": 0.2, "title": "C"}]},
        )
    )
    turn.add(finished("get_property_info", {"property": {}}))
    sources = turn.take()
    assert [(s.source, s.chunk, s.score) for s in sources] == [
        ("b.md", 1, 0.5),
        ("a.md", 0, 0.4),
        ("c.md", 2, 0.2),
    ]
    assert len(sources[0].preview) <= 160
    assert sources[2].tool == "answer_from_documents"
    assert turn.take() == []
