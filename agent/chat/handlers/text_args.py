"""Readers for the text after a chat command word (`/search wifi password` → args)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from agent.chat.registry import ArgumentError

__all__ = ["free_text", "key_values", "no_args", "one_word"]

TextReader = Callable[[str], dict[str, Any]]


def free_text(field: str) -> TextReader:
    """The whole rest of the line is one argument (empty means not given)."""

    def read(text: str) -> dict[str, Any]:
        return {field: text} if text else {}

    return read


def one_word(field: str) -> TextReader:
    """At most one word, e.g. `/mode text`."""

    def read(text: str) -> dict[str, Any]:
        words = text.split()
        if len(words) > 1:
            raise ArgumentError(f"expected one word, got {len(words)}")
        return {field: words[0]} if words else {}

    return read


def no_args(text: str) -> dict[str, Any]:
    if text:
        raise ArgumentError("this command takes no arguments")
    return {}


def key_values(text: str) -> tuple[list[str], dict[str, str]]:
    """Shell-like words: bare words in order, and `key=value` pairs (quotes allowed)."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ArgumentError(f"could not read the arguments ({exc})") from None
    bare: list[str] = []
    pairs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            bare.append(word)
            continue
        if not key:
            raise ArgumentError(f"{word!r} needs a name before '='")
        if key in pairs:
            raise ArgumentError(f"{key} is given twice")
        pairs[key] = value
    return bare, pairs
