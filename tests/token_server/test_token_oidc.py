"""OIDC bearer JWTs against the tests' own loopback JWKS: good, forged, stale and rotated keys."""

from __future__ import annotations

import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from token_server_helpers import (
    API_KEYS,
    GUEST_KEY,
    GUEST_SUB,
    OIDC_AUDIENCE,
    ClientFactory,
    Issuer,
    SigningKey,
    bearer,
    ec_key,
    oidc_settings,
    rsa_key,
    verifier,
)

from token_server.livekit_jwt import b64url


@pytest.mark.parametrize("which", ["rsa", "ec"])
async def test_rs256_and_es256_tokens_mint_for_their_subject(
    make_client: ClientFactory,
    issuer: Issuer,
    rsa_signing_key: SigningKey,
    ec_signing_key: SigningKey,
    which: str,
) -> None:
    key = rsa_signing_key if which == "rsa" else ec_signing_key
    client = await make_client(oidc_settings(issuer))
    token = issuer.mint(
        key,
        sub="user_2NNEqL2nrIRdJ194ndJqAHwEfxC",
        name="Maria Rossi",
        roles=["staff"],
        property_id="HOTEL-3",
    )

    response = await client.post("/token", headers=bearer(token), json={})

    assert response.status_code == 201, response.text
    claims = verifier().verify(response.json()["participant_token"])
    assert claims.identity.startswith("user_2NNEqL2nrIRdJ194ndJqAHwEfxC:")
    assert claims.name == "Maria Rossi"
    assert claims.attributes == {"role": "staff"}
    assert claims.room_config is not None
    (agent,) = claims.room_config.agents
    metadata = json.loads(agent.metadata)
    assert metadata.pop("conversation_id").startswith("c-")
    assert metadata.pop("caller_key").startswith("u-")  # an OIDC subject is one end user
    assert metadata == {"property_id": "HOTEL-3", "caller_identity": claims.identity}
    metrics = (await client.get("/metrics")).text
    assert 'token_server_tokens_minted_total{auth="oidc"} 1.0' in metrics


