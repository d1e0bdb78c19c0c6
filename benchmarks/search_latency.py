"""Search latency of the embedded document store (Qdrant Edge) against a brute-force floor.

    uv run python -m benchmarks.search_latency [--quick] [--sizes 10000,100000] [--dim 384]
                                               [--queries 200] [--isotropic]

For each collection size the same normalised vectors (generated here, never stored in the
repository) go into one numpy matrix, into Qdrant Edge through the store's own backend
(built and published as the ingest CLI does, then opened read-only as a worker does), and
into qdrant-client's local mode (the previous embedded default). Measured per query, top-5:

- floor (anchor):   numpy `matrix @ q` + argpartition: exact, no payload, no thread hop;
                    filtered: the same plus a boolean mask of the eligible rows
- edge engine:      `EdgeShard.query` called directly (HNSW, payload returned; filtered:
                    the engine's own filtered HNSW search)
- edge store:       `EdgeBackend.query` as the worker calls it (thread hop, payload models;
                    filtered: post-filters the unfiltered top 40, else the engine filters)
- local mode:       `QdrantClient.query_points` on the in-memory local mode (exact, Python)

Recall@5 is measured against the exact numpy top 5, unfiltered and with a `property_id`
filter (the property's own chunks plus general ones, as the store asks). Also reported: the
index build time (optimise = HNSW build, at publish) and the event-loop lag a search causes
(the worst delay of a 1 ms ticker on the loop while searches run in worker threads).

Vectors are embedding-like by default: chunks cluster by topic (one topic per 100 chunks)
and vary along a shared 32-dimensional subspace, plus isotropic noise; queries come from the
same distribution. `--isotropic` draws i.i.d. Gaussian directions (no neighbourhoods).
"""

from __future__ import annotations

import os

# one BLAS thread: on a busy machine a threaded matvec measures scheduling, not search
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import asyncio
import math
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from tools.documents import EdgeBackend, EdgeIndexConfig, StoredPoint, VectorFilter
from tools.documents.edge_backend import edge_filter
from tools.documents.qdrant_gateway import client_filter
from tools.embeddings import EmbedderIdentity

PROPERTIES = ("harbor-view-loft", "alpine-chalet", "casa-del-sol")
COLLECTION = "bench"
K = 5
CHUNKS_PER_TOPIC = 100
LATENT_DIM = 32
NOISE = 0.5
UPSERT_BATCH = 2048


@dataclass
class Row:
    size: int
    engine: str
    filtered: bool
    p50_ms: float
    p99_ms: float
    floor_p50_ms: float
    recall: float | None = None  # None: not measured / exact by construction

    @property
    def ratio(self) -> float:
        return self.p50_ms / self.floor_p50_ms


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return normalised(rng.standard_normal((n, dim), dtype=np.float32))


