"""Project metrics: what a running call records, and where Prometheus scrapes it."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from audio_fakes import ScriptedLLM
from livekit.agents import Agent, AgentSession
from livekit.agents.stt import STTError
from livekit.agents.tts import TTSError
from livekit.agents.voice.events import ErrorEvent
from prometheus_client import CollectorRegistry

from agent.graph_llm import ToolFinished
from agent.metrics import WorkerMetrics
from agent.server import build_server
from agent.settings import WorkerSettings
from tests.redis_process import free_port


def _echo() -> ScriptedLLM:
    return ScriptedLLM(lambda text: f"You said: {text}")


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def text_session() -> AsyncIterator[AgentSession[Any]]:
    session: AgentSession[Any] = AgentSession(
        llm=_echo(), vad=None, turn_handling={"turn_detection": "manual"}
    )
    await session.start(agent=Agent(instructions="test"))
    yield session
    await session.aclose()


async def test_turns_are_counted_by_speaker(text_session: AgentSession[Any]) -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.observe_session(text_session)
    await text_session.run(user_input="what time is breakfast?")
    await text_session.run(user_input="and checkout?")
    registry = metrics.registry
    assert _value(registry, "voice_agent_turns_total", role="user", interrupted="false") == 2
    assert _value(registry, "voice_agent_turns_total", role="assistant", interrupted="false") == 2


def _error_event(error: Any) -> ErrorEvent:
    return ErrorEvent(error=error, source=None)


async def test_errors_are_counted_by_stage(text_session: AgentSession[Any]) -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.observe_session(text_session)
    cause = RuntimeError("provider down")
    text_session.emit(
        "error",
        _error_event(STTError(timestamp=0.0, label="stt", error=cause, recoverable=True)),
    )
    text_session.emit(
        "error",
        _error_event(TTSError(timestamp=0.0, label="tts", error=cause, recoverable=False)),
    )
    text_session.emit("error", _error_event(cause))
    registry = metrics.registry
    assert _value(registry, "voice_agent_errors_total", stage="stt", recoverable="true") == 1
    assert _value(registry, "voice_agent_errors_total", stage="tts", recoverable="false") == 1
    assert _value(registry, "voice_agent_errors_total", stage="session", recoverable="false") == 1


def test_tool_calls_and_their_latency_come_from_graph_llm_events() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    graph_llm = _echo()
    metrics.observe_tools(graph_llm)
    for duration, ok in ((0.04, True), (0.3, True), (2.0, False)):
        graph_llm.emit(  # type: ignore[call-overload]
            "tool_finished",
            ToolFinished(
                name="search_documents",
                call_id="c1",
                args_summary="query='spa'",
                thread_id="t1",
                duration=duration,
                ok=ok,
            ),
        )
    registry = metrics.registry
    tool = "search_documents"
    assert _value(registry, "voice_agent_tool_calls_total", tool=tool, outcome="ok") == 2
    assert _value(registry, "voice_agent_tool_calls_total", tool=tool, outcome="error") == 1
    assert _value(registry, "voice_agent_tool_call_duration_seconds_count", tool=tool) == 3
    assert _value(
        registry, "voice_agent_tool_call_duration_seconds_sum", tool=tool
    ) == pytest.approx(2.34)
    assert (
        _value(registry, "voice_agent_tool_call_duration_seconds_bucket", tool=tool, le="0.05") == 1
    )
    assert _value(registry, "voice_agent_errors_total", stage="tool", recoverable="true") == 1


def test_each_registry_keeps_its_own_values() -> None:
    first, second = WorkerMetrics(CollectorRegistry()), WorkerMetrics(CollectorRegistry())
    first.conversation_started(metadata_ok=True)
    second.conversation_started(metadata_ok=False)
    second.conversation_started(metadata_ok=False)
    assert _value(first.registry, "voice_agent_conversations_total", metadata="ok") == 1
    assert _value(second.registry, "voice_agent_conversations_total", metadata="problems") == 2
    assert _value(first.registry, "voice_agent_conversations_total", metadata="problems") == 0


_JOB_PROCESS = textwrap.dedent(
    """
    from prometheus_client import CollectorRegistry
    from agent.metrics import WorkerMetrics

    metrics = WorkerMetrics(CollectorRegistry())
    metrics.turn("user")
    metrics.tool_call("get_reservation", duration_s=0.2, ok=True)
    metrics.error("stt", recoverable=True)
    """
)


async def test_job_process_metrics_are_served_on_livekits_prometheus_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    multiproc_dir = tmp_path / "prometheus"
    # the worker exports this for its job processes; monkeypatch restores it afterwards
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir))
    port = free_port()
    settings = WorkerSettings(  # type: ignore[call-arg]
        _env_file=None, PROMETHEUS_PORT=port, PROMETHEUS_MULTIPROC_DIR=multiproc_dir
    )
    server = build_server(settings)
    run = asyncio.create_task(server.run(devmode=True, unregistered=True))
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(200):
                try:
                    await client.get(f"http://127.0.0.1:{port}/metrics")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            # a child process stands in for a job process recording one call
            job = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _JOB_PROCESS,
                env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)},
            )
            assert await asyncio.wait_for(job.wait(), 60) == 0
            body = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        await server.aclose()
        await run
    assert 'voice_agent_turns_total{interrupted="false",role="user"} 1.0' in body
    assert 'voice_agent_tool_calls_total{outcome="ok",tool="get_reservation"} 1.0' in body
    assert 'voice_agent_errors_total{recoverable="true",stage="stt"} 1.0' in body
