"""Errors of the document store; each message is meant to be read by a person."""

from __future__ import annotations


class DocumentStoreError(RuntimeError):
    """The document store refused an operation (bad request, bad configuration)."""


class DocumentStoreUnavailable(DocumentStoreError):
    """Qdrant (or the embedding provider behind the store) cannot be reached."""


class EmbeddingModelMismatch(DocumentStoreError):
    """The collection holds vectors of another embedding model; mixing them is refused."""
