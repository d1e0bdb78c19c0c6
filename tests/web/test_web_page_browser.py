"""The page in headless Chromium against a real token server subprocess on loopback.

No LiveKit server exists on this machine, so LIVEKIT_URL points at a closed loopback port:
the page must get a real token, then say plainly that no LiveKit server answered.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from livekit.api import TokenVerifier
from token_server_helpers import token_server_process

from tests.redis_process import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
LIVEKIT_KEY = "APIwebpage"
LIVEKIT_SECRET = "web-page-test-secret-0123456789abcdef0123"
APP_KEY = "web-page-app-key-5b1e"
APP_SUB = "front-desk-tablet"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("the browser tests need Debian's chromium at /usr/bin/chromium")
    return CHROMIUM


@contextmanager
def _running_token_server() -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """A dev-mode token server with one API key; its LIVEKIT_URL is a closed loopback port."""
    livekit_url = f"ws://127.0.0.1:{free_port()}"
    env = {
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "TOKEN_ALLOW_INSECURE_DEV": "true",
    }
    keys = {hashlib.sha256(APP_KEY.encode()).hexdigest(): {"sub": APP_SUB, "roles": ["guest"]}}
    with token_server_process(env, api_keys=keys) as (base, proc):
        yield base, livekit_url, proc


@pytest.fixture(scope="module")
def token_server() -> Iterator[tuple[str, str]]:
    with _running_token_server() as (base, livekit_url, _):
        yield base, livekit_url


def _open_page(
    web: Path,
    chromium: Path,
    tmp_path: Path,
    url: str,
    *,
    expected_console: tuple[str, ...] = ("ERR_CONNECTION_REFUSED", "WebSocket connection to"),
    **form: str | int,
) -> dict[str, Any]:
    screenshot = tmp_path / "page.png"
    options = {
        "url": url,
        "executablePath": str(chromium),
        "userDataDir": str(tmp_path / "chromium-profile"),
        "screenshot": str(screenshot),
        **form,
    }
    result = subprocess.run(
        ["node", "tools/browser_check.mjs", json.dumps(options)],
        cwd=web,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen: dict[str, Any] = json.loads(result.stdout)
    assert screenshot.stat().st_size > 10_000  # a rendered page, kept in tmp_path for a look
    # The page's own code and the CSP must not fail; only the unreachable LiveKit server may.
    unexpected = [
        line for line in seen["console"] if not any(part in line for part in expected_console)
    ]
    assert unexpected == [], unexpected
    return seen


def test_dev_mode_gets_a_real_token_then_reports_no_livekit_server(
    web_project: Path, chromium: Path, token_server: tuple[str, str], tmp_path: Path
) -> None:
    base, livekit_url = token_server

    seen = _open_page(web_project, chromium, tmp_path, f"{base}/", name="Ana Lima")

    assert seen["title"] == "Talk to the voice agent"
    (response,) = seen["tokenResponses"]
    assert response["status"] == 201
    body = response["body"]
    assert body["server_url"] == livekit_url
    claims = TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(body["participant_token"])
    assert claims.identity.startswith("guest")  # the server picks a guest identity
    assert claims.name == "Ana Lima"
    assert claims.video is not None and claims.video.room == body["room_name"]
    assert claims.video.can_publish_sources == ["microphone"]
    assert claims.room_config is not None
    assert [a.agent_name for a in claims.room_config.agents] == ["voice-agent"]
    assert seen["error"].startswith(f"No LiveKit server answered at {livekit_url} ")
    assert "livekit-server --config livekit.yaml" in seen["error"]
    assert seen["connection"] == "no LiveKit server"
    assert seen["joinEnabled"]  # the caller can try again


def test_an_api_key_signs_in_as_its_subject(
    web_project: Path, chromium: Path, token_server: tuple[str, str], tmp_path: Path
) -> None:
    base, _ = token_server

    seen = _open_page(web_project, chromium, tmp_path, f"{base}/", apiKey=APP_KEY)

    (response,) = seen["tokenResponses"]
    assert response["status"] == 201
    claims = TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(
        response["body"]["participant_token"]
    )
    assert claims.identity.partition(":")[0] == APP_SUB  # the key's subject (plus a suffix)
    assert claims.video is not None and claims.video.room == response["body"]["room_name"]
    assert seen["error"].startswith("No LiveKit server answered")


def test_a_refused_token_is_reported_as_such(
    web_project: Path, chromium: Path, token_server: tuple[str, str], tmp_path: Path
) -> None:
    base, _ = token_server

    seen = _open_page(
        web_project,
        chromium,
        tmp_path,
        f"{base}/",
        apiKey="not-a-valid-key",
        expected_console=("the server responded with a status of 401",),
    )

    assert [r["status"] for r in seen["tokenResponses"]] == [401]
    assert seen["error"] == (
        "The token server refused the token (401 unauthenticated): the API key is not valid. "
        "Check the API key."
    )
    assert seen["connection"] == "token refused"


def test_a_token_server_that_went_away_is_reported_as_such(
    web_project: Path, chromium: Path, tmp_path: Path
) -> None:
    with _running_token_server() as (base, _, proc):
        seen = _open_page(
            web_project,
            chromium,
            tmp_path,
            f"{base}/",
            killBeforeJoin=proc.pid,
            expected_console=("ERR_CONNECTION_REFUSED",),
        )

    assert seen["tokenResponses"] == []
    assert seen["error"].startswith("The token server did not answer (")
    assert seen["error"].endswith("Is python -m token_server running?")
    assert seen["connection"] == "no token server"
