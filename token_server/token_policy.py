"""What a principal's token may contain: identity, room, least-privilege grants and dispatch."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from token_server.auth import Principal
from token_server.errors import HttpError
from token_server.livekit_jwt import LiveKitSigner
from token_server.token_request import TokenRequest

GENERATED_ROOM_PREFIX = "room-"
# Participant attributes the voice worker reads: only the server sets them.
WORKER_ATTRIBUTES = frozenset(
    {
        "property_id",
        "reservation_code",
        "guest_name",
        "language",
        "conversation_id",
        "caller_identity",
        "caller_key",
    }
)
# Dispatch-metadata keys the server fills itself; a client's `conversation_id` is only a label.
SERVER_METADATA_KEYS = frozenset({"caller_identity", "caller_key"})
CONVERSATION_LABEL_KEY = "conversation_id"
MAX_CONVERSATION_LABEL_CHARS = 128


@dataclass(frozen=True, slots=True)
class TokenPolicyConfig:
    """Server-side rules for every minted token."""

    server_url: str
    ttl_s: int
    allowed_agents: tuple[str, ...]
    default_dispatch: bool = True
    publish_sources: tuple[str, ...] = ("microphone",)
    # role → room-name prefixes that role may name rooms under
    room_prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # True lets any caller name any valid room (the pre-1.0 behaviour); off by default
    client_room_names: bool = False
    # role → participant attributes the server sets (and clients may not)
    role_attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # dispatch-metadata keys only the server may fill from the principal's claims
    context_keys: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who one token is for: the end user (when verified) and the token's unique identity."""

    identity: str
    # stable, opaque key of the verified end user; None when the server cannot tell users apart
    user_key: str | None
    display_name: str


def _hashed(kind: str, *parts: str) -> str:
    payload = "\x1f".join((kind, *parts)).encode()
    return f"{kind}-{hashlib.sha256(payload).hexdigest()[:32]}"


def end_user_key(principal: Principal, user: str) -> str:
    """The opaque key of one verified end user, namespaced by the principal that vouches."""
    return _hashed("u", principal.method, principal.subject or "", user)


