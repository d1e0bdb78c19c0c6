"""Checkpoint put + get per conversation turn on a 50-message thread.

RedisCheckpointSaver vs. the official AsyncSqliteSaver (a file in a temp dir) vs. InMemorySaver,
same serializer, same checkpoints. Each turn rotates two new messages into a 50-message
`messages` channel (plus small unchanged channels), stores the checkpoint with `aput` and reads
the thread's latest checkpoint back with `aget_tuple`, which is what a graph does per step.
Backends run in interleaved blocks so background load hits all of them alike.

    uv run python -m benchmarks.checkpoint_put_get            # ~20 s
    uv run python -m benchmarks.checkpoint_put_get --quick    # ~5 s

Uses REDIS_URL when it is set (keys go under a throwaway prefix and are deleted afterwards),
otherwise starts `redis-server` (Debian package) on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    Checkpoint,
    CheckpointMetadata,
    empty_checkpoint,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from tools.settings import ToolsSettings
from workflows.checkpoint import RedisCheckpointSaver

THREAD_MESSAGES = 50
P50_TARGET_MS = 1.0
SQLITE_RATIO_TARGET = 3.0


def message_pair(turn: int) -> list[AnyMessage]:
    """One realistic exchange; every fifth turn the answer came from a tool."""
    question = HumanMessage(
        f"Hi, this is the guest in room {100 + turn % 40}. What time does breakfast start "
        f"tomorrow, and can I get it in my room? (turn {turn})",
        id=f"human-{turn}",
    )
    answer = AIMessage(
        f"Breakfast starts at seven in the Garden restaurant and runs until half past ten. "
        f"Room service breakfast is available too, for a small fee. (turn {turn})",
        id=f"ai-{turn}",
        response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
        usage_metadata={"input_tokens": 812, "output_tokens": 41, "total_tokens": 853},
    )
    if turn % 5:
        return [question, answer]
    tool_call = {"name": "search_documents", "args": {"query": "breakfast"}, "id": f"c{turn}"}
    return [
        AIMessage("", id=f"call-{turn}", tool_calls=[tool_call]),
        ToolMessage("Breakfast: 07:00-10:30, Garden restaurant.", tool_call_id=f"c{turn}"),
    ]


@dataclass
class Timings:
    put: list[float] = field(default_factory=list)
    get: list[float] = field(default_factory=list)
    turn: list[float] = field(default_factory=list)


class Conversation:
    """Drives one saver through turns of a thread that always holds 50 messages."""

    def __init__(self, saver: BaseCheckpointSaver) -> None:
        self.saver = saver
        self.thread_id = f"bench-{uuid.uuid4()}"
        self.messages: list[AnyMessage] = [
            m for t in range(THREAD_MESSAGES // 2) for m in message_pair(t)
        ]
        self.turn_no = THREAD_MESSAGES // 2
        self.config: RunnableConfig = {
            "configurable": {"thread_id": self.thread_id, "checkpoint_ns": ""}
        }
        self.version: Any = None

    def next_checkpoint(self) -> tuple[Checkpoint, dict[str, Any]]:
        self.messages = self.messages[2:] + message_pair(self.turn_no)
        self.turn_no += 1
        first = self.version is None
        self.version = self.saver.get_next_version(self.version, None)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {
            "messages": self.messages,
            "instructions": "You are the concierge of Hotel Garden. Answer briefly.",
            "context": {"property_id": "GARDEN", "language": "en", "verified": True},
        }
        static = {"instructions": "1", "context": "1"}
        checkpoint["channel_versions"] = {"messages": self.version, **static}
        checkpoint["versions_seen"] = {"model": {"messages": self.version}}
        new_versions = {"messages": self.version, **(static if first else {})}
        return checkpoint, new_versions

    async def turn(self, timings: Timings | None) -> None:
        checkpoint, new_versions = self.next_checkpoint()
        metadata: CheckpointMetadata = {"source": "loop", "step": self.turn_no, "parents": {}}
        started = time.perf_counter()
        self.config = await self.saver.aput(self.config, checkpoint, metadata, new_versions)
        stored = time.perf_counter()
        latest = await self.saver.aget_tuple({"configurable": {"thread_id": self.thread_id}})
        done = time.perf_counter()
        if latest is None or len(latest.checkpoint["channel_values"]["messages"]) != 50:
            raise RuntimeError(f"{type(self.saver).__name__} lost the checkpoint")
        if timings is not None:
            timings.put.append(stored - started)
            timings.get.append(done - stored)
            timings.turn.append(done - started)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server, or set REDIS_URL")
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", workdir]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not _answers_ping(port):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("redis-server did not start within 10 s")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@asynccontextmanager
async def backends(redis_url: str, ttl: float | None) -> AsyncIterator[dict[str, Conversation]]:
    async with AsyncExitStack() as stack:
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        redis = await stack.enter_async_context(
            RedisCheckpointSaver.from_url(redis_url, key_prefix=prefix, ttl=ttl)
        )
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite = await stack.enter_async_context(
            AsyncSqliteSaver.from_conn_string(str(workdir / "checkpoints.sqlite"))
        )
        conversations = {
            "RedisCheckpointSaver": Conversation(redis),
            "AsyncSqliteSaver (file)": Conversation(sqlite),
            "InMemorySaver": Conversation(InMemorySaver()),
        }
        try:
            yield conversations
        finally:
            await redis.adelete_thread(conversations["RedisCheckpointSaver"].thread_id)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def measure(redis_url: str, turns: int, block: int, ttl: float | None) -> dict[str, Timings]:
    async with backends(redis_url, ttl) as conversations:
        for conversation in conversations.values():
            for _ in range(50):
                await conversation.turn(None)
        results = {name: Timings() for name in conversations}
        for _ in range(max(1, turns // block)):
            for name, conversation in conversations.items():
                for _ in range(block):
                    await conversation.turn(results[name])
        return results


def report(results: dict[str, Timings], turns: int, ttl: float | None) -> None:
    memory = pct(results["InMemorySaver"].turn, 0.5)
    sqlite = pct(results["AsyncSqliteSaver (file)"].turn, 0.5)
    ttl_note = f", Redis TTL {ttl:g} s" if ttl else ""
    print(
        f"\nCheckpoint put + get per turn, {THREAD_MESSAGES}-message thread, {turns} turns"
        f"{ttl_note} (ms)\n"
    )
    header = f"{'backend':<26}{'put p50':>9}{'get p50':>9}{'turn p50':>10}{'turn p95':>10}"
    header += f"{'vs SQLite':>11}{'storage cost':>14}"
    print(header)
    print("-" * len(header))
    for name, t in results.items():
        p50 = pct(t.turn, 0.5)
        row = f"{name:<26}{pct(t.put, 0.5):>9.3f}{pct(t.get, 0.5):>9.3f}{p50:>10.3f}"
        row += f"{pct(t.turn, 0.95):>10.3f}{sqlite / p50:>10.2f}x{p50 - memory:>13.3f}"
        print(row)
    redis = pct(results["RedisCheckpointSaver"].turn, 0.5)
    ratio = sqlite / redis
    storage_ratio = (sqlite - memory) / max(redis - memory, 1e-9)
    print("\n'storage cost' = turn p50 minus InMemorySaver's, i.e. time beyond (de)serialising,")
    print("which all three pay alike through the same serializer.\n")
    verdict = "MET" if redis <= P50_TARGET_MS else "MISSED"
    print(f"target Redis turn p50 <= {P50_TARGET_MS:.1f} ms: {redis:.3f} ms -> {verdict}")
    verdict = "MET" if ratio >= SQLITE_RATIO_TARGET else "MISSED"
    print(
        f"target Redis >= {SQLITE_RATIO_TARGET:.0f}x faster than SQLite (turn p50): "
        f"{ratio:.2f}x -> {verdict}"
    )
    print(
        f"storage cost only (turn p50 minus InMemorySaver): Redis {storage_ratio:.2f}x cheaper "
        f"than SQLite"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns (~5 s)")
    parser.add_argument("--turns", type=int, help="measured turns per backend")
    parser.add_argument("--ttl", type=float, help="run the Redis saver with this TTL (seconds)")
    parser.add_argument("--redis-url", help="use this Redis instead of REDIS_URL / a local one")
    args = parser.parse_args(argv)
    turns = args.turns or (600 if args.quick else 3000)
    block = min(turns, 100 if args.quick else 250)

    redis_url = args.redis_url or ToolsSettings().redis_url
    with nullcontext(redis_url) if redis_url else redis_server() as url:
        results = asyncio.run(measure(url, turns, block, args.ttl))
    report(results, turns, args.ttl)


if __name__ == "__main__":
    main()
