"""POST /webhooks/livekit: only deliveries signed by the project's key pair are accepted."""

from __future__ import annotations

import base64
import hashlib
import logging

import httpx
import pytest
from google.protobuf.json_format import MessageToJson
from livekit.api import AccessToken
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.webhook import WebhookEvent
from token_server_helpers import LIVEKIT_KEY, LIVEKIT_SECRET


def event_body(event: str = "participant_joined") -> str:
    return MessageToJson(
        WebhookEvent(
            event=event,
            id="EV_3gk7ZCrD5pXL",
            created_at=1_763_683_200,
            room=Room(sid="RM_kX2pQ", name="suite-12"),
            participant=ParticipantInfo(sid="PA_9sfT", identity="guest-42"),
        )
    )


def signature(body: str, *, key: str = LIVEKIT_KEY, secret: str = LIVEKIT_SECRET) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return AccessToken(key, secret).with_sha256(digest).to_jwt()


WEBHOOK_JSON = {"Content-Type": "application/webhook+json"}


async def test_signed_event_is_accepted_logged_and_counted(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="token_server.webhooks")
    body = event_body()

    response = await client.post(
        "/webhooks/livekit",
        content=body,
        headers={**WEBHOOK_JSON, "Authorization": signature(body)},
    )

    assert response.status_code == 200
    assert response.json() == {"status": "received"}
    assert any(
        "participant_joined" in r.getMessage()
        and "room=suite-12" in r.getMessage()
        and "participant=guest-42" in r.getMessage()
        for r in caplog.records
    )
    metrics = (await client.get("/metrics")).text
    assert 'token_server_webhook_events_total{event="participant_joined"} 1.0' in metrics


async def test_bearer_prefixed_signature_is_accepted(client: httpx.AsyncClient) -> None:
    body = event_body("room_finished")
    response = await client.post(
        "/webhooks/livekit",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {signature(body)}"},
    )
    assert response.status_code == 200


async def test_unsigned_webhook_is_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhooks/livekit", content=event_body(), headers=WEBHOOK_JSON)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"


async def test_tampered_body_is_rejected(client: httpx.AsyncClient) -> None:
    body = event_body()
    tampered = body.replace("guest-42", "staff-7")

    response = await client.post(
        "/webhooks/livekit",
        content=tampered,
        headers={**WEBHOOK_JSON, "Authorization": signature(body)},
    )

    assert response.status_code == 401


@pytest.mark.parametrize(
    "auth",
    [
        lambda body: signature(body, secret="someone-elses-secret-0123456789abcdef"),
        lambda body: signature(body, key="APIother"),
        lambda body: AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET).to_jwt(),  # no sha256 claim
        lambda body: "not.a.jwt",
    ],
    ids=["wrong-secret", "wrong-key", "no-body-hash", "garbage"],
)
async def test_wrongly_signed_webhooks_are_rejected(
    client: httpx.AsyncClient, auth: object
) -> None:
    body = event_body()
    response = await client.post(
        "/webhooks/livekit",
        content=body,
        headers={**WEBHOOK_JSON, "Authorization": auth(body)},  # type: ignore[operator]
    )
    assert response.status_code == 401


async def test_signed_garbage_is_a_400_not_a_crash(client: httpx.AsyncClient) -> None:
    body = "{not json"
    response = await client.post(
        "/webhooks/livekit",
        content=body,
        headers={**WEBHOOK_JSON, "Authorization": signature(body)},
    )
    assert response.status_code == 400


async def test_webhook_needs_a_json_content_type(client: httpx.AsyncClient) -> None:
    body = event_body()
    response = await client.post(
        "/webhooks/livekit",
        content=body,
        headers={"Content-Type": "text/plain", "Authorization": signature(body)},
    )
    assert response.status_code == 415
