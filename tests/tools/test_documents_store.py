"""The document store on real Qdrant local mode: idempotence, updates, prune, filters,
model mismatch, persistence, and an unreachable server."""

from __future__ import annotations

from pathlib import Path

import pytest
from knowledge_helpers import closed_port, memory_store
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from tools.documents import (
    DocumentStore,
    DocumentStoreUnavailable,
    EmbeddingModelMismatch,
    QdrantGateway,
    QdrantLocation,
    load_document,
)
from tools.embeddings import HashingEmbedder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def small_corpus(root: Path) -> Path:
    write(
        root / "policies" / "pets.md", "---\ntitle: Pet policy\n---\nDogs are welcome on request."
    )
    write(
        root / "properties" / "harbor-view-loft" / "parking.md",
        "---\ntitle: Loft parking\n---\nYour parking spot is on garage level P2, spot 14.",
    )
    write(
        root / "properties" / "casa-del-sol" / "parking.md",
        "---\ntitle: Villa parking\n---\nThe private driveway fits two cars; parking is free.",
    )
    write(
        root / "properties" / "casa-del-sol" / "pool.md",
        "---\ntitle: Villa pool\n---\n# Pool\n\n"
        + "The pool is heated from April to October. " * 40,
    )
    return root


def path_store(path: Path, embedder: HashingEmbedder | None = None) -> DocumentStore:
    return DocumentStore(
        QdrantGateway(QdrantLocation(path=str(path))),
        embedder or HashingEmbedder(),
        min_score=0.08,
    )


