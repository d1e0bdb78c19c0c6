"""Requests/s and latency of `POST /token`: token_server vs. a Node reference on livekit-server-sdk.

Both servers run pinned to one core (taskset), one after the other in alternating rounds,
driven by the same `wrk` load (pinned to another core) with the same request: API-key auth, a
named agent with metadata, so every token carries a dispatch. The first token of each server
is checked with livekit-api's TokenVerifier before any load is applied.

Besides wall-clock requests/s, the table shows the server's own CPU time per request (from
/proc), which does not depend on how busy the rest of the machine is. When run as root the
servers and wrk get the same raised priority (nice -10) so unrelated load on a shared machine
disturbs both sides less; `--no-priority` turns that off.

    uv run python -m benchmarks.token_server_rps            # ~1.5 min
    uv run python -m benchmarks.token_server_rps --quick    # ~25 s

Needs the Debian packages `wrk` and `util-linux` (taskset), and Node 20+ with npm.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from livekit.api import TokenVerifier

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "benchmarks" / "node_reference"
API_KEY = "bench-client-key"
LIVEKIT_KEY = "APIbench"
LIVEKIT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
AGENT = "voice-agent"
REQUEST = {
    "participant_name": "Bench Guest",
    "room_config": {"agents": [{"agent_name": AGENT, "metadata": '{"language":"en"}'}]},
}
P99_TARGET_MS = 20.0
PYTHON, NODE = "token_server (Python)", "node livekit-server-sdk"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status
      + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class Result:
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _common_env(port: int) -> dict[str, str]:
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    return {
        **os.environ,
        "PORT": str(port),
        "TOKEN_SERVER_HOST": "127.0.0.1",
        "TOKEN_SERVER_PORT": str(port),
        "LIVEKIT_URL": "wss://bench.livekit.invalid",
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "TOKEN_API_KEYS": json.dumps({digest: {"sub": "bench-user", "roles": ["guest"]}}),
        "TOKEN_ALLOWED_AGENTS": AGENT,
        "TOKEN_TTL_SECONDS": "900",
        # The limits stay on (their bookkeeping runs per request) but never trigger.
        "TOKEN_RATE_LIMIT": "1000000000/1s",
        "TOKEN_IP_RATE_LIMIT": "1000000000/1s",
        "TOKEN_LOG_LEVEL": "warning",
        "REDIS_URL": "",
    }


def _post_token(port: int) -> dict[str, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/token",
        data=json.dumps(REQUEST).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        if response.status != 201:
            raise RuntimeError(f"expected 201, got {response.status}")
        body: dict[str, str] = json.loads(response.read())
        return body


def _check_token(port: int, name: str) -> None:
    body = _post_token(port)
    claims = TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(body["participant_token"])
    agents = claims.room_config.agents if claims.room_config else []
    # token_server suffixes each identity to keep it unique ("bench-user:<hex>"); Node does not
    if claims.identity.split(":")[0] != "bench-user" or [a.agent_name for a in agents] != [AGENT]:
        raise RuntimeError(f"{name} minted an unexpected token: {claims}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _server(command: list[str], *, cwd: Path, env: dict[str, str], port: int) -> Iterator[int]:
    """Runs the server until it answers a token request; yields its pid."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    _post_token(port)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(
                            f"{' '.join(command)} did not start:\n{log.read().decode()}"
                        ) from None
                    time.sleep(0.1)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wrk(
    port: int, *, prefix: list[str], connections: int, seconds: int, script: Path
) -> tuple[int, Result]:
    output = subprocess.run(
        [
            *prefix,
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-s", str(script), f"http://127.0.0.1:{port}/token",
        ],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, errors = (int(x) for x in line.split()[1:])
    rps = requests / (duration_us / 1e6)
    return requests, Result("", rps, p50_us / 1000, p99_us / 1000, errors, 0.0)


def _ensure_node_deps() -> None:
    if not (NODE_DIR / "node_modules" / "livekit-server-sdk").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        sys.exit(f"benchmark needs `{binary}` on PATH")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, one round")
    parser.add_argument("--seconds", type=int, default=8, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best is kept")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpu", default="0", help="core the servers are pinned to")
    parser.add_argument("--client-cpu", default="1", help="core wrk is pinned to")
    parser.add_argument(
        "--no-priority", action="store_true", help="do not raise the priority of servers and wrk"
    )
    args = parser.parse_args()
    seconds, rounds = (3, 1) if args.quick else (args.seconds, args.rounds)
    for binary in ("wrk", "taskset", "node", "npm"):
        _require(binary)
    _ensure_node_deps()

    priority = [] if args.no_priority or os.geteuid() != 0 else ["nice", "-n", "-10"]
    pin_server = [*priority, "taskset", "-c", args.server_cpu]
    pin_client = [*priority, "taskset", "-c", args.client_cpu]
    body = json.dumps(json.dumps(REQUEST, separators=(",", ":")))
    servers = {
        PYTHON: ([*pin_server, sys.executable, "-m", "token_server"], ROOT),
        NODE: ([*pin_server, "node", "server.mjs"], NODE_DIR),
    }
    best: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "token.lua"
        script.write_text(WRK_SCRIPT.format(body=body, key=API_KEY))
        for round_index in range(rounds):
            for name, (command, cwd) in servers.items():
                port = _free_port()
                run = dict(prefix=pin_client, connections=args.connections, script=script)
                with _server(command, cwd=cwd, env=_common_env(port), port=port) as pid:
                    _check_token(port, name)
                    _wrk(port, seconds=min(2, seconds), **run)  # warm-up (JIT, caches)
                    cpu_before = _cpu_seconds(pid)
                    requests, result = _wrk(port, seconds=seconds, **run)
                    cpu_us = (_cpu_seconds(pid) - cpu_before) * 1e6 / max(requests, 1)
                result = replace(result, server=name, cpu_us_per_request=cpu_us)
                print(
                    f"round {round_index + 1}: {name:<24} {result.rps:>7.0f} req/s  "
                    f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
                    f"{cpu_us:.1f} CPU-us/req",
                    flush=True,
                )
                if name not in best or result.rps > best[name].rps:
                    best[name] = result
    _report(best[PYTHON], best[NODE], args, seconds, rounds, bool(priority))


def _report(
    python: Result, node: Result, args: argparse.Namespace, seconds: int, rounds: int, nice: bool
) -> None:
    ratio = python.rps / node.rps
    cpu_ratio = node.cpu_us_per_request / python.cpu_us_per_request
    print()
    print(
        f"POST /token, API-key auth + agent dispatch, {args.connections} connections, "
        f"server on CPU {args.server_cpu}, wrk on CPU {args.client_cpu}"
        f"{', nice -10' if nice else ''}, best of {rounds} x {seconds} s"
    )
    header = f"{'server':<26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU-us/req':>12}"
    print(header)
    for result in (python, node):
        print(
            f"{result.server:<26}{result.rps:>9.0f}{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}"
            f"{result.errors:>8}{result.cpu_us_per_request:>12.1f}"
        )
    print(f"{'ratio (Python / Node)':<26}{ratio:>8.2f}x{'':>26}{cpu_ratio:>11.2f}x")
    ok = ratio >= 1.0 and python.p99_ms <= P99_TARGET_MS and python.errors == 0
    print(f"target: >= 1.00x req/s and p99 <= {P99_TARGET_MS:g} ms -> {'met' if ok else 'NOT met'}")
    print("(CPU ratio = Node CPU per request / Python CPU per request; > 1 means Python is leaner)")


if __name__ == "__main__":
    main()
