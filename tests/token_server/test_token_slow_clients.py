"""Slow and idle clients against a real `python -m token_server` subprocess on loopback.

A client that sends its headers or body too slowly is answered 408 and closed; 1,100 idle
sockets under a 1,024 open-file limit do not stop the server from minting tokens.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from token_server_helpers import GUEST_KEY, bearer, running_token_server, verifier

IDLE_SOCKETS = 1100
FILE_LIMIT = 1024


def _address(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    return parts.hostname, parts.port


def _closed_within(sock: socket.socket, seconds: float, drip: bytes = b"") -> bytes | None:
    """Drip `drip` one byte every 0.2 s; the bytes the server sent before closing, or None."""
    received = b""
    deadline = time.monotonic() + seconds
    sent = 0
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        if sent < len(drip):
            try:
                sock.sendall(drip[sent : sent + 1])
            except OSError:
                return received
            sent += 1
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    with running_token_server({"TOKEN_READ_TIMEOUT_S": "1"}) as base:
        yield base


def test_headers_sent_too_slowly_get_408_and_a_closed_connection(slow_server: str) -> None:
    # Never-ending headers, one byte at a time: without a deadline this would hold forever.
    drip = b"POST /token HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    with socket.create_connection(_address(slow_server), timeout=5) as sock:
        received = _closed_within(sock, 30, drip)
    assert received is not None, "the server kept a slow-header connection open"
    assert received.startswith(b"HTTP/1.1 408")


def test_a_body_sent_too_slowly_is_cut_off(slow_server: str) -> None:
    head = (
        b"POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + GUEST_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    )
    with socket.create_connection(_address(slow_server), timeout=5) as sock:
        sock.sendall(head)
        received = _closed_within(sock, 30, b"{" + b" " * 398)
    assert received is not None, "the server kept a slow-body connection open"
    assert b"201" not in received.split(b"\r\n", 1)[0]


def test_a_silent_connection_is_closed(slow_server: str) -> None:
    with socket.create_connection(_address(slow_server), timeout=5) as sock:
        assert _closed_within(sock, 30) is not None


def test_a_prompt_client_is_served_normally(slow_server: str) -> None:
    response = httpx.post(f"{slow_server}/token", headers=bearer(GUEST_KEY), timeout=30)
    assert response.status_code == 201
    assert verifier().verify(response.json()["participant_token"]).identity


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


def test_serves_tokens_while_1100_idle_connections_are_open_under_a_1024_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_SOCKETS + 200:
        pytest.fail(f"this test needs an open-file hard limit of {IDLE_SOCKETS + 200}, not {hard}")
    wanted = IDLE_SOCKETS + 200 if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(wanted, 65536)), hard))
    # A long read deadline: the server must cope through its connection cap, not by waiting.
    env = {"TOKEN_READ_TIMEOUT_S": "120", "TOKEN_KEEPALIVE_S": "120"}
    try:
        with (
            running_token_server(env, preexec_fn=_limit_files) as base,
            contextlib.ExitStack() as idle,
        ):
            address = _address(base)
            for _ in range(IDLE_SOCKETS):
                sock = idle.enter_context(socket.socket())
                sock.settimeout(10)
                sock.connect(address)  # completes in the kernel's backlog, then sends nothing
            time.sleep(1)  # let the server accept what it can
            statuses = []
            with httpx.Client(timeout=30) as client:
                for _ in range(20):
                    response = client.post(
                        f"{base}/token", headers={**bearer(GUEST_KEY), "Connection": "close"}
                    )
                    statuses.append(response.status_code)
                health = client.get(f"{base}/healthz")
            assert statuses == [201] * 20
            assert health.status_code == 200
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