async def test_ingesting_the_same_files_again_changes_nothing(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    store = memory_store()
    first = await store.ingest([corpus])
    count = await store.count()
    second = await store.ingest([corpus])
    assert first.files_indexed == 4 and first.chunks_added == count > 4
    assert (second.files_unchanged, second.chunks_added, second.chunks_removed) == (4, 0, 0)
    assert await store.count() == count
    await store.aclose()


async def test_a_changed_file_replaces_its_old_chunks(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    store = memory_store()
    await store.ingest([corpus])
    count = await store.count()
    write(
        corpus / "properties" / "harbor-view-loft" / "parking.md",
        "---\ntitle: Loft parking\n---\nParking moved: use the public Fore Street garage.",
    )
    report = await store.ingest([corpus])
    assert (report.files_indexed, report.files_unchanged) == (1, 3)
    assert (report.chunks_added, report.chunks_removed) == (1, 1)
    assert await store.count() == count
    result = await store.search("where do I park at the loft", property_id="harbor-view-loft")
    texts = " ".join(h.text for h in result.hits)
    assert "Fore Street" in texts and "spot 14" not in texts
    await store.aclose()


async def test_prune_removes_chunks_of_deleted_files_only_when_asked(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    elsewhere = write(tmp_path / "other" / "note.md", "A note kept outside the corpus.")
    store = memory_store()
    await store.ingest([corpus, elsewhere])
    before = await store.sources()
    pool = corpus / "properties" / "casa-del-sol" / "pool.md"
    pool.unlink()
    elsewhere.unlink()

    kept = await store.ingest([corpus])
    assert str(pool) in await store.sources() and kept.sources_pruned == []

    pruned = await store.ingest([corpus], prune=True)
    after = await store.sources()
    assert pruned.sources_pruned == [str(pool)]
    assert pruned.chunks_pruned == before[str(pool)]
    assert str(pool) not in after
    # a gone file outside the given paths is not this run's business
    assert str(elsewhere) in after
    await store.aclose()


async def test_a_property_filter_keeps_that_property_and_general_documents(tmp_path: Path) -> None:
    store = memory_store()
    await store.ingest([small_corpus(tmp_path / "kb")])
    result = await store.search("parking and pets", k=10, property_id="casa-del-sol", min_score=-1)
    titles = {h.title for h in result.hits}
    assert {"Villa parking", "Pet policy"} <= titles
    assert "Loft parking" not in titles
    assert {h.property_id for h in result.hits} <= {"casa-del-sol", None}
    await store.aclose()


async def test_below_the_minimum_score_the_answer_is_nothing_found(tmp_path: Path) -> None:
    store = memory_store()
    await store.ingest([small_corpus(tmp_path / "kb")])
    relevant = await store.search("is the pool heated in april?")
    assert relevant.found and relevant.hits[0].title == "Villa pool"
    assert all(h.score >= relevant.min_score for h in relevant.hits)
    noise = await store.search("quantum chromodynamics lecture notes")
    assert not noise.found and noise.discarded > 0
    await store.aclose()


async def test_search_hits_carry_source_chunk_score_and_preview(tmp_path: Path) -> None:
    store = memory_store()
    await store.ingest([small_corpus(tmp_path / "kb")])
    hit = (await store.search("heated pool", k=1)).hits[0]
    assert hit.source == str(
        (tmp_path / "kb" / "properties" / "casa-del-sol" / "pool.md").resolve()
    )
    assert hit.chunk >= 0 and 0 < hit.score <= 1
    assert len(hit.preview) <= 160 and hit.preview.endswith("…")
    assert hit.to_dict()["preview"] == hit.preview
    await store.aclose()


async def test_another_embedding_model_is_refused(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    first = path_store(tmp_path / "qdrant", HashingEmbedder(2048))
    await first.ingest([corpus])
    await first.aclose()

    other = path_store(tmp_path / "qdrant", HashingEmbedder(512))
    with pytest.raises(EmbeddingModelMismatch) as on_search:
        await other.search("parking")
    with pytest.raises(EmbeddingModelMismatch):
        await other.ingest([corpus])
    await other.aclose()
    message = str(on_search.value)
    assert "hashing-v1-d2048" in message and "hashing-v1-d512" in message
    assert "never mixed" in message

    same_size = HashingEmbedder(2048)
    same_size.model_name = "another-model-2048"
    renamed = path_store(tmp_path / "qdrant", same_size)
    with pytest.raises(EmbeddingModelMismatch):
        await renamed.search("parking")
    await renamed.aclose()


async def test_a_collection_made_by_something_else_is_refused(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    client.create_collection(
        "documents", vectors_config=qm.VectorParams(size=2048, distance=qm.Distance.COSINE)
    )
    client.close()
    store = path_store(tmp_path / "qdrant")
    with pytest.raises(EmbeddingModelMismatch, match="records no embedding model"):
        await store.search("parking")
    await store.aclose()


async def test_local_mode_persists_between_processes(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    store = path_store(tmp_path / "qdrant")
    await store.ingest([corpus])
    count = await store.count()
    await store.aclose()
    reopened = path_store(tmp_path / "qdrant")
    assert await reopened.count() == count
    assert (await reopened.search("free driveway parking")).hits[0].title == "Villa parking"
    await reopened.aclose()


async def test_a_local_path_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    holder = QdrantClient(path=str(tmp_path / "qdrant"))
    store = path_store(tmp_path / "qdrant")
    with pytest.raises(DocumentStoreUnavailable, match="in use by another process"):
        await store.search("anything")
    await store.aclose()
    holder.close()


async def test_an_empty_store_finds_nothing_without_error() -> None:
    store = memory_store()
    assert not (await store.search("wifi")).found
    assert await store.count() == 0
    await store.aclose()


async def test_unreachable_qdrant_is_a_clear_unavailable_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    store = DocumentStore(QdrantGateway(QdrantLocation(url=url), timeout_s=1), HashingEmbedder())
    with pytest.raises(DocumentStoreUnavailable) as on_search:
        await store.search("parking")
    with pytest.raises(DocumentStoreUnavailable):
        await store.ingest([small_corpus(tmp_path / "kb")])
    await store.aclose()
    message = str(on_search.value)
    assert url in message and "unreachable" in message
    assert "Connect" in message  # the underlying cause is kept


async def test_ingesting_one_document_looks_up_its_own_chunks(tmp_path: Path) -> None:
    # the per-file lookup a Qdrant server answers from its payload index
    path = write(tmp_path / "faq.md", "# Towels\n\nTowels are provided.\n\n# Cots\n\nAsk for one.")
    store = memory_store()
    assert await store.ingest_document(load_document(path, max_bytes=10_000)) == (2, 0)
    assert await store.ingest_document(load_document(path, max_bytes=10_000)) == (0, 0)
    write(path, "# Towels\n\nTowels are provided.")
    assert await store.ingest_document(load_document(path, max_bytes=10_000)) == (0, 1)
    assert await store.count() == 1
    await store.aclose()
