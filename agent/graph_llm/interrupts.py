"""What GraphLLM says for a pending LangGraph interrupt.

Kept here rather than imported from `workflows` so the package can be lifted alone.
"""

from __future__ import annotations

from typing import Any

__all__ = ["interrupt_question"]

_DEFAULT_QUESTION = "Could you confirm that for me?"


def interrupt_question(value: Any) -> str:
    """The sentence to speak for an interrupt value (a dict with a question, or a string)."""
    if isinstance(value, dict):
        for key in ("question", "message", "text"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key])
    if isinstance(value, str) and value.strip():
        return value
    return _DEFAULT_QUESTION
