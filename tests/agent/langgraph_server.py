"""A real `langgraph dev` server (LangGraph's local Agent Server) for tests, on loopback.

`langgraph dev` lives in its own environment (the `langgraph-server` dependency group
conflicts with `dev`), made once per checkout in `.venv-langgraph` (git-ignored). The
server imports the graphs named in a generated `langgraph.json` from this repository
(`PYTHONPATH` is the repo root), so tests define the graphs they talk to.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.redis_process import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_ENV = REPO_ROOT / ".venv-langgraph"
STARTUP_TIMEOUT = 240.0  # a cold import of langgraph-api on a loaded 2-core machine is slow
SYNC_TIMEOUT = 900.0

# Nothing may leave the machine: no tracing, no CLI analytics, no version check, no browser.
_OFFLINE_ENV = {
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING_V2": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "PYTHONUNBUFFERED": "1",
}
_DROPPED_ENV = ("VIRTUAL_ENV", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGGRAPH_API_KEY")


@dataclass(frozen=True)
class LangGraphDevServer:
    url: str
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def ensure_server_env() -> Path:
    """Create (or update) the `langgraph dev` environment; returns its `langgraph` binary."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to create the langgraph dev environment")
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env["UV_PROJECT_ENVIRONMENT"] = str(SERVER_ENV)
    try:
        done = subprocess.run(
            [uv, "sync", "--frozen", "--no-dev", "--group", "langgraph-server"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=SYNC_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"creating {SERVER_ENV} took longer than {SYNC_TIMEOUT:g} s")
    binary = SERVER_ENV / "bin" / "langgraph"
    if done.returncode != 0 or not binary.exists():
        pytest.fail(f"could not create {SERVER_ENV}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return binary


@contextmanager
def langgraph_dev(
    graphs: Mapping[str, str], workdir: Path, *, env: Mapping[str, str] | None = None
) -> Iterator[LangGraphDevServer]:
    """Serve `graphs` (`{"name": "module.path:attribute"}` or `"/abs/file.py:attribute"`)
    with `langgraph dev`; `env` adds to the server's environment."""
    binary = ensure_server_env()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "langgraph.json").write_text(
        json.dumps({"dependencies": ["."], "graphs": dict(graphs)}, indent=2)
    )
    port = free_port()
    server = LangGraphDevServer(url=f"http://127.0.0.1:{port}", log_path=workdir / "server.log")
    server_env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    server_env.update(env or {})
    server_env.update(_OFFLINE_ENV)
    server_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), server_env.get("PYTHONPATH")) if p
    )
    command = [
        str(binary),
        "dev",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--no-browser",
        "--no-reload",
        "--config",
        str(workdir / "langgraph.json"),
    ]
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,  # the in-memory server persists its state here
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_ready(server, process)
        yield server
    finally:
        _stop(process)


def _wait_until_ready(server: LangGraphDevServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"langgraph dev exited with {process.returncode} before it was ready:\n"
                f"{server.log_tail()}"
            )
        try:
            if httpx.get(f"{server.url}/ok", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    _stop(process)
    pytest.fail(
        f"langgraph dev did not answer /ok within {STARTUP_TIMEOUT:g} s:\n{server.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # the server runs in its own session: signal only the group this fixture started
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def repository_graphs() -> dict[str, str]:
    """The graphs of the repository's langgraph.json as `module:attribute` specs.

    The server resolves file paths against its working directory and loads a file once per
    graph; as an imported module (the repo root is on PYTHONPATH) it is loaded once."""
    config = json.loads((REPO_ROOT / "langgraph.json").read_text())
    graphs: dict[str, str] = {}
    for name, spec in config["graphs"].items():
        path, _, attribute = spec.rpartition(":")
        if path.endswith(".py"):
            module = ".".join(Path(path).with_suffix("").parts).lstrip(".")
            spec = f"{module}:{attribute}"
        graphs[name] = spec
    return graphs
