"""`python -m tools.ingest` and `python -m tools.search`, configured through the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from knowledge_helpers import KNOWLEDGE_ROOT, clean_env, closed_port

from tools import ingest, search

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (no .env) with DATA_DIR inside it."""
    monkeypatch.chdir(tmp_path)
    clean_env(monkeypatch, DATA_DIR=str(tmp_path / "data"))
    return tmp_path


def test_ingest_then_search_as_json(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ingest.main([str(KNOWLEDGE_ROOT), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "24 files: 24 indexed" in summary and "Collection 'documents' holds" in summary
    assert (workdir / "data" / "qdrant").is_dir()

    code = search.main(["how", "much", "is", "the", "dog", "fee?", "--json", "--k", "3"])
    hits = json.loads(capsys.readouterr().out)
    assert code == 0 and 1 <= len(hits) <= 3
    assert {"source", "chunk", "score", "text"} <= set(hits[0])
    assert hits[0]["source"].endswith("alpine-chalet/pets.md")
    assert hits == sorted(hits, key=lambda h: -h["score"])


def test_search_with_a_property_filter_prints_a_readable_list(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest.main([str(KNOWLEDGE_ROOT), "--no-progress"])
    capsys.readouterr()
    assert search.main(["wifi password", "--property", "casa-del-sol", "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. ") and "Casa del Sol — Wi-Fi, TV and air conditioning" in out
    assert "paella-sunset" in out and "[casa-del-sol]" in out


def test_nothing_relevant_exits_1_and_says_so(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest.main([str(KNOWLEDGE_ROOT), "--no-progress"])
    capsys.readouterr()
    assert search.main(["quantum chromodynamics lecture notes"]) == 1
    assert capsys.readouterr().out.startswith("nothing relevant found")
    assert search.main(["quantum chromodynamics lecture notes", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == []


def test_skips_prune_and_collection_name(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = workdir / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Sauna\n\nHeat it for 45 minutes.")
    (docs / "b.md").write_text("# Fireplace\n\nOpen the vent.")
    (docs / "empty.txt").write_text("")
    assert ingest.main([str(docs), "--collection", "manuals", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "skipped docs/empty.txt: empty" in captured.err
    assert "3 files: 2 indexed, 0 unchanged, 1 skipped" in captured.out
    assert "'manuals' holds 2 chunks" in captured.out

    (docs / "b.md").unlink()
    assert ingest.main([str(docs), "--collection", "manuals", "--prune", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "pruned b.md" in out and "'manuals' holds 1 chunks" in out
    assert search.main(["fireplace vent", "--collection", "manuals", "--min-score", "0.2"]) == 1


def test_an_unreachable_qdrant_url_exits_2_with_the_cause(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QDRANT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("QDRANT_TIMEOUT_S", "1")
    assert search.main(["wifi"]) == 2
    assert ingest.main([str(KNOWLEDGE_ROOT), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("error: Qdrant at http://127.0.0.1:") == 2 and "unreachable" in err


def test_bad_configuration_exits_2(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBEDDINGS_PROVIDER", "word2vec")
    assert search.main(["wifi"]) == 2
    assert "invalid configuration" in capsys.readouterr().err
    monkeypatch.setenv("EMBEDDINGS_PROVIDER", "openai-compatible")
    assert search.main(["wifi"]) == 2
    assert "EMBEDDINGS_BASE_URL" in capsys.readouterr().err


def test_bad_configuration_is_one_line_naming_the_variable(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBEDDINGS_TIMEOUT_S", "-3")
    assert search.main(["wifi"]) == 2
    assert ingest.main([str(KNOWLEDGE_ROOT), "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert (
        lines == ["error: invalid configuration: EMBEDDINGS_TIMEOUT_S: expected greater than 0"] * 2
    )


def test_searching_an_empty_store_says_to_ingest_first(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert search.main(["wifi"]) == 2
    err = capsys.readouterr().err
    assert "empty" in err and "python -m tools.ingest" in err


def test_the_schema_writer_answers_help_without_writing(workdir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent.chat.protocol", "--help"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "usage:" in done.stdout
    assert not (workdir / "--help").exists()


def test_the_modules_run_with_python_dash_m(workdir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for module in ("tools.ingest", "tools.search"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0 and f"python -m {module}" in done.stdout
