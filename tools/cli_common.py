"""Shared pieces of the `tools.ingest` and `tools.search` command lines."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tools.documents import DocumentStoreConfig
from tools.settings import ToolsSettings, describe_settings_error

EXIT_ERROR = 2

# what a command does once its arguments are parsed and the store's settings read
CommandRun = Callable[[argparse.Namespace, DocumentStoreConfig], Coroutine[Any, Any, int]]


def run_command(
    parser: argparse.ArgumentParser, run: CommandRun, argv: Sequence[str] | None
) -> int:
    """Parse, set up logging, read the settings once, run; the exit status of `run`."""
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    settings = load_settings()
    if settings is None:
        return EXIT_ERROR
    return asyncio.run(run(args, settings.document_store_config()))


def fail(message: object) -> int:
    """Say what went wrong on stderr; the error exit status."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def load_settings() -> ToolsSettings | None:
    """Read the environment once; None (with a printed reason) when it is invalid."""
    try:
        return ToolsSettings()
    except ValidationError as exc:
        print(
            f"error: invalid configuration: {describe_settings_error(exc, ToolsSettings)}",
            file=sys.stderr,
        )
        return None


def display_path(source: str) -> str:
    """A source path relative to the working directory when it lies below it."""
    try:
        return str(Path(source).relative_to(Path.cwd()))
    except ValueError:
        return source
