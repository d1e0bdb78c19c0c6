"""A real web client: livekit-client's TokenSource.endpoint (Node) against the server."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from token_server_helpers import (
    GUEST_KEY,
    GUEST_SUB,
    token_server_process,
    verifier,
)

ROOT = Path(__file__).resolve().parents[2]
JS_CLIENT = Path(__file__).resolve().parent / "js_client"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def node_client() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("the JS client test needs Node 20+ and npm on PATH")
    if not (JS_CLIENT / "node_modules" / "livekit-client").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_CLIENT, check=True, timeout=300
        )
    return JS_CLIENT / "fetch_token.mjs"


@pytest.fixture(scope="module")
def server_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    # info level: the shutdown test reads uvicorn's own "Application shutdown complete".
    env = {"TOKEN_CORS_ORIGINS": "https://app.example.com", "TOKEN_LOG_LEVEL": "info"}
    with token_server_process(env) as running:
        yield running


def _fetch(script: Path, url: str, agent: str, metadata: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(script), url, GUEST_KEY, agent, metadata, "Ana from the web app"],
        cwd=JS_CLIENT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_source_endpoint_gets_a_verified_token_with_dispatch(
    node_client: Path, server_process: tuple[str, subprocess.Popen[bytes]]
) -> None:
    base, _ = server_process

    result = _fetch(node_client, f"{base}/token", "voice-agent", '{"language":"it"}')

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["serverUrl"] == "wss://voice.example.livekit.cloud"
    claims = verifier().verify(response["participantToken"])
    assert claims.identity.startswith(f"{GUEST_SUB}:")
    assert claims.name == "Ana from the web app"
    assert claims.video is not None and claims.video.room_join and claims.video.room
    assert claims.room_config is not None
    (agent,) = claims.room_config.agents
    assert agent.agent_name == "voice-agent"
    metadata = json.loads(agent.metadata)
    assert metadata.pop("conversation_id").startswith("c-")
    assert metadata == {
        "language": "it",
        "property_id": "HOTEL-1",
        "reservation_code": "RES-1001",
        "caller_identity": claims.identity,
    }


def test_token_source_endpoint_surfaces_a_refused_agent(
    node_client: Path, server_process: tuple[str, subprocess.Popen[bytes]]
) -> None:
    base, _ = server_process

    result = _fetch(node_client, f"{base}/token", "not-our-agent", "{}")

    assert result.returncode == 1
    assert "403" in result.stderr and "agent_not_allowed" in result.stderr


def test_served_over_http_with_preflight_and_stops_cleanly(
    server_process: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, proc = server_process
    preflight = httpx.options(
        f"{base}/token",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "server" not in preflight.headers

    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal as its exit status.
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    assert proc.stderr is not None
    assert "Application shutdown complete" in proc.stderr.read().decode()
