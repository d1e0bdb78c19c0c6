"""Requests/s and latency of `POST /token`: token_server vs. a Node reference on livekit-server-sdk.

Both servers run pinned to one core (taskset), one after the other, driven by the same `wrk`
load on another core with the same request: API-key auth, a named agent with metadata, so the
token carries a dispatch. Every token is first checked with livekit-api's TokenVerifier.

    uv run python -m benchmarks.token_server_rps            # ~1.5 min
    uv run python -m benchmarks.token_server_rps --quick    # ~25 s

Needs the Debian packages `wrk` and `util-linux` (taskset) and Node 20+ with npm.
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
from dataclasses import dataclass
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
        # The limits stay on (the work is done per request) but never trigger.
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
    if claims.identity != "bench-user" or [a.agent_name for a in agents] != [AGENT]:
        raise RuntimeError(f"{name} minted an unexpected token: {claims}")


@contextmanager
def _server(command: list[str], *, cwd: Path, env: dict[str, str], port: int) -> Iterator[None]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    _post_token(port)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise RuntimeError(
                            f"{command[2:]} did not start:\n{log.read().decode()}"
                        ) from None
                    time.sleep(0.1)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wrk(port: int, *, cpu: str, connections: int, seconds: int, script: Path) -> Result:
    output = subprocess.run(
        [
            "taskset", "-c", cpu,
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-s", str(script), f"http://127.0.0.1:{port}/token",
        ],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, errors = (int(x) for x in line.split()[1:])
    return Result("", requests / (duration_us / 1e6), p50_us / 1000, p99_us / 1000, errors)


def _ensure_node_deps() -> None:
    if not (NODE_DIR / "node_modules" / "livekit-server-sdk").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        sys.exit(f"benchmark needs `{binary}` on PATH")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs, one round")
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; best is kept")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--server-cpu", default="0", help="core the servers are pinned to")
    parser.add_argument("--client-cpu", default="1", help="core wrk is pinned to")
    args = parser.parse_args()
    seconds, rounds = (3, 1) if args.quick else (args.seconds, args.rounds)
    for binary in ("wrk", "taskset", "node", "npm"):
        _require(binary)
    _ensure_node_deps()

    body = json.dumps(json.dumps(REQUEST, separators=(",", ":")))
    servers = {
        "token_server (Python)": (
            ["taskset", "-c", args.server_cpu, sys.executable, "-m", "token_server"],
            ROOT,
        ),
        "node livekit-server-sdk": (
            ["taskset", "-c", args.server_cpu, "node", "server.mjs"],
            NODE_DIR,
        ),
    }
    best: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "token.lua"
        script.write_text(WRK_SCRIPT.format(body=body, key=API_KEY))
        for round_index in range(rounds):
            for name, (command, cwd) in servers.items():
                port = _free_port()
                with _server(command, cwd=cwd, env=_common_env(port), port=port):
                    _check_token(port, name)
                    run = dict(cpu=args.client_cpu, connections=args.connections, script=script)
                    _wrk(port, seconds=min(2, seconds), **run)  # warm-up (JIT, caches)
                    result = _wrk(port, seconds=seconds, **run)
                result = Result(name, result.rps, result.p50_ms, result.p99_ms, result.errors)
                print(
                    f"round {round_index + 1}: {name:<24} {result.rps:>9.0f} req/s  "
                    f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms",
                    flush=True,
                )
                if name not in best or result.rps > best[name].rps:
                    best[name] = result

    python, node = best["token_server (Python)"], best["node livekit-server-sdk"]
    ratio = python.rps / node.rps
    print()
    print(
        f"POST /token, API-key auth + agent dispatch, {args.connections} connections, "
        f"server on CPU {args.server_cpu}, wrk on CPU {args.client_cpu}, best of {rounds} x {seconds:g} s"
    )
    print(f"{'server':<26}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for result in (python, node):
        print(
            f"{result.server:<26}{result.rps:>10.0f}{result.p50_ms:>9.2f}"
            f"{result.p99_ms:>9.2f}{result.errors:>8}"
        )
    print(f"{'ratio (Python / Node)':<26}{ratio:>9.2f}x")
    ok = ratio >= 1.0 and python.p99_ms <= P99_TARGET_MS and python.errors == 0
    print(
        f"target ≥ 1.00x and p99 ≤ {P99_TARGET_MS:g} ms: {'met' if ok else 'NOT met'}",
    )


if __name__ == "__main__":
    main()
