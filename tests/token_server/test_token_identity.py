"""The server decides identity, conversation and room: a real token server on loopback.

A client can only continue its *own* conversations: the conversation key in the dispatch is
derived from the authenticated end user and the client's label, so the same label from anyone
else is another conversation. Every token gets a unique LiveKit identity; attributes the
worker reads are the server's; rooms are server-named; app keys get per-end-user budgets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from token_server_helpers import (
    API_KEYS,
    GUEST_KEY,
    GUEST_SUB,
    OIDC_AUDIENCE,
    OIDC_ISSUER,
    Issuer,
    SigningKey,
    bearer,
    running_token_server,
    sha256_hex,
    verifier,
)

APP_KEY = "booking-app-backend-key-91d2"
APP_SUB = "booking-app"
KEYS = {**API_KEYS, sha256_hex(APP_KEY): {"sub": APP_SUB, "asserts_users": True}}


@pytest.fixture
def server(issuer: Issuer) -> Iterator[str]:
    env = {
        "TOKEN_OIDC_JWKS_URL": issuer.url,
        "TOKEN_OIDC_ISSUER": OIDC_ISSUER,
        "TOKEN_OIDC_AUDIENCE": OIDC_AUDIENCE,
        "TOKEN_OIDC_JWKS_MIN_REFRESH_S": "0",
    }
    with running_token_server(env, api_keys=KEYS) as base:
        yield base


def _mint(base: str, credential: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{base}/token", headers=bearer(credential), json=body or {}, timeout=30)


def _dispatch(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    assert response.status_code == 201, response.text
    claims = verifier().verify(response.json()["participant_token"])
    assert claims.room_config is not None
    (agent,) = claims.room_config.agents
    return claims.identity, json.loads(agent.metadata)


def _labelled(label: str, **extra: str) -> dict[str, Any]:
    metadata = json.dumps({"conversation_id": label, **extra})
    return {"room_config": {"agents": [{"metadata": metadata}]}}


def test_the_same_conversation_label_from_another_user_is_another_conversation(
    server: str, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    anna = issuer.mint(rsa_signing_key, sub="anna")
    mallory = issuer.mint(rsa_signing_key, sub="mallory")

    anna_first = _dispatch(_mint(server, anna, _labelled("trip-2")))
    anna_again = _dispatch(_mint(server, anna, _labelled("trip-2")))
    mallory_try = _dispatch(_mint(server, mallory, _labelled("trip-2")))
    # Mallory learns Anna's derived key and sends that as her label: still her own namespace.
    stolen = anna_first[1]["conversation_id"]
    mallory_stolen = _dispatch(_mint(server, mallory, _labelled(stolen)))

    assert anna_first[1]["conversation_id"] == anna_again[1]["conversation_id"]
    assert mallory_try[1]["conversation_id"] != anna_first[1]["conversation_id"]
    assert mallory_stolen[1]["conversation_id"] != stolen
    assert anna_first[1]["caller_key"] == anna_again[1]["caller_key"]
    assert mallory_try[1]["caller_key"] != anna_first[1]["caller_key"]
    # The dispatch names the one participant the agent talks to: this token's identity.
    for identity, metadata in (anna_first, anna_again, mallory_try):
        assert metadata["caller_identity"] == identity


def test_an_app_key_names_its_users_and_each_keeps_its_own_conversations(server: str) -> None:
    alice = _dispatch(_mint(server, APP_KEY, {"participant_identity": "alice", **_labelled("c")}))
    bob = _dispatch(_mint(server, APP_KEY, {"participant_identity": "bob", **_labelled("c")}))
    alice_again = _dispatch(
        _mint(server, APP_KEY, {"participant_identity": "alice", **_labelled("c")})
    )

    assert alice[0].startswith(f"{APP_SUB}/alice:") and bob[0].startswith(f"{APP_SUB}/bob:")
    assert alice[1]["conversation_id"] == alice_again[1]["conversation_id"]
    assert alice[1]["conversation_id"] != bob[1]["conversation_id"]


def test_a_shared_key_cannot_continue_a_conversation(server: str) -> None:
    # A plain key cannot tell its end users apart, so a label would be shared by all of them.
    labelled = _mint(server, GUEST_KEY, _labelled("trip-2"))
    fresh = [_dispatch(_mint(server, GUEST_KEY))[1]["conversation_id"] for _ in range(2)]

    assert labelled.status_code == 403
    assert labelled.json()["error"]["code"] == "conversation_not_allowed"
    assert fresh[0] != fresh[1]


def test_every_token_gets_a_unique_identity(
    server: str, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    anna = issuer.mint(rsa_signing_key, sub="anna")
    identities = [_dispatch(_mint(server, GUEST_KEY))[0] for _ in range(10)]
    identities += [_dispatch(_mint(server, anna))[0] for _ in range(10)]

    assert len(set(identities)) == 20
    assert all(i.startswith(f"{GUEST_SUB}:") for i in identities[:10])
    assert all(i.startswith("anna:") for i in identities[10:])


@pytest.mark.parametrize(
    "body",
    [
        {"participant_attributes": {"conversation_id": "victim-thread"}},
        {"participant_attributes": {"reservation_code": "HVL-3342", "guest_name": "Johnson"}},
        {"participant_attributes": {"caller_key": "u-victim"}},
        _labelled("x", caller_identity="victim"),
        _labelled("x", caller_key="u-victim"),
    ],
)
def test_what_steers_the_worker_is_never_taken_from_the_request(
    server: str, issuer: Issuer, rsa_signing_key: SigningKey, body: dict[str, Any]
) -> None:
    response = _mint(server, issuer.mint(rsa_signing_key, sub="mallory"), body)

    assert response.status_code == 403
    assert response.json()["error"]["code"] in ("attribute_reserved", "metadata_key_reserved")


def test_a_client_cannot_join_a_room_it_names(
    server: str, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    anna = issuer.mint(rsa_signing_key, sub="anna")
    victim_room = _mint(server, GUEST_KEY).json()["room_name"]

    named = _mint(server, anna, {"room_name": victim_room})
    fresh = _mint(server, anna)

    assert named.status_code == 403 and named.json()["error"]["code"] == "room_not_allowed"
    assert fresh.status_code == 201 and fresh.json()["room_name"] != victim_room


def test_client_room_names_can_be_allowed_explicitly() -> None:
    with running_token_server({"TOKEN_ALLOW_CLIENT_ROOM_NAMES": "true"}) as base:
        named = _mint(base, GUEST_KEY, {"room_name": "lobby-1"})
    assert named.status_code == 201 and named.json()["room_name"] == "lobby-1"


def test_each_end_user_of_an_app_has_its_own_budget() -> None:
    env = {"TOKEN_RATE_LIMIT": "3/60s", "TOKEN_APP_RATE_LIMIT": "1000/60s"}
    with running_token_server(env, api_keys=KEYS) as base:
        alice = [_mint(base, APP_KEY, {"participant_identity": "alice"}) for _ in range(4)]
        bob = _mint(base, APP_KEY, {"participant_identity": "bob"})
    assert [r.status_code for r in alice] == [201, 201, 201, 429]
    assert bob.status_code == 201
