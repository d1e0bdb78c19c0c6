"""HTTP-level errors: status codes, the JSON error body, and no 5xx for any input."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from token_server_helpers import GUEST_KEY, bearer, make_settings

from token_server.factory import create_app


def _code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    return str(body["error"]["code"])


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    for body in (b"{", b"[1, 2]", b'"room"', b"null", b"\xff\xfe"):
        response = await client.post(
            "/token",
            content=body,
            headers={**bearer(GUEST_KEY), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, body
        assert _code(response) == "invalid_json"


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    body = json.dumps({"participant_metadata": "x" * 17_000})

    response = await client.post(
        "/token", content=body, headers={**bearer(GUEST_KEY), "Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert _code(response) == "body_too_large"


async def test_oversized_streamed_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 1024

    response = await client.post(
        "/token",
        content=chunks(),
        headers={**bearer(GUEST_KEY), "Content-Type": "application/json"},
    )

    assert response.status_code == 413


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token",
        content=b"room_name=x",
        headers={**bearer(GUEST_KEY), "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 415
    assert _code(response) == "unsupported_media_type"


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token",
        content=b"{}",
        headers={**bearer(GUEST_KEY), "Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 201


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/token"), ("PUT", "/token"), ("POST", "/healthz")):
        response = await client.request(method, path)
        assert response.status_code == 405
        assert _code(response) == "method_not_allowed"
        assert response.headers["allow"]


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin")
    assert response.status_code == 404
    assert _code(response) == "not_found"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
token_fields = st.sampled_from(
    [
        "room_name",
        "participant_identity",
        "participant_name",
        "participant_metadata",
        "participant_attributes",
        "room_config",
        "agents",
        "agent_name",
        "metadata",
        "egress",
    ]
)
token_bodies = st.recursive(
    json_values,
    lambda children: (
        st.dictionaries(token_fields, children, max_size=6) | st.lists(children, max_size=3)
    ),
    max_leaves=16,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=token_bodies)
async def test_no_json_body_ever_yields_5xx(body: Any) -> None:
    app = create_app(make_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/token", headers=bearer(GUEST_KEY), json=body)
    assert response.status_code in {201, 400, 403, 422}, response.text
    if response.status_code != 201:
        assert set(response.json()["error"]) == {"code", "message"}


@settings(max_examples=100, deadline=None)
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "application/webhook+json", "text/plain", "", "application/json;;"]
    ),
    path=st.sampled_from(["/token", "/webhooks/livekit"]),
    authorization=st.sampled_from([None, f"Bearer {GUEST_KEY}", "Bearer a.b.c", "garbage"]),
)
async def test_no_raw_input_ever_yields_5xx(
    body: bytes, content_type: str, path: str, authorization: str | None
) -> None:
    app = create_app(make_settings())
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await client.post(path, content=body, headers=headers)
    assert 200 <= response.status_code < 500, response.text
