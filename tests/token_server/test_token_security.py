"""Authentication, identity, dispatch and field policies, CORS, and what never reaches the logs."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from token_server_helpers import (
    GUEST_KEY,
    GUEST_SUB,
    LIVEKIT_SECRET,
    STAFF_KEY,
    ClientFactory,
    bearer,
    make_settings,
    verifier,
)


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return str(body["error"]["code"])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-configured-key"},
        {"Authorization": f"Basic {GUEST_KEY}"},
        {"Authorization": "Bearer "},
        {"Authorization": GUEST_KEY},
    ],
    ids=["missing", "unknown-key", "basic-scheme", "empty-bearer", "no-scheme"],
)
async def test_requests_without_valid_credentials_get_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post("/token", headers=headers, json={})

    assert response.status_code == 401
    assert _error(response) == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "participant_token" not in response.text


async def test_auth_failures_are_counted_by_reason(client: httpx.AsyncClient) -> None:
    await client.post("/token")
    await client.post("/token", headers={"Authorization": "Bearer wrong"})

    metrics = (await client.get("/metrics")).text
    assert 'token_server_auth_failures_total{reason="missing_credentials"} 1.0' in metrics
    assert 'token_server_auth_failures_total{reason="invalid_api_key"} 1.0' in metrics


async def test_a_different_participant_identity_is_refused(client: httpx.AsyncClient) -> None:
    spoofed = await client.post(
        "/token", headers=bearer(GUEST_KEY), json={"participant_identity": "staff-7"}
    )
    own = await client.post(
        "/token", headers=bearer(GUEST_KEY), json={"participant_identity": GUEST_SUB}
    )

    assert spoofed.status_code == 403
    assert _error(spoofed) == "identity_mismatch"
    assert own.status_code == 201


async def test_only_allow_listed_agents_are_dispatched(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token",
        headers=bearer(GUEST_KEY),
        json={"room_config": {"agents": [{"agent_name": "billing-admin-agent"}]}},
    )

    assert response.status_code == 403
    assert _error(response) == "agent_not_allowed"


@pytest.mark.parametrize(
    "room_config",
    [
        {"egress": {"room": {"room_name": "x", "file_outputs": []}}},
        {"max_participants": 100},
        {"name": "other-room"},
        {"metadata": "x"},
        {"agents": [{"agent_name": "voice-agent", "deployment": "prod"}]},
        {"agents": [{"agent_name": "voice-agent", "restart_policy": "JRP_NEVER"}]},
        {"agents": [{"agent_name": "voice-agent", "attributes": {"a": "b"}}]},
    ],
    ids=["egress", "max_participants", "name", "metadata", "deployment", "restart", "attrs"],
)
async def test_room_config_fields_other_than_agents_are_refused(
    client: httpx.AsyncClient, room_config: dict[str, object]
) -> None:
    response = await client.post(
        "/token", headers=bearer(GUEST_KEY), json={"room_config": room_config}
    )

    assert response.status_code == 403
    assert _error(response) == "field_not_allowed"


async def test_duplicate_agents_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token",
        headers=bearer(GUEST_KEY),
        json={"room_config": {"agents": [{"agent_name": "voice-agent"}, {}]}},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"participant_metadata": "x" * 4097}, 422, "field_too_large"),
        ({"participant_metadata": "é" * 2049}, 422, "field_too_large"),
        (
            {"room_config": {"agents": [{"metadata": json.dumps({"n": "x" * 4100})}]}},
            422,
            "field_too_large",
        ),
        ({"participant_attributes": {f"k{i}": "v" for i in range(17)}}, 422, "invalid_field"),
        ({"participant_attributes": {"a": "x" * 1025}}, 422, "invalid_field"),
        ({"participant_attributes": {"bad key": "v"}}, 422, "invalid_field"),
        ({"participant_attributes": {"a": 1}}, 422, "invalid_field"),
        ({"participant_attributes": ["a"]}, 422, "invalid_field"),
        ({"participant_name": "x" * 129}, 422, "invalid_field"),
        ({"participant_name": "Ana\nAdmin"}, 422, "invalid_field"),
        ({"participant_name": 42}, 422, "invalid_field"),
        ({"participant_identity": "x" * 257}, 422, "invalid_field"),
        ({"room_name": "a" * 129}, 422, "invalid_field"),
        ({"room_name": "../admin"}, 422, "invalid_field"),
        ({"room_name": "room\n"}, 422, "invalid_field"),
        ({"room_config": {"agents": [{"metadata": "not json"}]}}, 422, "invalid_field"),
        ({"room_config": {"agents": [{"metadata": "[1, 2]"}]}}, 422, "invalid_field"),
        ({"room_config": {"agents": [{"agent_name": "bad name!"}]}}, 422, "invalid_field"),
        ({"room_config": {"agents": [{}, {}, {}, {}, {}]}}, 422, "invalid_field"),
        ({"room_config": {"agents": {"agent_name": "voice-agent"}}}, 422, "invalid_field"),
        ({"room_config": "voice-agent"}, 422, "invalid_field"),
        ({"can_publish_video": True}, 422, "invalid_field"),
    ],
)
async def test_fields_are_validated_and_size_capped(
    client: httpx.AsyncClient, body: dict[str, object], status: int, code: str
) -> None:
    response = await client.post("/token", headers=bearer(GUEST_KEY), json=body)

    assert response.status_code == status, response.text
    assert _error(response) == code


async def test_server_set_attributes_cannot_be_claimed_by_the_client(
    client: httpx.AsyncClient,
) -> None:
    as_staff = await client.post(
        "/token", headers=bearer(GUEST_KEY), json={"participant_attributes": {"role": "staff"}}
    )
    livekit_reserved = await client.post(
        "/token",
        headers=bearer(GUEST_KEY),
        json={"participant_attributes": {"lk.agent.state": "speaking"}},
    )

    assert as_staff.status_code == 403 and _error(as_staff) == "attribute_reserved"
    assert livekit_reserved.status_code == 403


async def test_server_context_cannot_be_overridden_in_agent_metadata(
    client: httpx.AsyncClient,
) -> None:
    def agent_metadata(metadata: dict[str, str]) -> dict[str, object]:
        return {"room_config": {"agents": [{"metadata": json.dumps(metadata)}]}}

    other_reservation = await client.post(
        "/token", headers=bearer(GUEST_KEY), json=agent_metadata({"reservation_code": "RES-9"})
    )
    same_reservation = await client.post(
        "/token", headers=bearer(GUEST_KEY), json=agent_metadata({"reservation_code": "RES-1001"})
    )
    # Staff has no property in its claims; it still may not invent one.
    invented = await client.post(
        "/token", headers=bearer(STAFF_KEY), json=agent_metadata({"property_id": "HOTEL-9"})
    )

    assert other_reservation.status_code == 403
    assert _error(other_reservation) == "metadata_key_reserved"
    assert same_reservation.status_code == 201
    assert invented.status_code == 403


async def test_cors_allow_list_and_preflight(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(cors_origins="https://app.example.com"))
    allowed = {"Origin": "https://app.example.com"}
    evil = {"Origin": "https://evil.example"}

    preflight = await client.options(
        "/token",
        headers={
            **allowed,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers

    refused_preflight = await client.options(
        "/token", headers={**evil, "Access-Control-Request-Method": "POST"}
    )
    assert refused_preflight.status_code == 403
    assert "access-control-allow-origin" not in refused_preflight.headers
    wrong_method = await client.options(
        "/token", headers={**allowed, "Access-Control-Request-Method": "DELETE"}
    )
    assert wrong_method.status_code == 403

    minted = await client.post("/token", headers={**allowed, **bearer(GUEST_KEY)})
    assert minted.status_code == 201
    assert minted.headers["access-control-allow-origin"] == "https://app.example.com"
    assert minted.headers["vary"] == "Origin"

    refused = await client.post("/token", headers={**evil, **bearer(GUEST_KEY)})
    assert refused.status_code == 403 and _error(refused) == "origin_not_allowed"
    assert "access-control-allow-origin" not in refused.headers

    # Errors reach allowed browser apps too, so they can show the reason.
    failed = await client.post("/token", headers=allowed)
    assert failed.status_code == 401
    assert failed.headers["access-control-allow-origin"] == "https://app.example.com"

    # Native apps and servers send no Origin and are unaffected.
    native = await client.post("/token", headers=bearer(GUEST_KEY))
    assert native.status_code == 201 and "access-control-allow-origin" not in native.headers


async def test_tokens_and_secrets_never_reach_the_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    minted = await client.post("/token", headers=bearer(GUEST_KEY))
    await client.post("/token", headers=bearer("wrong-key-value"))
    await client.post("/webhooks/livekit", headers={"Content-Type": "application/json"})

    token = minted.json()["participant_token"]
    assert verifier().verify(token).identity.startswith(f"{GUEST_SUB}:")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (token, GUEST_KEY, "wrong-key-value", LIVEKIT_SECRET):
        assert secret not in logged
