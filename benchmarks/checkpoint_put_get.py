"""Checkpoint put + get per conversation turn at 50 and 500 messages, and Redis bytes per turn.

RedisCheckpointSaver (as the worker runs it: messages stored once, decoded-state cache,
`max_checkpoints=32`) vs. the official AsyncSqliteSaver (a file in a temp dir) and
InMemorySaver, same serializer, same checkpoints, measured in the same run. Each turn
rotates two new messages into a thread of fixed length (plus small unchanged channels),
stores the checkpoint with `aput` and reads the thread's latest checkpoint back with
`aget_tuple`, which is what a graph does per step. Backends run in interleaved blocks so
background load hits all of them alike. Then an 80-turn call that grows by two messages a
turn shows the bytes each turn adds to Redis (MEMORY USAGE of the thread's keys) and to the
SQLite file.

    uv run python -m benchmarks.checkpoint_put_get            # ~1 min
    uv run python -m benchmarks.checkpoint_put_get --quick    # ~15 s

Uses REDIS_URL when it is set (keys go under a throwaway prefix and are deleted afterwards),
otherwise starts `redis-server` (Debian package) on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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
from workflows import _redis_layout as layout
from workflows.checkpoint import RedisCheckpointSaver

LENGTHS = (50, 500)
KEEP = 32
CALL_TURNS = 80
GROWTH_TARGET = 1.5
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
    """Drives one saver through turns of a thread that always holds `length` messages."""

    def __init__(self, saver: BaseCheckpointSaver, length: int) -> None:
        self.saver = saver
        self.length = length
        self.thread_id = f"bench-{uuid.uuid4()}"
        self.messages: list[AnyMessage] = [m for t in range(length // 2) for m in message_pair(t)]
        self.turn_no = length // 2
        self.config: RunnableConfig = {
            "configurable": {"thread_id": self.thread_id, "checkpoint_ns": ""}
        }
        self.version: Any = None

    def next_checkpoint(self, grow: bool = False) -> tuple[Checkpoint, dict[str, Any]]:
        kept = self.messages if grow else self.messages[2:]
        self.messages = kept + message_pair(self.turn_no)
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

    async def turn(self, timings: Timings | None, grow: bool = False) -> None:
        checkpoint, new_versions = self.next_checkpoint(grow)
        metadata: CheckpointMetadata = {"source": "loop", "step": self.turn_no, "parents": {}}
        started = time.perf_counter()
        self.config = await self.saver.aput(self.config, checkpoint, metadata, new_versions)
        stored = time.perf_counter()
        latest = await self.saver.aget_tuple({"configurable": {"thread_id": self.thread_id}})
        done = time.perf_counter()
        if latest is None or len(latest.checkpoint["channel_values"]["messages"]) != len(
            self.messages
        ):
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
async def backends(
    redis_url: str, ttl: float | None, length: int
) -> AsyncIterator[dict[str, Conversation]]:
    async with AsyncExitStack() as stack:
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        redis = await stack.enter_async_context(
            RedisCheckpointSaver.from_url(
                redis_url, key_prefix=prefix, ttl=ttl, max_checkpoints=KEEP
            )
        )
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite = await stack.enter_async_context(
            AsyncSqliteSaver.from_conn_string(str(workdir / "checkpoints.sqlite"))
        )
        conversations = {
            REDIS: Conversation(redis, length),
            SQLITE: Conversation(sqlite, length),
            MEMORY: Conversation(InMemorySaver(), length),
        }
        try:
            yield conversations
        finally:
            await redis.adelete_thread(conversations[REDIS].thread_id)


REDIS, SQLITE, MEMORY = "RedisCheckpointSaver", "AsyncSqliteSaver (file)", "InMemorySaver"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def measure(
    redis_url: str, turns: int, block: int, ttl: float | None
) -> dict[int, dict[str, Timings]]:
    """Every (length, backend) pair runs in interleaved blocks, so load shifts hit all alike."""
    async with AsyncExitStack() as stack:
        runs = {
            length: await stack.enter_async_context(backends(redis_url, ttl, length))
            for length in LENGTHS
        }
        for conversations in runs.values():
            for conversation in conversations.values():
                for _ in range(50):
                    await conversation.turn(None)
        results = {length: {name: Timings() for name in runs[length]} for length in LENGTHS}
        for _ in range(max(1, turns // block)):
            for length, conversations in runs.items():
                for name, conversation in conversations.items():
                    for _ in range(block):
                        await conversation.turn(results[length][name])
        return results


async def bytes_per_turn(redis_url: str) -> tuple[list[int], list[int]]:
    """Bytes each turn of a growing call adds: Redis (MEMORY USAGE) and the SQLite file."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    async with (
        RedisCheckpointSaver.from_url(redis_url, key_prefix=prefix, max_checkpoints=KEEP) as redis,
        AsyncExitStack() as stack,
    ):
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        db = workdir / "checkpoints.sqlite"
        sqlite = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(db)))
        ours, theirs = Conversation(redis, 0), Conversation(sqlite, 0)
        keys = layout.ThreadKeys.build(prefix, ours.thread_id).all()
        redis_sizes, sqlite_sizes = [0], [_file_bytes(db)]
        try:
            for _ in range(CALL_TURNS):
                await ours.turn(None, grow=True)
                await theirs.turn(None, grow=True)
                usage = [await redis.redis.memory_usage(key, samples=0) for key in keys]
                redis_sizes.append(sum(u or 0 for u in usage))
                sqlite_sizes.append(_file_bytes(db))
        finally:
            await redis.adelete_thread(ours.thread_id)
    return _deltas(redis_sizes), _deltas(sqlite_sizes)


