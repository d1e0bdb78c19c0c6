"""Settings: the documented environment names, fail-closed auth, and the start-up error line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from token_server_helpers import make_settings

from token_server.rate_limit import RateLimitSpec
from token_server.settings import TokenServerSettings

ROOT = Path(__file__).resolve().parents[2]
KEY_HASH = hashlib.sha256(b"k").hexdigest()


def test_every_documented_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "LIVEKIT_URL": "wss://project.livekit.cloud",
        "LIVEKIT_API_KEY": "APIkey",
        "LIVEKIT_API_SECRET": "s3cr3t-value-xyz",
        "TOKEN_SERVER_HOST": "0.0.0.0",
        "TOKEN_SERVER_PORT": "9000",
        "TOKEN_API_KEYS": json.dumps({KEY_HASH.upper(): {"sub": "app", "roles": ["guest"]}}),
        "TOKEN_OIDC_JWKS_URL": "https://clerk.example.com/.well-known/jwks.json",
        "TOKEN_OIDC_ISSUER": "https://clerk.example.com",
        "TOKEN_OIDC_AUDIENCE": "voice",
        "TOKEN_ALLOWED_AGENTS": "concierge, night-audit",
        "TOKEN_TTL_SECONDS": "600",
        "TOKEN_CORS_ORIGINS": "https://app.example.com,http://localhost:3000",
        "TOKEN_RATE_LIMIT": "10/30s",
        "TOKEN_ALLOW_INSECURE_DEV": "false",
        "REDIS_URL": "redis://cache:6379/1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = TokenServerSettings(_env_file=None)  # type: ignore[call-arg]

    assert settings.livekit_url == "wss://project.livekit.cloud"
    assert settings.livekit_api_secret.get_secret_value() == "s3cr3t-value-xyz"
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.api_keys[KEY_HASH].sub == "app"
    assert settings.oidc_audience == "voice"
    assert settings.resolved_allowed_agents == ("concierge", "night-audit")
    assert settings.ttl_seconds == 600
    assert settings.cors_origins == ["https://app.example.com", "http://localhost:3000"]
    assert settings.rate_limit == RateLimitSpec(10, 30)
    assert settings.redis_url == "redis://cache:6379/1"
    assert "s3cr3t-value-xyz" not in repr(settings)


def test_defaults() -> None:
    settings = make_settings()
    assert settings.ttl_seconds == 900
    assert settings.resolved_allowed_agents == ("voice-agent",)
    assert settings.publish_sources == ["microphone"]
    assert settings.rate_limit == RateLimitSpec(1000, 1)
    assert make_settings(agent_name="front-desk").resolved_allowed_agents == ("front-desk",)


def test_no_authentication_fails_closed() -> None:
    with pytest.raises(ValidationError, match="no authentication configured"):
        make_settings(api_keys={})
    assert make_settings(api_keys={}, allow_insecure_dev=True).allow_insecure_dev


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ttl_seconds": 60}, "greater than or equal to 120"),
        ({"ttl_seconds": 86_401}, "less than or equal to 86400"),
        ({"api_keys": {"not-a-hash": {"sub": "x"}}}, "sha256"),
        ({"api_keys": {KEY_HASH: {"roles": ["x"]}}}, "sub"),
        ({"api_keys": {KEY_HASH: {"sub": "x", "admin": True}}}, "admin"),
        ({"api_keys": "{not json"}, "JSON|json|Expecting"),
        ({"cors_origins": "*"}, "explicit origin"),
        ({"cors_origins": "https://app.example.com/path"}, "without a path"),
        ({"oidc_jwks_url": "https://idp/jwks.json"}, "set together"),
        ({"rate_limit": "lots"}, "rate limit"),
        ({"publish_sources": "microphone,webcam"}, "publish_sources|TOKEN_PUBLISH_SOURCES"),
        ({"livekit_url": "livekit.example.com"}, "ws://"),
        ({"room_prefixes": {"staff": []}}, "prefixes"),
        ({"role_attributes": {"staff": {"lk.agent.state": "x"}}}, "not usable"),
    ],
)
def test_bad_configuration_is_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises((ValidationError, ValueError), match=message):
        make_settings(**overrides)


def _run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TOKEN_", "LIVEKIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "token_server", *args],
        env={**clean, **env},
        cwd=ROOT / "tests",  # no .env here
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_configuration_exits_with_one_clear_line() -> None:
    result = _run(
        [],
        {
            "LIVEKIT_URL": "wss://x",
            "LIVEKIT_API_KEY": "k",
            "LIVEKIT_API_SECRET": "s",
            "TOKEN_ALLOW_INSECURE_DEV": "true",
            "TOKEN_TTL_SECONDS": "30",
        },
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("token_server: configuration error:")
    assert "TOKEN_TTL_SECONDS" in lines[0]


def test_missing_livekit_settings_are_named() -> None:
    result = _run([], {})
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert "LIVEKIT_URL" in line and "LIVEKIT_API_SECRET" in line


def test_hash_key_prints_the_sha256_to_configure() -> None:
    result = _run(["hash-key"], {}, stdin="my-client-key\n")
    assert result.returncode == 0
    assert result.stdout.strip() == hashlib.sha256(b"my-client-key").hexdigest()
