"""Find and read the files to ingest: Markdown, plain text, HTML and PDF.

Each file becomes one `LoadedDocument` (Markdown-flavoured text, title, optional property tag)
or raises `SkipFile` with a one-line reason. The property tag comes from front matter
(`property_id:`), an HTML `<meta name="property_id">`, or a `properties/<property_id>/` folder.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

FORMATS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
PROPERTIES_FOLDER = "properties"


class SkipFile(Exception):
    """The file cannot be ingested; `str(exc)` is the reason shown to the user."""


@dataclass(frozen=True)
class LoadedDocument:
    source: str
    title: str
    text: str
    format: str
    property_id: str | None
    file_hash: str


@dataclass(frozen=True)
class SkippedFile:
    source: str
    reason: str


@dataclass(frozen=True)
class FoundFile:
    """A file to ingest: where to read it, and its identity in the collection."""

    path: Path
    # the path relative to the ingest root, with `/` separators: moving the root keeps it
    source: str


def is_hidden(path: Path) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in path.parts)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _walk_root(
    root: Path, *, follow_symlinks: bool, skipped: list[SkippedFile]
) -> list[tuple[bool, Path, str]]:
    """(is an alias, path, identity) of each supported file under `root`.

    Symlinks whose target lies inside the root are aliases (their target is found anyway);
    those leaving the root are skipped unless `follow_symlinks`.
    """
    real_root = root.resolve()
    found: list[tuple[bool, Path, str]] = []
    walked: set[Path] = set()
    pending: list[tuple[Path, bool]] = [(root, False)]
    while pending:
        directory, via_link = pending.pop()
        real_dir = directory.resolve()
        if real_dir in walked:
            continue  # a symlink loop, or a folder reached twice
        walked.add(real_dir)
        try:
            entries = sorted(directory.iterdir())
        except OSError as exc:
            skipped.append(SkippedFile(str(directory), f"unreadable folder ({exc.strerror})"))
            continue
        for entry in entries:
            relative = entry.relative_to(root)
            if is_hidden(relative):
                continue
            is_link = entry.is_symlink()
            alias = via_link or is_link
            if is_link:
                target = entry.resolve()
                if not target.exists():
                    skipped.append(SkippedFile(str(entry), "broken symlink"))
                    continue
                if not _inside(target, real_root) and not follow_symlinks:
                    skipped.append(
                        SkippedFile(
                            str(entry),
                            "symlink leaves the ingest folder (use --follow-symlinks to follow)",
                        )
                    )
                    continue
                if target.is_dir() and _inside(target, real_root):
                    continue  # the folder it points to is walked as itself
            if entry.is_dir():
                pending.append((entry, alias))
            elif entry.is_file() and entry.suffix.lower() in FORMATS:
                found.append((alias, entry, relative.as_posix()))
    return found


def discover(
    paths: Iterable[Path], *, follow_symlinks: bool = False
) -> tuple[list[FoundFile], list[SkippedFile]]:
    """Supported files under the given files and folders (hidden ones ignored).

    A file reached twice (a symlink or hard link to it, or two overlapping roots) is taken
    once, under its own path rather than an alias's. Two different files with the same
    identity under two roots: the first is taken, the other skipped.
    """
    candidates: list[tuple[int, bool, Path, str]] = []
    skipped: list[SkippedFile] = []
    for order, given in enumerate(paths):
        root = Path(given).absolute()
        if root.is_dir():
            walked = _walk_root(root, follow_symlinks=follow_symlinks, skipped=skipped)
            candidates.extend((order, alias, path, source) for alias, path, source in walked)
        elif root.is_file():
            if root.suffix.lower() in FORMATS:
                candidates.append((order, False, root, root.name))
            else:
                skipped.append(SkippedFile(str(root), f"unsupported file type {root.suffix!r}"))
        else:
            skipped.append(SkippedFile(str(root), "not found"))

    by_inode: dict[tuple[int, int], FoundFile] = {}
    by_source: dict[str, FoundFile] = {}
    for _, _, path, source in sorted(candidates, key=lambda c: (c[0], c[1], c[3])):
        try:
            stat = path.stat()
        except OSError as exc:
            skipped.append(SkippedFile(str(path), f"unreadable ({exc.strerror})"))
            continue
        inode = (stat.st_dev, stat.st_ino)
        if inode in by_inode:
            continue  # an alias of a file already taken
        if source in by_source:
            skipped.append(
                SkippedFile(str(path), f"another given folder already has a file {source!r}")
            )
            continue
        by_inode[inode] = by_source[source] = FoundFile(path=path, source=source)
    return sorted(by_source.values(), key=lambda f: f.source), skipped


def property_from_path(path: Path) -> str | None:
    """`.../properties/<id>/.../file` → `<id>`."""
    parts = path.parts[:-1]
    for i, part in enumerate(parts[:-1]):
        if part == PROPERTIES_FOLDER:
            return parts[i + 1]
    return None


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Simple `key: value` front matter between `---` lines at the very top."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            meta: dict[str, str] = {}
            for entry in lines[1:end]:
                key, sep, value = entry.partition(":")
                if sep and key.strip():
                    meta[key.strip().lower()] = value.strip().strip("\"'")
            return meta, "\n".join(lines[end + 1 :])
    return {}, text


def _first_heading(text: str) -> str | None:
    match = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else None


def _first_line(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= 120 else None
    return None


def _title_from_name(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


class _HTMLToText(HTMLParser):
    """HTML → Markdown-ish text: headings become `#` lines, list items `- ` lines."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _BLOCK = frozenset(
        {
            "p",
            "div",
            "section",
            "article",
            "br",
            "tr",
            "table",
            "ul",
            "ol",
            "header",
            "footer",
            "main",
            "nav",
            "aside",
            "blockquote",
            "pre",
            "hr",
            "dl",
            "dt",
            "dd",
            "figure",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.title_parts: list[str] = []
        self.meta: dict[str, str] = {}
        self._skip_depth = 0
        self._in_title = False

    def _flush(self, prefix: str = "") -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.lines.append(prefix + text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            values = dict(attrs)
            name = (values.get("name") or values.get("property") or "").lower()
            if name and values.get("content"):
                self.meta[name] = str(values["content"]).strip()
            return
        if tag == "title":
            self._in_title = True
            return
        if tag in self._SKIP:
            self._skip_depth += 1
            return
        if tag in self._BLOCK or tag == "li" or re.fullmatch(r"h[1-6]", tag):
            self._flush()
        if tag == "li":
            self.current.append("- ")
        elif re.fullmatch(r"h[1-6]", tag):
            self.current.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if tag in self._BLOCK or tag == "li" or re.fullmatch(r"h[1-6]", tag):
            self._flush()
            if re.fullmatch(r"h[1-6]|p|ul|ol|table", tag):
                self.lines.append("")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif self._skip_depth == 0:
            self.current.append(data)

    def result(self) -> str:
        self._flush()
        return re.sub(r"\n{3,}", "\n\n", "\n".join(self.lines)).strip()


def _decode_text(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise SkipFile("binary content")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(f"not UTF-8 text (byte {exc.start})") from exc


def _read_pdf(raw: bytes) -> tuple[str, str | None]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise SkipFile("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SkipFile(f"unreadable PDF ({' '.join(str(exc).split())[:80]})") from exc
    return "\n\n".join(p.strip() for p in pages if p.strip()), title


def load_document(path: Path, *, max_bytes: int, source: str | None = None) -> LoadedDocument:
    """Read one file; raises `SkipFile` when it is empty, binary, unreadable or too large.

    `source` is the document's identity (its path relative to the ingest root); by default
    the path itself.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SkipFile(f"unsupported file type {path.suffix!r}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SkipFile(f"too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB)")
        raw = path.read_bytes()
    except OSError as exc:
        raise SkipFile(f"unreadable ({exc.strerror or type(exc).__name__})") from exc
    if not raw.strip():
        raise SkipFile("empty")

    meta: dict[str, str] = {}
    title: str | None = None
    if fmt == "pdf":
        text, title = _read_pdf(raw)
    elif fmt == "html":
        parser = _HTMLToText()
        parser.feed(_decode_text(raw))
        parser.close()
        text = parser.result()
        meta = parser.meta
        title = " ".join("".join(parser.title_parts).split()) or None
    else:
        meta, text = split_front_matter(_decode_text(raw).replace("\r\n", "\n"))
    text = text.strip()
    if not text:
        raise SkipFile("empty (no text to index)")

    title = meta.get("title") or title or _first_heading(text)
    if not title and fmt == "text":
        title = _first_line(text)
    property_id = meta.get("property_id") or property_from_path(path)
    return LoadedDocument(
        source=source if source is not None else str(path),
        title=title or _title_from_name(path),
        text=text,
        format=fmt,
        property_id=property_id or None,
        file_hash=hashlib.sha256(raw).hexdigest(),
    )
