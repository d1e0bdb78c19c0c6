import redis.asyncio as aioredis


async def test_redis_fixture_serves_real_commands(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    await client.set("k", "v")
    assert await client.get("k") == b"v"
    await client.aclose()
