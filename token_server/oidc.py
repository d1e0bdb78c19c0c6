"""OIDC bearer JWTs (Clerk, Auth0, Cognito, Keycloak, ...) verified against the issuer's JWKS."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from token_server.auth import ContextValue, Principal
from token_server.errors import AuthError, HttpError

logger = logging.getLogger("token_server.oidc")

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256"})
MAX_SUBJECT_CHARS = 256
MAX_NAME_CHARS = 128


class JwksUnavailable(Exception):
    """The JWKS could not be fetched or holds no usable signing key."""


class JwksCache:
    """The issuer's signing keys by `kid`: cached, re-fetched when stale or on an unknown kid."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        max_age_s: float,
        timeout_s: float,
        min_refresh_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._min_refresh_interval_s = min_refresh_interval_s
        self._clock = clock
        self._keys: dict[str | None, PyJWK] = {}
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> PyJWK | None:
        """The key for `kid` (or the only key when the token names none); None if unknown."""
        # An unknown kid may be a freshly rotated key, so it is worth one (rate-limited) refresh.
        await self._refresh_if_due(wanted=self._lookup(kid) is None)
        return self._lookup(kid)

    async def ensure_loaded(self) -> None:
        """Load the keys if none are cached or they are stale; raises JwksUnavailable."""
        await self._refresh_if_due(wanted=not self._keys)

    async def _refresh_if_due(self, *, wanted: bool) -> None:
        now = self._clock()
        due = wanted or now - self._fetched_at > self._max_age_s
        if not due or now - self._attempted_at < self._min_refresh_interval_s:
            if not self._keys:
                raise JwksUnavailable(f"no signing keys loaded from {self._url} yet")
            return
        try:
            await self.refresh()
        except JwksUnavailable as exc:
            if not self._keys:
                raise
            logger.warning("JWKS refresh failed, keeping the cached keys: %s", exc)
        if not self._keys:
            raise JwksUnavailable(f"no signing keys loaded from {self._url}")

    async def refresh(self) -> None:
        requested_at = self._clock()
        async with self._lock:
            if self._attempted_at >= requested_at:
                return  # another request refreshed while this one waited
            self._attempted_at = self._clock()
            self._keys = await self._fetch()
            self._fetched_at = self._clock()

    async def _fetch(self) -> dict[str | None, PyJWK]:
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.get(self._url)
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("the JWKS is not a JSON object")
            jwk_set = PyJWKSet.from_dict(document)
        except (httpx.HTTPError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            raise JwksUnavailable(f"cannot load JWKS from {self._url}: {exc}") from exc
        keys = {
            key.key_id: key
            for key in jwk_set.keys
            if key.algorithm_name in ALLOWED_ALGORITHMS and key.public_key_use in (None, "sig")
        }
        if not keys:
            raise JwksUnavailable(f"JWKS at {self._url} has no RS256 or ES256 signing key")
        return keys

    def _lookup(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)


class OidcVerifier:
    """Turns a verified OIDC access or ID token into a Principal."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        roles_claim: str,
        context_claims: Mapping[str, str],
        leeway_s: float,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._roles_path = roles_claim.split(".")
        self._context_paths = {key: claim.split(".") for claim, key in context_claims.items()}
        self._leeway_s = leeway_s

    async def principal(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("invalid_token", "the bearer token is not a valid JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError("invalid_token", "the token must be signed with RS256 or ES256")
        if kid is not None and not isinstance(kid, str):
            raise AuthError("invalid_token", "the token's kid must be a string")
        try:
            key = await self._jwks.key(kid)
        except JwksUnavailable as exc:
            logger.error("%s", exc)
            raise HttpError(
                503,
                "auth_unavailable",
                "the identity provider's signing keys cannot be loaded; try again shortly",
                headers=((b"retry-after", b"30"),),
            ) from None
        if key is None:
            raise AuthError("unknown_key", "the token was signed by an unknown key")
        claims = self._decode(token, key, alg)
        return self._to_principal(claims)

    def _decode(self, token: str, key: PyJWK, alg: str) -> dict[str, Any]:
        # A PyJWK carries its own algorithm, so a token whose alg differs from the key's fails.
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired_token", "the token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("wrong_audience", "the token is not meant for this service") from None
        except jwt.InvalidIssuerError:
            raise AuthError("wrong_issuer", "the token comes from an untrusted issuer") from None
        except jwt.PyJWTError:
            raise AuthError(
                "invalid_token", "the token's signature or claims are invalid"
            ) from None

    def _to_principal(self, claims: dict[str, Any]) -> Principal:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise AuthError("invalid_token", "the token's sub claim is not a usable identity")
        name = claims.get("name")
        context: dict[str, ContextValue] = {}
        for key, path in self._context_paths.items():
            value = _claim(claims, path)
            if isinstance(value, str | int | float | bool):
                context[key] = value
        return Principal(
            subject=subject,
            method="oidc",
            roles=_roles(_claim(claims, self._roles_path)),
            name=name if isinstance(name, str) and 0 < len(name) <= MAX_NAME_CHARS else None,
            context=context,
        )


def _claim(claims: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = claims
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _roles(value: Any) -> frozenset[str]:
    """Roles from a list claim or a space/comma separated string (as some IdPs emit scopes)."""
    if isinstance(value, str):
        return frozenset(part for part in value.replace(",", " ").split() if part)
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str) and item)
    return frozenset()
