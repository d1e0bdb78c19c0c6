"""`python -m agent console --text`: talk to the whole brain in a terminal.

No LiveKit server, no audio and no STT/TTS keys: the same brain the worker builds (graph,
tools, checkpointer, `GraphLLM`) runs inside a text-only `AgentSession`. Each line typed is one
user turn; the agent's replies are printed as they are produced by the session. Without an LLM
key the brain's deterministic fallback responder answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TextIO

from livekit.agents import Agent, AgentSession
from livekit.agents.llm import ChatMessage
from livekit.agents.voice.run_result import ChatMessageEvent, RunResult
from prometheus_client import CollectorRegistry

from agent.metadata import parse_dispatch_metadata
from agent.metrics import WorkerMetrics
from agent.observability import bind_log_fields, flush_traces, start_otel_tracing

if TYPE_CHECKING:
    from agent.settings import WorkerSettings

__all__ = ["CONSOLE_CALLER", "CONSOLE_ROOM", "run_text_console"]

logger = logging.getLogger(__name__)

CONSOLE_ROOM = "console"
CONSOLE_CALLER = "console-user"
_QUIT = {"/quit", "/exit"}
_PROMPT = "you> "


def _pollable(fd: int) -> bool:
    """Whether the event loop can watch `fd`: a terminal, pipe or socket (not a file or
    /dev/null, which epoll refuses)."""
    mode = os.fstat(fd).st_mode
    return os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _lines(stdin: TextIO) -> AsyncIterator[str]:
    """Lines typed on stdin without blocking the event loop; ends at EOF."""
    try:
        fd = stdin.fileno()
    except (OSError, ValueError):
        fd = -1
    if fd >= 0 and _pollable(fd):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), stdin
        )
        try:
            while chunk := await reader.readline():
                yield chunk.decode("utf-8", errors="replace")
        finally:
            transport.close()
            # The terminal is shared with the shell; leave it blocking as we found it.
            with contextlib.suppress(OSError):
                os.set_blocking(fd, True)
        return
    while line := await asyncio.to_thread(stdin.readline):
        yield line


def _say(stdout: TextIO, text: str) -> None:
    stdout.write(f"agent> {text}\n")
    stdout.flush()


def _prompt(stdout: TextIO) -> None:
    stdout.write(_PROMPT)
    stdout.flush()


def _replies(events: list[Any]) -> list[str]:
    return [
        event.item.text_content
        for event in events
        if isinstance(event, ChatMessageEvent)
        and isinstance(event.item, ChatMessage)
        and event.item.role == "assistant"
        and event.item.text_content
    ]


async def run_text_console(
    settings: WorkerSettings,
    *,
    stdin: TextIO,
    stdout: TextIO,
    metadata_json: str | None = None,
) -> int:
    """Run the text console until EOF or /quit; returns the process exit code."""
    metadata, problems = parse_dispatch_metadata(metadata_json)
    if problems:
        stdout.write(f"note: {'; '.join(problems)}\n")
    # Imported here so the console module itself stays cheap to import.
    from agent.brain import build_brain

    metrics = WorkerMetrics(CollectorRegistry(auto_describe=True))
    bind_log_fields(room=CONSOLE_ROOM)
    traces = start_otel_tracing(settings)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(flush_traces, traces)
        brain = await build_brain(
            settings,
            metadata,
            room_name=CONSOLE_ROOM,
            caller_identity=metadata.caller_identity or CONSOLE_CALLER,
            stack=stack,
            registry=metrics.registry,
        )
        bind_log_fields(conversation_id=brain.thread_id)
        # Typed turns are complete as sent: no VAD, no turn detector.
        session: AgentSession[Any] = AgentSession(
            llm=brain.llm, vad=None, turn_handling={"turn_detection": "manual"}
        )
        metrics.observe_session(session)
        metrics.observe_tools(brain.llm)
        stack.push_async_callback(session.aclose)
        await session.start(agent=Agent(instructions=brain.instructions))
        stdout.write("Text console: type a message and press Enter; /quit or Ctrl-D ends.\n")
        await session.say(brain.greeting)
        _say(stdout, brain.greeting)
        _prompt(stdout)
        async for raw in _lines(stdin):
            text = raw.strip()
            if text in _QUIT:
                break
            if text:
                try:
                    result: RunResult[None] = await session.run(user_input=text)
                except Exception as exc:
                    logger.exception("the turn failed")
                    stdout.write(f"error: {exc}\n")
                else:
                    for reply in _replies(result.events):
                        _say(stdout, reply)
            _prompt(stdout)
        stdout.write("\n")
    return 0
