"""The job entrypoint under LiveKit's `fake_job_context`, with a fake room and a fake brain.

What runs for real: metadata parsing, LiveKit's job context and participant wait, a real
`AgentSession` with LiveKit's `RoomIO` (text only: the fake room carries no media), the greeting,
the close-on-hang-up path and the shutdown callbacks. The brain and the room are stand-ins.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import pickle
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from _worker_fakes import (
    GREETINGS,
    BrainRecorder,
    ChannelRecorder,
    FakeRemoteParticipant,
    FakeRoom,
    JobRunner,
    eventually,
    text_room_options,
)
from livekit.agents import AgentSession, JobExecutorType, JobProcess
from livekit.agents.testing import fake_job_context
from livekit.plugins import silero
from prometheus_client import CollectorRegistry

from agent.logging_setup import configure_logging
from agent.metrics import WorkerMetrics
from agent.server import (
    METRICS_KEY,
    VAD_KEY,
    EntrypointDeps,
    JobEntrypoint,
    Prewarm,
    build_server,
)
from agent.settings import WorkerSettings


@dataclass
class SessionRecorder:
    """A text-only session factory that remembers whether preemptive generation was allowed."""

    allow_preemptive: list[bool] = field(default_factory=list)

    def __call__(
        self, settings: Any, *, llm: Any, vad: Any, allow_preemptive: bool
    ) -> AgentSession[Any]:
        self.allow_preemptive.append(allow_preemptive)
        return AgentSession(llm=llm, vad=None, turn_handling={"turn_detection": "manual"})


def _no_vad(settings: Any) -> None:
    return None


@dataclass
class Call:
    room: FakeRoom
    runner: JobRunner
    brain: BrainRecorder
    sessions: SessionRecorder
    channels: ChannelRecorder
    metrics: WorkerMetrics
    log: io.StringIO

    @property
    def transcripts(self) -> list[str]:
        return self.room.local_participant.transcripts

    def log_entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    out = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=out)
    yield out
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@contextlib.asynccontextmanager
async def _call(
    monkeypatch: pytest.MonkeyPatch,
    log: io.StringIO,
    *,
    metadata: str = "",
    participants: tuple[FakeRemoteParticipant, ...] = (FakeRemoteParticipant("caller-1"),),
    brain: BrainRecorder | None = None,
    settings: WorkerSettings | None = None,
) -> AsyncIterator[Call]:
    room = FakeRoom(name="room-7")
    for participant in participants:
        room.join(participant)
    brain = brain or BrainRecorder()
    sessions = SessionRecorder()
    channels = ChannelRecorder()
    deps = EntrypointDeps(
        build_brain=brain,
        build_session=sessions,
        load_vad=_no_vad,
        room_options=text_room_options,
        open_channel=channels,
    )
    metrics = WorkerMetrics(CollectorRegistry())
    with fake_job_context(room=room, job_id="job-7", job_metadata=metadata) as ctx:  # type: ignore[arg-type]
        ctx.proc.userdata[METRICS_KEY] = metrics
        runner = JobRunner(ctx, monkeypatch)
        entrypoint = JobEntrypoint(settings or WorkerSettings(_env_file=None), deps)  # type: ignore[call-arg]
        await entrypoint(ctx)
        yield Call(room, runner, brain, sessions, channels, metrics, log)


async def test_the_caller_is_greeted_in_their_language_and_the_brain_gets_the_metadata(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO
) -> None:
    metadata = {"language": "de", "property_id": "hotel-berlin", "conversation_id": "c-1"}
    async with _call(monkeypatch, json_log, metadata=json.dumps(metadata)) as call:
        await eventually(lambda: call.transcripts)
        assert call.transcripts == [GREETINGS["de"]]
        (built,) = call.brain.calls
        assert built["metadata"].property_id == "hotel-berlin"
        assert built["metadata"].language == "de"
        assert built["room_name"] == "room-7"
        assert built["caller_identity"] == "caller-1"
        assert built["registry"] is call.metrics.registry
        assert call.runner.shutdown_reasons == []
        # the caller's data channel is opened for them and welcomes them once
        assert call.channels.opened == ["caller-1"]
        assert call.channels.announced == 1
    joined = next(e for e in call.log_entries() if e["message"] == "caller joined")
    assert (joined["room"], joined["job_id"]) == ("room-7", "job-7")
    assert joined["metadata_fields"] == ["property_id", "language", "conversation_id"]
    later = [e for e in call.log_entries() if e["name"] == "livekit.agents"]
    assert later
    assert all(e.get("conversation_id") == "thread-c-1" for e in later)
    assert (
        call.metrics.registry.get_sample_value(
            "voice_agent_conversations_total", {"metadata": "ok"}
        )
        == 1
    )


async def test_caller_attributes_complete_the_dispatch(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO
) -> None:
    caller = FakeRemoteParticipant("caller-1", attributes={"language": "de", "guest_name": "Anna"})
    async with _call(
        monkeypatch, json_log, metadata='{"property_id": "p1"}', participants=(caller,)
    ) as call:
        await eventually(lambda: call.transcripts)
        assert call.transcripts == [GREETINGS["de"]]
        (built,) = call.brain.calls
        assert built["metadata"].guest_name == "Anna"
        assert built["metadata"].property_id == "p1"


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
    raw: str,
    named: str,
) -> None:
    caplog.set_level(logging.WARNING)
    async with _call(monkeypatch, json_log, metadata=raw) as call:
        await eventually(lambda: call.transcripts)
        assert call.transcripts == [GREETINGS["en"]]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert named in warnings[0].getMessage()
    assert (
        call.metrics.registry.get_sample_value(
            "voice_agent_conversations_total", {"metadata": "problems"}
        )
        == 1
    )


async def test_the_caller_named_in_the_metadata_is_the_one_served(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO
) -> None:
    participants = (FakeRemoteParticipant("observer"), FakeRemoteParticipant("guest-7"))
    async with _call(
        monkeypatch,
        json_log,
        metadata='{"caller_identity": "guest-7"}',
        participants=participants,
    ) as call:
        await eventually(lambda: call.transcripts)
        assert call.brain.calls[0]["caller_identity"] == "guest-7"
        call.room.leave("observer")
        await asyncio.sleep(0)
        assert call.runner.shutdown_reasons == []
        call.room.leave("guest-7")
        await eventually(lambda: call.runner.shutdown_reasons)
        assert call.runner.shutdown_reasons == ["session closed: participant_disconnected"]


async def test_without_a_named_caller_the_first_participant_is_served(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO
) -> None:
    participants = (FakeRemoteParticipant("first"), FakeRemoteParticipant("second"))
    async with _call(monkeypatch, json_log, participants=participants) as call:
        assert call.brain.calls[0]["caller_identity"] == "first"


async def test_a_hang_up_ends_the_job_cleanly_and_flushes_the_brain(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with _call(monkeypatch, json_log, metadata='{"conversation_id": "c-9"}') as call:
        await eventually(lambda: call.transcripts)
        assert call.brain.open_resources == 1
        call.room.leave("caller-1")
        await eventually(lambda: call.runner.shutdown_reasons)
        await call.runner.finish(call.runner.shutdown_reasons[0])
        assert call.brain.open_resources == 0
        assert call.brain.flushed == 1
        assert call.channels.closed == 1
        await call.runner.finish("again")
        assert call.brain.flushed == 1
        await asyncio.sleep(0)
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftovers == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    ended = next(e for e in call.log_entries() if e["message"] == "conversation ended")
    assert ended["conversation_id"] == "thread-c-9"
    assert ended["reason"] == "session closed: participant_disconnected"


@pytest.mark.parametrize("side_effecting", [True, False])
async def test_preemptive_generation_is_off_when_the_brain_can_act(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, side_effecting: bool
) -> None:
    brain = BrainRecorder(side_effecting=side_effecting)
    async with _call(monkeypatch, json_log, brain=brain) as call:
        assert call.sessions.allow_preemptive == [not side_effecting]


async def test_when_no_caller_comes_the_agent_leaves(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO
) -> None:
    settings = WorkerSettings(_env_file=None, CALLER_WAIT_TIMEOUT_S=0.05)  # type: ignore[call-arg]
    async with _call(monkeypatch, json_log, participants=(), settings=settings) as call:
        assert call.runner.shutdown_reasons == ["no caller"]
        assert call.brain.calls == []


class _FailingBrain(BrainRecorder):
    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        await super().__call__(*args, **kwargs)
        raise ConnectionError("checkpointer unreachable")


async def test_a_brain_that_cannot_start_is_logged_once_and_released(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    brain = _FailingBrain()
    async with _call(monkeypatch, json_log, brain=brain) as call:
        assert call.runner.shutdown_reasons == ["startup failed"]
        assert brain.open_resources == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["could not start the conversation"]
    assert (
        call.metrics.registry.get_sample_value(
            "voice_agent_errors_total", {"stage": "startup", "recoverable": "false"}
        )
        == 1
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _job_process() -> JobProcess:
    return JobProcess(executor_type=JobExecutorType.THREAD, user_arguments=None, http_proxy=None)


def _vad_must_come_from_prewarm(settings: Any) -> None:
    raise AssertionError("the entrypoint loaded VAD although prewarm had")


async def test_prewarm_loads_silero_once_and_the_entrypoint_reuses_it(
    monkeypatch: pytest.MonkeyPatch, json_log: io.StringIO
) -> None:
    settings = WorkerSettings(_env_file=None, VAD_ACTIVATION_THRESHOLD=0.6)  # type: ignore[call-arg]
    proc = _job_process()
    await asyncio.to_thread(Prewarm(settings), proc)
    vad_model = proc.userdata[VAD_KEY]
    assert isinstance(vad_model, silero.VAD)
    assert isinstance(proc.userdata[METRICS_KEY], WorkerMetrics)

    seen: list[Any] = []

    def build_session(settings: Any, *, llm: Any, vad: Any, allow_preemptive: bool) -> Any:
        seen.append(vad)
        return AgentSession(llm=llm, vad=None, turn_handling={"turn_detection": "manual"})

    room = FakeRoom()
    room.join(FakeRemoteParticipant("caller-1"))
    deps = EntrypointDeps(
        build_brain=BrainRecorder(),
        build_session=build_session,
        load_vad=_vad_must_come_from_prewarm,
        room_options=text_room_options,
        open_channel=ChannelRecorder(),
    )
    with fake_job_context(room=room) as ctx:  # type: ignore[arg-type]
        ctx._proc = proc  # a fake job has its own process object; give it the prewarmed one
        runner = JobRunner(ctx, monkeypatch)
        await JobEntrypoint(settings, deps)(ctx)
        assert seen == [vad_model]
        await runner.finish("test over")


async def test_the_worker_registers_under_agent_name_and_ships_to_job_processes(
    tmp_path: Path,
) -> None:
    port = _free_port()
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