async def test_nested_role_claims_such_as_keycloak_realm_roles(
    make_client: ClientFactory, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    client = await make_client(oidc_settings(issuer, oidc_roles_claim="realm_access.roles"))
    token = issuer.mint(rsa_signing_key, realm_access={"roles": ["staff", "offline_access"]})

    response = await client.post("/token", headers=bearer(token))

    assert response.status_code == 201
    assert verifier().verify(response.json()["participant_token"]).attributes == {"role": "staff"}


@pytest.mark.parametrize(
    ("mint_kwargs", "reason"),
    [
        ({"expires_in": -120}, "expired_token"),
        ({"audience": "some-other-api"}, "wrong_audience"),
        ({"issuer": "https://evil.example/"}, "wrong_issuer"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer"],
)
async def test_expired_and_misaddressed_tokens_get_401(
    make_client: ClientFactory,
    issuer: Issuer,
    rsa_signing_key: SigningKey,
    mint_kwargs: dict[str, object],
    reason: str,
) -> None:
    client = await make_client(oidc_settings(issuer))
    token = issuer.mint(rsa_signing_key, **mint_kwargs)  # type: ignore[arg-type]

    response = await client.post("/token", headers=bearer(token))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    metrics = (await client.get("/metrics")).text
    assert f'token_server_auth_failures_total{{reason="{reason}"}} 1.0' in metrics


async def test_forged_token_with_a_known_kid_gets_401(
    make_client: ClientFactory, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    client = await make_client(oidc_settings(issuer))
    impostor = rsa_key(rsa_signing_key.kid)  # same kid, attacker's private key
    forged = issuer.mint(impostor, sub="admin")

    response = await client.post("/token", headers=bearer(forged))

    assert response.status_code == 401


async def test_tampered_payload_gets_401(
    make_client: ClientFactory, issuer: Issuer, ec_signing_key: SigningKey
) -> None:
    client = await make_client(oidc_settings(issuer))
    header, _, signature = issuer.mint(ec_signing_key, sub="guest").split(".")
    other_payload = issuer.mint(ec_signing_key, sub="admin").split(".")[1]

    response = await client.post("/token", headers=bearer(f"{header}.{other_payload}.{signature}"))

    assert response.status_code == 401


async def test_algorithm_confusion_and_unsigned_tokens_get_401(
    make_client: ClientFactory, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    client = await make_client(oidc_settings(issuer))
    now = int(time.time())
    claims = {"sub": "admin", "iss": "https://issuer.test/", "aud": OIDC_AUDIENCE, "exp": now + 60}
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": rsa_signing_key.kid})
    # The classic confusion attack: HS256 keyed with the issuer's public key.
    public_pem = rsa_signing_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_signing_key.kid}
    signing_input = b64url(json.dumps(header).encode()) + b"." + b64url(json.dumps(claims).encode())
    signature = b64url(hmac.digest(public_pem, signing_input, "sha256"))
    hmac_with_public_jwk = (signing_input + b"." + signature).decode()

    for token in (unsigned, hmac_with_public_jwk):
        response = await client.post("/token", headers=bearer(token))
        assert response.status_code == 401


async def test_unknown_kid_refreshes_the_jwks_once_and_accepts_a_rotated_key(
    make_client: ClientFactory, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    client = await make_client(oidc_settings(issuer))
    assert (await client.post("/token", headers=bearer(issuer.mint(rsa_signing_key)))).is_success
    assert issuer.requests == 1
    # Cached: more tokens from a known key do not fetch the JWKS again.
    await client.post("/token", headers=bearer(issuer.mint(rsa_signing_key)))
    assert issuer.requests == 1

    rotated = ec_key("ec-2026-rotation")
    early = issuer.mint(rotated)
    unknown = await client.post("/token", headers=bearer(early))
    assert unknown.status_code == 401
    assert issuer.requests == 2  # looked for the kid once before refusing

    issuer.publish(rsa_signing_key, rotated)
    accepted = await client.post("/token", headers=bearer(issuer.mint(rotated, sub="rotated")))
    assert accepted.status_code == 201
    assert verifier().verify(accepted.json()["participant_token"]).identity.startswith("rotated:")
    assert issuer.requests == 3


async def test_unknown_kid_refreshes_are_rate_limited(
    make_client: ClientFactory, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    client = await make_client(oidc_settings(issuer, oidc_jwks_min_refresh_s=60))
    await client.post("/token", headers=bearer(issuer.mint(rsa_signing_key)))
    stranger = rsa_key("never-published")

    for _ in range(5):
        response = await client.post("/token", headers=bearer(issuer.mint(stranger)))
        assert response.status_code == 401

    assert issuer.requests == 1


async def test_unreachable_jwks_fails_closed_with_503(
    make_client: ClientFactory, issuer: Issuer, rsa_signing_key: SigningKey
) -> None:
    issuer.fail = True
    client = await make_client(oidc_settings(issuer))

    response = await client.post("/token", headers=bearer(issuer.mint(rsa_signing_key)))
    ready = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "auth_unavailable"
    assert response.headers["retry-after"] == "30"
    assert ready.status_code == 503
    assert "oidc_jwks" in ready.json()["error"]["message"]

    issuer.fail = False
    assert (await client.get("/readyz")).status_code == 200
    retried = await client.post("/token", headers=bearer(issuer.mint(rsa_signing_key)))
    assert retried.status_code == 201


async def test_api_keys_and_oidc_work_side_by_side(
    make_client: ClientFactory, issuer: Issuer, ec_signing_key: SigningKey
) -> None:
    client = await make_client(oidc_settings(issuer, api_keys=API_KEYS))

    by_key = await client.post("/token", headers=bearer(GUEST_KEY))
    by_jwt = await client.post("/token", headers=bearer(issuer.mint(ec_signing_key, sub="u1")))
    spoof = await client.post(
        "/token",
        headers=bearer(issuer.mint(ec_signing_key, sub="u1")),
        json={"participant_identity": GUEST_SUB},
    )

    key_identity = verifier().verify(by_key.json()["participant_token"]).identity
    assert key_identity.startswith(f"{GUEST_SUB}:")
    assert verifier().verify(by_jwt.json()["participant_token"]).identity.startswith("u1:")
    assert spoof.status_code == 403
