"""Blank values in a copied .env mean "not configured"."""

from __future__ import annotations

from pathlib import Path

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
