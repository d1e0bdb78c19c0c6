"""Liveness, readiness (Redis when configured), Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import socket

import httpx
from prometheus_client.parser import text_string_to_metric_families
from token_server_helpers import GUEST_KEY, ClientFactory, bearer, make_settings


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_without_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {}}


async def test_readyz_pings_redis(make_client: ClientFactory, redis_url: str) -> None:
    client = await make_client(make_settings(redis_url=redis_url))
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": "ok"}


async def test_readyz_reports_unreachable_redis(make_client: ClientFactory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = await make_client(make_settings(redis_url=f"redis://127.0.0.1:{port}/0"))

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_ready"


async def test_metrics_count_requests_latency_tokens_and_failures(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/token", headers=bearer(GUEST_KEY))
    await client.post("/token", headers=bearer(GUEST_KEY))
    await client.post("/token", headers=bearer("nope"))
    await client.get("/healthz")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    token_201 = (("method", "POST"), ("route", "/token"), ("status", "201"))
    token_401 = (("method", "POST"), ("route", "/token"), ("status", "401"))
    assert samples[("token_server_requests_total", token_201)] == 2
    assert samples[("token_server_requests_total", token_401)] == 1
    assert samples[("token_server_tokens_minted_total", (("auth", "api_key"),))] == 2
    assert samples[("token_server_auth_failures_total", (("reason", "invalid_api_key"),))] == 1
    count = samples[("token_server_request_duration_seconds_count", (("route", "/token"),))]
    inf_bucket = samples[
        ("token_server_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "/token")))
    ]
    assert count == inf_bucket == 3
    assert samples[("token_server_request_duration_seconds_sum", (("route", "/token"),))] > 0


async def test_metrics_carry_the_standard_process_series(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    samples = {
        line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("process_")
    }
    assert samples["process_resident_memory_bytes"] > 1_000_000
    assert samples["process_open_fds"] >= 1
    assert samples["process_start_time_seconds"] > 1_600_000_000
    assert "python_info{" in text


async def test_unknown_paths_share_one_metrics_label(client: httpx.AsyncClient) -> None:
    for path in ("/a", "/b", "/c/d"):
        await client.get(path)
    text = (await client.get("/metrics")).text
    assert 'route="unmatched"' in text and 'route="/a"' not in text


async def test_openapi_describes_every_route(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/token",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/webhooks/livekit",
    }
    token = document["paths"]["/token"]["post"]
    assert set(token["responses"]) >= {"201", "400", "401", "403", "413", "415", "422", "429"}
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    request_fields = document["components"]["schemas"]["TokenRequest"]["properties"]
    assert set(request_fields) == {
        "room_name",
        "participant_identity",
        "participant_name",
        "participant_metadata",
        "participant_attributes",
        "room_config",
    }
