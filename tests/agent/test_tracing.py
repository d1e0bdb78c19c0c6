"""Traces of a real text-console turn: OpenTelemetry to a loopback OTLP/HTTP receiver and
LangSmith runs to a loopback LangSmith endpoint, both configured only through the standard
environment variables."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _worker_fakes import run_agent_cli, worker_process_env
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ROOT = Path(__file__).resolve().parents[2]
LIVEKIT_SECRET = "lk-secret-never-export-me"
OTLP_TOKEN = "otlp-token-never-in-a-span"
QUESTION = "Is breakfast included at the Harbour View?"
GUEST = "Erika Mustermann"


@dataclass
class Received:
    traces: list[bytes] = field(default_factory=list)
    trace_headers: list[dict[str, str]] = field(default_factory=list)
    langsmith: list[bytes] = field(default_factory=list)


def _handler(received: Received) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(200, b"{}", "application/json")  # LangSmith's /info: no extras

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/v1/traces":
                received.traces.append(body)
                received.trace_headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = ExportTraceServiceResponse().SerializeToString()
                self._reply(200, reply, "application/x-protobuf")
            else:
                received.langsmith.append(body)
                self._reply(200, b"{}", "application/json")

    return Handler


@pytest.fixture(scope="module")
def traced_turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Received, str]]:
    """One typed question through `python -m agent console --text`, traced both ways."""
    received = Received()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(received))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    tmp = tmp_path_factory.mktemp("traced")
    env = {k: v for k, v in worker_process_env().items() if not k.startswith("LANG")}
    env.update(
        DATA_DIR=str(tmp / "data"),
        PYTHONPATH=str(ROOT),
        LIVEKIT_API_SECRET=LIVEKIT_SECRET,
        OTEL_EXPORTER_OTLP_ENDPOINT=url,
        OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer%20{OTLP_TOKEN}",
        LANGSMITH_TRACING="true",
        LANGSMITH_ENDPOINT=url,
        LANGSMITH_API_KEY="ls-key-for-the-loopback",
        LANGSMITH_PROJECT="voice-agent-tests",
    )
    try:
        result = run_agent_cli(
            "console",
            "--text",
            "--metadata",
            json.dumps({"guest_name": GUEST, "property_id": "harbour-view"}),
            input=f"{QUESTION}\n",  # then end of input: the console exits by itself
            cwd=tmp,
            env=env,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr
        yield received, result.stdout
    finally:
        server.shutdown()
        server.server_close()


def _spans(received: Received) -> list[Any]:
    spans = []
    for body in received.traces:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                spans.extend(scope.spans)
    return spans


def _attributes(span: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in span.attributes:
        value = item.value
        values[item.key] = (
            getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None
        )
    return values


def _ancestors(span: Any, by_id: dict[bytes, Any]) -> list[str]:
    names = []
    while span.parent_span_id and span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        names.append(span.name)
    return names


def test_the_graph_run_nests_under_livekits_llm_span(traced_turn: tuple[Received, str]) -> None:
    received, stdout = traced_turn
    assert stdout.count("agent>") >= 2  # greeting and the answer: the turn really ran
    spans = _spans(received)
    by_id = {span.span_id: span for span in spans}
    names = [span.name for span in spans]
    assert "llm_node" in names
    tools = [span for span in spans if span.name.startswith("execute_tool ")]
    assert tools, names
    chain = _ancestors(tools[0], by_id)
    # tool → its node → the graph run → LiveKit's LLM request/attempt spans → llm_node
    assert chain[0] == "graph_node fallback"
    assert chain[1] == "graph_run"
    assert "llm_node" in chain[2:]
    assert set(chain[2 : chain.index("llm_node")]) <= {"llm_request", "llm_request_run"}
    assert _attributes(tools[0])["gen_ai.tool.name"] == tools[0].name.removeprefix("execute_tool ")


def test_graph_spans_carry_the_thread_and_no_personal_data_or_secrets(
    traced_turn: tuple[Received, str],
) -> None:
    received, _ = traced_turn
    spans = _spans(received)
    run = next(span for span in spans if span.name == "graph_run")
    attributes = _attributes(run)
    thread_id = attributes["langgraph.thread_id"]
    assert thread_id and attributes["gen_ai.conversation.id"] == thread_id
    node = next(span for span in spans if span.name == "graph_node fallback")
    assert _attributes(node)["langgraph.thread_id"] == thread_id
    exported = b"".join(received.traces)
    for private in (QUESTION, "breakfast", GUEST, "Mustermann", LIVEKIT_SECRET, OTLP_TOKEN):
        assert private.encode() not in exported, private
    # the configured OTLP headers authenticate the export itself
    assert all(h.get("authorization") == f"Bearer {OTLP_TOKEN}" for h in received.trace_headers)


def test_langsmith_runs_are_tagged_with_the_thread_id(traced_turn: tuple[Received, str]) -> None:
    received, _ = traced_turn
    run = next(span for span in _spans(received) if span.name == "graph_run")
    thread_id = _attributes(run)["langgraph.thread_id"]
    sent = b"".join(received.langsmith)
    assert f"thread_id:{thread_id}".encode() in sent
    assert b"voice-agent-tests" in sent
    assert LIVEKIT_SECRET.encode() not in sent
