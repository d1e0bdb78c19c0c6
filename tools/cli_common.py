"""Shared pieces of the `tools.ingest` and `tools.search` command lines."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from tools.settings import ToolsSettings, describe_settings_error

EXIT_ERROR = 2


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
