"""Log output: JSON in production, readable text in development, call ids on every line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _worker_fakes import preserved_logging

from agent.console import run_text_console
from agent.observability import bind_log_fields, configure_logging
from agent.settings import WorkerSettings

log = logging.getLogger("agent.test")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    with preserved_logging():
        yield io.StringIO()


def _lines(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if line]


async def _call(name: str) -> None:
    bind_log_fields(room=f"room-{name}", job_id=f"job-{name}", conversation_id=f"conv-{name}")
    await asyncio.sleep(0)
    log.info("turn done", extra={"turn": name})


async def test_json_lines_carry_the_ids_of_their_own_call(stream: io.StringIO) -> None:
    configure_logging(level="INFO", fmt="json", stream=stream)
    await asyncio.gather(_call("a"), _call("b"))
    log.info("between calls")
    entries = [json.loads(line) for line in _lines(stream)]
    by_turn = {e.get("turn"): e for e in entries}
    for name in ("a", "b"):
        entry = by_turn[name]
        assert entry["room"] == f"room-{name}"
        assert entry["job_id"] == f"job-{name}"
        assert entry["conversation_id"] == f"conv-{name}"
        assert entry["level"] == "INFO"
        assert entry["name"] == "agent.test"
        assert entry["message"] == "turn done"
    assert "room" not in by_turn[None]


def test_text_lines_are_readable(stream: io.StringIO) -> None:
    configure_logging(level="INFO", fmt="text", stream=stream)
    log.warning("caller joined %s", "late", extra={"room": "lobby", "attempt": 2})
    (line,) = _lines(stream)
    assert " WARNING agent.test  caller joined late  room=lobby attempt=2" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_secret_values_are_scrubbed_from_every_line(stream: io.StringIO) -> None:
    configure_logging(level="INFO", fmt="json", secrets=["sk-live-abcdef", "ab"], stream=stream)
    log.info("connecting with %s", "sk-live-abcdef", extra={"token": "Bearer sk-live-abcdef"})
    try:
        raise RuntimeError("auth failed for sk-live-abcdef")
    except RuntimeError:
        log.exception("request failed")
    log.info("table booked")
    text = stream.getvalue()
    assert "sk-live-abcdef" not in text
    assert text.count("[redacted]") >= 3
    assert "table booked" in text  # "ab" is too short to be a secret; scrubbing it mangles words


def test_exceptions_are_kept_once(stream: io.StringIO) -> None:
    configure_logging(level="INFO", fmt="json", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    record = logging.LogRecord(
        "agent.job", logging.ERROR, "", 0, "forwarded\nTraceback: x", (), None
    )
    record.exc_text = "Traceback: x"
    logging.getLogger("agent.job").handle(record)
    first, second = (json.loads(line) for line in _lines(stream))
    assert "ValueError: boom" in first["exc_info"]
    assert "exc_info" not in second


def test_configuring_twice_keeps_one_handler_and_quiets_noisy_libraries(
    stream: io.StringIO,
) -> None:
    configure_logging(level="DEBUG", fmt="text", stream=io.StringIO())
    configure_logging(level="DEBUG", fmt="json", stream=stream)
    log.debug("once")
    logging.getLogger("httpx").info("GET https://api.example/ 200")
    assert len(_lines(stream)) == 1


async def test_what_the_caller_says_stays_out_of_info_logs(
    stream: io.StringIO, tmp_path: Path
) -> None:
    configure_logging(level="INFO", fmt="json", stream=stream)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"my card number is 4111 1111\n")
    os.close(write_fd)
    out = io.StringIO()
    with os.fdopen(read_fd) as stdin:
        await run_text_console(
            WorkerSettings(_env_file=None, DATA_DIR=tmp_path),  # type: ignore[call-arg]
            stdin=stdin,
            stdout=out,
        )
    # greeting and one answer: the turn ran through the real brain, with logging on
    assert out.getvalue().count("agent> ") == 2
    assert "4111" not in stream.getvalue()


def test_json_lines_use_livekits_key_names(stream: io.StringIO) -> None:
    from livekit.agents.cli.log import JsonFormatter as LiveKitJsonFormatter

    record = logging.LogRecord(
        "agent.test", logging.WARNING, __file__, 7, "slow %s", ("tool",), None
    )
    record.tool = "search"
    ours = json.loads(configure_logging(level="INFO", fmt="json", stream=stream).format(record))
    theirs = json.loads(LiveKitJsonFormatter().format(record))
    assert set(ours) == set(theirs)
    for key in ("level", "name", "message", "pid", "code.line.number", "tool"):
        assert ours[key] == theirs[key]


def test_livekits_own_handlers_get_the_call_ids_and_lose_the_secrets(
    stream: io.StringIO,
) -> None:
    from livekit.agents.cli.log import JsonFormatter as LiveKitJsonFormatter

    from agent.observability import redact_livekit_logs

    handler = logging.StreamHandler(stream)
    handler.setFormatter(LiveKitJsonFormatter())
    logging.getLogger().addHandler(handler)
    redact_livekit_logs(["lk-secret-abcdef"])
    redact_livekit_logs(["lk-secret-abcdef"])  # the worker can start twice in one process
    bind_log_fields(room="room-7", job_id="job-7", conversation_id="conv-7")
    log.warning("token lk-secret-abcdef rejected")
    (line,) = _lines(stream)
    entry = json.loads(line)
    assert entry["message"] == "token [redacted] rejected"
    assert (entry["room"], entry["job_id"], entry["conversation_id"]) == (
        "room-7",
        "job-7",
        "conv-7",
    )
    assert "timestamp" in entry  # still LiveKit's own format
