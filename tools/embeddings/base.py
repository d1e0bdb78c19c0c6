"""The embedder interface every provider implements, and the errors they raise."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class EmbeddingsError(RuntimeError):
    """Embedding failed for a reason that retrying will not fix (bad request, bad config)."""


class EmbeddingsUnavailable(EmbeddingsError):
    """The provider cannot be reached or its model is not available locally."""


class EmbedderIdentity(BaseModel):
    """Which embedder made a collection's vectors: enough to build the same one again."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    dimensions: int

    def describe(self) -> str:
        return f"{self.provider} {self.model} ({self.dimensions} dimensions)"


class Embedder(Embeddings, ABC):
    """A LangChain `Embeddings` that also says which vector space it produces.

    `model_name` and `dimensions` are recorded with a collection so vectors from different
    models are never mixed. Async methods are the primary API; sync ones exist for LangChain.
    """

    model_name: str
    # the EMBEDDINGS_PROVIDER value that builds this embedder again
    provider: str = "unknown"
    # False when queries and documents are embedded differently (e.g. instruction prefixes).
    symmetric: bool = True
    # where "relevant" starts on this model's cosine scale, unless SEARCH_MIN_SCORE says otherwise
    suggested_min_score: float = 0.2

    @property
    @abstractmethod
    def dimensions(self) -> int:
        """Length of every vector this embedder returns."""

    def identity(self, dimensions: int | None = None) -> EmbedderIdentity:
        """What a collection records about this embedder (`dimensions` when just measured)."""
        return EmbedderIdentity(
            provider=self.provider,
            model=self.model_name,
            dimensions=dimensions if dimensions is not None else self.dimensions,
        )

    @property
    def cache_namespace(self) -> str:
        """What, besides the text, determines a vector: used as the cache key prefix."""
        return self.model_name

    @abstractmethod
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages for storage."""

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return (await self.aembed_documents([text]))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return run_sync(self.aembed_documents(texts))

    def embed_query(self, text: str) -> list[float]:
        return run_sync(self.aembed_query(text))

    async def aclose(self) -> None:
        """Release network clients or caches; embedders without any have nothing to do."""
        return None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, even when the calling thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # a running loop cannot be re-entered, so the coroutine gets a private loop in a thread
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
