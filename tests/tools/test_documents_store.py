"""The document store on real Qdrant Edge: idempotence, updates, prune, filters, embedder
mismatch, persistence, payload indexes, and an unreachable server."""

from __future__ import annotations

from pathlib import Path

import pytest
import qdrant_edge as qe
from knowledge_helpers import closed_port, edge_store
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from tools.documents import (
    DocumentStore,
    DocumentStoreError,
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


POOL = "properties/casa-del-sol/pool.md"


async def test_ingesting_the_same_files_again_changes_nothing(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    store = edge_store(tmp_path / "qdrant")
    first = await store.ingest([corpus])
    count = await store.count()
    second = await store.ingest([corpus])
    assert first.files_indexed == 4 and first.chunks_added == count > 4
    assert (second.files_unchanged, second.chunks_added, second.chunks_removed) == (4, 0, 0)
    assert await store.count() == count
    await store.aclose()


async def test_a_changed_file_replaces_its_old_chunks(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    store = edge_store(tmp_path / "qdrant")
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


async def test_prune_leaves_only_the_documents_under_the_given_paths(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    elsewhere = write(tmp_path / "other" / "note.md", "A note kept outside the corpus.")
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([corpus, elsewhere])
    before = await store.sources()
    assert set(before) == {
        "policies/pets.md",
        "properties/harbor-view-loft/parking.md",
        "properties/casa-del-sol/parking.md",
        POOL,
        "note.md",
    }
    (corpus / POOL).unlink()

    kept = await store.ingest([corpus])
    assert POOL in await store.sources() and kept.sources_pruned == []

    pruned = await store.ingest([corpus], prune=True)
    after = await store.sources()
    assert pruned.sources_pruned == ["note.md", POOL]
    assert pruned.chunks_pruned == before[POOL] + before["note.md"]
    assert set(after) == set(before) - {POOL, "note.md"}
    await store.aclose()


async def test_prune_with_a_mistyped_path_removes_nothing(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([corpus])
    count = await store.count()
    report = await store.ingest([tmp_path / "kb-typo"], prune=True)
    assert report.sources_pruned == [] and "does not exist" in report.summary()
    assert await store.count() == count
    await store.aclose()


async def test_a_property_filter_keeps_that_property_and_general_documents(tmp_path: Path) -> None:
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([small_corpus(tmp_path / "kb")])
    result = await store.search("parking and pets", k=10, property_id="casa-del-sol", min_score=-1)
    titles = {h.title for h in result.hits}
    assert {"Villa parking", "Pet policy"} <= titles
    assert "Loft parking" not in titles
    assert {h.property_id for h in result.hits} <= {"casa-del-sol", None}
    await store.aclose()


async def test_nearest_documents_gives_each_document_once(tmp_path: Path) -> None:
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([small_corpus(tmp_path / "kb")])
    vector = await store.embed_query("heated pool in april")
    nearest = await store.nearest_documents(vector, k=3)
    assert nearest[0].source == POOL
    assert len({h.source for h in nearest}) == len(nearest) == 3
    only_loft = await store.nearest_documents(vector, k=10, property_id="harbor-view-loft")
    assert {h.source for h in only_loft} == {
        "policies/pets.md",
        "properties/harbor-view-loft/parking.md",
    }
    await store.aclose()


async def test_below_the_minimum_score_the_answer_is_nothing_found(tmp_path: Path) -> None:
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([small_corpus(tmp_path / "kb")])
    relevant = await store.search("is the pool heated in april?")
    assert relevant.found and relevant.hits[0].title == "Villa pool"
    assert all(h.score >= relevant.min_score for h in relevant.hits)
    noise = await store.search("quantum chromodynamics lecture notes")
    assert not noise.found and noise.discarded > 0
    await store.aclose()


async def test_search_hits_carry_source_chunk_score_and_preview(tmp_path: Path) -> None:
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([small_corpus(tmp_path / "kb")])
    hit = (await store.search("heated pool", k=1)).hits[0]
    assert hit.source == POOL
    assert hit.chunk >= 0 and 0 < hit.score <= 1
    assert len(hit.preview) <= 160 and hit.preview.endswith("…")
    assert hit.to_dict()["preview"] == hit.preview
    await store.aclose()


async def test_property_and_source_are_keyword_indexed(tmp_path: Path) -> None:
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([small_corpus(tmp_path / "kb")])
    await store.aclose()
    version = (tmp_path / "qdrant" / "documents" / "CURRENT").read_text().strip()
    shard = qe.EdgeShard.load(
        str(tmp_path / "qdrant" / "documents" / "versions" / version / "shard")
    )
    schema = shard.info().payload_schema
    shard.close()
    assert {key: info.data_type for key, info in schema.items()} == {
        "property_id": qe.PayloadSchemaType.Keyword,
        "source": qe.PayloadSchemaType.Keyword,
    }


async def test_another_embedding_model_is_refused_without_a_way_to_build_it(
    tmp_path: Path,
) -> None:
    corpus = small_corpus(tmp_path / "kb")
    first = edge_store(tmp_path / "qdrant", HashingEmbedder(2048))
    await first.ingest([corpus])
    await first.aclose()

    other = edge_store(tmp_path / "qdrant", HashingEmbedder(512))
    with pytest.raises(EmbeddingModelMismatch) as on_search:
        await other.search("parking")
    with pytest.raises(EmbeddingModelMismatch):
        await other.ingest([corpus])
    await other.aclose()
    message = str(on_search.value)
    assert "hashing-v1-d2048" in message and "hashing-v1-d512" in message
    assert "never mixed" in message and "--reembed" in message and "\n" not in message


async def test_a_collection_made_by_something_else_is_refused(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    client.create_collection(
        "documents", vectors_config=qm.VectorParams(size=2048, distance=qm.Distance.COSINE)
    )
    client.close()
    store = DocumentStore(
        QdrantGateway(QdrantLocation(path=str(tmp_path / "qdrant"))), HashingEmbedder()
    )
    with pytest.raises(EmbeddingModelMismatch, match="records no embedding model"):
        await store.search("parking")
    await store.aclose()


async def test_the_store_persists_between_processes(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([corpus])
    count = await store.count()
    await store.aclose()
    reopened = edge_store(tmp_path / "qdrant", read_only=True)
    assert await reopened.count() == count
    assert (await reopened.search("free driveway parking")).hits[0].title == "Villa parking"
    await reopened.aclose()


async def test_a_read_only_store_refuses_to_ingest_and_keeps_what_it_has(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    writer = edge_store(tmp_path / "qdrant")
    await writer.ingest([corpus])
    await writer.aclose()
    reader = edge_store(tmp_path / "qdrant", read_only=True)
    with pytest.raises(DocumentStoreError, match=r"python -m tools\.ingest"):
        await reader.ingest([corpus], prune=True)
    assert (await reader.search("heated pool")).found
    await reader.aclose()


async def test_a_second_ingest_at_the_same_time_is_refused_clearly(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    first = edge_store(tmp_path / "qdrant")
    second = edge_store(tmp_path / "qdrant")
    async with first.backend.writing(first.collection):
        with pytest.raises(DocumentStoreError, match="another ingest"):
            await second.ingest([corpus])
    await first.aclose()
    await second.aclose()


async def test_a_failed_ingest_publishes_nothing(tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path / "kb")
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([corpus])
    count = await store.count()
    with pytest.raises(RuntimeError, match="interrupted"):
        async with store.backend.writing(store.collection):
            await store.backend.delete_ids(store.collection, list(await store._existing_ids(POOL)))
            raise RuntimeError("interrupted")
    assert await store.count() == count
    versions = list((tmp_path / "qdrant" / "documents" / "versions").iterdir())
    assert len(versions) == 1  # the draft was removed
    await store.aclose()


async def test_an_empty_store_finds_nothing_without_error(tmp_path: Path) -> None:
    store = edge_store(tmp_path / "qdrant", read_only=True)
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
    path = write(tmp_path / "faq.md", "# Towels\n\nTowels are provided.\n\n# Cots\n\nAsk for one.")
    store = edge_store(tmp_path / "qdrant")

    async def ingest_one() -> tuple[int, int]:
        async with store.backend.writing(store.collection):
            return await store.ingest_document(load_document(path, max_bytes=10_000))

    assert await ingest_one() == (2, 0)
    assert await ingest_one() == (0, 0)
    write(path, "# Towels\n\nTowels are provided.")
    assert await ingest_one() == (0, 1)
    assert await store.count() == 1
    await store.aclose()


@pytest.mark.parametrize("backend", ["edge", "qdrant-client"])
async def test_both_backends_answer_the_same_filtered_and_grouped_queries(
    tmp_path: Path, backend: str
) -> None:
    # the neutral filter and the store's grouping mean the same on both engines
    if backend == "edge":
        store = edge_store(tmp_path / "qdrant")
    else:
        store = DocumentStore(QdrantGateway(QdrantLocation()), HashingEmbedder(), min_score=0.08)
    await store.ingest([small_corpus(tmp_path / "kb")])
    result = await store.search("parking", k=10, property_id="harbor-view-loft", min_score=-1)
    assert {h.source for h in result.hits} == {
        "policies/pets.md",
        "properties/harbor-view-loft/parking.md",
    }
    vector = await store.embed_query("parking")
    nearest = await store.nearest_documents(vector, k=10)
    assert len(nearest) == 4 and len({h.source for h in nearest}) == 4
    await store.aclose()
