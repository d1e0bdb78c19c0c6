"""Schemathesis against /openapi.json: no 5xx, and every response matches the document."""

from __future__ import annotations

import httpx
import jsonschema
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from token_server_helpers import (
    GUEST_KEY,
    GUEST_SUB,
    make_settings,
    running_token_server,
    sha256_hex,
    verifier,
)

from token_server.factory import create_app

# Every built-in check runs (server errors, status codes, content types, headers, response
# schemas, negative data, unsupported methods, ignored auth, ...) except positive-data
# acceptance: some refusals depend on who is asking or on text that must itself be a JSON
# object (identity = subject, reserved keys, agent metadata), which JSON Schema cannot state.
# An oversized body is refused with 413, a rejection schemathesis does not list by default.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            },
        }
    }
)
app = create_app(make_settings(cors_origins="https://app.example.com"))
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    minting = case.operation.path == "/token" and case.method.upper() == "POST"
    headers = {"Authorization": f"Bearer {GUEST_KEY}"} if minting else {}

    response = case.call_and_validate(headers=headers)

    if minting and response.status_code == 201:
        claims = verifier().verify(response.json()["participant_token"])
        assert claims.identity.startswith(f"{GUEST_SUB}:")
        assert claims.video is not None and not claims.video.room_admin


OIDC_LESS_KEY = "app-backend-key-for-openapi-check"
METADATA_TEXTS = [
    '{"language":"de"}',
    ' {"conversation_id": "trip-2"} ',
    "",
    "[]",
    "1",
    '"x"',
    "null",
]


def test_dispatch_metadata_is_documented_as_the_json_object_string_the_server_requires() -> None:
    with running_token_server(
        api_keys={sha256_hex(OIDC_LESS_KEY): {"sub": "u", "asserts_users": True}}
    ) as base:
        document = httpx.get(f"{base}/openapi.json", timeout=30).json()
        schema = document["components"]["schemas"]["RoomAgentDispatch"]["properties"]["metadata"]
        assert schema["contentMediaType"] == "application/json"
        assert schema["contentSchema"]["type"] == "object"
        validator = jsonschema.Draft202012Validator(schema)
        for text in METADATA_TEXTS:
            response = httpx.post(
                f"{base}/token",
                headers={"Authorization": f"Bearer {OIDC_LESS_KEY}"},
                json={
                    "participant_identity": "ana",
                    "room_config": {"agents": [{"metadata": text}]},
                },
                timeout=30,
            )
            documented = validator.is_valid(text)
            assert response.status_code == (201 if documented else 422), (text, response.text)
