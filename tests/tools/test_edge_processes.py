"""Several real processes read the embedded store while the ingest CLI publishes a new version:
every search is answered, and readers pick up the new version without a restart."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from knowledge_helpers import _ENV_NAMES

REPO = Path(__file__).resolve().parents[2]
READERS = 3

READER = """
import asyncio, json, sys, time
from tools.documents import build_document_store
from tools.settings import ToolsSettings

async def main() -> None:
    store = build_document_store(ToolsSettings().document_store_config(), read_only=True)
    deadline = time.monotonic() + 120
    searches = errors = 0
    last = None
    while time.monotonic() < deadline:
        try:
            result = await store.search("what is the gate code", k=1, min_score=-1)
            text = result.hits[0].text if result.hits else ""
        except Exception as exc:
            errors += 1
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
            continue
        searches += 1
        code = "9999" if "9999" in text else "4711" if "4711" in text else "none"
        if code != last:
            last = code
            print(json.dumps({"seen": code}), flush=True)
        if code == "9999":
            break
        await asyncio.sleep(0.01)
    await store.aclose()
    print(json.dumps({"searches": searches, "errors": errors}), flush=True)

asyncio.run(main())
"""


def write_corpus(root: Path, gate_code: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "gate.md").write_text(f"# Gate\n\nThe courtyard gate code is {gate_code}.")
    for i in range(40):
        (root / f"room-{i}.md").write_text(
            f"# Room {i}\n\nRoom {i} has a balcony, {i} towels and a reading lamp."
        )


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_NAMES}
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        EMBEDDINGS_PROVIDER="hashing",
        PYTHONPATH=str(REPO),
    )
    return env


async def run_module(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=180)
    return process.returncode or 0, out.decode()


async def next_event(process: asyncio.subprocess.Process) -> dict[str, object]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
    assert line, "a reader exited early"
    return dict(json.loads(line))


async def test_readers_keep_answering_while_an_ingest_publishes(tmp_path: Path) -> None:
    env = environment(tmp_path)
    docs = tmp_path / "docs"
    write_corpus(docs, "4711")
    code, out = await run_module(env, tmp_path, "tools.ingest", str(docs), "--no-progress")
    assert code == 0, out

    readers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            READER,
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(READERS)
    ]
    try:
        for reader in readers:  # every reader answers from the first version
            assert await next_event(reader) == {"seen": "4711"}

        write_corpus(docs, "9999")
        ingest_run = asyncio.create_task(
            run_module(env, tmp_path, "tools.ingest", str(docs), "--no-progress", "--prune")
        )
        # the search CLI answers at the same time as the readers and the ingest
        code, out = await run_module(env, tmp_path, "tools.search", "gate code", "--k", "1")
        assert code == 0 and "gate code is" in out, out
        code, out = await ingest_run
        assert code == 0, out

        for reader in readers:  # each picks up the new version without a restart
            assert await next_event(reader) == {"seen": "9999"}
            summary = await next_event(reader)
            assert summary["errors"] == 0 and int(str(summary["searches"])) >= 2
            assert await asyncio.wait_for(reader.wait(), timeout=60) == 0
    finally:
        for reader in readers:
            if reader.returncode is None:
                reader.kill()
                await reader.wait()

    code, out = await run_module(env, tmp_path, "tools.search", "gate code", "--k", "1")
    assert code == 0 and "9999" in out
