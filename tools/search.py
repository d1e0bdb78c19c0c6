"""`python -m tools.search QUERY [--k N] [--property ID] [--json]`: search the documents."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from tools.cli_common import display_path, fail, run_command
from tools.documents import (
    DocumentStoreConfig,
    DocumentStoreError,
    SearchResult,
    build_document_store,
)
from tools.embeddings import EmbeddingsError

EXIT_NOTHING_FOUND = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.search",
        description="Search the ingested documents. Exit status 1 when nothing relevant is "
        "found, 2 on errors.",
    )
    parser.add_argument("query", nargs="+", help="the question or words to search for")
    parser.add_argument("--k", type=int, default=5, help="how many chunks to return (default 5)")
    parser.add_argument("--property", dest="property_id", help="only this property (+ general)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of hits")
    parser.add_argument("--collection", help="collection name (default: QDRANT_COLLECTION)")
    parser.add_argument("--min-score", type=float, help="override the minimum score")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return parser


def render(result: SearchResult) -> str:
    if not result.found:
        return (
            f"nothing relevant found ({result.discarded} results under the minimum score "
            f"{result.min_score:g})"
        )
    blocks = []
    for rank, hit in enumerate(result.hits, start=1):
        tag = f"  [{hit.property_id}]" if hit.property_id else ""
        blocks.append(
            f"{rank}. {hit.score:.3f}  {hit.label}{tag}\n"
            f"   {display_path(hit.source)} #{hit.chunk}\n"
            f"   {hit.preview}"
        )
    return "\n".join(blocks)


async def run(args: argparse.Namespace, config: DocumentStoreConfig) -> int:
    if args.k < 1:
        return fail("--k must be at least 1")
    try:
        store = build_document_store(config, collection=args.collection, read_only=True)
    except EmbeddingsError as exc:
        return fail(exc)
    try:
        if await store.count() == 0:
            return fail(
                "the document store is empty: ingest documents first, "
                "e.g. `python -m tools.ingest examples/knowledge`"
            )
        result = await store.search(
            " ".join(args.query), k=args.k, property_id=args.property_id, min_score=args.min_score
        )
    except DocumentStoreError as exc:
        return fail(exc)
    finally:
        await store.aclose()
    if args.json:
        print(json.dumps([hit.to_dict() for hit in result.hits], ensure_ascii=False, indent=2))
    else:
        print(render(result))
    return 0 if result.found else EXIT_NOTHING_FOUND


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