def _file_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def _deltas(sizes: list[int]) -> list[int]:
    return [after - before for before, after in itertools.pairwise(sizes)]


def report(
    results: dict[int, dict[str, Timings]],
    growth: tuple[list[int], list[int]],
    turns: int,
    ttl: float | None,
) -> None:
    ttl_note = f", Redis TTL {ttl:g} s" if ttl else ""
    short, long = LENGTHS
    print(f"\nCheckpoint put + get per turn, {turns} turns per backend and length{ttl_note} (ms)\n")
    header = f"{'backend':<26}{'messages':>9}{'put p50':>9}{'get p50':>9}{'turn p50':>10}"
    header += f"{'turn p95':>10}{'vs SQLite':>11}"
    print(header)
    print("-" * len(header))
    for length, timings in results.items():
        sqlite = pct(timings[SQLITE].turn, 0.5)
        for name, t in timings.items():
            p50 = pct(t.turn, 0.5)
            row = f"{name:<26}{length:>9}{pct(t.put, 0.5):>9.3f}{pct(t.get, 0.5):>9.3f}"
            row += f"{p50:>10.3f}{pct(t.turn, 0.95):>10.3f}{sqlite / p50:>10.2f}x"
            print(row)
    print(f"\nturn p50 at {long} messages / at {short} messages (cost growth with thread length):")
    for name in results[short]:
        ratio = pct(results[long][name].turn, 0.5) / pct(results[short][name].turn, 0.5)
        note = ""
        if name == REDIS:
            note = f"  target <= {GROWTH_TARGET:g}: {'MET' if ratio <= GROWTH_TARGET else 'MISSED'}"
        print(f"  {name:<26}{ratio:>6.2f}x{note}")
    redis_p50 = pct(results[short][REDIS].turn, 0.5)
    sqlite_p50 = pct(results[short][SQLITE].turn, 0.5)
    ratio = sqlite_p50 / redis_p50
    verdict = "MET" if ratio >= SQLITE_RATIO_TARGET else "MISSED"
    print(
        f"\nRedis vs SQLite at {short} messages (turn p50): {redis_p50:.3f} vs {sqlite_p50:.3f} ms"
        f" = {ratio:.2f}x faster; goal >= {SQLITE_RATIO_TARGET:g}x -> {verdict}"
    )

    redis_bytes, sqlite_bytes = growth
    print(
        f"\nBytes added per turn over a {CALL_TURNS}-turn call growing by 2 messages a turn "
        f"(Redis: MEMORY USAGE of the thread's keys, {KEEP} checkpoints kept; SQLite: file + WAL)"
    )
    header = f"{'turns':<10}{'Redis B/turn':>14}{'SQLite B/turn':>15}"
    print(header)
    print("-" * len(header))
    # windows of one pruning cycle (a prune drops KEEP // 2 checkpoints at once)
    window = KEEP // 2
    for lo in range(0, CALL_TURNS, window):
        hi = min(lo + window, CALL_TURNS)
        r = sum(redis_bytes[lo:hi]) / (hi - lo)
        s = sum(sqlite_bytes[lo:hi]) / (hi - lo)
        print(f"{f'{lo + 1}-{hi}':<10}{r:>14.0f}{s:>15.0f}")
    second = sum(redis_bytes[window : 2 * window]) / window
    last = sum(redis_bytes[-window:]) / window
    sqlite_growth = sum(sqlite_bytes[-window:]) / max(sum(sqlite_bytes[window : 2 * window]), 1)
    print(
        f"Redis, last window vs second window: {last / max(second, 1):.2f}x (flat = about 1); "
        f"SQLite: {sqlite_growth:.2f}x"
        f"; Redis total after {CALL_TURNS} turns: {sum(redis_bytes) / 1024:.0f} KiB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns (~15 s)")
    parser.add_argument("--turns", type=int, help="measured turns per backend and length")
    parser.add_argument("--ttl", type=float, help="run the Redis saver with this TTL (seconds)")
    parser.add_argument("--redis-url", help="use this Redis instead of REDIS_URL / a local one")
    args = parser.parse_args(argv)
    turns = args.turns or (300 if args.quick else 2000)
    block = min(turns, 25 if args.quick else 100)

    redis_url = args.redis_url or ToolsSettings().redis_url
    with nullcontext(redis_url) if redis_url else redis_server() as url:
        results = asyncio.run(measure(url, turns, block, args.ttl))
        growth = asyncio.run(bytes_per_turn(url))
    report(results, growth, turns, args.ttl)


if __name__ == "__main__":
    main()
