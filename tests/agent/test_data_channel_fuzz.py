"""Hostile input through the room itself: data packets, text and byte streams on
`agent.command`, and slash lines on `lk.chat`, into a running call. Every message from a
participant other than the agent gets exactly one schema-valid reply, to that participant
only; the caller's conversation goes on afterwards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from data_channel_fakes import CALLER, Call, start_call
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from room_fakes import FakeParticipant, eventually

from agent.chat.channel import DataChannelConfig
from agent.chat.pipeline import is_command_text

EXAMPLES = 400
SENDERS = (CALLER, "desk-1", "visitor", "agent-1")

texts = st.text(max_size=300)
raw_payloads = st.one_of(
    st.binary(max_size=400),
    texts.map(lambda t: t.encode()),
    st.builds(
        lambda c, a: json.dumps({"v": 1, "id": "f", "command": c, "args": a}).encode(),
        st.sampled_from(["help", "search", "embed", "mode", "status", "nope", ""]),
        st.dictionaries(st.sampled_from(["query", "text", "mode", "x"]), texts, max_size=2),
    ),
    st.integers(1, 3000).map(lambda d: ("[" * d + "]" * d).encode()),
)
messages = st.one_of(
    st.tuples(st.just("packet"), st.sampled_from(SENDERS), raw_payloads),
    st.tuples(st.just("bytes"), st.sampled_from(SENDERS), raw_payloads),
    st.tuples(st.just("text"), st.sampled_from(SENDERS), texts.map(str.encode) | raw_payloads),
    st.tuples(st.just("chat"), st.just(CALLER), texts.map(lambda t: ("/" + t).encode())),
)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


def test_hostile_room_traffic_gets_one_reply_each_and_the_call_goes_on(
    runner: asyncio.Runner, tmp_path: Path
) -> None:
    call = runner.run(
        start_call(
            tmp_path,
            participants=[FakeParticipant("desk-1", {"role": "staff"}), FakeParticipant("visitor")],
            config=DataChannelConfig(rate_limit=10**6),
        )
    )
    room = call.room
    expected: dict[str, int] = dict.fromkeys(SENDERS, 0)

    async def deliver(kind: str, sender: str, payload: bytes) -> None:
        before = len(room.replies(sender))
        if kind == "packet":
            room.publish_command(sender, payload)
        elif kind == "bytes":
            room.stream_command_bytes(sender, payload)
        elif kind == "text":
            room.stream_command(sender, payload.decode("utf-8", "replace"))
        else:
            room.type_chat(sender, payload.decode())
        if sender == "agent-1" or (kind == "chat" and not is_command_text(payload.decode())):
            # dropped (own identity), or `//text`: a literal slash for the conversation
            await call.channel.idle()
            return
        expected[sender] += 1
        await eventually(lambda: len(room.replies(sender)) == before + 1)
        await call.channel.idle()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(messages)
    def throw(message: tuple[str, str, bytes]) -> None:
        runner.run(deliver(*message))

    try:
        throw()
        for sender, count in expected.items():
            assert len(room.replies(sender)) == count
        assert all(len(sent.to) == 1 for sent in room.local_participant.sent)
        assert room.replies("agent-1") == []
        runner.run(_say(call, "Are you still there?"))
        assert any(
            "You said: Are you still there?" in t for t in room.local_participant.transcripts
        )
    finally:
        runner.run(call.channel.aclose())
        runner.run(call.session.aclose())


async def _say(call: Call, text: str) -> None:
    await call.say(text)
