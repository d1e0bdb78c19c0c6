"""The page's protocol module (web/src/protocol.js) on payloads the agent's real code produces.

Replies come from the real command dispatcher, events from the real event builders; each is
checked against schemas/*.json before `node --test` reads them. The page's command envelopes
are checked the other way round: against the request schema and the agent's own parsers.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from data_channel_fakes import memory_store, small_brain, store_tools
from langchain_core.messages import ToolMessage
from livekit.agents import AgentSession
from pydantic import ValidationError
from room_fakes import REQUEST_SCHEMA, FakeRoom, check_event, check_reply

from agent.chat.channel import (
    DataChannel,
    DataChannelConfig,
    attach_data_channel,
    error_event_data,
    tool_finished_data,
    tool_started_data,
)
from agent.chat.conversation import TurnSources
from agent.chat.handlers import builtin_commands
from agent.chat.pipeline import (
    ArgumentError,
    CommandPipeline,
    Reply,
    Sender,
    decode_envelope,
)
from agent.chat.protocol import (
    EventType,
    ReplyMode,
    ReplyModeData,
    SourcesData,
    ThreadResetData,
    Welcome,
    event_envelope,
)
from agent.graph_llm.events import ToolFinished, ToolStarted
from workflows.registry import build_workflow_registry

CALLER = Sender("caller-1", is_linked=True, is_staff=False)
STAFF = Sender("staff-1", is_linked=False, is_staff=True)


async def _channel(tmp_path: Path, *, limit: int = 1000) -> tuple[DataChannel, Any, FakeRoom]:
    """The worker's data channel on a fake room; its events reach the caller, schema-checked."""
    await asyncio.to_thread(tmp_path.mkdir)
    store = await memory_store(tmp_path)
    tools = store_tools(store)
    brain = small_brain(model=None, tools=tools)
    session: AgentSession[Any] = AgentSession(llm=brain.llm)
    room = FakeRoom()
    channel = attach_data_channel(
        session,
        room,  # type: ignore[arg-type]
        graph_llm=brain.llm,
        graph=brain.graph,
        tools=tools,
        caller_identity=CALLER.identity,
        config=DataChannelConfig(rate_limit=limit, command_timeout_s=10, workflow_timeout_s=10),
        workflows=build_workflow_registry(store=store, model=None, pms=None),
        extra_providers={"embeddings": "hashing"},
    )
    return channel, tools, room


async def _reply(dispatcher: CommandPipeline, sender: Sender, request: dict[str, Any]) -> Any:
    outcome = await dispatcher.handle_envelope(json.dumps(request), sender)
    assert isinstance(outcome, Reply), outcome
    return dict(check_reply(outcome.envelope))


async def _agent_payloads(tmp_path: Path) -> dict[str, dict[str, Any]]:
    channel, tools, room = await _channel(tmp_path / "docs")
    dispatcher = channel.pipeline
    requests = {
        "help": (CALLER, {"command": "help"}),
        "help_one": (CALLER, {"command": "help", "args": {"command": "search"}}),
        "search": (CALLER, {"command": "search", "args": {"query": "wifi password"}}),
        "search_nothing": (CALLER, {"command": "search", "args": {"query": "zzqx"}}),
        "embed": (CALLER, {"command": "embed", "args": {"text": "parking gate"}}),
        "analyze_unavailable": (CALLER, {"command": "analyze", "args": {"text": "great stay"}}),
        "workflow_list": (STAFF, {"command": "workflow"}),
        "status": (STAFF, {"command": "status"}),
        "reset_ask": (STAFF, {"command": "reset"}),
        "mode_show": (CALLER, {"command": "mode"}),
        "mode_set": (CALLER, {"command": "mode", "args": {"mode": "text"}}),
        "invalid_arguments": (CALLER, {"command": "search", "args": {}}),
        "unknown_command": (CALLER, {"command": "nope"}),
        "forbidden": (CALLER, {"command": "status"}),
        "workflow_run": (
            CALLER,
            {
                "command": "workflow",
                "args": {"name": "document_qa", "params": {"question": "where can I park"}},
            },
        ),
    }
    replies = {
        name: await _reply(dispatcher, sender, {"v": 1, "id": f"w-{name}", **request})
        for name, (sender, request) in requests.items()
    }
    limited_channel, _, _ = await _channel(tmp_path / "limited", limit=1)
    limited = limited_channel.pipeline
    await _reply(limited, CALLER, {"v": 1, "id": "w-1", "command": "mode"})
    replies["rate_limited"] = await _reply(
        limited, CALLER, {"v": 1, "id": "w-2", "command": "mode"}
    )
    assert replies["rate_limited"]["error"]["code"] == "rate_limited"

    search = next(t for t in tools if t.name == "search_documents")
    call = {"type": "tool_call", "id": "c1", "name": search.name, "args": {"query": "wifi"}}
    result = await search.ainvoke(call)
    assert isinstance(result, ToolMessage)
    turn = TurnSources()
    turn.add(
        ToolFinished("search_documents", "c1", "", "t-1", 0.04, True, artifact=result.artifact)
    )
    sources = turn.take()
    assert sources
    started = ToolStarted("search_documents", "c1", "query='wifi'", "t-1", 1767225600.0)
    finished = ToolFinished("search_documents", "c1", "query='wifi'", "t-1", 0.0421, True)
    welcome = Welcome(
        agent="voice-agent",
        greeting="Hello, how can I help?",
        capabilities=["voice", "chat", "commands", "document_search"],
        commands=[s.describe() for s in builtin_commands() if CALLER.may_use(s.access)],
        reply_mode=ReplyMode.BOTH,
    )
    built = {
        "welcome": (EventType.WELCOME, welcome),
        "tool_started": (EventType.TOOL_STARTED, tool_started_data(started)),
        "tool_finished": (EventType.TOOL_FINISHED, tool_finished_data(finished)),
        "sources": (
            EventType.SOURCES,
            SourcesData(message_id="item_1", conversation_id="conv-1", sources=sources),
        ),
        "reply_mode": (EventType.REPLY_MODE, ReplyModeData(mode=ReplyMode.TEXT)),
        "thread_reset": (
            EventType.THREAD_RESET,
            ThreadResetData(conversation_id="conv-2", previous_conversation_id="conv-1"),
        ),
        "error": (
            EventType.ERROR,
            error_event_data("tts_failed", recoverable=True, source="openai/gpt-4o-mini-tts"),
        ),
    }
    events = {
        name: dict(check_event(event_envelope(kind, data).model_dump()))
        for name, (kind, data) in built.items()
    }
    await channel.events.flush()
    progress = room.events("workflow_progress")
    assert progress, "the document_qa run sent no progress"
    events["workflow_progress"] = progress[-1]
    return {"replies": replies, "events": events}


