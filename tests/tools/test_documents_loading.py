"""Reading files: formats, titles, property tags, chunking, and skipping bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from knowledge_helpers import memory_store, write_pdf

from tools.documents import Chunker, SkipFile, load_document
from tools.documents.loaders import discover

MB = 1_000_000


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_markdown_front_matter_gives_title_and_property(tmp_path: Path) -> None:
    path = write(
        tmp_path / "wifi.md",
        "---\ntitle: Loft Wi-Fi\nproperty_id: harbor-view-loft\n---\n\n# Internet\n\nPassword: x\n",
    )
    doc = load_document(path, max_bytes=MB)
    assert (doc.title, doc.property_id, doc.format) == (
        "Loft Wi-Fi",
        "harbor-view-loft",
        "markdown",
    )
    assert doc.text.startswith("# Internet") and "property_id" not in doc.text


def test_the_properties_folder_tags_untagged_files(tmp_path: Path) -> None:
    path = write(
        tmp_path / "properties" / "casa-del-sol" / "notes" / "pool.txt", "Pool rules\n\nNo glass."
    )
    general = write(tmp_path / "policies" / "pets.txt", "Pets\n\nAsk first.")
    doc = load_document(path, max_bytes=MB)
    assert doc.property_id == "casa-del-sol"
    assert doc.title == "Pool rules"  # a text file's first line
    assert load_document(general, max_bytes=MB).property_id is None


def test_front_matter_wins_over_the_folder(tmp_path: Path) -> None:
    path = write(
        tmp_path / "properties" / "alpine-chalet" / "x.md",
        "---\nproperty_id: casa-del-sol\n---\nBody",
    )
    assert load_document(path, max_bytes=MB).property_id == "casa-del-sol"


def test_html_keeps_text_and_structure_and_drops_scripts(tmp_path: Path) -> None:
    path = write(
        tmp_path / "guide.html",
        """<html><head><title>Zermatt &amp; around</title>
        <meta name="property_id" content="alpine-chalet"><style>h1{color:red}</style>
        <script>var secret = "do not index";</script></head>
        <body><h1>Guide</h1><p>Ride the <b>Gornergrat</b> railway.</p>
        <ul><li>Five Lakes Walk</li><li>Glacier Paradise</li></ul></body></html>""",
    )
    doc = load_document(path, max_bytes=MB)
    assert doc.title == "Zermatt & around"
    assert doc.property_id == "alpine-chalet"
    assert "# Guide" in doc.text and "Ride the Gornergrat railway." in doc.text
    assert "- Five Lakes Walk" in doc.text
    assert "secret" not in doc.text and "color" not in doc.text


def test_pdf_text_and_title_are_extracted(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "properties" / "casa-del-sol" / "emergency.pdf",
        [
            ["Emergency card", "Call 112 for police, ambulance and fire."],
            ["Fuse box: utility room."],
        ],
        title="Casa del Sol emergency card",
    )
    doc = load_document(path, max_bytes=MB)
    assert doc.format == "pdf" and doc.title == "Casa del Sol emergency card"
    assert "Call 112" in doc.text and "Fuse box: utility room." in doc.text
    assert doc.property_id == "casa-del-sol"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", "", "empty"),
        ("blank.txt", "  \n\n ", "empty"),
        ("only-front-matter.md", "---\ntitle: x\n---\n", "empty"),
        ("binary.txt", b"\x00\x01\x02PNG\x00", "binary"),
        ("latin1.md", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "unreadable PDF"),
        ("scan.pdf", None, "empty"),
    ],
)
def test_bad_files_are_skipped_with_a_reason(
    tmp_path: Path, name: str, content: str | bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is None:
        write_pdf(path, [[]])  # a PDF page with no text, like an image-only scan
    else:
        write(path, content)
    with pytest.raises(SkipFile, match=reason):
        load_document(path, max_bytes=MB)


def test_oversized_files_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", "word " * 5000)
    with pytest.raises(SkipFile, match="too large"):
        load_document(path, max_bytes=1000)


def test_unreadable_files_are_skipped(tmp_path: Path) -> None:
    dangling = tmp_path / "moved.md"
    dangling.symlink_to(tmp_path / "gone.md")  # like a file deleted mid-run
    folder = tmp_path / "folder.md"
    folder.mkdir()
    for path in (dangling, folder):
        with pytest.raises(SkipFile, match="unreadable"):
            load_document(path, max_bytes=MB)


def test_discovery_takes_supported_files_and_ignores_hidden_ones(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "a")
    write(tmp_path / "sub" / "b.HTML", "<p>b</p>")
    write(tmp_path / ".git" / "c.md", "c")
    write(tmp_path / "d.docx", "d")
    photo = write(tmp_path / "photo.jpg", b"\xff\xd8")
    files, skipped = discover([tmp_path, photo, tmp_path / "missing.md"])
    assert [f.source for f in files] == ["a.md", "sub/b.HTML"]
    assert [(Path(s.source).name, s.reason) for s in skipped] == [
        ("photo.jpg", "unsupported file type '.jpg'"),
        ("missing.md", "not found"),
    ]


def test_chunks_follow_sections_and_respect_the_size(tmp_path: Path) -> None:
    long_section = " ".join(f"Sentence {i} about the sauna and its stones." for i in range(80))
    path = write(
        tmp_path / "manual.md",
        f"---\ntitle: Manual\n---\n# Manual\n\nIntro.\n\n## Sauna\n\n{long_section}\n\n"
        "## Fireplace\n\nOpen the vent first.\n",
    )
    chunks = Chunker(chunk_size=300, chunk_overlap=50).split(load_document(path, max_bytes=MB))
    sauna = [c for c in chunks if c.section == "Sauna"]
    assert len(sauna) > 5 and all(len(c.text) <= 300 for c in chunks)
    assert chunks[-1].section == "Fireplace" and chunks[-1].text == "Open the vent first."
    assert chunks[-1].embed_text == "Manual\nFireplace\nOpen the vent first."
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # consecutive pieces of one section overlap, so no sentence is cut off from its context
    assert sauna[0].text[-20:] in sauna[1].text


async def test_an_ingest_run_skips_bad_files_and_indexes_the_rest(tmp_path: Path) -> None:
    write(tmp_path / "good.md", "# Parking\n\nThe garage is on level P2.")
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "binary.md", b"\x00\x00\x00")
    write(tmp_path / "broken.pdf", b"%PDF-1.4 garbage")
    write(tmp_path / "also-good.html", "<h1>Pool</h1><p>Heated from April.</p>")
    store = memory_store()
    report = await store.ingest([tmp_path])
    assert report.files_indexed == 2
    reasons = {Path(s.source).name: s.reason for s in report.skipped}
    assert sorted(reasons) == ["binary.md", "broken.pdf", "empty.txt"]
    assert reasons["binary.md"] == "binary content"
    assert reasons["broken.pdf"].startswith("unreadable PDF")
    result = await store.search("which level is the garage on?")
    assert Path(result.hits[0].source).name == "good.md"
    await store.aclose()
