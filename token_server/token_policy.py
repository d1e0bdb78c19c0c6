"""What a principal's token may contain: identity, room, least-privilege grants and dispatch."""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class TokenPolicyConfig:
    """Server-side rules for every minted token."""

    server_url: str
    ttl_s: int
    allowed_agents: tuple[str, ...]
    default_dispatch: bool = True
    publish_sources: tuple[str, ...] = ("microphone",)
    # role → room-name prefixes; empty means any valid room name is allowed
    room_prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # role → participant attributes the server sets (and clients may not)
    role_attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # dispatch-metadata keys only the server may fill from the principal's claims
    context_keys: frozenset[str] = frozenset()


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
        identity = self._identity(request, principal)
        room = self._room(request, principal)
        name = request.participant_name or principal.name or identity
        now = int(self._clock())
        video = self._video_template.copy()
        video["room"] = room
        claims: dict[str, Any] = {
            "sub": identity,
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
        agents = self._dispatch(request, principal)
        if agents:
            claims["roomConfig"] = {"agents": agents}
        return {
            "server_url": self._config.server_url,
            "participant_token": self._signer.sign(claims),
            "room_name": room,
            "participant_name": name,
        }

    def _identity(self, request: TokenRequest, principal: Principal) -> str:
        requested = request.participant_identity
        if principal.subject is None:
            return requested or f"guest-{self._random_suffix()}"
        if requested is not None and requested != principal.subject:
            raise HttpError(
                403,
                "identity_mismatch",
                "participant_identity must be omitted or equal your authenticated subject",
            )
        return principal.subject

    def _room(self, request: TokenRequest, principal: Principal) -> str:
        prefixes = self._room_prefixes(principal.roles)
        if request.room_name is None:
            prefix = prefixes[0] if prefixes else GENERATED_ROOM_PREFIX
            return f"{prefix}{self._random_suffix()}"
        if self._config.room_prefixes and not (prefixes and request.room_name.startswith(prefixes)):
            raise HttpError(
                403, "room_not_allowed", "your roles do not allow joining a room with this name"
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
            if key in self._reserved_attributes or key.startswith("lk."):
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

    def _dispatch(self, request: TokenRequest, principal: Principal) -> list[dict[str, str]]:
        requested = request.agents
        if not requested:
            if not self._config.default_dispatch:
                return []
            return [self._agent_claim(self._default_agent, {}, principal)]
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
            agents.append(self._agent_claim(name, agent.metadata, principal))
        return agents

    def _agent_claim(
        self, name: str, client_metadata: dict[str, Any], principal: Principal
    ) -> dict[str, str]:
        context = principal.context
        if principal.subject is not None:
            for key in client_metadata:
                if (key in self._config.context_keys or key in context) and client_metadata[
                    key
                ] != context.get(key):
                    raise HttpError(
                        403,
                        "metadata_key_reserved",
                        f"agent metadata {key!r} comes from your account, not the request",
                    )
        merged = {**client_metadata, **context} if context else client_metadata
        if not merged:
            return {"agentName": name}
        return {"agentName": name, "metadata": orjson.dumps(merged).decode()}
