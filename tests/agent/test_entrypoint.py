"""The real job entrypoint under LiveKit's `fake_job_context`: only the room is a stand-in.

What runs for real: metadata parsing, LiveKit's job context and participant wait, the brain
(demo PMS, embedded documents, SQLite checkpointer, no chat model), the voice `AgentSession`
with LiveKit's `RoomIO` (espeak-ng speaks into a real audio track, Silero VAD listens), the
data channel, the greeting, the close-on-hang-up path and the shutdown callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import pickle
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _worker_fakes import JobRunner, clear_worker_env, preserved_logging
from livekit.agents import AgentSession, JobExecutorType, JobProcess
from livekit.agents.testing import fake_job_context
from livekit.agents.utils import http_context
from livekit.plugins import silero
from prometheus_client import CollectorRegistry
from room_fakes import FakeParticipant, FakeRoom, eventually

from agent.brain import greeting
from agent.metadata import conversation_key, parse_dispatch_metadata
from agent.metrics import WorkerMetrics
from agent.observability import configure_logging
from agent.server import (
    METRICS_KEY,
    VAD_KEY,
    JobEntrypoint,
    Prewarm,
    build_server,
)
from agent.settings import WorkerSettings
from tests.redis_process import free_port
from workflows.checkpoint import open_checkpointer


def _voice_settings(tmp_path: Path, **extra: Any) -> WorkerSettings:
    """A voice worker on local parts: espeak-ng speaks, Silero listens, and the STT (an
    OpenAI-compatible server on loopback) is only called for speech, which never comes."""
    return WorkerSettings(  # type: ignore[call-arg]
        _env_file=None,
        DATA_DIR=tmp_path / "data",
        STT_PROVIDER="openai",
        STT_BASE_URL="http://127.0.0.1:9/v1",
        TTS_PROVIDER="espeak",
        LOCAL_TTS_RATE=450,
        **extra,
    )


@pytest.fixture(scope="module")
def silero_vad() -> Any:
    return silero.VAD.load()


@dataclass
class Call:
    room: FakeRoom
    runner: JobRunner
    metrics: WorkerMetrics
    log: io.StringIO
    settings: WorkerSettings

    @property
    def transcripts(self) -> list[str]:
        return self.room.local_participant.transcripts

    @property
    def session(self) -> AgentSession[Any]:
        return self.runner.ctx.primary_session

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    def log_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    with preserved_logging():
        configure_logging(level="INFO", fmt="json", stream=out)
        yield out


@contextlib.asynccontextmanager
async def _call(
    monkeypatch: pytest.MonkeyPatch,
    log: io.StringIO,
    settings: WorkerSettings,
    vad_model: Any,
    *,
    metadata: str = "",
    participants: tuple[FakeParticipant, ...] = (FakeParticipant("caller-1"),),
) -> AsyncIterator[Call]:
    """One job of the real entrypoint; only the room stands in for the LiveKit server."""
    clear_worker_env(monkeypatch)
    room = FakeRoom(name="room-7")
    for participant in participants:
        room.join(participant)
    metrics = WorkerMetrics(CollectorRegistry())
    # LiveKit's job process opens the plugins' HTTP session around every job
    async with http_context.open():
        with fake_job_context(room=room, job_id="job-7", job_metadata=metadata) as ctx:  # type: ignore[arg-type]
            ctx.proc.userdata[METRICS_KEY] = metrics
            if vad_model is not None:
                ctx.proc.userdata[VAD_KEY] = vad_model
            runner = JobRunner(ctx, monkeypatch)
            await JobEntrypoint(settings)(ctx)
            call = Call(room, runner, metrics, log, settings)
            try:
                yield call
            finally:
                await runner.finish("test over")


def _thread_of(metadata: str, *, caller: str = "caller-1") -> str:
    parsed, _ = parse_dispatch_metadata(metadata)
    return conversation_key(parsed, room_name="room-7", caller_identity=caller).thread_id


async def test_the_caller_is_greeted_in_their_language_and_the_brain_gets_the_metadata(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, tmp_path: Path, silero_vad: Any
) -> None:
    metadata = json.dumps(
        {"language": "de", "property_id": "alpine-chalet", "conversation_id": "c-1"}
    )
    settings = _voice_settings(tmp_path)
    async with _call(monkeypatch, json_log, settings, silero_vad, metadata=metadata) as call:
        await eventually(lambda: call.transcripts, attempts=2000)
        # spoken by the real session: espeak-ng audio on the agent's published track
        assert call.transcripts == [greeting("de")]
        assert len(call.room.local_participant.published_tracks) == 1
        assert call.runner.shutdown_reasons == []
        # the caller's data channel welcomes them once, with the brain's greeting
        await eventually(lambda: call.room.events("welcome"))
        (welcome,) = call.room.events("welcome")
        assert call.room.addressees("welcome") == [("caller-1",)]
        assert welcome["data"]["greeting"] == greeting("de")
    joined = next(e for e in call.log_entries() if e["message"] == "caller joined")
    assert (joined["room"], joined["job_id"]) == ("room-7", "job-7")
    assert joined["metadata_fields"] == ["property_id", "language", "conversation_id"]
    later = [e for e in call.log_entries() if e["name"] == "livekit.agents"]
    assert later
    assert all(e.get("conversation_id") == _thread_of(metadata) for e in later)
    assert call.metric("voice_agent_conversations_total", metadata="ok") == 1


async def test_caller_attributes_complete_the_dispatch(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, tmp_path: Path, silero_vad: Any
) -> None:
    caller = FakeParticipant("caller-1", attributes={"language": "de", "guest_name": "Anna"})
    async with _call(
        monkeypatch,
        json_log,
        _voice_settings(tmp_path),
        silero_vad,
        metadata='{"property_id": "alpine-chalet"}',
        participants=(caller,),
    ) as call:
        await eventually(lambda: call.transcripts, attempts=2000)
        assert call.transcripts == [greeting("de", guest_name="Anna")]


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("{not json", "not valid JSON"),
        ('{"language": 5}', "'language'"),
        ('{"room_number": "12"}', "unknown field 'room_number'"),
        ('{"context": {"x": "' + "y" * 20000 + '"}}', "byte limit"),
    ],
)
async def test_bad_metadata_is_one_warning_and_the_agent_still_talks(
    monkeypatch: pytest.MonkeyPatch,
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    silero_vad: Any,
    raw: str,
    named: str,
) -> None:
    caplog.set_level(logging.WARNING)
    settings = _voice_settings(tmp_path)
    async with _call(monkeypatch, json_log, settings, silero_vad, metadata=raw) as call:
        await eventually(lambda: call.transcripts, attempts=2000)
        assert call.transcripts == [greeting("en")]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert named in warnings[0].getMessage()
    assert call.metric("voice_agent_conversations_total", metadata="problems") == 1


async def test_the_caller_named_in_the_metadata_is_the_one_served(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, tmp_path: Path, silero_vad: Any
) -> None:
    participants = (FakeParticipant("observer"), FakeParticipant("guest-7"))
    async with _call(
        monkeypatch,
        json_log,
        _voice_settings(tmp_path),
        silero_vad,
        metadata='{"caller_identity": "guest-7"}',
        participants=participants,
    ) as call:
        await eventually(lambda: call.room.events("welcome"), attempts=2000)
        assert call.room.addressees("welcome")[0] == ("guest-7",)
        call.room.leave("observer")
        await asyncio.sleep(0)
        assert call.runner.shutdown_reasons == []
        call.room.leave("guest-7")
        await eventually(lambda: call.runner.shutdown_reasons)
        assert call.runner.shutdown_reasons == ["session closed: participant_disconnected"]


async def test_without_a_named_caller_the_first_participant_is_served(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, tmp_path: Path, silero_vad: Any
) -> None:
    participants = (FakeParticipant("first"), FakeParticipant("second"))
    async with _call(
        monkeypatch, json_log, _voice_settings(tmp_path), silero_vad, participants=participants
    ) as call:
        await eventually(lambda: call.room.events("welcome"), attempts=2000)
        assert call.room.addressees("welcome")[0] == ("first",)
    joined = next(e for e in call.log_entries() if e["message"] == "caller joined")
    assert joined["caller"] == "first"


async def test_a_hang_up_ends_the_job_cleanly_and_flushes_the_brain(
    monkeypatch: pytest.MonkeyPatch,
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    silero_vad: Any,
) -> None:
    caplog.set_level(logging.WARNING)
    metadata = '{"conversation_id": "c-9", "property_id": "alpine-chalet"}'
    settings = _voice_settings(tmp_path)
    async with _call(monkeypatch, json_log, settings, silero_vad, metadata=metadata) as call:
        await eventually(lambda: call.transcripts, attempts=2000)
        # a typed question reaches the graph, so the thread has state to keep
        await call.session.run(user_input="What is the wifi password?")
        call.room.leave("caller-1")
        await eventually(lambda: call.runner.shutdown_reasons)
        await call.runner.finish(call.runner.shutdown_reasons[0])
        await call.runner.finish("again")
        await asyncio.sleep(0)
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftovers == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    ended = [e for e in call.log_entries() if e["message"] == "conversation ended"]
    assert len(ended) == 1
    assert ended[0]["conversation_id"] == _thread_of(metadata)
    assert ended[0]["reason"] == "session closed: participant_disconnected"
    # the brain's checkpointer was closed and its thread is on disk for the next call
    path = settings.resolved_checkpoint_sqlite_path
    async with open_checkpointer(redis_url=None, sqlite_path=path) as saver:
        stored = await saver.aget({"configurable": {"thread_id": _thread_of(metadata)}})
    assert stored is not None
    said = [m.content for m in stored["channel_values"]["messages"] if m.type == "human"]
    assert said == ["What is the wifi password?"]


async def test_preemptive_generation_is_off_because_the_brain_can_act(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, tmp_path: Path, silero_vad: Any
) -> None:
    # the worker's PMS tools include side-effecting ones (booking an extra), so a preemptive
    # run could act before the caller finished speaking
    settings = _voice_settings(tmp_path, PREEMPTIVE_GENERATION=True)
    async with _call(monkeypatch, json_log, settings, silero_vad) as call:
        assert call.session.options.preemptive_generation["enabled"] is False


async def test_when_no_caller_comes_the_agent_leaves(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, tmp_path: Path
) -> None:
    settings = _voice_settings(tmp_path, CALLER_WAIT_TIMEOUT_S=0.05)
    async with _call(monkeypatch, json_log, settings, None, participants=()) as call:
        assert call.runner.shutdown_reasons == ["no caller"]
    assert not any(e["message"] == "brain ready" for e in call.log_entries())


async def test_a_brain_that_cannot_start_is_logged_once_and_released(
    monkeypatch: pytest.MonkeyPatch,
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    silero_vad: Any,
) -> None:
    caplog.set_level(logging.WARNING)
    # a team graph that fails to build: the brain has opened its checkpointer by then
    (tmp_path / "broken_graph.py").write_text(
        "def build_graph(model, tools, checkpointer):\n"
        "    raise ConnectionError('graph backend unreachable')\n"
    )
    settings = _voice_settings(tmp_path, AGENT_GRAPH=f"{tmp_path / 'broken_graph.py'}:build_graph")
    async with _call(monkeypatch, json_log, settings, silero_vad) as call:
        assert call.runner.shutdown_reasons == ["startup failed"]
        assert call.transcripts == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["could not start the conversation"]
    assert call.metric("voice_agent_errors_total", stage="startup", recoverable="false") == 1
    # what the brain opened was released: the SQLite file can be opened and written again
    path = settings.resolved_checkpoint_sqlite_path
    async with open_checkpointer(redis_url=None, sqlite_path=path) as saver:
        assert await saver.aget({"configurable": {"thread_id": "t"}}) is None


def _job_process() -> JobProcess:
    return JobProcess(executor_type=JobExecutorType.THREAD, user_arguments=None, http_proxy=None)


async def test_prewarm_loads_silero_once_and_the_entrypoint_reuses_it(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, tmp_path: Path
) -> None:
    settings = _voice_settings(tmp_path, VAD_ACTIVATION_THRESHOLD=0.6)
    proc = _job_process()
    await asyncio.to_thread(Prewarm(settings), proc)
    vad_model = proc.userdata[VAD_KEY]
    assert isinstance(vad_model, silero.VAD)
    assert vad_model._opts.activation_threshold == 0.6
    assert isinstance(proc.userdata[METRICS_KEY], WorkerMetrics)

    room = FakeRoom()
    room.join(FakeParticipant("caller-1"))
    async with http_context.open():
        with fake_job_context(room=room) as ctx:  # type: ignore[arg-type]
            ctx._proc = proc  # a fake job has its own process object; give it the prewarmed one
            runner = JobRunner(ctx, monkeypatch)
            await JobEntrypoint(settings)(ctx)
            assert ctx.primary_session.vad is vad_model
            await runner.finish("test over")


async def test_the_worker_registers_under_agent_name_and_ships_to_job_processes(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = WorkerSettings(_env_file=None, AGENT_NAME="front-desk", WORKER_PORT=port)  # type: ignore[call-arg]
    assert pickle.loads(pickle.dumps(JobEntrypoint(settings))).settings == settings
    assert pickle.loads(pickle.dumps(Prewarm(settings))).settings == settings

    server = build_server(settings)
    run = asyncio.create_task(server.run(devmode=True, unregistered=True))
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(400):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/worker")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.01)
    finally:
        await server.aclose()
        await run
    assert response.json()["agent_name"] == "front-desk"