async def test_the_page_reads_every_reply_and_event_of_the_agent(
    web_project: Path, tmp_path: Path
) -> None:
    payloads = await _agent_payloads(tmp_path)
    fixtures = tmp_path / "fixtures.json"
    await asyncio.to_thread(fixtures.write_text, json.dumps(payloads), encoding="utf-8")

    result = await asyncio.to_thread(
        subprocess.run,
        ["node", "--test", "test/protocol.test.mjs"],
        cwd=web_project,
        env={**os.environ, "WEB_PROTOCOL_FIXTURES": str(fixtures)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# skipped 0" in result.stdout and "# fail 0" in result.stdout


SLASH_LINES = [
    "/help",
    "/help search",
    "/HELP   mode  ",
    "/help a b",
    "/search wifi password",
    "/search",
    "/embed   parking gate",
    "/analyze The stay was lovely but the heating failed.",
    "/workflow",
    '/workflow document_qa question="where can I park"',
    "/workflow upsell code=ALP-7826 last_name='Rossi' answer=yes",
    "/workflow a b",
    "/workflow =x",
    '/workflow document_qa question="unclosed',
    "/status",
    "/status now",
    "/reset",
    "/reset confirm",
    "/reset please",
    "/mode",
    "/mode text",
    "/mode text voice",
]


def test_the_pages_command_envelopes_are_what_the_agent_reads(web_project: Path) -> None:
    result = subprocess.run(
        ["node", "tools/envelopes.mjs"],
        cwd=web_project,
        input=json.dumps(SLASH_LINES),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    registry = {spec.name: spec for spec in builtin_commands(workflow_timeout_s=10)}

    for item in json.loads(result.stdout):
        name, _, rest = item["line"].strip()[1:].partition(" ")
        spec = registry.get(name.lower())
        assert spec is not None and spec.from_text is not None
        try:
            expected: dict[str, Any] | None = spec.from_text(rest.strip())
        except ArgumentError as exc:
            expected = None
            # the page refuses the same lines, with the agent's own reason
            assert item.get("error") == f"/{spec.name}: {exc}", item
        if expected is not None:
            envelope = item["envelope"]
            try:
                spec.args_model.model_validate(expected)
            except ValidationError:
                # e.g. `/search` alone: sent as it is, the agent answers with the usage
                assert not REQUEST_SCHEMA.is_valid(envelope), item
            else:
                REQUEST_SCHEMA.validate(envelope)
            request = decode_envelope(json.dumps(envelope).encode(), max_bytes=16384)
            assert (request.command, request.id, request.args) == (
                spec.name,
                envelope["id"],
                expected,
            ), item["line"]


@pytest.mark.parametrize("line", ["/nope", "/nope with words"])
def test_unknown_commands_are_left_to_the_agent(web_project: Path, line: str) -> None:
    result = subprocess.run(
        ["node", "tools/envelopes.mjs"],
        cwd=web_project,
        input=json.dumps([line]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    (item,) = json.loads(result.stdout)
    REQUEST_SCHEMA.validate(item["envelope"])
    assert item["envelope"]["command"] == "nope"
