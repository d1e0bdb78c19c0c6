"""Ask the caller to confirm a side-effecting action, through LangGraph `interrupt()`.

The interrupt value is `{"type": "confirm", "question": ...}`; GraphLLM speaks the question
and resumes the run with the caller's yes/no as a boolean (read with `spoken_yes_no`, the one
vocabulary, kept here); a plain-text resume (LangGraph Studio) is read the same way.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from langgraph.types import interrupt

# The project's one yes/no vocabulary: GraphLLM (agent/graph_llm/speech.py) uses it to turn
# a spoken answer into a decision, and `is_affirmative` reads plain-text resumes (e.g. Studio).
_YES_WORDS = frozenset(
    {
        "yes", "yeah", "yep", "yup", "sure", "ok", "okay", "please", "correct", "confirm",
        "confirmed", "absolutely", "definitely", "certainly", "right", "affirmative", "approve",
        "approved", "si", "oui", "ja", "sim", "claro", "vale", "d'accord", "genau", "bitte",
    }
)  # fmt: skip
_YES_PHRASES = ("go ahead", "do it", "please do", "of course")
_NO_WORDS = frozenset(
    {
        "no", "nope", "nah", "don't", "dont", "not", "cancel", "stop", "never", "wait",
        "reject", "rejected", "decline", "declined", "negative", "non", "nein", "nicht", "nao",
    }
)  # fmt: skip
_NO_PHRASES = ("do not", "never mind", "forget it", "forget that", "not now")


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold().replace("\u2019", "'"))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.findall(r"[a-z']+", folded)


def _said(words: list[str], vocabulary: frozenset[str], phrases: tuple[str, ...]) -> bool:
    joined = f" {' '.join(words)} "
    return any(w in vocabulary for w in words) or any(f" {p} " in joined for p in phrases)


def spoken_yes_no(text: str) -> bool | None:
    """True for a spoken yes, False for a no, None when it is neither or both."""
    words = _words(text)
    yes, no = _said(words, _YES_WORDS, _YES_PHRASES), _said(words, _NO_WORDS, _NO_PHRASES)
    return None if yes == no else yes


def is_affirmative(answer: Any) -> bool:
    """True only for a clear yes; anything negative, mixed or unclear counts as no.

    Takes what GraphLLM resumes with (True/False, or a `{"type": "approve"|"reject"}`
    decision) as well as the plain words of a caller or a Studio user.
    """
    if isinstance(answer, bool):
        return answer
    if isinstance(answer, dict):
        if answer.get("type") in ("approve", "reject"):
            return answer["type"] == "approve"
        answer = answer.get("answer", answer.get("text", ""))
    return spoken_yes_no(str(answer)) is True


def confirm(question: str) -> bool:
    """Pause the graph run until the caller answers `question`; True when they said yes."""
    answer = interrupt({"type": "confirm", "question": question})
    return is_affirmative(answer)


def interrupt_question(value: Any) -> str:
    """The sentence to speak for an interrupt value (a confirm dict, or any other value)."""
    if isinstance(value, dict):
        for key in ("question", "message", "text"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key])
    if isinstance(value, str) and value.strip():
        return value
    return "Could you confirm that for me?"
