"""The web page on the token server: when it is served, how, and the page's own token requests."""

from __future__ import annotations

from pathlib import Path

import pytest
from token_server_helpers import (
    GUEST_KEY,
    GUEST_SUB,
    ClientFactory,
    bearer,
    make_settings,
    verifier,
)

from token_server.static_files import STATIC_DIR, WebPage


async def test_dev_mode_serves_the_page_and_its_script(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(api_keys={}, allow_insecure_dev=True))

    page = await client.get("/")
    script = await client.get("/app.js")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="app.js"></script>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.content == (STATIC_DIR / "app.js").read_bytes()


async def test_unchanged_script_is_not_sent_again(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(api_keys={}, allow_insecure_dev=True))
    first = await client.get("/app.js")

    again = await client.get("/app.js", headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    ("overrides", "served"),
    [
        ({}, False),  # API keys only: off unless asked for
        ({"web_page": True}, True),
        ({"api_keys": {}, "allow_insecure_dev": True, "web_page": False}, False),
    ],
)
async def test_the_page_is_opt_in_outside_dev_mode(
    make_client: ClientFactory, overrides: dict[str, object], served: bool
) -> None:
    client = await make_client(make_settings(**overrides))

    response = await client.get("/")

    assert response.status_code == (200 if served else 404)


async def test_the_pages_own_token_request_needs_no_cors_entry(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(web_page=True))

    own = await client.post("/token", headers={**bearer(GUEST_KEY), "Origin": "http://testserver"})
    foreign = await client.post(
        "/token", headers={**bearer(GUEST_KEY), "Origin": "http://evil.example"}
    )

    assert own.status_code == 201
    assert "access-control-allow-origin" not in own.headers
    identity = verifier().verify(own.json()["participant_token"]).identity
    assert identity.partition(":")[0] == GUEST_SUB
    assert foreign.status_code == 403
    assert foreign.json()["error"]["code"] == "origin_not_allowed"


async def test_without_the_page_a_same_host_origin_is_still_cross_origin(
    make_client: ClientFactory,
) -> None:
    client = await make_client(make_settings())

    response = await client.post(
        "/token", headers={**bearer(GUEST_KEY), "Origin": "http://testserver"}
    )

    assert response.status_code == 403


def test_a_missing_bundle_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"npm ci && npm run build.*TOKEN_WEB_PAGE=false"):
        WebPage(tmp_path)


@pytest.mark.parametrize(("value", "enabled"), [("", True), ("false", False), ("yes", True)])
def test_web_page_setting_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, enabled: bool
) -> None:
    monkeypatch.setenv("TOKEN_WEB_PAGE", value)  # a blank line in .env counts as unset

    settings = make_settings(api_keys={}, allow_insecure_dev=True)

    assert settings.web_page_enabled is enabled
