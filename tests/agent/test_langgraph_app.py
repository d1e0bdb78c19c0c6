"""`langgraph dev` serves langgraph.json's graphs, and they answer with no keys.

A real LangGraph server (langgraph-cli[inmem], in its own environment) is started on a
loopback port with the repository's own langgraph.json, as a team opening Studio would.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ENV = ROOT / ".venv-langgraph"
START_TIMEOUT_S = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_env() -> Path:
    """The langgraph-server environment (its deps conflict with the test group's)."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the langgraph-server environment")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(SERVER_ENV)}
    subprocess.run(
        [uv, "sync", "--frozen", "--no-dev", "--group", "langgraph-server", "--quiet"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    return SERVER_ENV / "bin" / "langgraph"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The repository's langgraph.json under `langgraph dev`; yields its base URL."""
    langgraph = _server_env()
    data = tmp_path_factory.mktemp("langgraph-app")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))},
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "REDIS_URL": "",
        "QDRANT_PATH": str(data / "qdrant"),
        "PMS_DEMO_PATH": str(data / "pms.sqlite"),
        "EMBEDDINGS_PROVIDER": "hashing",
    }
    # Studio users ingest the sample documents first, with the same CLI the worker uses.
    subprocess.run(
        [
            str(SERVER_ENV / "bin" / "python"),
            "-m",
            "tools.ingest",
            str(ROOT / "examples/knowledge"),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(langgraph),
            "dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-browser",
            "--no-reload",
            "--config",
            str(ROOT / "langgraph.json"),
        ],
        cwd=ROOT,  # graph paths resolve from here; its state folder .langgraph_api is ignored
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            proc.poll()
        if proc.returncode is not None or time.monotonic() >= deadline:
            log.flush()
            pytest.fail(
                "langgraph dev did not start:\n" + (data / "server.log").read_text()[-4000:]
            )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _run(url: str, graph: str, payload: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=60) as client:
        thread = client.post("/threads", json={}).json()["thread_id"]
        response = client.post(
            f"/threads/{thread}/runs/wait", json={"assistant_id": graph, "input": payload}
        )
        response.raise_for_status()
        return dict(response.json())


def test_langgraph_json_names_the_four_graphs() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert set(config["graphs"]) == {"assistant", "document_qa", "upsell", "gap_nights"}


def test_the_server_lists_every_graph_of_langgraph_json(served: str) -> None:
    found = httpx.post(f"{served}/assistants/search", json={}, timeout=30).json()
    assert {a["graph_id"] for a in found} == {"assistant", "document_qa", "upsell", "gap_nights"}


def test_the_assistant_answers_from_the_demo_pms_without_keys(served: str) -> None:
    values = _run(
        served,
        "assistant",
        {
            "messages": [{"role": "user", "content": "What is the Wi-Fi password?"}],
            "context": {"property_id": "alpine-chalet"},
        },
    )
    answer = values["messages"][-1]["content"]
    assert "matterhorn88" in answer


def test_document_qa_answers_from_the_ingested_documents(served: str) -> None:
    values = _run(
        served,
        "document_qa",
        {"messages": [{"role": "user", "content": "Can I bring my dog to Chalet Edelweiss?"}]},
    )
    answer = values["messages"][-1]["content"]
    assert "dog" in answer.lower()
    assert "couldn't find" not in answer


def test_the_upsell_graph_offers_extras_to_a_known_guest(served: str) -> None:
    values = _run(
        served,
        "upsell",
        {"context": {"reservation_code": "ALP-7826", "guest_name": "Giulia Rossi"}},
    )
    (pending,) = values["__interrupt__"]
    assert "late checkout" in pending["value"]["question"]


def test_the_gap_nights_graph_asks_an_unknown_caller_for_the_booking(served: str) -> None:
    values = _run(served, "gap_nights", {})
    (pending,) = values["__interrupt__"]
    assert "confirmation code" in pending["value"]["question"]
