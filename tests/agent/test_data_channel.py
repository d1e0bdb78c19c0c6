"""The data channel end to end: a real AgentSession with LiveKit's RoomIO on a fake room,
the real assistant graph (scripted chat model, real knowledge tools on in-memory Qdrant)
behind GraphLLM, and the data channel attached as the worker attaches it.

The fake room validates every reply and event against the JSON Schemas as it is sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from data_channel_fakes import (
    CALLER,
    WIFI_ANSWER,
    Call,
    start_call,
)
from graph_fakes import room_rate_tool
from langchain_core.messages import AIMessage
from livekit.agents import AgentSession, llm, stt, tts
from livekit.agents.voice.events import ErrorEvent
from room_fakes import FakeParticipant, eventually

from agent.chat.channel import DataChannelConfig, attach_data_channel
from agent.chat.protocol import TOPIC_CHAT, TOPIC_EVENT


@pytest.fixture
async def call(tmp_path: Path) -> AsyncIterator[Call]:
    started = await start_call(tmp_path)
    yield started
    await started.channel.aclose()
    await started.session.aclose()


@pytest.fixture
async def staffed_call(tmp_path: Path) -> AsyncIterator[Call]:
    started = await start_call(
        tmp_path,
        participants=[
            FakeParticipant("desk-1", {"role": "staff"}),
            FakeParticipant("forger", {"role": "staff"}, can_update_own_metadata=True),
            FakeParticipant("visitor"),
        ],
    )
    yield started
    await started.channel.aclose()
    await started.session.aclose()


# -- welcome ---------------------------------------------------------------------------------


async def test_the_caller_is_welcomed_with_what_the_agent_can_do(call: Call) -> None:
    await eventually(lambda: call.room.events("welcome"))
    sent = call.room.sent(TOPIC_EVENT)
    assert all(s.to == (CALLER,) for s in sent)
    welcome = call.room.events("welcome")[0]["data"]
    assert welcome["greeting"] == "Hello!"
    assert {"document_search", "embedding_analysis", "text_analysis", "workflows"} <= set(
        welcome["capabilities"]
    )
    assert [c["name"] for c in welcome["commands"]] == [
        "help",
        "search",
        "embed",
        "analyze",
        "workflow",
        "mode",
    ]
    assert welcome["protocol"]["topics"] == {
        "chat": "lk.chat",
        "command": "agent.command",
        "reply": "agent.reply",
        "event": "agent.event",
    }
    call.room.join(FakeParticipant(CALLER))  # the caller reconnects
    await eventually(lambda: len(call.room.events("welcome")) == 2)


# -- typed chat ------------------------------------------------------------------------------


async def test_typed_text_and_speech_share_one_conversation_thread(call: Call) -> None:
    call.room.type_chat(CALLER, "What's the Wi-Fi password?")
    await eventually(lambda: any(WIFI_ANSWER in t for t in call.room.local_participant.transcripts))
    await call.say("Thanks! And how are you?")
    assert await call.humans() == ["What's the Wi-Fi password?", "Thanks! And how are you?"]
    thread = await call.thread()
    answers = [m.content for m in thread if isinstance(m, AIMessage) and m.content]
    assert answers == [WIFI_ANSWER, "You said: Thanks! And how are you?"]
    assert call.user_items() == ["What's the Wi-Fi password?", "Thanks! And how are you?"]


async def test_tool_progress_and_sources_reach_the_caller_as_events(call: Call) -> None:
    call.room.type_chat(CALLER, "wifi?")
    await eventually(lambda: call.room.events("sources"))
    started = call.room.events("tool_started")[0]["data"]
    finished = call.room.events("tool_finished")[0]["data"]
    assert started["name"] == finished["name"] == "search_documents"
    assert started["call_id"] == finished["call_id"]
    assert "wifi password" in started["args_summary"]
    assert finished["ok"] is True and finished["duration_s"] >= 0
    sources = call.room.events("sources")[0]["data"]
    assert sources["conversation_id"] == call.brain.llm.thread_id
    best = sources["sources"][0]
    assert best["source"].endswith("wifi.md")
    assert best["chunk"] == 0 and best["score"] > 0 and "sunflower42" in best["preview"]
    assert best["tool"] == "search_documents"
    assert not call.room.events("error")


async def test_an_answer_without_documents_sends_no_sources_event(call: Call) -> None:
    await call.say("hello there")
    await call.channel.events.flush()
    assert call.room.events("sources") == []


async def test_a_double_slash_sends_a_literal_slash_to_the_conversation(call: Call) -> None:
    call.room.type_chat(CALLER, "//etc is a folder")
    await eventually(lambda: call.user_items() == ["/etc is a folder"])
    assert call.room.sent("agent.reply") == []


async def test_messages_from_other_participants_in_lk_chat_are_ignored(staffed_call: Call) -> None:
    staffed_call.room.type_chat("visitor", "hello?")
    staffed_call.room.type_chat("desk-1", "/status")
    await staffed_call.say("hi")
    assert staffed_call.user_items() == ["hi"]
    assert staffed_call.room.sent("agent.reply") == []


async def test_an_overlong_typed_message_is_refused_politely(tmp_path: Path) -> None:
    call = await start_call(tmp_path, config=DataChannelConfig(max_chat_chars=50))
    try:
        call.room.type_chat(CALLER, "x" * 51)
        await eventually(lambda: call.room.chats(CALLER))
        assert "limit is 50" in call.room.chats(CALLER)[0]
        assert call.room.replies(CALLER)[0]["error"]["code"] == "message_too_large"
        assert call.user_items() == []
    finally:
        await call.channel.aclose()
        await call.session.aclose()


# -- slash commands in the chat --------------------------------------------------------------


async def test_a_slash_command_is_answered_to_the_sender_and_not_to_the_conversation(
    call: Call,
) -> None:
    call.room.type_chat(CALLER, "/search where do I park")
    await eventually(lambda: call.room.chats(CALLER))
    reply = call.room.replies(CALLER)[0]
    assert reply["ok"] and reply["command"] == "search"
    assert reply["id"].startswith("chat-")
    assert reply["data"]["results"][0]["source"].endswith("parking.md")
    chat = call.room.sent(TOPIC_CHAT)
    assert [s.to for s in chat] == [(CALLER,)]
    assert "Parking" in chat[0].text and "score" in chat[0].text
    assert call.user_items() == []
    assert await call.humans() == []


async def test_bad_slash_commands_get_a_clear_reply(call: Call) -> None:
    for text in ("/teleport me", "/", "/search", "/mode loud"):
        call.room.type_chat(CALLER, text)
    await eventually(lambda: len(call.room.chats(CALLER)) == 4)
    codes = sorted(r["error"]["code"] for r in call.room.replies(CALLER))
    assert codes == ["invalid_arguments", "invalid_arguments", "unknown_command", "unknown_command"]
    chats = call.room.chats(CALLER)
    assert any("Usage: /search <query>" in c for c in chats)
    assert any("type /help" in c for c in chats)


# -- JSON commands ---------------------------------------------------------------------------


async def test_json_commands_work_as_text_stream_byte_stream_and_data_packet(call: Call) -> None:
    request = {"v": 1, "id": "s1", "command": "embed", "args": {"text": "parking gate code"}}
    call.room.stream_command(CALLER, request, chunk=7)
    call.room.stream_command_bytes(CALLER, json.dumps({**request, "id": "b1"}).encode())
    call.room.publish_command(CALLER, json.dumps({**request, "id": "p1"}).encode())
    await eventually(lambda: len(call.room.replies(CALLER)) == 3)
    replies = {r["id"]: r for r in call.room.replies(CALLER)}
    assert set(replies) == {"s1", "b1", "p1"}
    assert all(
        r["ok"] and r["data"]["nearest"][0]["source"].endswith("parking.md")
        for r in replies.values()
    )
    assert call.room.sent(TOPIC_CHAT) == []


async def test_packets_without_a_sender_or_on_other_topics_get_no_reply(call: Call) -> None:
    request = json.dumps({"v": 1, "id": "x", "command": "help"}).encode()
    call.room.publish_command(None, request)
    call.room.publish_command(CALLER, request, topic="something.else")
    call.room.publish_command(
        CALLER, json.dumps({"v": 1, "id": "last", "command": "help"}).encode()
    )
    await eventually(lambda: call.room.replies(CALLER))
    assert [r["id"] for r in call.room.replies(CALLER)] == ["last"]


async def test_an_oversized_command_stream_is_cut_off_and_refused(call: Call) -> None:
    reader = call.room.stream_command(CALLER, "x" * 100_000, chunk=1000)
    await eventually(lambda: call.room.replies(CALLER))
    assert call.room.replies(CALLER)[0]["error"]["code"] == "message_too_large"
    assert reader.closed and reader.read_chunks < 20


async def test_staff_may_use_staff_commands_from_their_own_identity(staffed_call: Call) -> None:
    room = staffed_call.room
    room.stream_command("desk-1", {"v": 1, "id": "st", "command": "status"})
    room.stream_command("forger", {"v": 1, "id": "st", "command": "status"})
    room.stream_command(CALLER, {"v": 1, "id": "st", "command": "status"})
    room.stream_command("visitor", {"v": 1, "id": "st", "command": "help"})
    room.stream_command("agent-1", {"v": 1, "id": "st", "command": "help"})
    await eventually(
        lambda: all(room.replies(who) for who in ("desk-1", "forger", CALLER, "visitor"))
    )
    status = room.replies("desk-1")[0]
    assert status["ok"] and status["data"]["conversation_id"] == staffed_call.brain.llm.thread_id
    assert status["data"]["providers"]["llm"].startswith("langgraph/")
    assert room.replies("forger")[0]["error"]["code"] == "not_allowed"
    assert room.replies(CALLER)[0]["error"]["code"] == "forbidden"
    assert room.replies("visitor")[0]["error"]["code"] == "not_allowed"
    assert room.replies("agent-1") == []
    for sent in room.local_participant.sent:
        assert len(sent.to) == 1


async def test_status_reports_turns_and_the_last_turn_latency(staffed_call: Call) -> None:
    await staffed_call.say("hello")
    staffed_call.room.stream_command("desk-1", {"v": 1, "id": "st", "command": "status"})
    await eventually(lambda: staffed_call.room.replies("desk-1"))
    data = staffed_call.room.replies("desk-1")[0]["data"]
    assert data["turns"] == 1
    latency = data["last_turn_latency"]
    assert latency["graph_time"] > 0 and latency["total_time"] >= latency["graph_time"]


async def test_reset_moves_the_conversation_to_a_new_thread(staffed_call: Call) -> None:
    await staffed_call.say("first question")
    old = staffed_call.brain.llm.thread_id
    room = staffed_call.room
    room.stream_command("desk-1", {"v": 1, "id": "r1", "command": "reset"})
    await eventually(lambda: len(room.replies("desk-1")) == 1)
    assert staffed_call.brain.llm.thread_id == old
    room.stream_command(
        "desk-1", {"v": 1, "id": "r2", "command": "reset", "args": {"confirm": True}}
    )
    await eventually(lambda: len(room.replies("desk-1")) == 2)
    new = room.replies("desk-1")[1]["data"]["conversation_id"]
    assert staffed_call.brain.llm.thread_id == new != old
    assert room.events("thread_reset")[0]["data"]["previous_conversation_id"] == old
    room.type_chat(CALLER, "second question")
    await eventually(lambda: len(staffed_call.user_items()) == 2)
    await eventually(
        lambda: any("second question" in t for t in room.local_participant.transcripts)
    )
    assert await staffed_call.humans(new) == ["second question"]
    assert await staffed_call.humans(old) == ["first question"]


async def test_workflow_progress_events_reach_the_caller(call: Call) -> None:
    call.room.stream_command(
        CALLER,
        {
            "v": 1,
            "id": "w1",
            "command": "workflow",
            "args": {"name": "document_qa", "params": {"question": "when is check-out"}},
        },
    )
    await eventually(lambda: call.room.replies(CALLER))
    reply = call.room.replies(CALLER)[0]
    assert reply["data"]["status"] == "finished"
    assert "11 am" in reply["data"]["result"]["answer"]
    await call.channel.events.flush()
    progress = [e["data"] for e in call.room.events("workflow_progress")]
    assert progress[0]["status"] == "started" and progress[-1]["status"] == "finished"
    assert {p["request_id"] for p in progress} == {"w1"}


async def test_commands_are_rate_limited_per_participant(tmp_path: Path) -> None:
    call = await start_call(tmp_path, config=DataChannelConfig(rate_limit=3, rate_window_s=60))
    try:
        for index in range(3):
            call.room.publish_command(
                CALLER, json.dumps({"v": 1, "id": f"h{index}", "command": "help"}).encode()
            )
        await eventually(lambda: len(call.room.replies(CALLER)) == 3)
        call.room.type_chat(CALLER, "are you there?")
        await eventually(lambda: call.room.chats(CALLER))
        assert call.room.chats(CALLER)[0].startswith("Sorry, that's more than 3 messages")
        assert call.room.replies(CALLER)[-1]["error"]["code"] == "rate_limited"
        assert call.user_items() == []
    finally:
        await call.channel.aclose()
        await call.session.aclose()


# -- reply modes -----------------------------------------------------------------------------


async def _typed_turn(call: Call, text: str, answers: int) -> None:
    call.room.type_chat(CALLER, text)
    await eventually(
        lambda: sum(1 for m in call.session.history.messages() if m.role == "assistant") == answers
    )
    await eventually(lambda: not call.channel.typed_reply_in_progress)


async def test_reply_mode_decides_how_typed_messages_are_answered(tmp_path: Path) -> None:
    call = await start_call(tmp_path, with_audio=True)
    assert call.tts is not None
    try:
        transcripts = call.room.local_participant.transcripts
        await _typed_turn(call, "one", 1)
        assert [r.text for r in call.tts.requests] == ["You said: one"]
        assert any("You said: one" in t for t in transcripts)

        call.room.type_chat(CALLER, "/mode text")
        await eventually(lambda: call.room.replies(CALLER))
        await _typed_turn(call, "two", 2)
        assert [r.text for r in call.tts.requests] == ["You said: one"]
        await eventually(lambda: any("You said: two" in t for t in transcripts))

        call.room.publish_command(
            CALLER, b'{"v": 1, "id": "m", "command": "mode", "args": {"mode": "voice"}}'
        )
        await eventually(lambda: len(call.room.replies(CALLER)) == 2)
        await _typed_turn(call, "three", 3)
        assert call.tts.requests[-1].text == "You said: three"
        assert not any("You said: three" in t for t in transcripts)

        # a spoken turn always gets voice and transcript
        await call.say("four")
        await eventually(lambda: any("You said: four" in t for t in transcripts))
        assert call.tts.requests[-1].text == "You said: four"
        assert call.session.output.audio_enabled and call.session.output.transcription_enabled
        assert [e["data"]["mode"] for e in call.room.events("reply_mode")] == ["text", "voice"]
    finally:
        await call.channel.aclose()
        await call.session.aclose()


# -- errors ----------------------------------------------------------------------------------


async def test_a_failing_tool_is_reported_with_the_tool_failed_code(tmp_path: Path) -> None:
    call = await start_call(tmp_path, extra_tools=[room_rate_tool(fail=True)])
    try:
        await call.say("what's the rate for a suite")
        await eventually(lambda: call.room.events("error"))
        error = call.room.events("error")[0]["data"]
        assert error["code"] == "tool_failed" and error["source"] == "room_rate"
        assert "rate service unavailable" in error["detail"]
        finished = call.room.events("tool_finished")[0]["data"]
        assert finished["ok"] is False
    finally:
        await call.channel.aclose()
        await call.session.aclose()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (llm.LLMError, "llm_failed"),
        (stt.STTError, "stt_failed"),
        (tts.TTSError, "tts_failed"),
    ],
)
async def test_session_errors_become_events_with_stable_codes(
    call: Call, error: Any, code: str
) -> None:
    failure = error(
        timestamp=time.time(), label="provider", error=RuntimeError("x"), recoverable=False
    )
    call.session.emit("error", ErrorEvent(error=failure, source=call.brain.llm))
    await eventually(lambda: call.room.events("error"))
    data = call.room.events("error")[0]["data"]
    assert data["code"] == code and data["recoverable"] is False
    assert data["source"].startswith("langgraph/")


async def test_failed_sends_are_logged_and_the_channel_keeps_working(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    call.room.local_participant.fail_sends = True
    call.room.publish_command(CALLER, b'{"v": 1, "id": "a", "command": "help"}')
    await eventually(lambda: "could not send on agent.reply" in caplog.text)
    call.room.local_participant.fail_sends = False
    call.room.publish_command(CALLER, b'{"v": 1, "id": "b", "command": "help"}')
    await eventually(lambda: call.room.replies(CALLER))
    assert [r["id"] for r in call.room.replies(CALLER)] == ["b"]


async def test_closing_the_channel_detaches_it_from_the_room(call: Call) -> None:
    await call.channel.aclose()
    assert "agent.command" not in call.room.text_handlers
    assert "agent.command" not in call.room.byte_handlers
    call.room.publish_command(CALLER, b'{"v": 1, "id": "a", "command": "help"}')
    await call.say("still talking")
    assert call.room.replies(CALLER) == []


async def test_attaching_to_a_plain_llm_is_refused_with_a_clear_error(call: Call) -> None:
    class PlainLLM(llm.LLM):
        def chat(self, **_: Any) -> Any:
            raise NotImplementedError

    with pytest.raises(TypeError, match="needs a GraphLLM"):
        attach_data_channel(
            AgentSession(),
            call.room,  # type: ignore[arg-type]
            graph_llm=PlainLLM(),  # type: ignore[arg-type]
            graph=call.brain.graph,
            tools=call.brain.tools,
            caller_identity=CALLER,
        )
