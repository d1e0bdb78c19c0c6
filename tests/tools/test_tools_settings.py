"""Blank values in a copied .env mean "not configured"."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agent.settings import WorkerSettings
from tools.embeddings import resolve_provider
from tools.settings import ToolsSettings


def test_blank_keys_and_urls_in_an_env_file_count_as_unset(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("OPENAI_API_KEY=\nQDRANT_URL=\nREDIS_URL=  \nEMBEDDINGS_PROVIDER=\n")
    settings = ToolsSettings(_env_file=env)  # type: ignore[call-arg]
    assert settings.openai_api_key is None
    assert settings.qdrant_url is None
    assert settings.redis_url is None
    # With no key, embeddings must not pick OpenAI with an empty credential.
    assert resolve_provider(settings.embedding_config()) != "openai"


def test_the_worker_builds_no_chat_model_from_a_blank_key(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("OPENAI_API_KEY=\nLLM_API_KEY=\n")
    settings = WorkerSettings(_env_file=env)  # type: ignore[call-arg]
    assert settings.resolved_llm_api_key is None


def test_the_edge_hands_the_factories_frozen_configs_without_secrets_in_their_repr(
    tmp_path: Path,
) -> None:
    settings = ToolsSettings.model_validate(
        {
            "DATA_DIR": str(tmp_path),
            "QDRANT_URL": "http://127.0.0.1:6333",
            "QDRANT_API_KEY": "qdrant-secret",
            "OPENAI_API_KEY": "sk-secret",
            "PMS_BACKEND": "apaleo",
            "APALEO_CLIENT_ID": "id",
            "APALEO_CLIENT_SECRET": "apaleo-secret",
        }
    )
    store = settings.document_store_config()
    pms = settings.pms_config()
    assert store.embeddings.fastembed_cache_dir == tmp_path / "fastembed"
    assert store.qdrant_api_key == "qdrant-secret" and pms.apaleo_client_secret == "apaleo-secret"
    for secret in ("qdrant-secret", "sk-secret", "apaleo-secret"):
        assert secret not in repr(store) and secret not in repr(pms)
    with pytest.raises(dataclasses.FrozenInstanceError):
        store.collection = "other"  # type: ignore[misc]


def test_an_unset_search_min_score_leaves_the_floor_to_the_embedder() -> None:
    assert ToolsSettings.model_validate({}).document_store_config().min_score is None
    explicit = ToolsSettings.model_validate({"SEARCH_MIN_SCORE": "0.2"})
    assert explicit.document_store_config().min_score == 0.2
