"""A collection records its embedder; search uses it, or says in one line how to fix it;
`--reembed` migrates the collection in place."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from knowledge_helpers import EmbeddingsServer, clean_env, start_embeddings_server

from tools import ingest, search
from tools.documents import build_document_store
from tools.knowledge import MISMATCH, knowledge_tools
from tools.settings import ToolsSettings


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clean_env(monkeypatch, DATA_DIR=str(tmp_path / "data"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "sauna.md").write_text("# Sauna\n\nHeat the sauna for 45 minutes before use.")
    (docs / "fireplace.md").write_text("# Fireplace\n\nOpen the chimney vent before lighting.")
    return tmp_path


@pytest.fixture
def embeddings_server() -> Iterator[EmbeddingsServer]:
    state = EmbeddingsServer(dim=24)
    stop = start_embeddings_server(state)
    yield state
    stop()


def manifest(workdir: Path) -> dict[str, object]:
    collection = workdir / "data" / "qdrant" / "documents"
    version = (collection / "CURRENT").read_text().strip()
    return json.loads((collection / "versions" / version / "manifest.json").read_text())


def use_server(monkeypatch: pytest.MonkeyPatch, server: EmbeddingsServer) -> None:
    monkeypatch.setenv("EMBEDDINGS_PROVIDER", "openai-compatible")
    monkeypatch.setenv("EMBEDDINGS_BASE_URL", server.url)
    monkeypatch.setenv("EMBEDDINGS_MODEL", "stub-embedder")


def test_adding_an_openai_key_keeps_using_the_recorded_embedder(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ingest.main([str(workdir / "docs"), "--no-progress"]) == 0
    assert manifest(workdir)["embedder"] == {
        "provider": "hashing",
        "model": "hashing-v1-d2048",
        "dimensions": 2048,
    }
    capsys.readouterr()
    # the natural next step of a new user: OpenAI now wins the provider choice
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-reachable")
    assert search.main(["how long to heat the sauna", "--min-score", "0.05"]) == 0
    assert "Sauna" in capsys.readouterr().out


def test_an_embedder_that_cannot_run_here_fails_with_one_actionable_line(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    embeddings_server: EmbeddingsServer,
) -> None:
    use_server(monkeypatch, embeddings_server)
    assert ingest.main([str(workdir / "docs"), "--no-progress"]) == 0
    capsys.readouterr()
    clean_env(monkeypatch, DATA_DIR=str(workdir / "data"), EMBEDDINGS_PROVIDER="hashing")
    assert search.main(["sauna"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert "built with openai-compatible stub-embedder (24 dimensions)" in line
    assert "python -m tools.ingest --reembed" in line and "EMBEDDINGS_BASE_URL" in line


async def test_the_worker_tool_says_a_speakable_sentence_on_a_mismatch(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, embeddings_server: EmbeddingsServer
) -> None:
    use_server(monkeypatch, embeddings_server)
    assert await asyncio.to_thread(ingest.main, [str(workdir / "docs"), "--no-progress"]) == 0
    clean_env(monkeypatch, DATA_DIR=str(workdir / "data"))
    store = build_document_store(
        ToolsSettings(_env_file=None).document_store_config(),  # type: ignore[call-arg]
        read_only=True,
    )
    search_documents = knowledge_tools(store)[0]
    message = await search_documents.ainvoke(
        {"type": "tool_call", "id": "1", "name": "search_documents", "args": {"query": "sauna"}}
    )
    assert message.content == MISMATCH and "--reembed" in message.artifact["error"]
    await store.aclose()


def test_reembed_migrates_the_collection_in_place(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    embeddings_server: EmbeddingsServer,
) -> None:
    use_server(monkeypatch, embeddings_server)
    assert ingest.main([str(workdir / "docs"), "--no-progress"]) == 0
    before = manifest(workdir)
    capsys.readouterr()

    clean_env(monkeypatch, DATA_DIR=str(workdir / "data"), EMBEDDINGS_PROVIDER="hashing")
    # the source folder is gone: re-embedding needs only what the collection stores
    for path in (workdir / "docs").iterdir():
        path.unlink()
    assert ingest.main(["--reembed", "--no-progress"]) == 0
    assert "re-embedded 2 chunks" in capsys.readouterr().out
    after = manifest(workdir)
    assert after["points"] == before["points"] == 2
    assert after["embedder"] == {
        "provider": "hashing",
        "model": "hashing-v1-d2048",
        "dimensions": 2048,
    }
    assert search.main(["chimney vent", "--min-score", "0.05", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["source"] == "fireplace.md"
    # again: nothing left to migrate
    assert ingest.main(["--reembed", "--no-progress"]) == 0
    assert "re-embedded" not in capsys.readouterr().out
