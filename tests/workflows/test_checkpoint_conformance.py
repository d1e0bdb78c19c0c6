"""The official langgraph-checkpoint-conformance suite against RedisCheckpointSaver."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer

from workflows.checkpoint import RedisCheckpointSaver

# Each variant runs every capability: plain (decoded-state cache on), with a TTL plus a
# custom key prefix, and with the cache off (every read decodes from Redis).
VARIANTS = {
    "plain": {},
    "ttl-and-prefix": {"ttl": 3600, "key_prefix": "conformance:ttl"},
    "no-cache": {"cache_threads": 0},
}


def _register(redis_url: str, variant: str) -> RegisteredCheckpointer:
    options = VARIANTS[variant]

    @checkpointer_test(name=f"RedisCheckpointSaver[{variant}]")
    async def factory() -> AsyncGenerator[RedisCheckpointSaver, None]:
        saver = RedisCheckpointSaver.from_url(redis_url, **options)  # type: ignore[arg-type]
        try:
            yield saver
        finally:
            await saver.aclose()

    return factory


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("capability", [c.value for c in Capability])
async def test_conformance_capability(redis_url: str, variant: str, capability: str) -> None:
    report = await validate(_register(redis_url, variant), capabilities={capability})
    result = report.results[capability]
    assert result.detected, f"{capability} is not implemented by RedisCheckpointSaver"
    assert result.passed, "\n".join(result.failures)
    assert result.tests_passed > 0 and result.tests_failed == 0
