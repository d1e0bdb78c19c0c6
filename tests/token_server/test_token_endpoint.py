"""POST /token: response shape and every claim of the minted token, via livekit-api's verifier."""

from __future__ import annotations

import base64
import json
import time

import httpx
from token_server_helpers import (
    AGENT,
    GUEST_KEY,
    GUEST_SUB,
    LIVEKIT_URL,
    STAFF_KEY,
    STAFF_SUB,
    ClientFactory,
    bearer,
    make_settings,
    verifier,
)


async def test_empty_body_gets_fresh_room_default_dispatch_and_least_privilege(
    client: httpx.AsyncClient,
) -> None:
    before = int(time.time())
    response = await client.post("/token", headers=bearer(GUEST_KEY))

    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"server_url", "participant_token", "room_name", "participant_name"}
    assert body["server_url"] == LIVEKIT_URL
    assert body["room_name"].startswith("room-") and len(body["room_name"]) > 10

    claims = verifier().verify(body["participant_token"])
    assert claims.identity.startswith(f"{GUEST_SUB}:")  # unique per token, under the key
    assert claims.name == GUEST_SUB == body["participant_name"]
    video = claims.video
    assert video is not None
    assert video.room == body["room_name"]
    assert video.room_join is True
    assert video.can_publish is True
    assert video.can_publish_sources == ["microphone"]
    assert video.can_subscribe is True
    assert video.can_publish_data is True
    assert video.can_update_own_metadata is False
    assert not video.room_admin and not video.room_create and not video.room_list
    assert not video.room_record and not video.recorder and not video.hidden
    assert not video.ingress_admin and not video.agent
    assert claims.metadata == ""
    assert claims.attributes == {}

    payload = json.loads(_payload(body["participant_token"]))
    assert before <= payload["nbf"] <= int(time.time())
    assert payload["exp"] - payload["nbf"] == 900
    assert payload["iss"] == "APItest123"
    assert set(payload) == {"sub", "iss", "nbf", "exp", "name", "video", "roomConfig"}

    assert claims.room_config is not None
    dispatch = list(claims.room_config.agents)
    assert [agent.agent_name for agent in dispatch] == [AGENT]
    # The guest key carries server-side context, which becomes the dispatch metadata, with the
    # server's own fresh conversation key and the one identity the agent must talk to.
    metadata = json.loads(dispatch[0].metadata)
    assert metadata.pop("conversation_id").startswith("c-")
    assert metadata == {
        "property_id": "HOTEL-1",
        "reservation_code": "RES-1001",
        "caller_identity": claims.identity,
    }


