"""Fixtures for the token server: in-process clients and a loopback JWKS issuer."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from token_server_helpers import ClientFactory, Issuer, SigningKey, ec_key, make_settings, rsa_key

from token_server.app import TokenServerApp
from token_server.factory import create_app
from token_server.settings import TokenServerSettings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("TOKEN_", "LIVEKIT_")) or name in ("REDIS_URL", "AGENT_NAME"):
            monkeypatch.delenv(name)


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Builds an app from settings and an httpx client calling it in-process."""
    opened: list[tuple[httpx.AsyncClient, TokenServerApp]] = []

    async def make(
        settings: TokenServerSettings | None = None, *, client_ip: str = "203.0.113.7"
    ) -> httpx.AsyncClient:
        app = create_app(settings or make_settings())
        transport = httpx.ASGITransport(app=app, client=(client_ip, 50_000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        client.app = app  # type: ignore[attr-defined]
        opened.append((client, app))
        return client

    yield make
    for client, app in opened:
        await client.aclose()
        await app.aclose()


@pytest.fixture
async def client(make_client: ClientFactory) -> httpx.AsyncClient:
    return await make_client()


@pytest.fixture(scope="session")
def rsa_signing_key() -> SigningKey:
    return rsa_key("rsa-1")


@pytest.fixture(scope="session")
def ec_signing_key() -> SigningKey:
    return ec_key("ec-1")


@pytest.fixture
def issuer(rsa_signing_key: SigningKey, ec_signing_key: SigningKey) -> Iterator[Issuer]:
    state = Issuer(url="")
    state.publish(rsa_signing_key, ec_signing_key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            if state.fail or self.path != "/.well-known/jwks.json":
                self.send_response(503 if state.fail else 404)
                self.end_headers()
                return
            body = json.dumps({"keys": [key.jwk for key in state.keys]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
