"""`python -m agent` with no command picks the mode from what is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from _worker_fakes import clear_worker_env, run_agent_cli, worker_process_env

from agent.__main__ import auto_mode
from agent.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


def settings(**values: object) -> WorkerSettings:
    return WorkerSettings(_env_file=None, **values)  # type: ignore[call-arg]


def test_a_configured_livekit_server_runs_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_worker_env(monkeypatch)
    assert auto_mode(settings(LIVEKIT_URL="wss://x.livekit.cloud")) == "start"


def test_speech_keys_without_a_server_open_the_voice_console(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clear_worker_env(monkeypatch)
    keys = settings(DEEPGRAM_API_KEY="dg", OPENAI_API_KEY="sk")
    assert auto_mode(keys) == "console"


def test_nothing_configured_opens_the_text_console(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_worker_env(monkeypatch)
    assert auto_mode(settings()) == "console-text"
    assert auto_mode(settings(DEEPGRAM_API_KEY="dg", TTS_PROVIDER="openai")) == "console-text"


def test_the_bare_command_answers_a_typed_question_with_nothing_configured(
    tmp_path: Path,
) -> None:
    env = worker_process_env(DATA_DIR=str(tmp_path / "data"))
    result = run_agent_cli(
        input="Hello there!\n/quit\n",
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "text console" in result.stderr
    assert "How can I help you today?" in result.stdout  # the greeting
    assert result.stdout.count("agent>") >= 2  # greeting plus an answer to the typed line
