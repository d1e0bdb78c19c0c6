"""The chat model inside the graph: OpenAI or any OpenAI-compatible endpoint, or none."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr


@dataclass(frozen=True)
class ChatModelConfig:
    """What the brain needs to reach a chat model; built from WorkerSettings at the edge."""

    model: str = "gpt-4.1-mini"
    api_key: SecretStr | None = None
    base_url: str | None = None
    temperature: float = 0.3
    timeout_s: float = 20.0
    max_retries: int = 1


def provider_name(base_url: str | None) -> str:
    """A short provider label for usage metrics, derived from the endpoint."""
    if not base_url:
        return "openai"
    host = base_url.split("//", 1)[-1].split("/", 1)[0].lower()
    for marker, name in (
        ("azure", "azure"),
        ("11434", "ollama"),
        ("ollama", "ollama"),
        ("groq", "groq"),
        ("openrouter", "openrouter"),
        ("together", "together"),
    ):
        if marker in host:
            return name
    return "openai-compatible"


def build_chat_model(config: ChatModelConfig) -> BaseChatModel | None:
    """The configured chat model, or None so the graph runs its deterministic fallback."""
    local_endpoint = config.base_url is not None and provider_name(config.base_url) == "ollama"
    if config.api_key is None and not local_endpoint:
        return None
    from langchain_openai import ChatOpenAI

    # Ollama and vLLM accept any key; the client library insists on one being set.
    key = config.api_key or SecretStr("not-needed")
    return ChatOpenAI(
        model=config.model,
        api_key=key,
        base_url=config.base_url,
        temperature=config.temperature,
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        streaming=True,
        stream_usage=True,
    )
