"""`agent/worker.py` through LiveKit's own CLI entries: `python agent/worker.py ...` (its
`cli.run_app`) and `python -m livekit.agents start agent/worker.py` (discovery of the
module-level `server`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from _worker_fakes import worker_process_env

ROOT = Path(__file__).resolve().parents[2]
WORKER_FILE = ROOT / "agent" / "worker.py"
SECRET = "lk-secret-never-print-me"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return worker_process_env(DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path), **extra)


def _run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,  # no .env here; the worker file finds the project by its own path
        env=_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_worker_file_answers_livekits_help(tmp_path: Path) -> None:
    result = _run(tmp_path, str(WORKER_FILE), "--help")
    assert result.returncode == 0, result.stderr
    for command in ("console", "start", "dev", "download-files"):
        assert command in result.stdout


def test_the_worker_file_downloads_the_plugin_and_model_files_offline(tmp_path: Path) -> None:
    result = _run(tmp_path, str(WORKER_FILE), "download-files", EMBEDDINGS_PROVIDER="hashing")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "livekit.plugins.silero" in output
    # the project's own model files, as a plugin
    assert "Downloading files for agent.worker" in " ".join(output.split())
    assert "Traceback" not in output


def test_a_bad_setting_stops_the_worker_file_with_one_line(tmp_path: Path) -> None:
    result = _run(
        tmp_path, str(WORKER_FILE), "start", MAX_ENDPOINTING_DELAY="soon", LIVEKIT_API_SECRET=SECRET
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "voice-agent: invalid configuration: MAX_ENDPOINTING_DELAY: expected a valid number, "
        "unable to parse string as a number"
    ]


def test_livekits_thin_cli_discovers_the_server_and_prewarms_job_processes(
    tmp_path: Path,
) -> None:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livekit.agents",
            "start",
            str(WORKER_FILE),
            # nothing listens here: the worker keeps retrying, which is all this test needs
            "--url",
            "ws://127.0.0.1:9",
            "--api-key",
            "devkey",
            "--api-secret",
            SECRET,
        ],
        cwd=tmp_path,
        env=_env(tmp_path, WORKER_PORT="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert worker.stdout is not None
    seen: list[dict[str, object]] = []
    try:
        for line in worker.stdout:
            if not line.startswith("{"):
                continue
            seen.append(json.loads(line))
            if seen[-1].get("message") == "process initialized":
                break
        worker.send_signal(signal.SIGTERM)
        rest = worker.stdout.read()
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    messages = [entry.get("message") for entry in seen]
    assert "process initialized" in messages  # our prewarm ran in a LiveKit job process
    # LiveKit's own JSON log keys
    assert {"timestamp", "level", "name", "message", "pid"} <= set(seen[-1])
    assert "Traceback" not in rest
    assert SECRET not in rest + json.dumps(seen)