async def test_request_fields_flow_into_the_token(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(allow_client_room_names=True))
    response = await client.post(
        "/token",
        headers=bearer(GUEST_KEY),
        json={
            "room_name": "suite-12_checkin",
            "participant_identity": GUEST_SUB,
            "participant_name": "Ana Müller",
            "participant_metadata": '{"app":"ios"}',
            "participant_attributes": {"preferred_language": "de"},
            "room_config": {
                "agents": [
                    {"agent_name": AGENT, "metadata": '{"language":"de","guest_name":"Ana"}'}
                ]
            },
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["room_name"] == "suite-12_checkin"
    assert body["participant_name"] == "Ana Müller"
    claims = verifier().verify(body["participant_token"])
    assert claims.identity.startswith(f"{GUEST_SUB}:")
    assert claims.name == "Ana Müller"
    assert claims.video is not None and claims.video.room == "suite-12_checkin"
    assert claims.metadata == '{"app":"ios"}'
    assert claims.attributes == {"preferred_language": "de"}
    assert claims.room_config is not None
    (agent,) = claims.room_config.agents
    assert agent.agent_name == AGENT
    metadata = json.loads(agent.metadata)
    assert metadata.pop("conversation_id").startswith("c-")
    assert metadata == {
        "language": "de",
        "guest_name": "Ana",
        "property_id": "HOTEL-1",
        "reservation_code": "RES-1001",
        "caller_identity": claims.identity,
    }


async def test_agent_without_name_means_the_default_agent(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token",
        headers=bearer(STAFF_KEY),
        json={"room_config": {"agents": [{"metadata": '{"language":"fr"}'}]}},
    )

    assert response.status_code == 201
    claims = verifier().verify(response.json()["participant_token"])
    assert claims.room_config is not None
    (agent,) = claims.room_config.agents
    assert agent.agent_name == AGENT
    assert json.loads(agent.metadata)["language"] == "fr"


async def test_role_claims_become_token_set_attributes(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token", headers=bearer(STAFF_KEY), json={"participant_attributes": {"desk": "front"}}
    )

    assert response.status_code == 201
    body = response.json()
    claims = verifier().verify(body["participant_token"])
    assert claims.identity.startswith(f"{STAFF_SUB}:")
    assert claims.name == "Front Desk" == body["participant_name"]
    assert claims.attributes == {"desk": "front", "role": "staff"}


async def test_ttl_camera_and_several_allowed_agents_are_configurable(
    make_client: ClientFactory,
) -> None:
    client = await make_client(
        make_settings(
            ttl_seconds=3600,
            publish_sources="microphone,camera,screen_share",
            allowed_agents="concierge,night-audit",
        )
    )
    response = await client.post(
        "/token",
        headers=bearer(STAFF_KEY),
        json={"room_config": {"agents": [{"agent_name": "night-audit"}, {"agent_name": ""}]}},
    )

    assert response.status_code == 201, response.text
    token = response.json()["participant_token"]
    claims = verifier().verify(token)
    payload = json.loads(_payload(token))
    assert payload["exp"] - payload["nbf"] == 3600
    assert claims.video is not None
    assert claims.video.can_publish_sources == ["microphone", "camera", "screen_share"]
    assert claims.room_config is not None
    assert [a.agent_name for a in claims.room_config.agents] == ["night-audit", "concierge"]


async def test_dispatch_can_be_left_to_the_client(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(default_dispatch=False))

    bare = await client.post("/token", headers=bearer(STAFF_KEY))
    asked = await client.post(
        "/token", headers=bearer(STAFF_KEY), json={"room_config": {"agents": [{}]}}
    )

    assert verifier().verify(bare.json()["participant_token"]).room_config is None
    asked_config = verifier().verify(asked.json()["participant_token"]).room_config
    assert asked_config is not None
    assert [a.agent_name for a in asked_config.agents] == [AGENT]


async def test_room_prefix_policy_per_role(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(room_prefixes={"staff": ["ops-", "staff-"]}))

    generated = await client.post("/token", headers=bearer(STAFF_KEY))
    allowed = await client.post(
        "/token", headers=bearer(STAFF_KEY), json={"room_name": "staff-briefing"}
    )
    other_prefix = await client.post(
        "/token", headers=bearer(STAFF_KEY), json={"room_name": "guest-room"}
    )
    guest_named = await client.post(
        "/token", headers=bearer(GUEST_KEY), json={"room_name": "ops-anything"}
    )
    guest_generated = await client.post("/token", headers=bearer(GUEST_KEY))

    assert generated.status_code == 201 and generated.json()["room_name"].startswith("ops-")
    assert allowed.status_code == 201 and allowed.json()["room_name"] == "staff-briefing"
    assert other_prefix.status_code == 403
    assert other_prefix.json()["error"]["code"] == "room_not_allowed"
    assert guest_named.status_code == 403
    assert guest_generated.status_code == 201
    assert guest_generated.json()["room_name"].startswith("room-")


async def test_each_token_gets_its_own_room(client: httpx.AsyncClient) -> None:
    rooms = {
        (await client.post("/token", headers=bearer(GUEST_KEY))).json()["room_name"]
        for _ in range(20)
    }
    assert len(rooms) == 20


async def test_null_and_empty_fields_mean_absent(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token",
        headers=bearer(GUEST_KEY),
        json={
            "room_name": "",
            "participant_identity": None,
            "participant_name": "",
            "participant_metadata": None,
            "participant_attributes": None,
            "room_config": None,
        },
    )

    assert response.status_code == 201
    claims = verifier().verify(response.json()["participant_token"])
    assert claims.identity.startswith(f"{GUEST_SUB}:")
    assert claims.video is not None and claims.video.room.startswith("room-")


async def test_insecure_dev_mode_serves_anonymous_callers(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(api_keys={}, allow_insecure_dev=True))

    named = await client.post("/token", json={"participant_identity": "dev-alice"})
    anonymous = await client.post("/token")

    assert named.status_code == 201
    assert verifier().verify(named.json()["participant_token"]).identity.startswith("dev-alice:")
    assert verifier().verify(anonymous.json()["participant_token"]).identity.startswith("guest:")


def _payload(token: str) -> str:
    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()
