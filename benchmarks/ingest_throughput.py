"""Ingest throughput with the hashing embedder, against a bare pipeline doing the same work.

    uv run python -m benchmarks.ingest_throughput [--quick] [--copies N]

The shipped knowledge base is copied N times (each copy gets a unique line, so no chunk is a
duplicate) and ingested into in-memory Qdrant:

- bare pipeline (anchor): read + chunk + embed + upsert in one loop, no bookkeeping
- DocumentStore.ingest:   the same, plus skip checks, content-derived ids, stale-chunk lookup
  and bounded file concurrency
- re-ingest unchanged:    the idempotent second run (chunks are compared, nothing embedded)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
import warnings
from pathlib import Path

from qdrant_client import QdrantClient
from qdrant_client import models as qm

from tools.documents import Chunker, DocumentStore, QdrantGateway, QdrantLocation, load_document
from tools.documents.loaders import discover
from tools.embeddings import HashingEmbedder

KNOWLEDGE = Path(__file__).resolve().parents[1] / "examples" / "knowledge"


def make_corpus(root: Path, copies: int) -> int:
    for n in range(copies):
        target = root / f"copy-{n:04d}"
        shutil.copytree(KNOWLEDGE, target)
        for path in target.rglob("*"):
            if path.suffix in (".md", ".txt"):
                with path.open("a", encoding="utf-8") as handle:
                    handle.write(f"\n\nRevision note {n}: reviewed by the housekeeping team.\n")
    return len(discover([root])[0])


def bare_pipeline(root: Path, chunker: Chunker, embedder: HashingEmbedder) -> int:
    client = QdrantClient(location=":memory:")
    client.create_collection(
        "bare", vectors_config=qm.VectorParams(size=embedder.dimensions, distance=qm.Distance.DOT)
    )
    files, _ = discover([root])
    total = 0
    for found in files:
        document = load_document(found.path, max_bytes=20_000_000, source=found.source)
        chunks = chunker.split(document)
        vectors = embedder.embed_documents([c.embed_text for c in chunks])
        client.upsert(
            "bare",
            points=[
                qm.PointStruct(id=str(uuid.uuid4()), vector=v, payload={"text": c.text})
                for c, v in zip(chunks, vectors, strict=True)
            ],
        )
        total += len(chunks)
    client.close()
    return total


async def store_ingest(root: Path) -> tuple[int, float, float]:
    store = DocumentStore(QdrantGateway(QdrantLocation()), HashingEmbedder())
    t0 = time.perf_counter()
    report = await store.ingest([root])
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = await store.ingest([root])
    second = time.perf_counter() - t0
    assert again.chunks_added == 0 and again.files_unchanged == report.files_indexed
    await store.aclose()
    return report.chunks_added, first, second


def embed_only(root: Path, chunker: Chunker, embedder: HashingEmbedder) -> tuple[int, float]:
    files, _ = discover([root])
    texts = [
        c.embed_text
        for found in files
        for c in chunker.split(load_document(found.path, max_bytes=20_000_000))
    ]
    t0 = time.perf_counter()
    embedder.embed_documents(texts)
    return len(texts), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_throughput")
    parser.add_argument("--quick", action="store_true", help="10 copies instead of 60")
    parser.add_argument("--copies", type=int, help="copies of the knowledge base to ingest")
    args = parser.parse_args()
    copies = args.copies or (10 if args.quick else 60)
    warnings.filterwarnings("ignore", message=".*Local mode is not recommended.*")

    chunker = Chunker(chunk_size=800, chunk_overlap=120)
    embedder = HashingEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = make_corpus(root, copies)
        print(f"corpus: {copies} copies of examples/knowledge, {files} files")

        t0 = time.perf_counter()
        bare_chunks = bare_pipeline(root, chunker, embedder)
        bare_s = time.perf_counter() - t0
        chunks, first_s, second_s = asyncio.run(store_ingest(root))
        embedded, embed_s = embed_only(root, chunker, embedder)

    assert chunks == bare_chunks, (chunks, bare_chunks)
    rows = [
        ("hashing embedder alone", embedded, embed_s),
        ("bare pipeline (anchor)", bare_chunks, bare_s),
        ("DocumentStore.ingest", chunks, first_s),
        ("re-ingest, nothing changed", chunks, second_s),
    ]
    print()
    print(f"{'run':<28} {'chunks':>8} {'seconds':>9} {'chunks/s':>10} {'vs anchor':>10}")
    for name, count, seconds in rows:
        print(
            f"{name:<28} {count:>8} {seconds:>9.2f} {count / seconds:>10.0f} "
            f"{bare_s / seconds:>9.2f}x"
        )


if __name__ == "__main__":
    main()