def make_vectors(
    rng: np.random.Generator, size: int, n_queries: int, dim: int, isotropic: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The collection and the queries, drawn from the same distribution."""
    if isotropic:
        return unit_vectors(rng, size, dim), unit_vectors(rng, n_queries, dim)
    topics = max(1, size // CHUNKS_PER_TOPIC)
    centres = unit_vectors(rng, topics, dim)
    basis = unit_vectors(rng, LATENT_DIM, dim) / math.sqrt(LATENT_DIM)

    def sample(n: int) -> np.ndarray:
        latent = rng.standard_normal((n, LATENT_DIM), dtype=np.float32) @ basis
        noise = rng.standard_normal((n, dim), dtype=np.float32) * (NOISE / math.sqrt(dim))
        return normalised(centres[rng.integers(0, topics, n)] + latent + noise)

    return sample(size), sample(n_queries)


def property_of(i: int) -> str | None:
    return PROPERTIES[i % 3] if i % 4 else None


def payload(i: int) -> dict[str, Any]:
    return {
        "source": f"doc-{i // 8}.md",
        "title": f"Document {i // 8}",
        "chunk": i % 8,
        "text": f"chunk {i} of a house manual " * 6,
        "property_id": property_of(i),
    }


def exact_top(matrix: np.ndarray, q: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    scores = matrix @ q
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    top = np.argpartition(-scores, K)[:K]
    return top[np.argsort(-scores[top])]


def time_calls(fn: Callable[[np.ndarray], object], queries: np.ndarray) -> list[float]:
    samples = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def time_async(
    fn: Callable[[np.ndarray], Awaitable[object]], queries: np.ndarray
) -> list[float]:
    samples = []
    for q in queries:
        started = time.perf_counter()
        await fn(q)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    return statistics.fmean(len(f & t) / K for f, t in zip(found, truth, strict=True))


async def loop_lag_ms(
    search: Callable[[np.ndarray], Awaitable[object]], queries: np.ndarray
) -> tuple[float, float]:
    """(worst ticker delay while idle, worst while searches run) on this event loop."""

    async def ticker(stop: asyncio.Event) -> float:
        worst = 0.0
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, (time.perf_counter() - started) * 1000 - 1.0)
        return worst

    stop = asyncio.Event()
    idle = asyncio.create_task(ticker(stop))
    await asyncio.sleep(0.3)
    stop.set()
    idle_worst = await idle
    stop = asyncio.Event()
    busy = asyncio.create_task(ticker(stop))
    for q in queries:
        await search(q)
    stop.set()
    return idle_worst, await busy


async def build_edge(
    root: Path, vectors: np.ndarray, index: EdgeIndexConfig
) -> tuple[float, float]:
    """(seconds to load the points, seconds to optimise + publish) through the store backend."""
    writer = EdgeBackend(root, index=index)
    dim = vectors.shape[1]
    identity = EmbedderIdentity(provider="bench", model=f"bench-{dim}", dimensions=dim)
    started = time.perf_counter()
    async with writer.writing(COLLECTION):
        await writer.create(COLLECTION, dim, identity)
        for start in range(0, len(vectors), UPSERT_BATCH):
            stop = min(start + UPSERT_BATCH, len(vectors))
            points = [
                StoredPoint(
                    id=str(uuid.UUID(int=i)), vector=vectors[i].tolist(), payload=payload(i)
                )
                for i in range(start, stop)
            ]
            await writer.upsert(COLLECTION, points)
        loaded = time.perf_counter()
    published = time.perf_counter()
    await writer.aclose()
    return loaded - started, published - loaded


def build_local(vectors: np.ndarray) -> QdrantClient:
    client = QdrantClient(location=":memory:")
    client.create_collection(
        COLLECTION,
        vectors_config=qm.VectorParams(size=vectors.shape[1], distance=qm.Distance.DOT),
    )
    for start in range(0, len(vectors), UPSERT_BATCH):
        stop = min(start + UPSERT_BATCH, len(vectors))
        client.upsert(
            COLLECTION,
            points=[
                qm.PointStruct(id=i, vector=vectors[i].tolist(), payload=payload(i))
                for i in range(start, stop)
            ],
            wait=True,
        )
    return client


async def measure(
    size: int, dim: int, n_queries: int, local_queries: int, isotropic: bool, index: EdgeIndexConfig
) -> tuple[list[Row], dict[str, float]]:
    rng = np.random.default_rng(size)
    vectors, queries = make_vectors(rng, size, n_queries, dim, isotropic)
    prop = PROPERTIES[0]
    mask = np.array([property_of(i) in (prop, None) for i in range(size)])
    where = VectorFilter.where("property_id", prop, or_missing=True)
    rows: list[Row] = []
    facts: dict[str, float] = {}

    truth = {
        f: [set(exact_top(vectors, q, mask if f else None).tolist()) for q in queries]
        for f in (False, True)
    }
    floor: dict[bool, float] = {}
    for f in (False, True):
        samples = time_calls(lambda q, f=f: exact_top(vectors, q, mask if f else None), queries)
        floor[f] = statistics.median(samples)
        rows.append(
            Row(size, "numpy floor (anchor)", f, floor[f], percentile(samples, 0.99), floor[f], 1.0)
        )

    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        load_s, index_s = await build_edge(Path(tmp), vectors, index)
        facts["load_s"], facts["index_s"] = load_s, index_s
        reader = EdgeBackend(Path(tmp), read_only=True, index=index)
        await reader.count(COLLECTION)  # open the published version
        shard = reader._reading_shard(COLLECTION)  # the engine itself, for the raw row
        assert shard is not None
        for f in (False, True):
            condition = edge_filter(where if f else None)

            def raw(q: np.ndarray, condition: Any = condition) -> list[Any]:
                return shard.query(
                    qe.QueryRequest(
                        limit=K,
                        query=qe.Query.Nearest(q.tolist()),
                        filter=condition,
                        with_payload=True,
                        params=qe.SearchParams(hnsw_ef=index.hnsw_ef),
                    )
                )

            found = [{uuid.UUID(str(p.id)).int for p in raw(q)} for q in queries]
            samples = time_calls(raw, queries)
            rows.append(
                Row(
                    size,
                    "edge engine (engine filter)" if f else "edge engine",
                    f,
                    statistics.median(samples),
                    percentile(samples, 0.99),
                    floor[f],
                    recall(found, truth[f]),
                )
            )

            async def stored(q: np.ndarray, f: bool = f) -> list[Any]:
                return await reader.query(
                    COLLECTION, q.tolist(), limit=K, where=where if f else None
                )

            found = [{uuid.UUID(p.id).int for p in await stored(q)} for q in queries]
            samples = await time_async(stored, queries)
            rows.append(
                Row(
                    size,
                    "edge store (worker path)",
                    f,
                    statistics.median(samples),
                    percentile(samples, 0.99),
                    floor[f],
                    recall(found, truth[f]),
                )
            )
        facts["lag_idle_ms"], facts["lag_busy_ms"] = await loop_lag_ms(
            lambda q: reader.query(COLLECTION, q.tolist(), limit=K, where=where), queries
        )
        await reader.aclose()

    if local_queries:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = build_local(vectors)
        facts["local_load_s"] = time.perf_counter() - started
        few = queries[:local_queries]
        for f in (False, True):
            condition = client_filter(where if f else None)

            def local(q: np.ndarray, condition: Any = condition) -> list[Any]:
                return client.query_points(
                    COLLECTION, query=q.tolist(), limit=K, query_filter=condition, with_payload=True
                ).points

            samples = time_calls(local, few)
            rows.append(
                Row(
                    size,
                    "qdrant-client local mode (old)",
                    f,
                    statistics.median(samples),
                    percentile(samples, 0.99),
                    floor[f],
                    None,
                )
            )
        client.close()
    return rows, facts


def verdict(row: Row) -> str:
    target = 1.0 if row.size <= 10_000 else 0.25
    if row.engine != "edge store (worker path)":
        return ""
    ok = row.ratio <= target and (row.recall or 0) >= 0.99
    return f"target ≤{target:g}× & recall≥0.99: {'met' if ok else 'MISSED'}"


async def main_async(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    index = EdgeIndexConfig(hnsw_ef=args.ef, segments=args.segments, search_threads=args.threads)
    print(
        f"dim {args.dim}, top-{K}, {args.queries} queries per row "
        f"({args.local_queries} for local mode), HNSW m{index.m} ef_construct{index.ef_construct} "
        f"ef{index.hnsw_ef}, {index.segments} segment(s), {index.search_threads} search thread(s)"
    )
    header = (
        f"{'chunks':>7}  {'engine':<32} {'filter':<6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'×floor':>7} {'recall@5':>8}"
    )
    for size in sizes:
        rows, facts = await measure(
            size, args.dim, args.queries, args.local_queries, args.isotropic, index
        )
        print()
        print(header)
        for row in rows:
            rec = "exact" if row.recall is None else f"{row.recall:.3f}"
            print(
                f"{row.size:>7}  {row.engine:<32} {'yes' if row.filtered else 'no':<6} "
                f"{row.p50_ms:>8.3f} {row.p99_ms:>8.3f} {row.ratio:>6.2f}× {rec:>8}  {verdict(row)}"
            )
        print(
            f"  edge: load {facts['load_s']:.1f} s, "
            f"index build + publish {facts['index_s']:.1f} s; "
            f"event-loop lag (worst 1 ms tick overshoot) idle {facts['lag_idle_ms']:.2f} ms, "
            f"during searches {facts['lag_busy_ms']:.2f} ms"
            + (
                f"; local mode load {facts['local_load_s']:.1f} s"
                if "local_load_s" in facts
                else ""
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search_latency")
    parser.add_argument("--quick", action="store_true", help="fewer queries (same sizes)")
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--dim", type=int, default=384, help="vector size (default 384)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--local-queries", type=int, default=50, help="0 skips local mode")
    parser.add_argument("--ef", type=int, default=EdgeIndexConfig().hnsw_ef, help="HNSW search ef")
    parser.add_argument("--segments", type=int, default=EdgeIndexConfig().segments)
    parser.add_argument("--threads", type=int, default=EdgeIndexConfig().search_threads)
    parser.add_argument("--isotropic", action="store_true", help="i.i.d. Gaussian vectors")
    args = parser.parse_args()
    if args.quick:
        args.queries = min(args.queries, 60)
        args.local_queries = min(args.local_queries, 3)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
