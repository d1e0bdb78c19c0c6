"""The one contract between tools and everything that reads their results.

Every tool answers LangChain's `content_and_artifact` pair: a sentence that may be spoken,
and an artifact — a JSON object of this one shape::

    {
      "ok": true,                       # false when the tool could not do its job
      "context": {"property_id": ...},  # facts the conversation learned (optional)
      "sources": [{"source": "...", "title": "...", "chunk": 0, "score": 0.8, ...}],
      ...                               # anything else the tool wants to report
    }

* `context` is applied by the graph's tool runner to the conversation context; its keys are
  `CONTEXT_KEYS`. Nothing else in an artifact is read for context: a tool that learns a
  fact says so here.
* `sources` lists the document passages the result is built from; the data channel sends
  them to the caller's app, and the fallback responder quotes them.

A tool's `metadata["role"]` (a `ToolRole`) says what it is for, so features that need "the
document search" or "the reservation lookup" find it without knowing its name, and a team's
own tools can take those places. `metadata["side_effecting"]` and `metadata["confirm"]`
(see workflows.tool_runner) are the other two documented metadata keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "CONTEXT_KEYS",
    "ROLE_KEY",
    "Source",
    "ToolRole",
    "artifact_context",
    "artifact_sources",
    "artifact_tool",
    "tool_role",
    "tools_with_role",
]

ROLE_KEY = "role"
# The conversation facts a tool may teach (workflows.state.ConversationContext's keys).
CONTEXT_KEYS: frozenset[str] = frozenset(
    {
        "property_id",
        "reservation_code",
        "guest_name",
        "language",
        "verified",
        "verified_reservation",
    }
)


class ToolRole(StrEnum):
    """What a tool is for; set as `metadata={"role": ToolRole.X}` on the tool."""

    DOCUMENT_SEARCH = "document_search"
    DOCUMENT_ANSWER = "document_answer"
    SIMILAR_DOCUMENTS = "similar_documents"
    EMBEDDING_ANALYSIS = "embedding_analysis"
    PROPERTY_FACTS = "property_facts"
    RESERVATION_LOOKUP = "reservation_lookup"
    AVAILABILITY = "availability"
    UPSELLS = "upsells"


class Source(BaseModel):
    """One document passage a tool result is built from."""

    model_config = ConfigDict(extra="ignore")

    source: str
    title: str = ""
    section: str = ""
    chunk: int | None = None
    score: float = 0.0
    preview: str = ""
    text: str = ""


def artifact_tool(
    coroutine: Callable[..., Awaitable[tuple[str, dict[str, Any]]]],
    *,
    args_schema: type[BaseModel],
    description: str,
    metadata: dict[str, Any] | None = None,
    handle_validation_error: Callable[[ValidationError], str] | bool = False,
) -> BaseTool:
    """A tool named after its coroutine, answering this contract's (sentence, artifact) pair."""
    return StructuredTool.from_function(
        coroutine=coroutine,
        name=coroutine.__name__,
        description=description,
        args_schema=args_schema,
        response_format="content_and_artifact",
        metadata=metadata or {},
        handle_validation_error=handle_validation_error,
    )


def tool_role(tool: BaseTool) -> str | None:
    role = (tool.metadata or {}).get(ROLE_KEY)
    return str(role) if role else None


def tools_with_role(tools: Iterable[BaseTool], role: ToolRole) -> list[BaseTool]:
    """The tools declaring `role`, in the order given."""
    return [tool for tool in tools if tool_role(tool) == role.value]


def artifact_context(artifact: Any) -> dict[str, Any]:
    """The context update an artifact declares (known keys, no Nones); {} otherwise."""
    if not isinstance(artifact, Mapping):
        return {}
    declared = artifact.get("context")
    if not isinstance(declared, Mapping):
        return {}
    return {k: v for k, v in declared.items() if k in CONTEXT_KEYS and v is not None}


def artifact_sources(artifact: Any) -> list[Source]:
    """The passages an artifact cites, in artifact order; unreadable entries are skipped."""
    if not isinstance(artifact, Mapping):
        return []
    items = artifact.get("sources")
    if not isinstance(items, list):
        return []
    found: list[Source] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        try:
            source = Source.model_validate(item)
        except ValidationError:
            continue
        if source.source:
            found.append(source)
    return found
