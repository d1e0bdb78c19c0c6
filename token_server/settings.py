"""Settings of the token server, read once from the environment (and `.env`) at start-up.

`LIVEKIT_URL`, `LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`, `AGENT_NAME` and `REDIS_URL` are shared
with the voice worker; everything specific to this service starts with `TOKEN_`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from token_server.rate_limit import RateLimitSpec
from token_server.token_request import ATTRIBUTE_KEY_PATTERN

PublishSource = Literal["microphone", "camera", "screen_share", "screen_share_audio"]
ContextValue = str | int | float | bool

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ROLE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_ROOM_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ATTRIBUTE_KEY = re.compile(ATTRIBUTE_KEY_PATTERN)


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _load_json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value


CsvList = Annotated[list[str], NoDecode]


class ApiKeyPrincipal(BaseModel):
    """One entry of `TOKEN_API_KEYS`: who a key authenticates as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sub: str = Field(min_length=1, max_length=256)
    roles: tuple[str, ...] = ()
    name: str | None = Field(default=None, max_length=128)
    context: dict[str, ContextValue] = Field(default_factory=dict)
    # A backend that authenticates its own users and names them in participant_identity.
    asserts_users: bool = False

    @field_validator("roles")
    @classmethod
    def _check_roles(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        for role in roles:
            if not _ROLE.fullmatch(role):
                raise ValueError(f"role {role!r} must match {_ROLE.pattern}")
        return roles

    @field_validator("context")
    @classmethod
    def _check_context(cls, context: dict[str, ContextValue]) -> dict[str, ContextValue]:
        for key in context:
            if not _METADATA_KEY.fullmatch(key):
                raise ValueError(f"context key {key!r} must match {_METADATA_KEY.pattern}")
        return context


class TokenServerSettings(BaseSettings):
    """Every knob of `python -m token_server`; see docs/token-server.md for the meaning of each."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # LiveKit project (shared with the worker)
    livekit_url: str = Field(alias="LIVEKIT_URL", min_length=1)
    livekit_api_key: str = Field(alias="LIVEKIT_API_KEY", min_length=1)
    livekit_api_secret: SecretStr = Field(alias="LIVEKIT_API_SECRET")
    agent_name: str = Field(default="voice-agent", alias="AGENT_NAME", min_length=1)
    redis_url: str | None = Field(default=None, alias="REDIS_URL")

    # Listening socket
    host: str = Field(default="127.0.0.1", alias="TOKEN_SERVER_HOST")
    port: int = Field(default=8080, ge=0, le=65535, alias="TOKEN_SERVER_PORT")
    forwarded_allow_ips: str = Field(default="", alias="TOKEN_FORWARDED_ALLOW_IPS")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", alias="TOKEN_LOG_LEVEL"
    )

    # Authentication
    api_keys: Annotated[dict[str, ApiKeyPrincipal], NoDecode] = Field(
        default_factory=dict, alias="TOKEN_API_KEYS"
    )
    oidc_jwks_url: str | None = Field(default=None, alias="TOKEN_OIDC_JWKS_URL")
    oidc_issuer: str | None = Field(default=None, alias="TOKEN_OIDC_ISSUER")
    oidc_audience: str | None = Field(default=None, alias="TOKEN_OIDC_AUDIENCE")
    oidc_roles_claim: str = Field(default="roles", alias="TOKEN_OIDC_ROLES_CLAIM", min_length=1)
    oidc_timeout_s: float = Field(default=5.0, gt=0, le=60, alias="TOKEN_OIDC_TIMEOUT_S")
    oidc_jwks_cache_s: float = Field(default=600.0, ge=10, alias="TOKEN_OIDC_JWKS_CACHE_S")
    oidc_jwks_min_refresh_s: float = Field(
        default=30.0, ge=0, le=3600, alias="TOKEN_OIDC_JWKS_MIN_REFRESH_S"
    )
    oidc_leeway_s: float = Field(default=30.0, ge=0, le=300, alias="TOKEN_OIDC_LEEWAY_S")
    context_claims: CsvList = Field(
        default_factory=lambda: ["property_id", "reservation_code"], alias="TOKEN_CONTEXT_CLAIMS"
    )
    allow_insecure_dev: bool = Field(default=False, alias="TOKEN_ALLOW_INSECURE_DEV")

    # What a token may do
    allowed_agents: CsvList = Field(default_factory=list, alias="TOKEN_ALLOWED_AGENTS")
    default_dispatch: bool = Field(default=True, alias="TOKEN_DEFAULT_DISPATCH")
    ttl_seconds: int = Field(default=900, ge=120, le=86_400, alias="TOKEN_TTL_SECONDS")
    publish_sources: Annotated[list[PublishSource], NoDecode] = Field(
        default_factory=lambda: list[PublishSource](["microphone"]), alias="TOKEN_PUBLISH_SOURCES"
    )
    room_prefixes: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict, alias="TOKEN_ROOM_PREFIXES"
    )
    allow_client_room_names: bool = Field(default=False, alias="TOKEN_ALLOW_CLIENT_ROOM_NAMES")
    role_attributes: Annotated[dict[str, dict[str, str]], NoDecode] = Field(
        default_factory=lambda: {"staff": {"role": "staff"}}, alias="TOKEN_ROLE_ATTRIBUTES"
    )
    max_metadata_bytes: int = Field(
        default=4096, ge=64, le=12_288, alias="TOKEN_MAX_METADATA_BYTES"
    )

    # Browser access and abuse protection
    cors_origins: CsvList = Field(default_factory=list, alias="TOKEN_CORS_ORIGINS")
    rate_limit: Annotated[RateLimitSpec, NoDecode] = Field(
        default_factory=lambda: RateLimitSpec.parse("30/60s"), alias="TOKEN_RATE_LIMIT"
    )
    ip_rate_limit: Annotated[RateLimitSpec, NoDecode] = Field(
        default_factory=lambda: RateLimitSpec.parse("120/60s"), alias="TOKEN_IP_RATE_LIMIT"
    )
    app_rate_limit: Annotated[RateLimitSpec, NoDecode] = Field(
        default_factory=lambda: RateLimitSpec.parse("3000/60s"), alias="TOKEN_APP_RATE_LIMIT"
    )
    redis_timeout_s: float = Field(default=0.5, gt=0, le=10, alias="TOKEN_REDIS_TIMEOUT_S")

    # The page to talk to the agent (GET /); unset means on in insecure dev mode, else off
    web_page: bool | None = Field(default=None, alias="TOKEN_WEB_PAGE")

    # Slow or idle clients
    read_timeout_s: float = Field(default=10.0, gt=0, le=300, alias="TOKEN_READ_TIMEOUT_S")
    keepalive_s: int = Field(default=5, ge=1, le=300, alias="TOKEN_KEEPALIVE_S")
    max_connections: int = Field(default=1000, ge=1, le=1_000_000, alias="TOKEN_MAX_CONNECTIONS")

    @field_validator("context_claims", "allowed_agents", "cors_origins", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("publish_sources", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("web_page", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_keys", "room_prefixes", "role_attributes", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        return _load_json(value)

    @field_validator("rate_limit", "ip_rate_limit", "app_rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return RateLimitSpec.parse(value) if isinstance(value, str) else value

    @field_validator("api_keys")
    @classmethod
    def _key_hashes(cls, keys: dict[str, ApiKeyPrincipal]) -> dict[str, ApiKeyPrincipal]:
        normalised = {digest.strip().lower(): principal for digest, principal in keys.items()}
        for digest in normalised:
            if not _SHA256_HEX.fullmatch(digest):
                raise ValueError(
                    "keys must be the sha256 hex digest (64 hex chars) of each API key"
                )
        return normalised

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        checked = []
        for origin in origins:
            parts = urlsplit(origin)
            if origin == "*" or parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"{origin!r} is not an explicit origin like https://app.example.com"
                )
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError(f"{origin!r} must be scheme://host[:port] without a path")
            checked.append(f"{parts.scheme}://{parts.netloc}".lower())
        return checked

    @field_validator("context_claims")
    @classmethod
    def _claims(cls, claims: list[str]) -> list[str]:
        for claim in claims:
            key = claim.split("=", 1)[-1]
            if not _METADATA_KEY.fullmatch(key):
                raise ValueError(f"metadata key {key!r} must match {_METADATA_KEY.pattern}")
        return claims

    @field_validator("room_prefixes")
    @classmethod
    def _prefixes(cls, prefixes: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, allowed in prefixes.items():
            if not allowed or not all(_ROOM_PREFIX.fullmatch(prefix) for prefix in allowed):
                raise ValueError(f"role {role!r} needs prefixes matching {_ROOM_PREFIX.pattern}")
        return prefixes

    @field_validator("role_attributes")
    @classmethod
    def _role_attributes(cls, table: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for role, attributes in table.items():
            for key in attributes:
                if not _ATTRIBUTE_KEY.fullmatch(key) or key.startswith("lk."):
                    raise ValueError(f"role {role!r}: attribute key {key!r} is not usable")
        return table

    @field_validator("livekit_url")
    @classmethod
    def _livekit_url(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("ws", "wss", "http", "https"):
            raise ValueError("must be a ws:// or wss:// URL of the LiveKit server")
        return url

    @model_validator(mode="after")
    def _check_auth(self) -> TokenServerSettings:
        oidc = (self.oidc_jwks_url, self.oidc_issuer, self.oidc_audience)
        if any(oidc) and not all(oidc):
            raise ValueError(
                "TOKEN_OIDC_JWKS_URL, TOKEN_OIDC_ISSUER and TOKEN_OIDC_AUDIENCE "
                "must be set together"
            )
        if self.oidc_jwks_url and urlsplit(self.oidc_jwks_url).scheme not in ("http", "https"):
            raise ValueError("TOKEN_OIDC_JWKS_URL must be an http(s) URL")
        if not self.auth_configured and not self.allow_insecure_dev:
            raise ValueError(
                "no authentication configured: set TOKEN_API_KEYS and/or TOKEN_OIDC_JWKS_URL "
                "(or TOKEN_ALLOW_INSECURE_DEV=true for local development only)"
            )
        return self

    @property
    def auth_configured(self) -> bool:
        return bool(self.api_keys) or self.oidc_jwks_url is not None

    @property
    def web_page_enabled(self) -> bool:
        return self.allow_insecure_dev if self.web_page is None else self.web_page

    @property
    def resolved_allowed_agents(self) -> tuple[str, ...]:
        """Agents a token may dispatch; the first is the default dispatch."""
        return tuple(self.allowed_agents) or (self.agent_name,)

    @property
    def context_claim_map(self) -> dict[str, str]:
        """OIDC claim path → dispatch-metadata key (`claim=key` renames, `key` keeps the name)."""
        pairs = (
            claim.split("=", 1) if "=" in claim else (claim, claim) for claim in self.context_claims
        )
        return {claim: key for claim, key in pairs}
