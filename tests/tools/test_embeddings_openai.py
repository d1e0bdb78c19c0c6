"""The OpenAI embedder (official SDK) against a real loopback server speaking /v1/embeddings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from knowledge_helpers import (
    EmbeddingsServer,
    Reply,
    closed_port,
    fake_vector,
    start_embeddings_server,
)

from tools.embeddings import (
    EmbeddingsError,
    EmbeddingsUnavailable,
    OpenAIEmbedder,
    OpenAIEmbeddingsConfig,
)

# the SDK honours retry-after-ms, which keeps retry tests quick
SOON = {"retry-after-ms": "20"}


@contextmanager
def serving(**kwargs: Any) -> Iterator[EmbeddingsServer]:
    state = EmbeddingsServer(**kwargs)
    stop = start_embeddings_server(state)
    try:
        yield state
    finally:
        stop()


def embedder_for(server: EmbeddingsServer, **cfg: Any) -> OpenAIEmbedder:
    config = OpenAIEmbeddingsConfig(
        model=cfg.pop("model", "test-embedder"),
        base_url=server.url,
        api_key=cfg.pop("api_key", "sk-test"),
        **cfg,
    )
    return OpenAIEmbedder(config)


async def test_batches_keep_order_respect_concurrency_and_travel_as_base64() -> None:
    texts = [f"text number {i}" for i in range(10)]
    with serving(dim=8, hold_s=0.2) as server:
        embedder = embedder_for(server, batch_size=3, concurrency=2, dimensions=8)
        vectors = await embedder.aembed_documents(texts)
        await embedder.aclose()
    assert vectors == [pytest.approx(fake_vector(t, 8), abs=1e-6) for t in texts]
    assert [len(r["input"]) for r in server.requests] == [3, 3, 3, 1]
    assert server.max_in_flight == 2
    assert {r["encoding_format"] for r in server.requests} == {"base64"}


async def test_429_is_retried_after_the_delay_the_server_asks_for() -> None:
    with serving(script=[Reply(429, headers=SOON), Reply()]) as server:
        embedder = embedder_for(server)
        vector = await embedder.aembed_query("late checkout")
        await embedder.aclose()
    assert vector == pytest.approx(fake_vector("late checkout", 16), abs=1e-6)
    assert [r["_status"] for r in server.requests] == [429, 200]


async def test_server_errors_are_retried_until_an_answer_comes() -> None:
    script = [Reply(500, headers=SOON), Reply(503, headers=SOON), Reply()]
    with serving(script=script) as server:
        embedder = embedder_for(server, max_retries=3)
        assert len(await embedder.aembed_query("pool heating")) == 16
        await embedder.aclose()
    assert [r["_status"] for r in server.requests] == [500, 503, 200]


async def test_a_request_that_times_out_is_retried() -> None:
    with serving(script=[Reply(delay_s=1.5), Reply()]) as server:
        embedder = embedder_for(server, timeout_s=0.4, max_retries=1)
        vector = await embedder.aembed_query("sauna")
        await embedder.aclose()
    assert vector == pytest.approx(fake_vector("sauna", 16), abs=1e-6)
    assert len(server.requests) == 2


async def test_a_client_error_fails_at_once_with_the_server_message() -> None:
    body = '{"error": {"message": "model not found"}}'
    with serving(script=[Reply(404, body=body)]) as server:
        embedder = embedder_for(server)
        with pytest.raises(EmbeddingsError) as caught:
            await embedder.aembed_query("hello")
        await embedder.aclose()
    assert not isinstance(caught.value, EmbeddingsUnavailable)
    assert "HTTP 404" in str(caught.value) and "model not found" in str(caught.value)
    assert len(server.requests) == 1


async def test_giving_up_after_the_last_retry_says_why() -> None:
    with serving(script=[Reply(503, headers=SOON)] * 3) as server:
        embedder = embedder_for(server, max_retries=2)
        with pytest.raises(EmbeddingsUnavailable, match=r"after 3 attempts: HTTP 503"):
            await embedder.aembed_documents(["a", "b"])
        await embedder.aclose()
    assert len(server.requests) == 3


async def test_an_unreachable_server_is_unavailable() -> None:
    config = OpenAIEmbeddingsConfig(
        model="nomic-embed-text",
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        max_retries=0,
    )
    embedder = OpenAIEmbedder(config)
    with pytest.raises(EmbeddingsUnavailable, match="connection failed"):
        await embedder.aembed_query("anything")
    await embedder.aclose()


async def test_sends_the_key_the_model_and_the_requested_dimensions() -> None:
    with serving(dim=256) as server:
        embedder = embedder_for(server, model="text-embedding-3-small", dimensions=256)
        assert embedder.dimensions == 256
        await embedder.aembed_documents(["", "parking"])
        await embedder.aclose()
    request = server.requests[0]
    assert request["model"] == "text-embedding-3-small"
    assert request["dimensions"] == 256
    assert request["input"] == [" ", "parking"]  # the API rejects empty strings
    assert server.auth_headers == ["Bearer sk-test"]
    assert embedder.cache_namespace == "text-embedding-3-small@256"
    assert embedder.identity().model_dump() == {
        "provider": "openai",
        "model": "text-embedding-3-small",
        "dimensions": 256,
    }


async def test_an_unknown_model_learns_its_dimension_from_the_first_answer() -> None:
    with serving(dim=12) as server:
        embedder = embedder_for(server, model="my-private-model")
        with pytest.raises(EmbeddingsError, match="EMBEDDINGS_DIMENSIONS"):
            _ = embedder.dimensions
        await embedder.aembed_query("x")
        await embedder.aclose()
    assert embedder.dimensions == 12


async def test_the_sync_api_works_from_inside_and_outside_an_event_loop() -> None:
    with serving(dim=8) as server:
        embedder = embedder_for(server, dimensions=8)
        inside = embedder.embed_query("quiet hours")
        outside = await asyncio.to_thread(embedder.embed_documents, ["quiet hours"])
    assert inside == pytest.approx(fake_vector("quiet hours", 8), abs=1e-6)
    assert outside == [inside]