class TokenPolicy:
    """Builds the claim set for one request and signs it."""

    def __init__(
        self,
        config: TokenPolicyConfig,
        signer: LiveKitSigner,
        *,
        clock: Callable[[], float] = time.time,
        random_suffix: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        if not config.allowed_agents:
            raise ValueError("at least one agent must be allowed")
        self._config = config
        self._signer = signer
        self._clock = clock
        self._random_suffix = random_suffix
        self._default_agent = config.allowed_agents[0]
        self._allowed_agents = frozenset(config.allowed_agents)
        self._reserved_attributes = frozenset(
            key for attributes in config.role_attributes.values() for key in attributes
        )
        self._attributes_by_roles: dict[frozenset[str], dict[str, str]] = {}
        self._prefixes_by_roles: dict[frozenset[str], tuple[str, ...]] = {}
        publish = bool(config.publish_sources)
        # Least privilege: join this one room, publish only the listed sources, subscribe,
        # send data; never admin/create/list/record or updating one's own metadata.
        self._video_template: dict[str, Any] = {
            "room": "",
            "roomJoin": True,
            "canPublish": publish,
            "canSubscribe": True,
            "canPublishData": True,
            "canUpdateOwnMetadata": False,
        }
        if publish:
            self._video_template["canPublishSources"] = list(config.publish_sources)

    def mint(self, request: TokenRequest, principal: Principal) -> dict[str, str]:
        """The 201 response body; raises HttpError 403/422 when policy forbids the request."""
        caller = self.caller(request, principal)
        room = self._room(request, principal)
        name = request.participant_name or caller.display_name
        now = int(self._clock())
        video = self._video_template.copy()
        video["room"] = room
        claims: dict[str, Any] = {
            "sub": caller.identity,
            "iss": self._signer.api_key,
            "nbf": now,
            "exp": now + self._config.ttl_s,
            "name": name,
            "video": video,
        }
        if request.participant_metadata:
            claims["metadata"] = request.participant_metadata
        attributes = self._attributes(request, principal)
        if attributes:
            claims["attributes"] = attributes
        agents = self._dispatch(request, principal, caller)
        if agents:
            claims["roomConfig"] = {"agents": agents}
        return {
            "server_url": self._config.server_url,
            "participant_token": self._signer.sign(claims),
            "room_name": room,
            "participant_name": name,
        }

    def caller(self, request: TokenRequest, principal: Principal) -> Caller:
        """The end user behind the request and a LiveKit identity unique to this token.

        LiveKit displaces a participant when another joins with the same identity, so every
        token gets its own suffix; the end user stays recognisable by the prefix.
        """
        requested = request.participant_identity
        suffix = self._random_suffix()
        if principal.subject is None:  # insecure dev mode: the client is believed
            base = requested or "guest"
            user_key = end_user_key(principal, requested) if requested else None
            return Caller(f"{base}:{suffix}", user_key, base)
        if principal.asserts_users:
            if requested is None:
                return Caller(f"{principal.subject}:{suffix}", None, principal.name or "guest")
            user_key = end_user_key(principal, requested)
            return Caller(f"{principal.subject}/{requested}:{suffix}", user_key, requested)
        if requested is not None and requested != principal.subject:
            raise HttpError(
                403,
                "identity_mismatch",
                "participant_identity must be omitted or equal your authenticated subject",
            )
        # An OIDC subject is one person; a plain API key may be shared by many.
        oidc = principal.method == "oidc"
        user_key = end_user_key(principal, principal.subject) if oidc else None
        display = principal.name or principal.subject
        return Caller(f"{principal.subject}:{suffix}", user_key, display)

    def _room(self, request: TokenRequest, principal: Principal) -> str:
        prefixes = self._room_prefixes(principal.roles)
        if request.room_name is None:
            prefix = prefixes[0] if prefixes else GENERATED_ROOM_PREFIX
            return f"{prefix}{self._random_suffix()}"
        if prefixes:
            if not request.room_name.startswith(prefixes):
                raise HttpError(
                    403, "room_not_allowed", "your roles do not allow joining a room with this name"
                )
        elif self._config.room_prefixes or not self._config.client_room_names:
            raise HttpError(
                403,
                "room_not_allowed",
                "this server names rooms itself; omit room_name",
            )
        return request.room_name

    def _room_prefixes(self, roles: frozenset[str]) -> tuple[str, ...]:
        cached = self._prefixes_by_roles.get(roles)
        if cached is None:
            table = self._config.room_prefixes
            cached = tuple(p for role in sorted(roles) for p in table.get(role, ()))
            self._prefixes_by_roles[roles] = cached
        return cached

    def _attributes(self, request: TokenRequest, principal: Principal) -> dict[str, str]:
        server = self._role_attributes(principal.roles)
        client = request.participant_attributes
        if not client:
            return server
        for key in client:
            if (
                key in self._reserved_attributes
                or key in WORKER_ATTRIBUTES
                or key.startswith("lk.")
            ):
                raise HttpError(
                    403,
                    "attribute_reserved",
                    f"participant_attributes.{key} is set by the server only",
                )
        return {**client, **server}

    def _role_attributes(self, roles: frozenset[str]) -> dict[str, str]:
        cached = self._attributes_by_roles.get(roles)
        if cached is None:
            table = self._config.role_attributes
            cached = {k: v for role in sorted(roles) for k, v in table.get(role, {}).items()}
            self._attributes_by_roles[roles] = cached
        return cached

    def _dispatch(
        self, request: TokenRequest, principal: Principal, caller: Caller
    ) -> list[dict[str, str]]:
        requested = request.agents
        if not requested:
            if not self._config.default_dispatch:
                return []
            return [self._agent_claim(self._default_agent, {}, principal, caller)]
        agents, seen = [], set()
        for agent in requested:
            name = agent.agent_name or self._default_agent
            if name not in self._allowed_agents:
                raise HttpError(
                    403, "agent_not_allowed", f"agent {name!r} may not be dispatched by this server"
                )
            if name in seen:
                raise HttpError(422, "invalid_field", f"room_config.agents: {name!r} listed twice")
            seen.add(name)
            agents.append(self._agent_claim(name, agent.metadata, principal, caller))
        return agents

    def _agent_claim(
        self,
        name: str,
        client_metadata: dict[str, Any],
        principal: Principal,
        caller: Caller,
    ) -> dict[str, str]:
        context = principal.context
        for key in client_metadata:
            if key in SERVER_METADATA_KEYS:
                raise HttpError(
                    403,
                    "metadata_key_reserved",
                    f"agent metadata {key!r} is set by the server, not the request",
                )
            if (
                principal.subject is not None
                and (key in self._config.context_keys or key in context)
                and client_metadata[key] != context.get(key)
            ):
                raise HttpError(
                    403,
                    "metadata_key_reserved",
                    f"agent metadata {key!r} comes from your account, not the request",
                )
        merged: dict[str, Any] = {**client_metadata, **context}
        merged[CONVERSATION_LABEL_KEY] = self._conversation_key(
            client_metadata.get(CONVERSATION_LABEL_KEY), caller
        )
        merged["caller_identity"] = caller.identity
        if caller.user_key is not None:
            merged["caller_key"] = caller.user_key
        return {"agentName": name, "metadata": orjson.dumps(merged).decode()}

    def _conversation_key(self, label: Any, caller: Caller) -> str:
        """The server's conversation key: the end user's own labelled one, or a fresh one."""
        if label is None or label == "":
            return f"c-{self._random_suffix()}{self._random_suffix()}"
        if not isinstance(label, str) or len(label) > MAX_CONVERSATION_LABEL_CHARS:
            raise HttpError(
                422,
                "invalid_field",
                f"agent metadata conversation_id: a string of at most "
                f"{MAX_CONVERSATION_LABEL_CHARS} characters",
            )
        if caller.user_key is None:
            raise HttpError(
                403,
                "conversation_not_allowed",
                "continuing a conversation needs a verified end user (an OIDC token, or an app "
                "key with asserts_users naming participant_identity); omit conversation_id",
            )
        # Namespaced by the end user: the same label from anyone else is another conversation.
        return _hashed("c", caller.user_key, label)
