"""Settings for the tools layer: embeddings, document store, caches and the PMS.

Read once at an edge (the worker, or the `tools.ingest` / `tools.search` CLIs), which hands
the factories the frozen configs built here (`embedding_config()`, `document_store_config()`,
`pms_config()`); nothing below this module reads the environment or sees this class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tools.documents.factory import DocumentStoreConfig
from tools.embeddings.factory import EmbeddingConfig, EmbeddingsProvider
from tools.pms.factory import PMSBackend, PMSConfig


class ToolsSettings(BaseSettings):
    """Environment-backed settings shared by every edge that builds tools."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # Shared infrastructure
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    data_dir: Path = Field(default=Path(".data"), alias="DATA_DIR")

    # Embeddings
    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    embeddings_provider: EmbeddingsProvider | None = Field(
        default=None, alias="EMBEDDINGS_PROVIDER"
    )
    embeddings_model: str | None = Field(default=None, alias="EMBEDDINGS_MODEL")
    embeddings_base_url: str | None = Field(default=None, alias="EMBEDDINGS_BASE_URL")
    embeddings_api_key: SecretStr | None = Field(default=None, alias="EMBEDDINGS_API_KEY")
    embeddings_timeout_s: float = Field(default=15.0, gt=0, alias="EMBEDDINGS_TIMEOUT_S")
    embeddings_dimensions: int | None = Field(default=None, gt=0, alias="EMBEDDINGS_DIMENSIONS")
    embeddings_batch_size: int = Field(default=64, ge=1, le=2048, alias="EMBEDDINGS_BATCH_SIZE")
    embeddings_concurrency: int = Field(default=4, ge=1, le=64, alias="EMBEDDINGS_CONCURRENCY")
    embeddings_max_retries: int = Field(default=4, ge=0, le=10, alias="EMBEDDINGS_MAX_RETRIES")
    embeddings_cache_size: int = Field(default=10_000, ge=0, alias="EMBEDDINGS_CACHE_SIZE")
    embeddings_cache_ttl_s: int = Field(
        default=30 * 24 * 3600, ge=0, alias="EMBEDDINGS_CACHE_TTL_S"
    )

    # Document store (Qdrant)
    qdrant_url: str | None = Field(default=None, alias="QDRANT_URL")
    qdrant_api_key: SecretStr | None = Field(default=None, alias="QDRANT_API_KEY")
    qdrant_path: Path | None = Field(default=None, alias="QDRANT_PATH")
    qdrant_collection: str = Field(default="documents", alias="QDRANT_COLLECTION")
    qdrant_timeout_s: float = Field(default=5.0, gt=0, alias="QDRANT_TIMEOUT_S")
    chunk_size: int = Field(default=800, ge=100, le=8000, alias="CHUNK_SIZE")
    chunk_overlap: int = Field(default=120, ge=0, le=2000, alias="CHUNK_OVERLAP")
    search_min_score: float = Field(default=0.2, ge=-1.0, le=1.0, alias="SEARCH_MIN_SCORE")
    ingest_max_file_mb: float = Field(default=20.0, gt=0, alias="INGEST_MAX_FILE_MB")

    # PMS
    pms_backend: PMSBackend = Field(default="demo", alias="PMS_BACKEND")
    pms_demo_path: Path | None = Field(default=None, alias="PMS_DEMO_PATH")
    apaleo_client_id: str | None = Field(default=None, alias="APALEO_CLIENT_ID")
    apaleo_client_secret: SecretStr | None = Field(default=None, alias="APALEO_CLIENT_SECRET")
    apaleo_base_url: str = Field(default="https://api.apaleo.com", alias="APALEO_BASE_URL")
    apaleo_identity_url: str = Field(
        default="https://identity.apaleo.com", alias="APALEO_IDENTITY_URL"
    )
    pms_timeout_s: float = Field(default=8.0, gt=0, alias="PMS_TIMEOUT_S")
    pms_gap_night_discount_pct: int = Field(
        default=25, ge=0, lt=100, alias="PMS_GAP_NIGHT_DISCOUNT_PCT"
    )
    pms_gap_night_max_nights: int = Field(default=3, ge=1, le=14, alias="PMS_GAP_NIGHT_MAX_NIGHTS")
    # Failed verifications per reservation code / last name, across all conversations
    pms_verify_code_lock_after: int = Field(
        default=10, ge=1, le=1000, alias="PMS_VERIFY_CODE_LOCK_AFTER"
    )
    pms_verify_name_lock_after: int = Field(
        default=30, ge=1, le=10_000, alias="PMS_VERIFY_NAME_LOCK_AFTER"
    )
    pms_verify_lock_s: float = Field(default=3600.0, ge=1, le=7 * 86_400, alias="PMS_VERIFY_LOCK_S")

    @field_validator(
        "redis_url",
        "openai_api_key",
        "embeddings_provider",
        "embeddings_model",
        "embeddings_base_url",
        "embeddings_api_key",
        "qdrant_url",
        "qdrant_api_key",
        "qdrant_path",
        "pms_demo_path",
        "apaleo_client_id",
        "apaleo_client_secret",
        mode="before",
    )
    @classmethod
    def _blank_tool_setting_is_unset(cls, value: Any) -> Any:
        # `KEY=` in a copied .env means "not configured", never an empty credential.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _check_backends(self) -> ToolsSettings:
        if self.pms_backend == "apaleo" and not (
            self.apaleo_client_id and self.apaleo_client_secret
        ):
            raise ValueError("PMS_BACKEND=apaleo needs APALEO_CLIENT_ID and APALEO_CLIENT_SECRET")
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("CHUNK_OVERLAP must be smaller than CHUNK_SIZE")
        return self

    @property
    def resolved_qdrant_path(self) -> Path:
        return self.qdrant_path or self.data_dir / "qdrant"

    @property
    def resolved_pms_demo_path(self) -> Path:
        return self.pms_demo_path or self.data_dir / "demo_pms.sqlite3"

    def embedding_config(self) -> EmbeddingConfig:
        return EmbeddingConfig(
            provider=self.embeddings_provider,
            model=self.embeddings_model,
            base_url=self.embeddings_base_url,
            api_key=_plain(self.embeddings_api_key),
            openai_api_key=_plain(self.openai_api_key),
            timeout_s=self.embeddings_timeout_s,
            dimensions=self.embeddings_dimensions,
            batch_size=self.embeddings_batch_size,
            concurrency=self.embeddings_concurrency,
            max_retries=self.embeddings_max_retries,
            cache_size=self.embeddings_cache_size,
            cache_ttl_s=self.embeddings_cache_ttl_s,
            redis_url=self.redis_url,
            fastembed_cache_dir=self.data_dir / "fastembed",
        )

    def document_store_config(self) -> DocumentStoreConfig:
        return DocumentStoreConfig(
            embeddings=self.embedding_config(),
            qdrant_url=self.qdrant_url,
            qdrant_api_key=_plain(self.qdrant_api_key),
            qdrant_path=self.resolved_qdrant_path,
            collection=self.qdrant_collection,
            qdrant_timeout_s=self.qdrant_timeout_s,
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            # unset: the embedder's own relevance floor, not the field's default
            min_score=(
                self.search_min_score if "search_min_score" in self.model_fields_set else None
            ),
            max_file_bytes=int(self.ingest_max_file_mb * 1_000_000),
        )

    def pms_config(self) -> PMSConfig:
        return PMSConfig(
            backend=self.pms_backend,
            demo_path=self.resolved_pms_demo_path,
            apaleo_client_id=self.apaleo_client_id,
            apaleo_client_secret=_plain(self.apaleo_client_secret),
            apaleo_base_url=self.apaleo_base_url,
            apaleo_identity_url=self.apaleo_identity_url,
            timeout_s=self.pms_timeout_s,
            gap_night_discount_pct=self.pms_gap_night_discount_pct,
            gap_night_max_nights=self.pms_gap_night_max_nights,
            verify_code_lock_after=self.pms_verify_code_lock_after,
            verify_name_lock_after=self.pms_verify_name_lock_after,
            verify_lock_s=self.pms_verify_lock_s,
        )


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _alias_of(model: type[BaseSettings], name: str) -> str:
    info = model.model_fields.get(name)
    return info.alias if info is not None and info.alias else name.upper()


def _describe(model: type[BaseSettings], error: Any) -> str:
    loc = error.get("loc") or ()
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Input should be "):
        if message.startswith(prefix):
            message = ("expected " if prefix == "Input should be " else "") + message[len(prefix) :]
    if not loc:
        return message
    return f"{_alias_of(model, str(loc[0]))}: {message}"


def describe_settings_error(error: ValidationError, model: type[BaseSettings]) -> str:
    """One line naming each bad variable and what it expects; input values are never echoed."""
    return "; ".join(_describe(model, e) for e in error.errors(include_input=False))
