"""`python -m agent`: commands, and start-up failures that read as one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from _worker_fakes import clear_worker_env, preserved_logging
from whisper_model import bundled_whisper_model

from agent.__main__ import main
from tests.redis_process import free_port

SECRET = "lk-secret-never-print-me"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a clean environment and an empty directory (so no `.env` is picked up)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=tmp_path,
        env={**base, "DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("voice-agent: ")
    return lines[0]


@pytest.mark.parametrize("command", ["start", "dev"])
def test_the_worker_without_livekit_settings_fails_with_one_line(
    tmp_path: Path, command: str
) -> None:
    line = _one_line(_run(tmp_path, command, LIVEKIT_API_SECRET=SECRET))
    assert f"cannot run `{command}`" in line
    assert "LIVEKIT_URL is not set" in line
    assert "LIVEKIT_API_KEY is not set" in line
    assert "LIVEKIT_API_SECRET" not in line
    # no speech key: auto falls back to local Whisper (installed in the dev environment)
    assert "found no DEEPGRAM_API_KEY or OPENAI_API_KEY" in line
    assert "download-files" in line
    assert SECRET not in line


def test_an_invalid_value_is_named_and_secrets_stay_hidden(tmp_path: Path) -> None:
    line = _one_line(
        _run(
            tmp_path,
            "start",
            LIVEKIT_URL="ws://localhost:7880",
            LIVEKIT_API_KEY="devkey",
            LIVEKIT_API_SECRET=SECRET,
            OPENAI_API_KEY="sk-also-secret",
            MAX_ENDPOINTING_DELAY="soon",
        )
    )
    assert "MAX_ENDPOINTING_DELAY" in line
    assert "number" in line
    assert SECRET not in line
    assert "sk-also-secret" not in line


def test_the_voice_console_needs_speech_keys_but_names_the_text_console(tmp_path: Path) -> None:
    line = _one_line(_run(tmp_path, "console", STT_PROVIDER="deepgram", TTS_PROVIDER="openai"))
    assert "DEEPGRAM_API_KEY is not set" in line
    assert "OPENAI_API_KEY is not set" in line
    assert "console --text" in line


def test_the_voice_console_without_keys_names_the_missing_whisper_model(tmp_path: Path) -> None:
    line = _one_line(_run(tmp_path, "console"))
    assert "Whisper model 'base' is not downloaded" in line
    assert "python -m agent download-files" in line
    assert "console --text" in line


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _run(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("start", "dev", "console", "download-files"):
        assert command in result.stdout
    console_help = _run(tmp_path, "console", "--help")
    assert "--text" in console_help.stdout
    assert "--metadata" in console_help.stdout


def test_an_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(tmp_path, "serve")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_download_files_runs_offline_when_no_local_model_is_needed(tmp_path: Path) -> None:
    model = str(bundled_whisper_model())
    result = _run(
        tmp_path,
        "download-files",
        EMBEDDINGS_PROVIDER="hashing",
        LOG_FORMAT="json",
        LOCAL_STT_MODEL=model,
    )
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line)["message"] for line in result.stderr.splitlines()]
    assert "downloading files for livekit.plugins.silero" in messages
    assert f"Whisper model {model} is in {model}" in messages
    assert messages[-1] == "embedding models ready: none needed"


def test_download_files_names_a_whisper_directory_that_is_not_a_model(tmp_path: Path) -> None:
    result = _run(tmp_path, "download-files", LOCAL_STT_MODEL=str(tmp_path), LOG_FORMAT="text")
    assert result.returncode == 1
    assert f"LOCAL_STT_MODEL: {tmp_path} is not a Whisper model directory" in result.stderr


def test_download_files_names_an_unreachable_model_hub_in_one_line(tmp_path: Path) -> None:
    # the real hub-loading code, pointed at a closed loopback port instead of the hub
    result = _run(
        tmp_path,
        "download-files",
        EMBEDDINGS_PROVIDER="hashing",
        STT_PROVIDER="whisper",
        HF_ENDPOINT="http://127.0.0.1:9",
        HF_HUB_ETAG_TIMEOUT="5",
        LOG_FORMAT="json",
    )
    assert result.returncode == 1
    failure = json.loads(result.stderr.splitlines()[-1])["message"]
    assert failure.startswith("download failed: cannot download the Whisper model 'base'")
    assert "set LOCAL_STT_MODEL" in failure


def test_download_files_reports_a_failed_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(settings: object) -> list[str]:
        raise OSError("model host unreachable")

    clear_worker_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOG_FORMAT", "text")
    monkeypatch.setenv("LOCAL_STT_MODEL", str(bundled_whisper_model()))
    monkeypatch.setattr("tools.embeddings.download_models", unreachable)
    with preserved_logging():
        assert main(["download-files"]) == 1
    assert "download failed: model host unreachable" in capsys.readouterr().err


def test_start_prewarms_job_processes_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    metrics_port = free_port()
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    env = {
        **base,
        "DATA_DIR": str(tmp_path / "data"),
        # nothing listens here: the worker keeps retrying, which is all this test needs
        "LIVEKIT_URL": "ws://127.0.0.1:9",
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": SECRET,
        "DEEPGRAM_API_KEY": "dg-key",
        "OPENAI_API_KEY": "oa-key",
        "WORKER_PORT": "0",
        "PROMETHEUS_PORT": str(metrics_port),
        "LOG_FORMAT": "json",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "agent", "start"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert worker.stderr is not None
    seen: list[dict[str, object]] = []
    try:
        for line in worker.stderr:
            seen.append(json.loads(line))
            if seen[-1]["message"] == "process initialized":
                break
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        worker.send_signal(signal.SIGTERM)
        rest = worker.stderr.read()
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    messages = [entry["message"] for entry in seen]
    assert "process initialized" in messages  # prewarm (Silero VAD) ran in a job process
    # one endpoint: LiveKit's main-process series and the job processes' project series
    assert "lk_agents_proc_initialize_duration_seconds_count" in scraped
    assert "voice_agent_response_latency_seconds_count" in scraped
    assert "Traceback" not in rest
    assert "stopping: draining calls" in rest
    assert SECRET not in rest + json.dumps(seen)


def test_metadata_is_for_the_text_console(tmp_path: Path) -> None:
    result = _run(tmp_path, "console", "--metadata", "{}")
    assert result.returncode == 2
    assert "--metadata works with the text console only" in result.stderr
