"""The data channel on the worker's real brain (`agent.brain.build_brain`): the wiring the
worker uses, with the embedded defaults (hashing embeddings, local Qdrant, demo PMS, SQLite
checkpointer, no chat model)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _worker_fakes import clear_worker_env
from data_channel_fakes import HOUSE_DOCS
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.room_io import RoomOptions
from room_fakes import FakeParticipant, FakeRoom, eventually

from agent.brain import Brain, build_brain
from agent.chat.channel import DataChannel, channel_for_brain
from agent.metadata import DispatchMetadata
from agent.settings import WorkerSettings
from tools.documents import build_document_store

CALLER = "guest-7"


@pytest.fixture
async def wired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FakeRoom, Brain, DataChannel]]:
    clear_worker_env(monkeypatch)
    settings = WorkerSettings(
        _env_file=None,  # type: ignore[call-arg]
        DATA_DIR=tmp_path / "data",
        EMBEDDINGS_PROVIDER="hashing",
        SEARCH_MIN_SCORE=0.08,
    )
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in HOUSE_DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    async with contextlib.AsyncExitStack() as stack:
        brain = await build_brain(
            settings, DispatchMetadata(), room_name="room-9", caller_identity=CALLER, stack=stack
        )
        # the worker only reads; the ingest CLI's store publishes and the brain picks it up
        writer = build_document_store(settings.document_store_config())
        await writer.ingest([docs])
        await writer.aclose()
        room = FakeRoom()
        room.join(FakeParticipant(CALLER))
        room.join(FakeParticipant("desk-1", {"role": "staff"}))
        session: AgentSession[Any] = AgentSession(
            llm=brain.llm, vad=None, turn_handling={"turn_detection": "manual"}
        )
        # the worker's own wiring for a call
        channel = channel_for_brain(
            session,
            room,  # type: ignore[arg-type]
            brain=brain,
            caller_identity=CALLER,
            settings=settings,
        )
        stack.push_async_callback(session.aclose)
        stack.push_async_callback(channel.aclose)
        await session.start(  # type: ignore[call-overload]
            agent=Agent(instructions=brain.instructions),
            room=room,
            room_options=channel.room_options(
                RoomOptions(participant_identity=CALLER, audio_input=False, audio_output=False)
            ),
        )
        await channel.announce()
        yield room, brain, channel


async def test_the_real_brain_serves_commands_and_typed_chat(
    wired: tuple[FakeRoom, Brain, DataChannel],
) -> None:
    room, brain, _ = wired
    await eventually(lambda: room.events("welcome"))
    welcome = room.events("welcome")[0]["data"]
    assert {"document_search", "reservations", "upsells", "workflows"} <= set(
        welcome["capabilities"]
    )
    assert "text_analysis" not in welcome["capabilities"]

    room.type_chat(CALLER, "/search wifi password")
    room.type_chat(CALLER, "/analyze great stay")
    room.stream_command("desk-1", {"v": 1, "id": "s", "command": "status"})
    room.stream_command("desk-1", {"v": 1, "id": "w", "command": "workflow"})
    await eventually(lambda: len(room.replies(CALLER)) == 2 and len(room.replies("desk-1")) == 2)
    search = next(r for r in room.replies(CALLER) if r["command"] == "search")
    assert search["data"]["results"][0]["source"].endswith("wifi.md")
    analyze = next(r for r in room.replies(CALLER) if r["command"] == "analyze")
    assert analyze["error"]["code"] == "unavailable"
    status, listing = room.replies("desk-1")
    assert status["data"]["conversation_id"] == brain.thread_id
    assert status["data"]["providers"]["pms"] == "demo"
    assert status["data"]["providers"]["embeddings"] == brain.providers["embeddings"]
    assert [w["name"] for w in listing["data"]["workflows"]] == [
        "document_qa",
        "upsell",
        "gap_nights",
    ]

    room.type_chat(CALLER, "What is the wifi password?")
    await eventually(lambda: any("sunflower42" in t for t in room.local_participant.transcripts))
    # without a chat model the fallback responder looks things up itself: progress is reported
    await eventually(lambda: room.events("tool_finished"))
    finished = room.events("tool_finished")[0]["data"]
    assert finished["ok"] is True
    assert finished["name"] in {"search_documents", "answer_from_documents"}
