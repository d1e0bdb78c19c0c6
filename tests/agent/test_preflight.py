"""Start-up checks, and a call that goes on when Redis is down."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from _worker_fakes import WorkerBrain, clear_worker_env, run_agent_cli, worker_process_env
from langchain_core.messages import HumanMessage

from agent.settings import SettingsError, WorkerSettings, preflight
from tests.redis_process import RedisProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def closed_port_url() -> str:
    return f"redis://:hunter2@127.0.0.1:{free_port()}/0"


async def test_a_demo_pms_path_that_is_a_directory_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_worker_env(monkeypatch)
    settings = WorkerSettings(_env_file=None, PMS_DEMO_PATH=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(SettingsError, match="PMS_DEMO_PATH"):
        await preflight(settings)


async def test_an_unreachable_redis_is_a_warning_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_worker_env(monkeypatch)
    settings = WorkerSettings(  # type: ignore[call-arg]
        _env_file=None, DATA_DIR=tmp_path, REDIS_URL=closed_port_url()
    )
    (warning,) = await preflight(settings)
    assert "REDIS_URL" in warning and "hunter2" not in warning


async def test_a_reachable_redis_with_aof_gives_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_redis: Callable[..., RedisProcess]
) -> None:
    clear_worker_env(monkeypatch)
    redis = start_redis("--appendonly", "yes")
    settings = WorkerSettings(_env_file=None, DATA_DIR=tmp_path, REDIS_URL=redis.url)  # type: ignore[call-arg]
    assert await preflight(settings) == []


async def test_a_redis_without_aof_is_warned_about_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_redis: Callable[..., RedisProcess]
) -> None:
    clear_worker_env(monkeypatch)
    redis = start_redis("--appendonly", "no", "--requirepass", "hunter2")
    url = redis.url.replace("redis://", "redis://:hunter2@")
    settings = WorkerSettings(_env_file=None, DATA_DIR=tmp_path, REDIS_URL=url)  # type: ignore[call-arg]
    (warning,) = await preflight(settings)
    assert "appendonly no" in warning and "AOF" in warning and "hunter2" not in warning


async def test_a_redis_that_refuses_config_is_not_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_redis: Callable[..., RedisProcess]
) -> None:
    clear_worker_env(monkeypatch)
    # like managed Redis: CONFIG is not available to clients
    redis = start_redis("--appendonly", "no", "--rename-command", "CONFIG", "")
    settings = WorkerSettings(_env_file=None, DATA_DIR=tmp_path, REDIS_URL=redis.url)  # type: ignore[call-arg]
    assert await preflight(settings) == []


async def test_the_call_still_talks_when_redis_is_down(
    tmp_path: Path, worker_brain: WorkerBrain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with worker_brain(DATA_DIR=tmp_path, REDIS_URL=closed_port_url()) as brain:
        assert brain.redis is None
        assert brain.providers["checkpointer"] == "AsyncSqliteSaver"
        state = await brain.graph.ainvoke(
            {
                "messages": [HumanMessage("What's the wifi password?")],
                "context": {"property_id": "casa-del-sol"},
            },
            {"configurable": {"thread_id": brain.thread_id}},
        )
        assert "paella-sunset" in state["messages"][-1].content
    assert any("REDIS_URL" in r.getMessage() for r in caplog.records)
    assert not any("hunter2" in r.getMessage() for r in caplog.records)


def test_the_cli_refuses_to_start_with_a_pms_that_cannot_work(tmp_path: Path) -> None:
    env = worker_process_env(PMS_DEMO_PATH=str(tmp_path), PYTHONPATH=str(ROOT))
    result = run_agent_cli("console", "--text", cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("voice-agent: invalid PMS configuration: PMS_DEMO_PATH")
    assert "Traceback" not in result.stderr
