"""`python -m tools.ingest PATH... [--prune] [--reembed] [--follow-symlinks]`: index documents.

The only writer of the embedded store: a run builds a new version and publishes it at the end,
while workers and searches keep reading the previous one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from tools.cli_common import display_path, fail, run_command
from tools.documents import (
    DocumentStoreConfig,
    DocumentStoreError,
    SkippedFile,
    build_document_store,
)
from tools.embeddings import EmbeddingsError


class ProgressBar:
    """A tqdm bar on stderr; it appears only on a terminal and only when a run takes > 1 s."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: tqdm[Any] | None = None

    def start(self, total_files: int) -> None:
        self._bar = tqdm(
            total=total_files,
            unit="file",
            desc="ingesting",
            file=sys.stderr,
            disable=None if self._enabled else True,
            delay=1.0,
        )

    def file_done(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def skipped(self, item: SkippedFile) -> None:
        tqdm.write(f"skipped {display_path(item.source)}: {item.reason}", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.ingest",
        description="Index Markdown, text, HTML and PDF files (and folders) into Qdrant.",
    )
    parser.add_argument(
        "paths", nargs="*", help="files or folders to ingest (optional with --reembed)"
    )
    parser.add_argument("--collection", help="collection name (default: QDRANT_COLLECTION)")
    parser.add_argument(
        "--prune",
        action="store_true",
        help="afterwards the collection holds only the documents found under these paths",
    )
    parser.add_argument(
        "--reembed",
        action="store_true",
        help="move every stored chunk to the configured embedder (in place), then ingest",
    )
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="also follow symlinks that lead outside the given folders",
    )
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return parser


async def run(args: argparse.Namespace, config: DocumentStoreConfig) -> int:
    if not args.paths and not args.reembed:
        return fail("give the files or folders to ingest (or --reembed)")
    if args.prune and not args.paths:
        return fail("--prune needs the paths the collection should hold")
    try:
        store = build_document_store(config, collection=args.collection)
    except EmbeddingsError as exc:
        return fail(exc)
    progress = ProgressBar(enabled=not args.no_progress)
    try:
        report = await store.ingest(
            args.paths,
            prune=args.prune,
            progress=progress,
            reembed=args.reembed,
            follow_symlinks=args.follow_symlinks,
        )
        total = await store.count()
    except DocumentStoreError as exc:
        return fail(exc)
    finally:
        progress.close()
        await store.aclose()
    for source in report.sources_pruned:
        print(f"pruned {display_path(source)}")
    print(f"{report.summary()}. Collection {store.collection!r} holds {total} chunks.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
