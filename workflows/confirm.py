"""Ask the caller to confirm a side-effecting action, through LangGraph `interrupt()`.

The interrupt value is `{"type": "confirm", "question": ...}`; GraphLLM speaks the question
and resumes the run with the caller's next utterance, which `is_affirmative` interprets.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from langgraph.types import interrupt

_YES = {
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "please",
    "correct",
    "confirm",
    "confirmed",
    "absolutely",
    "definitely",
    "certainly",
    "go",
    "ahead",
    "do",
    "right",
    "si",
    "oui",
    "ja",
    "sim",
    "claro",
    "vale",
    "d'accord",
    "genau",
    "bitte",
}
_NO = {
    "no",
    "nope",
    "nah",
    "don't",
    "dont",
    "not",
    "cancel",
    "stop",
    "never",
    "wait",
    "non",
    "nein",
    "nicht",
    "nao",
    "não",
}


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return re.findall(r"[a-z']+", folded)


def is_affirmative(answer: Any) -> bool:
    """True only for a clear yes; anything negative, mixed or unclear counts as no."""
    if isinstance(answer, bool):
        return answer
    if isinstance(answer, dict):
        answer = answer.get("answer", answer.get("text", ""))
    words = _words(str(answer))
    if not words:
        return False
    saw_yes = any(w in _YES for w in words)
    saw_no = any(w in _NO for w in words)
    return saw_yes and not saw_no


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
