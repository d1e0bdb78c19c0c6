"""A document's identity is its path relative to the ingest root: moves, symlinks, aliases."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from knowledge_helpers import edge_store

from tools.documents.loaders import discover


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def corpus(root: Path) -> Path:
    write(root / "wifi.md", "# Wi-Fi\n\nThe Wi-Fi password is sunflower42.")
    write(
        root / "house" / "parking.md", "# Parking\n\nPark in the courtyard; the gate code is 4711."
    )
    write(root / "house" / "checkout.md", "# Check-out\n\nCheck-out is at 11 am.")
    return root


async def test_moving_the_folder_and_reingesting_with_prune_keeps_one_copy(tmp_path: Path) -> None:
    original = corpus(tmp_path / "a" / "kb")
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([original])
    count = await store.count()
    sources = await store.sources()

    moved = tmp_path / "b" / "renamed-kb"
    moved.parent.mkdir()
    shutil.move(original, moved)
    report = await store.ingest([moved], prune=True)

    assert await store.count() == count
    assert await store.sources() == sources
    assert (report.files_unchanged, report.chunks_added, report.sources_pruned) == (3, 0, [])
    hit = (await store.search("what is the gate code")).hits[0]
    assert hit.source == "house/parking.md"
    await store.aclose()


def test_a_symlink_leaving_the_root_is_skipped_unless_asked(tmp_path: Path) -> None:
    root = corpus(tmp_path / "kb")
    secret = write(tmp_path / "private" / "secrets.md", "# Secrets\n\nThe safe code is 1234.")
    os.symlink(secret, root / "linked-secrets.md")
    os.symlink(secret.parent, root / "private-folder")

    files, skipped = discover([root])
    assert [f.source for f in files] == ["house/checkout.md", "house/parking.md", "wifi.md"]
    reasons = {Path(s.source).name: s.reason for s in skipped}
    assert set(reasons) == {"linked-secrets.md", "private-folder"}
    assert all("--follow-symlinks" in r for r in reasons.values())

    followed, _ = discover([root], follow_symlinks=True)
    # the same file reached through two links is still one document
    assert [f.source for f in followed] == [
        "house/checkout.md",
        "house/parking.md",
        "linked-secrets.md",
        "wifi.md",
    ]


def test_an_alias_of_a_file_inside_the_root_is_indexed_once(tmp_path: Path) -> None:
    root = corpus(tmp_path / "kb")
    os.symlink(root / "wifi.md", root / "internet.md")
    os.link(root / "house" / "parking.md", root / "parking-copy.md")
    os.symlink(root / "house", root / "home")

    files, skipped = discover([root, root / "house", root / "wifi.md"])
    assert [f.source for f in files] == ["house/checkout.md", "house/parking.md", "wifi.md"]
    assert skipped == []


async def test_an_alias_does_not_double_the_vectors(tmp_path: Path) -> None:
    root = corpus(tmp_path / "kb")
    store = edge_store(tmp_path / "qdrant")
    await store.ingest([root])
    count = await store.count()
    os.symlink(root / "wifi.md", root / "internet.md")
    report = await store.ingest([root, root / "house"], prune=True)
    assert await store.count() == count
    assert report.chunks_added == 0 and report.sources_pruned == []
    await store.aclose()


def test_two_roots_with_the_same_relative_path_keep_the_first(tmp_path: Path) -> None:
    first = write(tmp_path / "one" / "faq.md", "# FAQ\n\nTowels are provided.")
    write(tmp_path / "two" / "faq.md", "# FAQ\n\nBring your own towels.")
    files, skipped = discover([first.parent, tmp_path / "two"])
    assert [(f.source, f.path) for f in files] == [("faq.md", first)]
    assert len(skipped) == 1 and "already has a file 'faq.md'" in skipped[0].reason
