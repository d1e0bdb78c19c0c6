"""Who is asking: API keys (stored as sha256 hashes), OIDC bearer JWTs, or nobody in dev mode."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from token_server.errors import AuthError

if TYPE_CHECKING:
    from token_server.oidc import OidcVerifier

AuthMethod = Literal["api_key", "oidc", "anonymous"]
ContextValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `subject` is None only for anonymous dev-mode callers.

    `asserts_users` marks an app backend trusted to name its own end users (through
    `participant_identity`); for every other principal the end user is the principal itself
    (an OIDC `sub`) or unknown (a plain API key).
    """

    subject: str | None
    method: AuthMethod
    roles: frozenset[str] = frozenset()
    name: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    asserts_users: bool = False


ANONYMOUS = Principal(subject=None, method="anonymous")


class Authenticator:
    """Maps an `Authorization` header to a Principal or raises AuthError (401)."""

    def __init__(
        self,
        api_keys: Mapping[str, Principal],
        *,
        oidc: OidcVerifier | None = None,
        allow_anonymous: bool = False,
    ) -> None:
        self._api_keys = dict(api_keys)
        self._oidc = oidc
        self._allow_anonymous = allow_anonymous

    async def authenticate(self, authorization: bytes | None) -> Principal:
        if authorization is None:
            if self._allow_anonymous:
                return ANONYMOUS
            raise AuthError("missing_credentials", "send Authorization: Bearer <API key or JWT>")
        scheme, _, credential = authorization.partition(b" ")
        credential = credential.strip()
        if scheme.lower() != b"bearer" or not credential:
            raise AuthError("malformed_credentials", "use the Bearer authorization scheme")
        # One hash and one dict lookup: the digest, not the key, is what leaves this line.
        principal = self._api_keys.get(hashlib.sha256(credential).hexdigest())
        if principal is not None:
            return principal
        if self._oidc is not None and credential.count(b".") == 2:
            try:
                token = credential.decode("ascii")
            except UnicodeDecodeError:
                raise AuthError("invalid_token", "the bearer token is not a JWT") from None
            return await self._oidc.principal(token)
        raise AuthError("invalid_api_key", "the API key is not valid")
