"""Shared test helpers for the token server: settings, keys, a controllable OIDC issuer."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from livekit.api import TokenVerifier

from token_server.settings import TokenServerSettings

LIVEKIT_URL = "wss://voice.example.livekit.cloud"
LIVEKIT_KEY = "APItest123"
LIVEKIT_SECRET = "test-secret-with-enough-entropy-0123456789abcdef"
AGENT = "voice-agent"

GUEST_KEY = "guest-app-key-3f9a"
STAFF_KEY = "staff-console-key-77c1"
GUEST_SUB = "guest-42"
STAFF_SUB = "staff-7"

OIDC_ISSUER = "https://issuer.test/"
OIDC_AUDIENCE = "voice-token-api"


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


API_KEYS = {
    sha256_hex(GUEST_KEY): {
        "sub": GUEST_SUB,
        "roles": ["guest"],
        "context": {"property_id": "HOTEL-1", "reservation_code": "RES-1001"},
    },
    sha256_hex(STAFF_KEY): {"sub": STAFF_SUB, "roles": ["staff"], "name": "Front Desk"},
}


ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def verifier() -> TokenVerifier:
    return TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET)


def make_settings(**overrides: Any) -> TokenServerSettings:
    """Settings for tests, never read from the developer's environment or .env."""
    values: dict[str, Any] = {
        "livekit_url": LIVEKIT_URL,
        "livekit_api_key": LIVEKIT_KEY,
        "livekit_api_secret": LIVEKIT_SECRET,
        "api_keys": API_KEYS,
        "rate_limit": "1000/1s",
        "ip_rate_limit": "1000/1s",
    }
    values.update(overrides)
    return TokenServerSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any
    jwk: dict[str, Any]


def rsa_key(kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    return SigningKey(kid, "RS256", private, {**jwk, "kid": kid, "alg": "RS256", "use": "sig"})


def ec_key(kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    return SigningKey(kid, "ES256", private, {**jwk, "kid": kid, "alg": "ES256", "use": "sig"})


@dataclass
class Issuer:
    """A JWKS endpoint the tests control, and a minter for tokens signed by its keys."""

    url: str
    keys: list[SigningKey] = field(default_factory=list)
    fail: bool = False
    requests: int = 0

    def publish(self, *keys: SigningKey) -> None:
        self.keys = list(keys)

    def mint(
        self,
        key: SigningKey,
        *,
        sub: str = "user_2abc",
        issuer: str = OIDC_ISSUER,
        audience: str = OIDC_AUDIENCE,
        expires_in: int = 300,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            "sub": sub,
            "iss": issuer,
            "aud": audience,
            "iat": now,
            "exp": now + expires_in,
            **claims,
        }
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})


def oidc_settings(issuer: Issuer, **overrides: Any) -> TokenServerSettings:
    values: dict[str, Any] = {
        "api_keys": {},
        "oidc_jwks_url": issuer.url,
        "oidc_issuer": OIDC_ISSUER,
        "oidc_audience": OIDC_AUDIENCE,
        "oidc_jwks_min_refresh_s": 0,
    }
    values.update(overrides)
    return make_settings(**values)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def token_server_process(
    env: dict[str, str] | None = None,
    *,
    preexec_fn: Callable[[], None] | None = None,
    api_keys: dict[str, Any] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m token_server` as a real subprocess on a loopback port; yields its base URL
    and the process (for tests that stop it mid-way)."""
    port = _free_port()
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TOKEN_", "LIVEKIT_")) and k not in ("REDIS_URL", "AGENT_NAME")
    }
    full_env = {
        **clean,
        "LIVEKIT_URL": LIVEKIT_URL,
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "TOKEN_API_KEYS": json.dumps(api_keys if api_keys is not None else API_KEYS),
        "TOKEN_SERVER_HOST": "127.0.0.1",
        "TOKEN_SERVER_PORT": str(port),
        "TOKEN_RATE_LIMIT": "100000/1s",
        "TOKEN_IP_RATE_LIMIT": "100000/1s",
        "TOKEN_LOG_LEVEL": "warning",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "token_server"],
        cwd=Path(__file__).resolve().parents[1],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=preexec_fn,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"token server did not start: {stderr}")
        time.sleep(0.1)
    try:
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@contextlib.contextmanager
def running_token_server(
    env: dict[str, str] | None = None,
    *,
    preexec_fn: Callable[[], None] | None = None,
    api_keys: dict[str, Any] | None = None,
) -> Iterator[str]:
    """`python -m token_server` as a real subprocess on a loopback port; yields its base URL."""
    with token_server_process(env, preexec_fn=preexec_fn, api_keys=api_keys) as (base, _):
        yield base
