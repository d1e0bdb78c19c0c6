"""FastEmbed loading: the real fastembed code path on a tiny ONNX model the tests write,
clear errors for missing or corrupt models, and provider resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from knowledge_helpers import clean_env, write_tiny_onnx_embedder

from tools.embeddings import (
    DEFAULT_FASTEMBED_MODEL,
    EmbeddingConfig,
    EmbeddingsError,
    EmbeddingsUnavailable,
    FastEmbedEmbedder,
    build_embedder,
    download_models,
    resolve_provider,
)
from tools.settings import ToolsSettings

VOCAB = [
    "sauna",
    "heating",
    "parking",
    "garage",
    "dog",
    "dogs",
    "wifi",
    "password",
    "pool",
    "beach",
]


def install_tiny_model(cache_dir: Path) -> None:
    # the folder name FastEmbed uses for a locally cached copy of this model
    write_tiny_onnx_embedder(cache_dir / "bge-small-en-v1.5", vocab=VOCAB, dim=384)


def settings(monkeypatch: pytest.MonkeyPatch, data_dir: Path, **env: str) -> EmbeddingConfig:
    clean_env(monkeypatch, DATA_DIR=str(data_dir), **env)
    return ToolsSettings(_env_file=None).embedding_config()  # type: ignore[call-arg]


async def test_a_missing_model_is_a_clear_error_naming_the_fix(tmp_path: Path) -> None:
    embedder = FastEmbedEmbedder(cache_dir=tmp_path / "empty")
    with pytest.raises(EmbeddingsUnavailable) as caught:
        await embedder.aembed_query("hello")
    message = str(caught.value)
    assert DEFAULT_FASTEMBED_MODEL in message
    assert "python -m agent download-files" in message
    assert str(tmp_path / "empty") in message


async def test_an_existing_but_empty_cache_dir_is_the_same_clear_error(tmp_path: Path) -> None:
    (tmp_path / "fastembed").mkdir()
    embedder = FastEmbedEmbedder(cache_dir=tmp_path / "fastembed")
    with pytest.raises(EmbeddingsUnavailable, match="download-files"):
        await embedder.aembed_documents(["hello"])


async def test_a_corrupt_model_file_says_to_download_again(tmp_path: Path) -> None:
    install_tiny_model(tmp_path)
    (tmp_path / "bge-small-en-v1.5" / "model_optimized.onnx").write_bytes(b"not a model")
    embedder = FastEmbedEmbedder(cache_dir=tmp_path)
    with pytest.raises(EmbeddingsUnavailable, match="could not be loaded"):
        await embedder.aembed_query("sauna")


def test_an_unknown_model_name_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingsError, match="not a FastEmbed text model"):
        FastEmbedEmbedder("acme/no-such-model", cache_dir=tmp_path)


async def test_a_cached_model_loads_offline_and_embeds(tmp_path: Path) -> None:
    install_tiny_model(tmp_path)
    embedder = FastEmbedEmbedder(cache_dir=tmp_path)
    vectors = np.array(
        await embedder.aembed_documents(
            ["sauna heating", "Sauna heating", "parking garage", "sauna"]
        )
    )
    query = np.array(await embedder.aembed_query("sauna heating"))
    assert vectors.shape == (4, 384) and embedder.dimensions == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[1])  # the tokenizer lower-cases
    assert vectors[0] @ vectors[3] > vectors[0] @ vectors[2] + 0.3
    assert query.shape == (384,)


async def test_unconfigured_settings_pick_fastembed_once_it_is_downloaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert resolve_provider(settings(monkeypatch, tmp_path)) == "hashing"
    install_tiny_model(tmp_path / "fastembed")
    configured = settings(monkeypatch, tmp_path)
    assert resolve_provider(configured) == "fastembed"
    embedder = build_embedder(configured)
    assert embedder.model_name == DEFAULT_FASTEMBED_MODEL
    assert len(await embedder.aembed_query("dogs")) == 384
    # an OpenAI key, or an explicit provider, wins over the local model
    assert resolve_provider(settings(monkeypatch, tmp_path, OPENAI_API_KEY="sk-x")) == "openai"
    assert (
        resolve_provider(settings(monkeypatch, tmp_path, EMBEDDINGS_PROVIDER="hashing"))
        == "hashing"
    )


def test_download_models_has_nothing_to_fetch_for_api_providers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert download_models(settings(monkeypatch, tmp_path, OPENAI_API_KEY="sk-x")) == []
    assert download_models(settings(monkeypatch, tmp_path, EMBEDDINGS_PROVIDER="hashing")) == []
    with pytest.raises(EmbeddingsError, match="not a FastEmbed text model"):
        download_models(
            settings(
                monkeypatch, tmp_path, EMBEDDINGS_PROVIDER="fastembed", EMBEDDINGS_MODEL="acme/x"
            )
        )
