"""Property-based fuzzing of the command layer: hundreds of generated payloads (more locally).

Random bytes, broken UTF-8, huge strings, deeply nested JSON, wrong types, unknown commands,
unknown versions, and chat lines with odd unicode go through the same entry points the room
uses. For every one: no exception escapes, the outcome is a schema-valid reply or a
documented drop (or, for plain chat text, a pass to the conversation), and afterwards the
conversation still answers.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from data_channel_fakes import small_brain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livekit.agents import Agent, AgentSession
from livekit.agents.llm import ChatMessage
from livekit.agents.voice.run_result import ChatMessageEvent, RunResult
from room_fakes import FakeRoom, check_reply

from agent.chat.channel import DataChannelConfig, attach_data_channel
from agent.chat.pipeline import (
    Drop,
    DropReason,
    Reply,
    Sender,
    is_command_text,
    unescape_chat,
)
from agent.chat.protocol import MAX_ID_CHARS, TOPIC_EVENT

# Bounded so a loaded CI core finishes well inside the timeout; raise it locally to dig deeper.
EXAMPLES = int(os.environ.get("PROTOCOL_FUZZ_EXAMPLES", "800"))
MAX_BYTES = 16 * 1024
MAX_CHAT_CHARS = 4000
COMMANDS = ["help", "search", "embed", "analyze", "workflow", "status", "reset", "mode"]
ARG_NAMES = ["query", "text", "mode", "name", "params", "answer", "confirm", "command", "k"]

SENDERS = [
    Sender("caller-1", is_linked=True, is_staff=False),
    Sender("staff-1", is_linked=False, is_staff=True),
    Sender("visitor", is_linked=False, is_staff=False),
    Sender("agent-1", is_linked=False, is_staff=False, is_self=True),
    Sender("other-agent", is_linked=False, is_staff=False, is_agent=True),
]

# -- strategies ------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["voice", "TEXT", "both ", "confirm", "", "document_qa", "\u202e"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
command_names = st.sampled_from(
    [*COMMANDS, "HELP", "he lp", "x" * 40, "ñandú", "help\x00", ""]
) | st.text(max_size=40)
args = st.dictionaries(st.sampled_from(ARG_NAMES) | st.text(max_size=8), json_values, max_size=4)
envelope_fields = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 1, 1, 2, 0, -1, "1", 1.5, True, None]) | json_values,
        "id": st.text(max_size=MAX_ID_CHARS + 20) | json_values,
        "command": command_names | json_values,
        "args": args | json_values,
        "extra": json_values,
    },
)
good_envelopes = st.builds(
    lambda i, c, a: {"v": 1, "id": i, "command": c, "args": a},
    st.text(min_size=1, max_size=MAX_ID_CHARS),
    st.sampled_from(COMMANDS),
    args,
)


def _nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return (
        '{"v": 1, "id": "n", "command": "search", "args": {"query": '
        + "[" * depth
        + "]" * depth
        + "}}"
    )


def _corrupt(data: bytes, position: int, junk: bytes) -> bytes:
    index = position % (len(data) + 1)
    return data[:index] + junk + data[index:]


@dataclass(frozen=True)
class Payload:
    kind: str  # "envelope" (agent.command) or "chat" (lk.chat)
    data: bytes | str
    sender: int
    sent_object: Any = None


# mostly the caller, so most payloads reach the parser and the commands
senders = st.sampled_from([0, 0, 0, 0, 0, 1, 1, 2, 3, 4])
valid_requests = st.builds(
    lambda i, command_args: {"v": 1, "id": i, "command": command_args[0], "args": command_args[1]},
    st.text(min_size=1, max_size=MAX_ID_CHARS),
    st.one_of(
        st.just(("help", {})),
        st.builds(lambda c: ("help", {"command": c}), st.sampled_from(COMMANDS)),
        st.builds(lambda m: ("mode", {"mode": m}), st.sampled_from(["voice", "text", "both"])),
        st.just(("mode", {})),
        st.just(("status", {})),
        st.just(("reset", {})),
        st.just(("reset", {"confirm": True})),
        st.builds(lambda t: ("search", {"query": t}), st.text(min_size=1, max_size=60)),
        st.builds(lambda t: ("analyze", {"text": t}), st.text(min_size=1, max_size=60)),
        st.just(("workflow", {})),
    ),
)
envelope_payloads = st.one_of(
    st.builds(lambda b, s: Payload("envelope", b, s), st.binary(max_size=300), senders),
    st.builds(
        lambda e, s, as_bytes: Payload(
            "envelope", json.dumps(e).encode() if as_bytes else json.dumps(e), s, e
        ),
        envelope_fields | good_envelopes | valid_requests,
        senders,
        st.booleans(),
    ),
    st.builds(
        lambda e, pos, junk, s: Payload("envelope", _corrupt(json.dumps(e).encode(), pos, junk), s),
        good_envelopes,
        st.integers(0, 10_000),
        st.sampled_from(
            [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\xe2\x82"]
        ),
        senders,
    ),
    st.builds(
        lambda n, ch, s: Payload(
            "envelope",
            json.dumps({"v": 1, "id": "huge", "command": "search", "args": {"query": ch * n}}),
            s,
        ),
        st.integers(1, 40_000),
        st.sampled_from(["x", "é", "😀", "\u200b", " "]),
        senders,
    ),
    st.builds(
        lambda d, kind, s: Payload("envelope", _nested(d, kind), s),
        st.integers(1, 5000),
        st.sampled_from(["list", "object", "args"]),
        senders,
    ),
    st.builds(
        lambda v, s: Payload("envelope", json.dumps(v), s, v),
        json_values,
        senders,
    ),
    st.builds(lambda e, s: Payload("envelope", json.dumps(e), s, e), valid_requests, senders),
)
odd_text = st.text(
    alphabet=st.characters(
        categories=["L", "M", "N", "P", "S", "Zs", "Zl", "Zp", "Cc", "Cf", "Co"],
    ),
    max_size=200,
)
chat_payloads = st.one_of(
    st.builds(lambda t, s: Payload("chat", "/" + t, s), odd_text, senders),
    st.builds(
        lambda c, t, lead, s: Payload("chat", f"{lead}/{c} {t}", s),
        st.sampled_from([*COMMANDS, "Search", "MODE", "teleport"]),
        odd_text,
        st.sampled_from(["", " ", "\t", "\n", "\u3000"]),
        senders,
    ),
    st.builds(lambda t, s: Payload("chat", t, s), odd_text, senders),
    st.builds(
        lambda n, s: Payload("chat", "/search " + "ä" * n, s), st.integers(1, 20_000), senders
    ),
)
payloads = st.one_of(envelope_payloads, chat_payloads)


def _envelope(request: dict[str, Any], sender: int = 0) -> Payload:
    return Payload("envelope", json.dumps(request), sender, request)


# one sure case per outcome the test requires, so reaching them never depends on the generator
REQUIRED_CASES = [
    Payload("envelope", b"{not json", 0),
    _envelope({"v": 1, "id": "e1", "command": "help", "extra": 1}),
    _envelope({"v": 1, "id": "e2", "command": "teleport"}),
    _envelope({"v": 1, "id": "e3", "command": "search", "args": {}}),
    _envelope({"v": 1, "id": "e4", "command": "search", "args": {"query": "x" * MAX_BYTES}}),
    _envelope({"v": 2, "id": "e5", "command": "help"}),
    _envelope({"v": 1, "id": "e6", "command": "help"}, sender=2),
    _envelope({"v": 1, "id": "e7", "command": "help"}, sender=3),
    _envelope({"v": 1, "id": "e8", "command": "help"}, sender=4),
]

# -- the layer under test --------------------------------------------------------------------


@dataclass
class Tally:
    replies: int = 0
    ok: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    to_conversation: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.replies + sum(self.drops.values()) + self.to_conversation


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


def _usable_id(sent: Any) -> str | None:
    if not isinstance(sent, dict):
        return None
    value = sent.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS else None


def _check_outcome(outcome: Any, payload: Payload, tally: Tally) -> None:
    if isinstance(outcome, Drop):
        assert isinstance(outcome.reason, DropReason)
        sender = SENDERS[payload.sender]
        if outcome.reason in (DropReason.OWN_IDENTITY, DropReason.AGENT_PARTICIPANT):
            assert sender.ignored
        tally.drops[outcome.reason.value] = tally.drops.get(outcome.reason.value, 0) + 1
        return
    assert isinstance(outcome, Reply), outcome
    check_reply(outcome.envelope)
    assert orjson.loads(outcome.payload) == outcome.envelope
    if payload.kind == "chat":
        assert isinstance(outcome.chat_text, str) and outcome.chat_text.strip()
    else:
        assert outcome.chat_text is None
    tally.replies += 1
    if outcome.ok:
        tally.ok += 1
    else:
        code = outcome.envelope["error"]["code"]
        tally.codes[code] = tally.codes.get(code, 0) + 1
        expected_id = _usable_id(payload.sent_object)
        if expected_id is not None and code not in ("invalid_json", "message_too_large"):
            assert outcome.envelope["id"] == expected_id


@pytest.mark.timeout(900)
def test_hostile_payloads_get_a_reply_or_a_documented_drop(
    runner: asyncio.Runner,
) -> None:
    brain = small_brain(model=None, tools=[])
    session: AgentSession[Any] = AgentSession(llm=brain.llm)
    runner.run(session.start(agent=Agent(instructions="You are the concierge.")))
    # the worker's own wiring on the fake room: its events reach the caller, schema-checked
    room = FakeRoom()
    config = DataChannelConfig(
        rate_limit=10**9,
        rate_window_s=1.0,
        max_command_bytes=MAX_BYTES,
        max_chat_chars=MAX_CHAT_CHARS,
        command_timeout_s=5.0,
    )
    channel = attach_data_channel(
        session,
        room,  # type: ignore[arg-type]
        graph_llm=brain.llm,
        graph=brain.graph,
        tools=[],
        caller_identity=SENDERS[0].identity,
        config=config,
    )
    dispatcher, conversation = channel.pipeline, channel.conversation
    tally = Tally()

    async def deliver(payload: Payload) -> None:
        sender = SENDERS[payload.sender]
        if payload.kind == "envelope":
            outcome: Any = await dispatcher.handle_envelope(payload.data, sender)
        else:
            assert isinstance(payload.data, str)
            text = payload.data
            if is_command_text(text):
                outcome = await dispatcher.handle_chat_command(text, sender, request_id="chat-f")
            else:
                outcome = conversation.screen(
                    unescape_chat(text).strip(),
                    sender,
                    request_id="chat-f",
                )
                if outcome is None:
                    tally.to_conversation += 1
                    return
        _check_outcome(outcome, payload, tally)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(payloads)
    def throw(payload: Payload) -> None:
        runner.run(deliver(payload))

    for case in REQUIRED_CASES:
        runner.run(deliver(case))
    throw()

    assert tally.total >= EXAMPLES
    assert tally.replies > EXAMPLES // 2
    assert tally.ok > EXAMPLES // 50
    for code in (
        "invalid_json",
        "invalid_envelope",
        "unknown_command",
        "invalid_arguments",
        "message_too_large",
        "unsupported_version",
        "not_allowed",
    ):
        assert tally.codes.get(code, 0) > 0, (code, tally.codes)
    assert tally.drops.get("own_identity", 0) > 0 and tally.drops.get("agent_participant", 0) > 0
    # every event the commands emitted reached the caller and matched the schema
    runner.run(channel.events.flush())
    assert channel.events.dropped == 0
    assert channel.events.sent == len(room.sent(TOPIC_EVENT)) > 0

    # the conversation continues: a command and a typed turn are both answered
    help_reply = runner.run(
        dispatcher.handle_envelope(b'{"v": 1, "id": "after", "command": "help"}', SENDERS[0])
    )
    assert isinstance(help_reply, Reply) and help_reply.ok
    result = runner.run(_answer(session, "Is anyone there?"))
    assert result
    runner.run(channel.aclose())
    runner.run(session.aclose())


async def _answer(session: AgentSession[Any], text: str) -> str:
    run: RunResult[None] = await session.run(user_input=text)
    replies = [
        event.item.text_content or ""
        for event in run.events
        if isinstance(event, ChatMessageEvent)
        and isinstance(event.item, ChatMessage)
        and event.item.role == "assistant"
    ]
    return " ".join(r for r in replies if r)
