"""FastEmbed: local ONNX embedding models, loaded only from the cache under DATA_DIR.

The weights are fetched once by `download_fastembed_model` (what `python -m agent
download-files` runs); at run time nothing is downloaded, and a missing model is a clear error.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from tools.embeddings.base import Embedder, EmbeddingsError, EmbeddingsUnavailable

DEFAULT_FASTEMBED_MODEL = "BAAI/bge-small-en-v1.5"


def _describe(model_name: str) -> dict[str, Any]:
    from fastembed import TextEmbedding

    for description in TextEmbedding.list_supported_models():
        if str(description["model"]).lower() == model_name.lower():
            return description
    raise EmbeddingsError(
        f"{model_name!r} is not a FastEmbed text model; see "
        "fastembed.TextEmbedding.list_supported_models() for the names it knows"
    )


def fastembed_model_cached(model_name: str, cache_dir: Path) -> bool:
    """True when the model's files are in `cache_dir` (checked on disk, nothing loaded)."""
    try:
        description = _describe(model_name)
    except EmbeddingsError:
        return False
    model_file = str(description.get("model_file") or "model.onnx")
    hf_repo = (description.get("sources") or {}).get("hf")
    if hf_repo:
        snapshots = cache_dir / f"models--{hf_repo.replace('/', '--')}" / "snapshots"
        if any(snapshots.glob(f"*/{model_file}")):
            return True
    # copies fetched by older fastembed versions live in a folder named after the model
    legacy = cache_dir / model_name.split("/")[-1]
    return (legacy / model_file).is_file()


def missing_model_message(model_name: str, cache_dir: Path) -> str:
    return (
        f"the FastEmbed model {model_name!r} is not downloaded in {cache_dir}; run "
        "`python -m agent download-files` once with network access to fetch it"
    )


class FastEmbedEmbedder(Embedder):
    """A FastEmbed `TextEmbedding`, loaded lazily from the local cache only."""

    provider = "fastembed"
    symmetric = False
    # BGE-style models score unrelated text around 0.3 to 0.5 (a starting point; tune it)
    suggested_min_score = 0.5

    def __init__(
        self,
        model_name: str = DEFAULT_FASTEMBED_MODEL,
        *,
        cache_dir: Path,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        description = _describe(model_name)
        self.model_name = str(description["model"])
        self._dimensions = int(description["dim"])
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        self._load_lock = threading.Lock()

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def _loaded(self) -> Any:
        with self._load_lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        from fastembed import TextEmbedding

        if not self._cache_dir.is_dir():
            raise EmbeddingsUnavailable(missing_model_message(self.model_name, self._cache_dir))
        try:
            return TextEmbedding(
                self.model_name,
                cache_dir=str(self._cache_dir),
                threads=self._threads,
                local_files_only=True,
            )
        except (ValueError, OSError) as exc:
            raise EmbeddingsUnavailable(
                f"{missing_model_message(self.model_name, self._cache_dir)} ({exc})"
            ) from exc
        except Exception as exc:  # onnxruntime raises its own types for corrupt model files
            raise EmbeddingsUnavailable(
                f"the FastEmbed model {self.model_name!r} in {self._cache_dir} could not be "
                f"loaded ({type(exc).__name__}: {exc}); delete it and run "
                "`python -m agent download-files` again"
            ) from exc

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._loaded()
        return [v.tolist() for v in model.passage_embed(texts, batch_size=self._batch_size)]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in next(iter(self._loaded().query_embed(text)))]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


def download_fastembed_model(model_name: str, cache_dir: Path) -> Path:
    """Fetch a FastEmbed model into `cache_dir` (network needed); returns the cache dir."""
    from fastembed import TextEmbedding

    _describe(model_name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        TextEmbedding(model_name, cache_dir=str(cache_dir), lazy_load=True)
    except Exception as exc:  # network and hub errors come in many types
        raise EmbeddingsUnavailable(
            f"could not download the FastEmbed model {model_name!r} into {cache_dir}: {exc}"
        ) from exc
    return cache_dir
