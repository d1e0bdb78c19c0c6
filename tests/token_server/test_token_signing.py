"""The hand-rolled HS256 signer produces what livekit-api's AccessToken and verifier agree on."""

from __future__ import annotations

import base64
import datetime

import jwt
import pytest
from google.protobuf.json_format import MessageToDict
from livekit.api import AccessToken, VideoGrants
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration
from token_server_helpers import LIVEKIT_KEY, LIVEKIT_SECRET, verifier

from token_server.livekit_jwt import LiveKitSigner, b64url

CLAIMS = {
    "sub": "guest-42",
    "iss": LIVEKIT_KEY,
    "nbf": 1_763_683_200,
    "exp": 1_763_684_100,
    "name": "Guest",
    "video": {"room": "suite-12", "roomJoin": True, "canPublish": True},
}


def test_signature_is_byte_identical_to_pyjwt_for_ascii_claims() -> None:
    ours = LiveKitSigner(LIVEKIT_KEY, LIVEKIT_SECRET).sign(CLAIMS)
    theirs = jwt.encode(CLAIMS, LIVEKIT_SECRET, algorithm="HS256")
    assert ours == theirs


def test_same_claims_as_access_token_builder() -> None:
    grants = VideoGrants(
        room_join=True,
        room="suite-12",
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_publish_sources=["microphone"],
        can_update_own_metadata=False,
    )
    config = RoomConfiguration(
        agents=[RoomAgentDispatch(agent_name="voice-agent", metadata='{"language":"de"}')]
    )
    reference = (
        AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET)
        .with_identity("guest-42")
        .with_name("Ana")
        .with_grants(grants)
        .with_attributes({"role": "staff"})
        .with_room_config(config)
        .with_ttl(datetime.timedelta(seconds=900))
        .to_jwt()
    )
    expected = jwt.decode(reference, LIVEKIT_SECRET, algorithms=["HS256"])

    ours = LiveKitSigner(LIVEKIT_KEY, LIVEKIT_SECRET).sign(
        {
            "sub": "guest-42",
            "iss": LIVEKIT_KEY,
            "nbf": expected["nbf"],
            "exp": expected["exp"],
            "name": "Ana",
            "video": {
                "room": "suite-12",
                "roomJoin": True,
                "canPublish": True,
                "canSubscribe": True,
                "canPublishData": True,
                "canUpdateOwnMetadata": False,
                "canPublishSources": ["microphone"],
            },
            "attributes": {"role": "staff"},
            "roomConfig": MessageToDict(config),
        }
    )

    assert jwt.decode(ours, LIVEKIT_SECRET, algorithms=["HS256"]) == expected
    assert verifier().verify(ours) == verifier().verify(reference)


def test_non_ascii_claims_verify() -> None:
    token = LiveKitSigner(LIVEKIT_KEY, LIVEKIT_SECRET).sign(
        {**CLAIMS, "name": "Zoë 山田", "nbf": 0, "exp": 2**40}
    )
    assert verifier().verify(token).name == "Zoë 山田"


def test_wrong_secret_does_not_verify() -> None:
    token = LiveKitSigner(LIVEKIT_KEY, "another-secret-0123456789abcdef01234567").sign(
        {**CLAIMS, "nbf": 0, "exp": 2**40}
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verifier().verify(token)


@pytest.mark.parametrize("data", [b"", b"f", b"fo", b"foo", bytes(range(256))])
def test_b64url_is_unpadded_base64url(data: bytes) -> None:
    assert b64url(data) == base64.urlsafe_b64encode(data).rstrip(b"=")
