"""A corrupt SQLite checkpoint file does not silence calls: it is moved aside with one error
line, a fresh file is started, and the caller is greeted and answered (worker brain and
`console --text`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _worker_fakes import WorkerBrain, run_agent_cli, worker_process_env
from graph_fakes import spoken
from livekit.agents import Agent, AgentSession

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ("console", "--text")
GARBAGE = b"this is not an SQLite database, just bytes a crash left behind\n" * 64


def corrupt_file(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "checkpoints.sqlite3"
    path.write_bytes(GARBAGE)
    return path


async def test_the_brain_moves_a_corrupt_file_aside_and_the_call_goes_on(
    tmp_path: Path, worker_brain: WorkerBrain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    path = corrupt_file(tmp_path / "data")
    async with worker_brain(DATA_DIR=tmp_path / "data", EMBEDDINGS_PROVIDER="hashing") as brain:
        assert brain.greeting
        async with AgentSession(llm=brain.llm) as session:
            await session.start(Agent(instructions=brain.instructions))
            result = await session.run(user_input="What's the wifi password?")
        assert "paella-sunset" in spoken(result)

    errors = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(errors) == 1 and str(path) in errors[0]
    (moved,) = path.parent.glob("checkpoints.sqlite3.corrupt-*")
    assert moved.read_bytes() == GARBAGE  # kept for a post-mortem, never deleted
    assert path.read_bytes().startswith(b"SQLite format 3")


def test_console_text_greets_and_answers_over_a_corrupt_file(tmp_path: Path) -> None:
    path = corrupt_file(tmp_path / "data")
    env = worker_process_env(
        DATA_DIR=str(tmp_path / "data"),
        EMBEDDINGS_PROVIDER="hashing",
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path),
    )
    result = run_agent_cli(
        *CONSOLE,
        "--metadata",
        '{"property_id": "casa-del-sol"}',
        input="What's the wifi password?\n/quit\n",
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    replies = [line for line in result.stdout.splitlines() if "agent> " in line]
    assert len(replies) >= 2, result.stdout  # the greeting, then the answer
    assert "paella-sunset" in replies[-1]
    assert "corrupt" in result.stderr and "Traceback" not in result.stderr
    assert list(path.parent.glob("checkpoints.sqlite3.corrupt-*"))
