"""Cached vs uncached embeddings against a provider stub with realistic latency.

    uv run python -m benchmarks.embedding_cache [--quick] [--latency-ms 80]

The stub is a loopback HTTP server speaking the OpenAI `/v1/embeddings` shape that waits
`--latency-ms` per request (OpenAI's small-model embeddings typically take 50-300 ms).
The anchor is the uncached provider call; the cached rows repeat the same texts, so every
lookup is a hit. Redis rows need a `redis-server` binary (started on a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import redis.asyncio as aioredis

from tools.embeddings import (
    CachedEmbedder,
    LRUEmbeddingCache,
    OpenAIEmbedder,
    OpenAIEmbeddingsConfig,
    RedisEmbeddingCache,
)

DIM = 1536  # text-embedding-3-small


@contextmanager
def provider_stub(latency_s: float) -> Iterator[str]:
    vector = (np.ones(DIM) / np.sqrt(DIM)).tolist()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency_s)
            data = [{"index": i, "embedding": vector} for i in range(len(body["input"]))]
            raw = json.dumps({"data": data, "model": body["model"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def timed(fn: Callable[[str], Awaitable[object]], texts: list[str]) -> list[float]:
    samples = []
    for text in texts:
        t0 = time.perf_counter()
        await fn(text)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def run(n: int, latency_s: float) -> None:
    texts = [f"What time is check-out at property number {i}?" for i in range(n)]
    rows: list[tuple[str, list[float]]] = []
    with provider_stub(latency_s) as url, redis_server() as redis_url:
        config = OpenAIEmbeddingsConfig(model="text-embedding-3-small", base_url=url)
        provider = OpenAIEmbedder(config)
        await provider.aembed_query("warm-up")
        rows.append(("uncached provider call (anchor)", await timed(provider.aembed_query, texts)))

        lru = CachedEmbedder(OpenAIEmbedder(config), LRUEmbeddingCache(10 * n))
        await lru.aembed_documents(texts)  # fill: symmetric model, so queries hit too
        rows.append(("in-process LRU hit", await timed(lru.aembed_query, texts)))

        if redis_url is not None:
            cache = RedisEmbeddingCache(aioredis.from_url(redis_url), owns_client=True)
            shared = CachedEmbedder(OpenAIEmbedder(config), cache)
            await shared.aembed_documents(texts)  # fill
            rows.append(("Redis hit (shared by workers)", await timed(shared.aembed_query, texts)))
            await shared.aclose()

        batch = texts[: min(n, 64)]
        t0 = time.perf_counter()
        await provider.aembed_documents(batch)
        batch_uncached = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        await lru.aembed_documents(batch)
        batch_cached = (time.perf_counter() - t0) * 1000
        await provider.aclose()
        await lru.aclose()

    anchor = statistics.median(rows[0][1])
    print(f"provider stub latency {latency_s * 1000:.0f} ms, {n} texts, {DIM} dimensions")
    print()
    print(f"{'path':<32} {'p50 ms':>9} {'p99 ms':>9} {'speed-up':>10}")
    for name, samples in rows:
        p50 = statistics.median(samples)
        p99 = sorted(samples)[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
        print(f"{name:<32} {p50:>9.3f} {p99:>9.3f} {anchor / p50:>9.0f}x")
    print()
    print(
        f"batch of {len(batch)} repeated texts: {batch_uncached:.1f} ms uncached, "
        f"{batch_cached:.2f} ms cached ({batch_uncached / batch_cached:.0f}x)"
    )
    if len(rows) < 3:
        print("redis-server not found: Redis rows skipped")
    worst = min(anchor / statistics.median(s) for _, s in rows[1:])
    print(f"slowest cache path is {worst:.0f}x faster than the provider (target >= 50x)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embedding_cache")
    parser.add_argument("--quick", action="store_true", help="40 texts instead of 200")
    parser.add_argument("--latency-ms", type=float, default=80.0)
    args = parser.parse_args()
    asyncio.run(run(40 if args.quick else 200, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
