"""How long a caller waits for the apology while Redis is down mid-call.

Runs the worker's real brain (`agent.brain.build_brain`, embedded defaults, Redis for
conversation state) in LiveKit's AgentSession and times whole turns: healthy (the anchor,
same run), with Redis frozen (SIGSTOP: connections are accepted, nothing is answered) and
with Redis gone (connections refused). Target: the apology within 1 s.

    uv run python -m benchmarks.redis_outage --quick      # ~10 s
    uv run python -m benchmarks.redis_outage --previous   # also the old 5 s, retried setup

Starts its own `redis-server` (Debian package) on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from livekit.agents import Agent, AgentSession, APIError

from agent.brain import build_brain
from agent.graph_llm import GraphLLM
from agent.metadata import DispatchMetadata
from agent.settings import WorkerSettings
from workflows.assistant import SPEAKING_NODES

TARGET_S = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start within 10 s")


async def timed_turn(session: AgentSession, text: str) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        await session.run(user_input=text)
        failed = False
    except APIError:
        failed = True
    return time.perf_counter() - started, failed


async def measure(samples: int, timeout_s: float, previous: bool) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"healthy (anchor)": [], "frozen": [], "refused": []}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_redis(Path(tmp))
        settings = WorkerSettings(  # type: ignore[call-arg]
            _env_file=None,
            DATA_DIR=Path(tmp) / "data",
            REDIS_URL=url,
            EMBEDDINGS_PROVIDER="hashing",
            CHECKPOINT_TIMEOUT_S=timeout_s,
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                brain = await build_brain(
                    settings,
                    DispatchMetadata(property_id="casa-del-sol"),
                    room_name="bench",
                    caller_identity="bench",
                    stack=stack,
                )
                graph_llm = brain.llm
                if previous:  # the same graph without the fail-fast turn lock
                    graph_llm = GraphLLM(
                        brain.graph, thread_id=brain.thread_id, speaking_nodes=SPEAKING_NODES
                    )
                async with AgentSession(llm=graph_llm) as session:
                    await session.start(Agent(instructions=brain.instructions))
                    for n in range(samples):
                        took, _ = await timed_turn(session, f"What's the wifi password? ({n})")
                        results["healthy (anchor)"].append(took)
                    os.kill(proc.pid, signal.SIGSTOP)
                    try:
                        for n in range(samples):
                            took, failed = await timed_turn(session, f"And breakfast? ({n})")
                            results["frozen"].append(took if failed else float("nan"))
                    finally:
                        os.kill(proc.pid, signal.SIGCONT)
                    proc.kill()
                    proc.wait(timeout=10)
                    for n in range(samples):
                        took, failed = await timed_turn(session, f"Hello? ({n})")
                        results["refused"].append(took if failed else float("nan"))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return results


def report(title: str, results: dict[str, list[float]]) -> None:
    print(f"\n{title}: seconds until the turn ended (apology said when Redis is down)\n")
    header = f"{'scenario':<18}{'samples':>8}{'p50':>9}{'max':>9}{'<= 1 s':>9}"
    print(header)
    print("-" * len(header))
    for name, values in results.items():
        ordered = sorted(values)
        p50, worst = ordered[len(ordered) // 2], ordered[-1]
        verdict = "-" if name.startswith("healthy") else ("MET" if worst <= TARGET_S else "MISSED")
        print(f"{name:<18}{len(values):>8}{p50:>9.3f}{worst:>9.3f}{verdict:>9}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 samples per scenario")
    parser.add_argument("--samples", type=int, help="turns per scenario")
    parser.add_argument("--timeout", type=float, default=0.5, help="CHECKPOINT_TIMEOUT_S")
    parser.add_argument(
        "--previous", action="store_true", help="also run the old setup (5 s, retried, no lock)"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the expected failures would flood the table
    samples = args.samples or (3 if args.quick else 10)
    report(
        f"worker settings (CHECKPOINT_TIMEOUT_S={args.timeout:g}, turn lock fails fast)",
        asyncio.run(measure(samples, args.timeout, previous=False)),
    )
    if args.previous:
        report(
            "previous setup (5 s per round trip, retryable, no turn lock)",
            asyncio.run(measure(min(samples, 2), 5.0, previous=True)),
        )


if __name__ == "__main__":
    main()
