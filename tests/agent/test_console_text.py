"""`python -m agent console --text`: typed turns in, the agent's replies out.

Every test runs the real brain (demo PMS, embedded documents, SQLite checkpointer, no chat
model, so the graph's deterministic fallback answers): in-process, through a
pseudo-terminal, and through the real CLI (no LiveKit server, no keys).
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from langchain_core.messages import HumanMessage

from agent.brain import greeting
from agent.console import CONSOLE_CALLER, CONSOLE_ROOM, run_text_console
from agent.metadata import conversation_key, parse_dispatch_metadata
from agent.settings import WorkerSettings
from workflows.checkpoint import open_checkpointer

HERE = Path(__file__).parent
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
CHALET_DE = '{"language": "de", "property_id": "alpine-chalet"}'


def _settings(tmp_path: Path) -> WorkerSettings:
    return WorkerSettings(_env_file=None, DATA_DIR=tmp_path)  # type: ignore[call-arg]


async def _console(tmp_path: Path, typed: bytes, *, metadata: str | None = None) -> str:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, typed)
    os.close(write_fd)
    out = io.StringIO()
    with os.fdopen(read_fd) as stdin:
        code = await run_text_console(
            _settings(tmp_path), stdin=stdin, stdout=out, metadata_json=metadata
        )
    assert code == 0
    return out.getvalue()


async def _stored_questions(tmp_path: Path, metadata: str | None) -> list[str]:
    """What the caller said, as the conversation's checkpoint holds it after the console ended."""
    parsed, _ = parse_dispatch_metadata(metadata)
    thread = conversation_key(parsed, room_name=CONSOLE_ROOM, caller_identity=CONSOLE_CALLER)
    path = _settings(tmp_path).resolved_checkpoint_sqlite_path
    async with open_checkpointer(redis_url=None, sqlite_path=path) as saver:
        stored = await saver.aget({"configurable": {"thread_id": thread.thread_id}})
    assert stored is not None
    messages = stored["channel_values"]["messages"]
    return [str(m.content) for m in messages if isinstance(m, HumanMessage)]


async def test_each_typed_line_gets_the_agents_reply(tmp_path: Path) -> None:
    shown = await _console(
        tmp_path,
        b"is there parking?\n\n   \nWhat is the wifi password?\n/quit\nnever read\n",
        metadata=CHALET_DE,
    )
    replies = [line for line in shown.splitlines() if "agent> " in line]
    assert len(replies) == 3
    assert replies[0] == f"agent> {greeting('de')}"
    # the property from the metadata answers: the chalet is car-free, its wifi is its own
    assert replies[1].startswith("you> agent> ") and "Täsch" in replies[1]
    assert replies[2].startswith("you> you> you> agent> ") and "matterhorn88" in replies[2]
    assert "never read" not in shown
    # the brain was closed at the end: its checkpoint holds the conversation
    assert await _stored_questions(tmp_path, CHALET_DE) == [
        "is there parking?",
        "What is the wifi password?",
    ]


async def test_end_of_input_ends_the_console(tmp_path: Path) -> None:
    shown = await _console(tmp_path, b"What is the wifi password?", metadata=CHALET_DE)
    assert shown.count("agent> ") == 2
    assert "matterhorn88" in shown
    assert await _stored_questions(tmp_path, CHALET_DE) == ["What is the wifi password?"]


async def test_bad_metadata_is_noted_and_defaults_are_used(tmp_path: Path) -> None:
    shown = await _console(tmp_path, b"", metadata="{oops")
    assert shown.startswith("note: dispatch metadata is not valid JSON")
    assert f"agent> {greeting('en')}" in shown


class Terminal:
    """A program running on a pseudo-terminal, driven like a person at a keyboard."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path) -> None:
        master, slave = pty.openpty()
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, close_fds=True
        )
        os.close(slave)
        self._master = master
        self._pending = b""

    def read_until(self, marker: str, *, guard_s: float = 90.0) -> str:
        """Everything shown up to and including `marker` (the guard only stops a hang)."""
        wanted = marker.encode()
        give_up = time.monotonic() + guard_s
        while wanted not in self._pending:
            ready, _, _ = select.select([self._master], [], [], max(give_up - time.monotonic(), 0))
            chunk = b""
            if ready:
                try:
                    chunk = os.read(self._master, 4096)
                except OSError:
                    chunk = b""
            if not chunk:
                shown = self._pending.decode(errors="replace")
                raise AssertionError(f"never showed {marker!r}; the terminal shows:\n{shown}")
            self._pending += chunk
        cut = self._pending.index(wanted) + len(wanted)
        raw, self._pending = self._pending[:cut], self._pending[cut:]
        return ANSI.sub(b"", raw).decode(errors="replace").replace("\r\n", "\n")

    def type(self, line: str) -> None:
        os.write(self._master, line.encode() + b"\n")

    def close(self) -> int:
        try:
            return self.process.wait(timeout=60)
        finally:
            os.close(self._master)


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATA_DIR": str(tmp_path / "data"),
        "EMBEDDINGS_PROVIDER": "hashing",
        "PYTHONPATH": str(HERE),
    }


def test_the_cli_console_talks_to_the_real_brain_without_server_or_keys(tmp_path: Path) -> None:
    terminal = Terminal(
        [sys.executable, "-m", "agent", "console", "--text", "--metadata", '{"language": "en"}'],
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        greeting = terminal.read_until("you> ")
        assert re.search(r"agent> \S", greeting), greeting
        terminal.type("What time is check-in?")
        answer = terminal.read_until("you> ")
        replies = [line for line in answer.splitlines() if line.startswith("agent> ")]
        assert replies, answer
        assert all(len(line) > len("agent> ") for line in replies)
        assert "Traceback" not in greeting + answer
        terminal.type("/quit")
    finally:
        assert terminal.close() == 0


def test_the_cli_console_exits_cleanly_when_stdin_is_dev_null(tmp_path: Path) -> None:
    """`docker run` without `-i`: nothing to read, so the console must end, not hang."""
    with open(os.devnull) as devnull:
        result = subprocess.run(
            [sys.executable, "-m", "agent", "console", "--text"],
            stdin=devnull,
            capture_output=True,
            text=True,
            env={**_env(tmp_path), "PYTHONPATH": str(HERE.parents[1])},
            cwd=tmp_path,
            timeout=240,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("agent> ") == 1  # the greeting, then end of input
    assert "Traceback" not in result.stderr
