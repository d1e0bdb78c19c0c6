"""Make model or tool text fit for text-to-speech: no markdown symbols, compact sentences."""

from __future__ import annotations

import re

__all__ = ["first_sentences", "strip_markdown"]

_FENCE = re.compile(r"```[^\n]*\n?(.*?)```", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_BULLET = re.compile(r"^\s*[-*+•]\s+", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.MULTILINE)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.DOTALL)
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_INLINE_CODE = re.compile(r"`([^`]*)`")
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{2,}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def strip_markdown(text: str) -> str:
    """Remove markdown syntax but keep its words; plain text passes through unchanged."""
    if not any(ch in text for ch in "*_`#[]>|~-•"):
        return text
    out = _FENCE.sub(lambda m: m.group(1), text)
    out = _IMAGE.sub(r"\1", out)
    out = _LINK.sub(r"\1", out)
    out = _RULE.sub("", out)
    out = _TABLE_SEPARATOR.sub("", out)
    out = _HEADING.sub("", out)
    out = _QUOTE.sub("", out)
    out = _BULLET.sub("", out)
    out = _BOLD.sub(r"\2", out)
    out = _STRIKE.sub(r"\1", out)
    out = _ITALIC_STAR.sub(r"\1", out)
    out = _ITALIC_UNDERSCORE.sub(r"\1", out)
    out = _INLINE_CODE.sub(r"\1", out)
    out = "\n".join(_table_row(line) for line in out.split("\n"))
    out = _SPACES.sub(" ", out)
    out = _BLANK_LINES.sub("\n", out)
    return "\n".join(line.strip() for line in out.split("\n")).strip()


def _table_row(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("|") and stripped.endswith("|") and stripped.count("|") >= 2:
        cells = [cell.strip() for cell in stripped.strip("|").split("|")]
        return ", ".join(cell for cell in cells if cell)
    return line


def first_sentences(text: str, max_chars: int) -> str:
    """Whole sentences of `text` up to `max_chars`; a single over-long sentence is cut at a word."""
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    kept: list[str] = []
    length = 0
    for sentence in _SENTENCE_END.split(flat):
        extra = len(sentence) + (1 if kept else 0)
        if length + extra > max_chars:
            break
        kept.append(sentence)
        length += extra
    if kept:
        return " ".join(kept)
    cut = flat[:max_chars].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut}…"
