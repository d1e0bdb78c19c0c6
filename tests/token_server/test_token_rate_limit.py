"""Rate limits per principal and per client IP, in-process and shared through a real Redis."""

from __future__ import annotations

import socket

import pytest
import redis.asyncio as aioredis
from token_server_helpers import GUEST_KEY, STAFF_KEY, ClientFactory, bearer, make_settings

from token_server.rate_limit import InProcessRateLimiter, RateLimitSpec


async def test_principal_limit_answers_429_with_retry_after(make_client: ClientFactory) -> None:
    client = await make_client(make_settings(rate_limit="3/60s"))

    statuses = [
        (await client.post("/token", headers=bearer(GUEST_KEY))).status_code for _ in range(3)
    ]
    limited = await client.post("/token", headers=bearer(GUEST_KEY))
    other_principal = await client.post("/token", headers=bearer(STAFF_KEY))

    assert statuses == [201, 201, 201]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert other_principal.status_code == 201
    metrics = (await client.get("/metrics")).text
    assert 'token_server_rate_limited_total{scope="principal"} 1.0' in metrics


async def test_ip_limit_counts_every_request_even_unauthenticated(
    make_client: ClientFactory,
) -> None:
    settings = make_settings(ip_rate_limit="2/60s")
    client = await make_client(settings, client_ip="198.51.100.1")
    neighbour = await make_client(settings, client_ip="198.51.100.2")

    first = await client.post("/token", headers=bearer("guessing-1"))
    second = await client.post("/token", headers=bearer("guessing-2"))
    third = await client.post("/token", headers=bearer(GUEST_KEY))

    assert (first.status_code, second.status_code) == (401, 401)
    assert third.status_code == 429 and "retry-after" in third.headers
    # A separate app instance has its own in-process counters: nothing shared without Redis.
    assert (await neighbour.post("/token", headers=bearer(GUEST_KEY))).status_code == 201


async def test_redis_limits_are_shared_by_all_replicas(
    make_client: ClientFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, rate_limit="4/60s")
    replica_a = await make_client(settings)
    replica_b = await make_client(settings)

    statuses = []
    for replica in (replica_a, replica_b, replica_a, replica_b, replica_a):
        statuses.append((await replica.post("/token", headers=bearer(GUEST_KEY))).status_code)

    assert statuses == [201, 201, 201, 201, 429]
    limited = await replica_b.post("/token", headers=bearer(GUEST_KEY))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1

    redis = aioredis.from_url(redis_url)
    try:
        keys = [key.decode() async for key in redis.scan_iter("token_server:rl:*")]
        ttls = [await redis.ttl(key) for key in keys]
    finally:
        await redis.aclose()
    assert any(":principal:" in key for key in keys) and any(":ip:" in key for key in keys)
    assert all(0 < ttl <= 61 for ttl in ttls)


async def test_unreachable_redis_falls_back_to_in_process_limits(
    make_client: ClientFactory,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    client = await make_client(
        make_settings(redis_url=f"redis://127.0.0.1:{closed_port}/0", rate_limit="2/60s")
    )

    statuses = [
        (await client.post("/token", headers=bearer(GUEST_KEY))).status_code for _ in range(3)
    ]

    assert statuses == [201, 201, 429]
    metrics = (await client.get("/metrics")).text
    assert "token_server_rate_limit_backend_errors_total 0.0" not in metrics
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and "redis" in ready.json()["error"]["message"]


async def test_fixed_window_resets_after_the_window() -> None:
    now = [1_000.0]
    limiter = InProcessRateLimiter(RateLimitSpec(limit=2, window_s=10), clock=lambda: now[0])

    assert await limiter.hit("k") is None
    assert await limiter.hit("k") is None
    assert await limiter.hit("k") == pytest.approx(10.0)
    now[0] = 1_007.5
    assert await limiter.hit("k") == pytest.approx(2.5)
    now[0] = 1_010.0
    assert await limiter.hit("k") is None


async def test_key_table_stays_bounded() -> None:
    now = [0.0]
    limiter = InProcessRateLimiter(RateLimitSpec(1, 1), clock=lambda: now[0], max_keys=100)
    for second in range(5):
        now[0] = float(second)
        for i in range(100):
            await limiter.hit(f"ip-{second}-{i}")
    assert len(limiter) <= 100


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [
        ("30/60s", 30, 60),
        ("30/60", 30, 60),
        ("100/m", 100, 60),
        ("1000/1h", 1000, 3600),
        ("5/s", 5, 1),
    ],
)
def test_rate_limit_spec_parses(text: str, limit: int, window: int) -> None:
    assert RateLimitSpec.parse(text) == RateLimitSpec(limit, window)


@pytest.mark.parametrize("text", ["", "30", "0/60s", "30/0s", "thirty/60s", "30/60d", "-1/5s"])
def test_rate_limit_spec_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimitSpec.parse(text)
