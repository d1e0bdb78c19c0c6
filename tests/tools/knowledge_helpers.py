"""Test data the knowledge tests make themselves: a PDF, a tiny ONNX model, an embeddings server.

Nothing here downloads anything; the ONNX model and PDF are written byte by byte.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

# ---- PDF ----------------------------------------------------------------------------------


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path: Path, pages: list[list[str]], *, title: str | None = None) -> Path:
    """A valid PDF with Helvetica text lines on each page (pypdf can extract them)."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            ops += [f"({_pdf_escape(line)}) Tj", "T*"]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = None
    if title is not None:
        objects.append(f"<< /Title ({_pdf_escape(title)}) >>".encode("latin-1"))
        info_id = len(objects)

    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    info = f" /Info {info_id} 0 R" if info_id else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


# ---- a tiny ONNX embedding model, encoded as protobuf by hand ------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    shape = b"".join(_field(1, _field(1, d) if isinstance(d, int) else _field(2, d)) for d in dims)
    tensor_type = _field(1, elem_type) + _field(2, shape)
    return _field(1, name) + _field(2, _field(1, tensor_type))


def write_tiny_onnx_embedder(model_dir: Path, *, vocab: list[str], dim: int, seed: int = 7) -> None:
    """A real ONNX graph: token embedding lookup (Gather) then mean over tokens (ReduceMean),
    plus the tokenizer files FastEmbed reads. Shapes follow a BERT-style sentence encoder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    FLOAT, INT64 = 1, 7
    tokens = ["[PAD]", "[UNK]", *vocab]
    table = np.random.default_rng(seed).normal(size=(len(tokens), dim)).astype("<f4")
    table[0] = 0.0  # padding adds nothing to the mean's direction

    initializer = (
        _field(1, len(tokens))
        + _field(1, dim)
        + _field(2, FLOAT)
        + _field(8, "embeddings")
        + _field(9, table.tobytes())
    )
    gather = (
        _field(1, "embeddings") + _field(1, "input_ids") + _field(2, "tokens") + _field(4, "Gather")
    )
    axes = _field(1, "axes") + _field(20, 7) + _field(8, 1)
    keepdims = _field(1, "keepdims") + _field(20, 2) + _field(3, 0)
    reduce = (
        _field(1, "tokens")
        + _field(2, "sentence_embedding")
        + _field(4, "ReduceMean")
        + _field(5, axes)
        + _field(5, keepdims)
    )
    graph = (
        _field(1, gather)
        + _field(1, reduce)
        + _field(2, "tiny-encoder")
        + _field(5, initializer)
        + _field(11, _value_info("input_ids", INT64, ["batch", "sequence"]))
        + _field(12, _value_info("sentence_embedding", FLOAT, ["batch", dim]))
    )
    model = (
        _field(1, 8)
        + _field(2, "knowledge-tests")
        + _field(7, graph)
        + _field(8, _field(1, "") + _field(2, 13))
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model_optimized.onnx").write_bytes(model)

    tokenizer = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(model_dir / "tokenizer.json"))
    (model_dir / "tokenizer_config.json").write_text(
        json.dumps({"model_max_length": 512, "pad_token": "[PAD]"})
    )
    (model_dir / "special_tokens_map.json").write_text(
        json.dumps({"pad_token": "[PAD]", "unk_token": "[UNK]"})
    )
    (model_dir / "config.json").write_text(json.dumps({"pad_token_id": 0}))


# ---- a loopback server speaking the OpenAI /v1/embeddings shape -----------------------------


def fake_vector(text: str, dim: int) -> list[float]:
    """Deterministic per text, so tests can check which vector came back where."""
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    vector = rng.normal(size=dim)
    return [float(x) for x in vector / np.linalg.norm(vector)]


def encode_vector(vector: list[float], as_base64: bool) -> list[float] | str:
    """As the API sends it: a JSON list, or base64 of little-endian float32 when asked."""
    if not as_base64:
        return vector
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


@dataclass
class Reply:
    """What the server does with one request: an HTTP status (with headers) or a delay."""

    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass
class EmbeddingsServer:
    dim: int = 16
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    hold_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_reply(self) -> Reply:
        with self.lock:
            return self.script.pop(0) if self.script else Reply()

    @property
    def texts_embedded(self) -> int:
        return sum(len(r["input"]) for r in self.requests if r.get("_status") == 200)


def _handler(server_state: EmbeddingsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            payload = json.loads(self.rfile.read(length))
            reply = server_state.next_reply()
            with server_state.lock:
                server_state.in_flight += 1
                server_state.max_in_flight = max(server_state.max_in_flight, server_state.in_flight)
                server_state.requests.append({**payload, "_status": reply.status})
                server_state.auth_headers.append(self.headers.get("Authorization"))
            try:
                time.sleep(reply.delay_s + server_state.hold_s)
                if self.path != "/v1/embeddings":
                    self._send(404, {"error": {"message": "not found"}}, {})
                elif reply.status != 200:
                    body = reply.body or json.dumps({"error": {"message": "scripted failure"}})
                    self._send_raw(reply.status, body.encode(), reply.headers)
                else:
                    as_base64 = payload.get("encoding_format") == "base64"
                    data = [
                        {
                            "object": "embedding",
                            "index": i,
                            "embedding": encode_vector(fake_vector(t, server_state.dim), as_base64),
                        }
                        for i, t in enumerate(payload["input"])
                    ]
                    # servers may answer out of order; clients must sort by index
                    data.reverse()
                    self._send(200, {"object": "list", "data": data, "model": payload["model"]}, {})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test); nothing left to answer
            finally:
                with server_state.lock:
                    server_state.in_flight -= 1

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            self._send_raw(status, json.dumps(body).encode(), headers)

        def _send_raw(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def start_embeddings_server(state: EmbeddingsServer) -> Callable[[], None]:
    """Serve `state` on a free loopback port; returns the function that stops it."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return stop


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unpack_floats(raw: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


# ---- stores and settings --------------------------------------------------------------------

KNOWLEDGE_ROOT = Path(__file__).resolve().parents[2] / "examples" / "knowledge"
_ENV_NAMES = (
    "OPENAI_API_KEY",
    "EMBEDDINGS_PROVIDER",
    "EMBEDDINGS_MODEL",
    "EMBEDDINGS_BASE_URL",
    "EMBEDDINGS_API_KEY",
    "EMBEDDINGS_DIMENSIONS",
    "QDRANT_URL",
    "QDRANT_API_KEY",
    "QDRANT_PATH",
    "QDRANT_COLLECTION",
    "REDIS_URL",
    "SEARCH_MIN_SCORE",
    "DATA_DIR",
)


def clean_env(monkeypatch: Any, **env: str) -> None:
    """Remove every setting the knowledge layer reads, then set `env`."""
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def memory_store(embedder: Any = None, **options: Any) -> Any:
    """A document store on in-memory Qdrant with the hashing embedder (unless given another)."""
    from tools.documents import DocumentStore, QdrantGateway, QdrantLocation
    from tools.embeddings import HashingEmbedder

    options.setdefault("min_score", HashingEmbedder.suggested_min_score)
    return DocumentStore(QdrantGateway(QdrantLocation()), embedder or HashingEmbedder(), **options)


def edge_store(path: Path, embedder: Any = None, **options: Any) -> Any:
    """A document store on Qdrant Edge under `path` with the hashing embedder (unless given)."""
    from tools.documents import DocumentStore, EdgeBackend
    from tools.embeddings import HashingEmbedder

    options.setdefault("min_score", HashingEmbedder.suggested_min_score)
    read_only = options.pop("read_only", False)
    return DocumentStore(
        EdgeBackend(path, read_only=read_only), embedder or HashingEmbedder(), **options
    )
