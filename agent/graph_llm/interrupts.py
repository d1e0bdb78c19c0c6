"""What GraphLLM says for a pending LangGraph interrupt, and what it resumes it with.

Understands plain `interrupt("question?")` / `interrupt({"question": ...})` values and
LangChain v1 `HumanInTheLoopMiddleware` requests (batched `HITLRequest` and per-call
`tool_approval`): a spoken yes/no becomes an approve/reject decision in the middleware's
format, anything else is asked again; a `{"type": "confirm"}` interrupt (workflows.confirm)
is resumed with True/False. The words themselves are `workflows.confirm.spoken_yes_no`, the
project's single yes/no vocabulary; lifting this package alone means copying that function.
"""

from __future__ import annotations

from typing import Any

# the project's one yes/no vocabulary (see the module docstring for why it is imported)
from workflows.confirm import spoken_yes_no

__all__ = ["UNCLEAR", "interrupt_question", "resume_value", "spoken_yes_no"]

_DEFAULT_QUESTION = "Could you confirm that for me?"
_HITL_DEFAULT_PREFIX = "Tool execution requires approval"
UNCLEAR: Any = object()
"""`resume_value` result for an answer the interrupt cannot take (ask again)."""


def _is_hitl_request(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("action_requests"), list)


def _is_confirm(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "confirm"


def _is_tool_approval(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "tool_approval"


def _action_phrase(action: Any) -> str:
    if not isinstance(action, dict):
        return "that"
    description = action.get("description")
    if (
        isinstance(description, str)
        and description.strip()
        and not description.startswith(_HITL_DEFAULT_PREFIX)
    ):
        return description.strip().rstrip("?.")
    return str(action.get("name") or "that").replace("_", " ")


def interrupt_question(value: Any) -> str:
    """The sentence to speak for an interrupt value."""
    if _is_tool_approval(value):
        return f"Shall I go ahead with {_action_phrase(value)}?"
    if _is_hitl_request(value):
        phrases = [_action_phrase(a) for a in value["action_requests"]]
        return f"Shall I go ahead with {' and '.join(dict.fromkeys(phrases)) or 'that'}?"
    if isinstance(value, dict):
        for key in ("question", "message", "text"):
            if isinstance(value.get(key), str) and value[key].strip():
                return str(value[key])
    if isinstance(value, str) and value.strip():
        return value
    return _DEFAULT_QUESTION


def _decision(answer: str, approved: bool) -> dict[str, Any]:
    if approved:
        return {"type": "approve"}
    return {"type": "reject", "message": f"The caller declined: {answer}"}


def resume_value(value: Any, answer: str, response_schema: Any = None) -> Any:
    """What to resume an interrupt with, given the caller's words; `UNCLEAR` to ask again."""
    if _is_confirm(value):
        # a confirmation that is not a clear yes is a no, as workflows.confirm has always read it
        return spoken_yes_no(answer) is True
    if _is_tool_approval(value) or _is_hitl_request(value) or _wants_boolean(response_schema):
        approved = spoken_yes_no(answer)
        if approved is None:
            return UNCLEAR
        if _is_tool_approval(value):
            return _decision(answer, approved)
        if _is_hitl_request(value):
            return {"decisions": [_decision(answer, approved) for _ in value["action_requests"]]}
        return approved
    return answer


def _wants_boolean(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "boolean"
