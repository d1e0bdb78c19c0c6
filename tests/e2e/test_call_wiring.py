"""The worker's real wiring for one call: entrypoint → real brain → data channel → session.

Only the room is a stand-in (no media server here); speech is espeak-ng; the brain is
`agent.brain.build_brain` with the embedded defaults (demo PMS, local Qdrant, hashing
embeddings, SQLite checkpointer, no chat model).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _worker_fakes import JobRunner, clear_worker_env
from livekit.agents.testing import fake_job_context
from livekit.agents.utils import http_context
from room_fakes import FakeParticipant, FakeRoom, eventually

from agent.server import JobEntrypoint
from agent.settings import WorkerSettings

CALLER = "guest-42"


async def test_a_dispatched_call_gets_greeted_welcomed_and_answers_chat_and_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_worker_env(monkeypatch)
    settings = WorkerSettings(  # type: ignore[call-arg]
        _env_file=None,
        DATA_DIR=tmp_path / "data",
        # local speech parts: espeak-ng speaks; the STT server is only called for speech
        TTS_PROVIDER="espeak",
        LOCAL_TTS_RATE=450,
        STT_PROVIDER="openai",
        STT_BASE_URL="http://127.0.0.1:9/v1",
    )
    room = FakeRoom(name="front-desk")
    room.join(FakeParticipant(CALLER))
    metadata = json.dumps({"property_id": "alpine-chalet", "language": "de"})
    async with http_context.open():
        with fake_job_context(room=room, job_id="job-1", job_metadata=metadata) as ctx:  # type: ignore[arg-type]
            runner = JobRunner(ctx, monkeypatch)
            await JobEntrypoint(settings)(ctx)
            try:
                await eventually(lambda: room.local_participant.transcripts)
                assert room.local_participant.transcripts[0].startswith("Hallo!")
                await eventually(lambda: room.events("welcome"))
                welcome = room.events("welcome")[0]["data"]
                assert "reservations" in welcome["capabilities"]

                room.type_chat(CALLER, "/help")
                await eventually(lambda: room.replies(CALLER))
                assert room.replies(CALLER)[0]["ok"] is True

                # Typed chat reaches the same graph thread as speech and is answered.
                room.type_chat(CALLER, "What is the wifi password?")
                await eventually(
                    lambda: any("matterhorn88" in t for t in room.local_participant.transcripts)
                )
            finally:
                await runner.finish("test over")
