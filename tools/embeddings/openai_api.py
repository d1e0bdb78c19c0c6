"""OpenAI and OpenAI-compatible embeddings through the official `openai` SDK.

The SDK owns the retry policy (429, 408, 409, 5xx, timeouts and connection errors, with
exponential backoff that honours `Retry-After`) and asks for base64 vectors (half the bytes
of JSON floats). Texts go in batches with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI

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
class OpenAIEmbeddingsConfig:
    """Everything the OpenAI embedder needs; built from settings at the edge."""

    model: str
    base_url: str = OPENAI_BASE_URL
    api_key: str | None = None
    dimensions: int | None = None
    timeout_s: float = 15.0
    batch_size: int = 64
    concurrency: int = 4
    max_retries: int = 4
    # "openai" or "openai-compatible": what the collection records
    provider: str = "openai"
    provider_label: str = "OpenAI"


def _known_dimensions(model: str) -> int | None:
    name = model.split("/")[-1]
    return KNOWN_DIMENSIONS.get(name) or KNOWN_DIMENSIONS.get(name.split(":")[0])


class OpenAIEmbedder(Embedder):
    """Embeddings from any server that speaks the OpenAI `/v1/embeddings` shape."""

    def __init__(self, config: OpenAIEmbeddingsConfig) -> None:
        self._config = config
        self.provider = config.provider
        self._dimensions = config.dimensions or _known_dimensions(config.model)
        # text-embedding-3 models can shorten vectors server-side; others reject the field
        self._send_dimensions = config.dimensions is not None and config.model.startswith(
            "text-embedding-3"
        )
        self._client: AsyncOpenAI | None = None
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

    def _new_client(self) -> AsyncOpenAI:
        config = self._config
        headers: dict[str, str] = {}
        host = urlsplit(config.base_url).hostname or ""
        if config.api_key and host.endswith(".azure.com"):
            headers["api-key"] = config.api_key
        return AsyncOpenAI(
            # local servers (Ollama, vLLM) take no key; the SDK insists on one
            api_key=config.api_key or "no-key",
            base_url=config.base_url,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            default_headers=headers or None,
        )

    def _shared_client(self) -> AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # the SDK's HTTP connections belong to the loop that opened them
            self._client = self._new_client()
            self._client_loop = loop
        return self._client

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._embed_all(self._shared_client(), texts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        async def embed_with_own_client() -> list[list[float]]:
            client = self._new_client()
            try:
                return await self._embed_all(client, texts)
            finally:
                await client.close()

        return run_sync(embed_with_own_client())

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def _embed_all(self, client: AsyncOpenAI, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        size = self._config.batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        gate = asyncio.Semaphore(self._config.concurrency)

        async def bounded(batch: list[str]) -> list[list[float]]:
            async with gate:
                return await self._embed_batch(client, batch)

        results = await asyncio.gather(*(bounded(b) for b in batches))
        return [vector for batch in results for vector in batch]

    async def _embed_batch(self, client: AsyncOpenAI, batch: list[str]) -> list[list[float]]:
        label = self._config.provider_label
        attempts = self._config.max_retries + 1
        try:
            response = await client.embeddings.create(
                model=self._config.model,
                # the API rejects empty strings; a space embeds as "nothing"
                input=[t if t.strip() else " " for t in batch],
                dimensions=self._config.dimensions
                if self._send_dimensions and self._config.dimensions is not None
                else openai.omit,
            )
        except openai.APITimeoutError as exc:
            raise EmbeddingsUnavailable(
                f"{label} embeddings at {self._config.base_url} gave no answer within "
                f"{self._config.timeout_s:g} s ({attempts} attempts)"
            ) from exc
        except openai.APIConnectionError as exc:
            raise EmbeddingsUnavailable(
                f"{label} embeddings at {self._config.base_url}: connection failed after "
                f"{attempts} attempts ({exc.__cause__ or exc})"
            ) from exc
        except openai.APIStatusError as exc:
            detail = f"HTTP {exc.status_code} {exc.message}"[:300]
            if exc.status_code == 429 or exc.status_code >= 500:
                raise EmbeddingsUnavailable(
                    f"{label} embeddings failed after {attempts} attempts: {detail}"
                ) from exc
            raise EmbeddingsError(f"{label} embeddings refused the request: {detail}") from exc
        except (openai.OpenAIError, ValueError) as exc:
            raise EmbeddingsError(f"{label} embeddings failed: {exc}") from exc
        items = sorted(response.data, key=lambda item: item.index)
        vectors = [[float(x) for x in item.embedding] for item in items]
        if len(vectors) != len(batch):
            raise EmbeddingsError(f"asked for {len(batch)} embeddings, received {len(vectors)}")
        for vector in vectors:
            if self._dimensions is None:
                self._dimensions = len(vector)
            elif len(vector) != self._dimensions:
                raise EmbeddingsError(
                    f"{self.model_name} returned {len(vector)} dimensions, "
                    f"expected {self._dimensions}"
                )
        return vectors
