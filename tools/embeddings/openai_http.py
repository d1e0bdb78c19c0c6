"""OpenAI and OpenAI-compatible embeddings (`POST {base_url}/embeddings`) over httpx.

Texts are sent in batches with bounded concurrency; 429, 5xx, timeouts and connection errors
are retried with exponential backoff (honouring `Retry-After`), other errors fail at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from tools.embeddings.base import Embedder, EmbeddingsError, EmbeddingsUnavailable, run_sync

logger = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"

# dimensions of well-known models, so a collection can be created before the first call
KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
    "bge-m3": 1024,
}


@dataclass(frozen=True)
class HttpEmbeddingsConfig:
    """Everything the HTTP embedder needs; built from settings at the edge."""

    model: str
    base_url: str = OPENAI_BASE_URL
    api_key: str | None = None
    dimensions: int | None = None
    timeout_s: float = 15.0
    batch_size: int = 64
    concurrency: int = 4
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    provider_label: str = "OpenAI"


def _known_dimensions(model: str) -> int | None:
    name = model.split("/")[-1]
    return KNOWN_DIMENSIONS.get(name) or KNOWN_DIMENSIONS.get(name.split(":")[0])


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a `Retry-After` header: delta seconds or an HTTP date."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIEmbedder(Embedder):
    """Embeddings from any server that speaks the OpenAI `/v1/embeddings` shape."""

    def __init__(
        self,
        config: HttpEmbeddingsConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._transport = transport
        self._sleep = sleep
        self._url = config.base_url.rstrip("/") + "/embeddings"
        self._dimensions = config.dimensions or _known_dimensions(config.model)
        # text-embedding-3 models can shorten vectors server-side; others reject the field
        self._send_dimensions = config.dimensions is not None and config.model.startswith(
            "text-embedding-3"
        )
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self.model_name = config.model

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            raise EmbeddingsError(
                f"the dimension of {self.model_name!r} is not known until the first embedding; "
                "set EMBEDDINGS_DIMENSIONS"
            )
        return self._dimensions

    @property
    def cache_namespace(self) -> str:
        if self._send_dimensions:
            return f"{self.model_name}@{self._config.dimensions}"
        return self.model_name

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._config.api_key:
            headers["Authorization"] = f"Bearer {self._config.api_key}"
            host = urlsplit(self._config.base_url).hostname or ""
            if host.endswith(".azure.com"):
                headers["api-key"] = self._config.api_key
        return headers

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self._config.timeout_s),
            headers=self._headers(),
            transport=self._transport,
        )

    def _shared_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # an httpx client's connections belong to the loop that opened them
            self._client = self._new_client()
            self._client_loop = loop
        return self._client

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._embed_all(self._shared_client(), texts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        async def embed_with_own_client() -> list[list[float]]:
            async with self._new_client() as client:
                return await self._embed_all(client, texts)

        return run_sync(embed_with_own_client())

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _embed_all(self, client: httpx.AsyncClient, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        size = self._config.batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        gate = asyncio.Semaphore(self._config.concurrency)

        async def bounded(batch: list[str]) -> list[list[float]]:
            async with gate:
                return await self._post_batch(client, batch)

        results = await asyncio.gather(*(bounded(b) for b in batches))
        return [vector for batch in results for vector in batch]

    def _payload(self, batch: list[str]) -> dict[str, Any]:
        # the API rejects empty strings; a space embeds as "nothing" without failing the batch
        payload: dict[str, Any] = {
            "model": self._config.model,
            "input": [t if t.strip() else " " for t in batch],
            "encoding_format": "float",
        }
        if self._send_dimensions:
            payload["dimensions"] = self._config.dimensions
        return payload

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._config.backoff_max_s)
        ceiling = min(self._config.backoff_max_s, self._config.backoff_base_s * 2**attempt)
        return ceiling * random.uniform(0.5, 1.0)

    async def _post_batch(self, client: httpx.AsyncClient, batch: list[str]) -> list[list[float]]:
        label = self._config.provider_label
        attempts = self._config.max_retries + 1
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                response = await client.post(self._url, json=self._payload(batch))
            except httpx.TimeoutException:
                cause = f"no answer within {self._config.timeout_s:g} s"
            except httpx.TransportError as exc:
                cause = f"connection failed ({type(exc).__name__}: {exc})"
            else:
                if response.status_code == 200:
                    return self._parse(response, len(batch))
                if response.status_code != 429 and response.status_code < 500:
                    raise EmbeddingsError(
                        f"{label} embeddings refused the request: HTTP {response.status_code} "
                        f"{response.text[:300]}"
                    )
                cause = f"HTTP {response.status_code}"
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if attempt + 1 == attempts:
                raise EmbeddingsUnavailable(
                    f"{label} embeddings at {self._url} failed after {attempts} attempts: {cause}"
                )
            delay = self._backoff(attempt, retry_after)
            logger.warning(
                "embedding request failed (%s); retry %d/%d in %.2f s",
                cause,
                attempt + 1,
                attempts - 1,
                delay,
            )
            await self._sleep(delay)
        raise AssertionError("the retry loop always returns or raises")

    def _parse(self, response: httpx.Response, expected: int) -> list[list[float]]:
        try:
            items = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingsError(
                f"{self._config.provider_label} embeddings sent an unexpected body: {exc!r}"
            ) from exc
        if len(vectors) != expected:
            raise EmbeddingsError(f"asked for {expected} embeddings, received {len(vectors)}")
        for vector in vectors:
            if self._dimensions is None:
                self._dimensions = len(vector)
            elif len(vector) != self._dimensions:
                raise EmbeddingsError(
                    f"{self.model_name} returned {len(vector)} dimensions, "
                    f"expected {self._dimensions}"
                )
        return vectors
