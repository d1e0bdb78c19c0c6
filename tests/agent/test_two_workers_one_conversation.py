"""Two worker processes serving one conversation at once (a reconnect racing the old job)
keep every answered turn, on Redis and on SQLite: the turn lock serialises them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workflows.checkpoint import open_checkpointer

ROOT = Path(__file__).resolve().parents[2]
TURNS = 8
WORKER = [sys.executable, str(Path(__file__).with_name("_turn_worker.py"))]


def run_two_workers(*backend: str) -> None:
    workers = [
        subprocess.Popen(
            [*WORKER, *backend, "--name", name, "--turns", str(TURNS)],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=180)
        assert worker.returncode == 0, stderr


async def thread_texts(redis_url: str | None, sqlite: Path | None) -> list[str]:
    async with open_checkpointer(redis_url=redis_url, sqlite_path=sqlite) as saver:
        latest = await saver.aget_tuple({"configurable": {"thread_id": "shared-conversation"}})
    assert latest is not None
    return [str(m.content) for m in latest.checkpoint["channel_values"]["messages"]]


def assert_every_turn_kept(texts: list[str]) -> None:
    for name in ("A", "B"):
        for turn in range(TURNS):
            question = f"{name}-{turn}"
            assert question in texts, f"turn {question} was lost"
            assert texts[texts.index(question) + 1] == f"answer to {question}"
    assert len(texts) == 2 * 2 * TURNS


@pytest.mark.timeout(300)
async def test_two_workers_on_redis_keep_every_turn(redis_url: str) -> None:
    run_two_workers("--redis-url", redis_url)
    assert_every_turn_kept(await thread_texts(redis_url, None))


@pytest.mark.timeout(300)
async def test_two_workers_on_sqlite_keep_every_turn(tmp_path: Path) -> None:
    sqlite = tmp_path / "checkpoints.sqlite3"
    run_two_workers("--sqlite", str(sqlite))
    assert_every_turn_kept(await thread_texts(None, sqlite))
