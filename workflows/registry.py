"""Named workflows that can be run on request (e.g. `/workflow document_qa question=...`).

A `Workflow` is a compiled graph plus how to turn `key=value` parameters (and what the
conversation already knows) into its input, and how to read its final state. The
`WorkflowRegistry` runs one, reports progress after every node, and pauses when the graph
asks a question with `interrupt()`; the next run with `resume=` answers it.

Workflows that pause need a checkpointer: `build_workflow_registry` gives each graph its own
in-memory one, so a paused run never touches the conversation's checkpointed thread even
though it runs under the conversation's thread id (which tools use as the conversation key).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel.protocol import PregelProtocol
from langgraph.types import Command

from tools.documents import DocumentStore
from tools.pms import PMS, GuestDesk
from workflows.confirm import interrupt_question

__all__ = [
    "ProgressCallback",
    "Workflow",
    "WorkflowError",
    "WorkflowFailed",
    "WorkflowOutcome",
    "WorkflowParam",
    "WorkflowProgress",
    "WorkflowRegistry",
    "build_workflow_registry",
    "document_qa_workflow",
    "gap_nights_workflow",
    "upsell_workflow",
]

logger = logging.getLogger(__name__)

ProgressStatus = Literal["started", "step", "waiting", "finished", "failed"]


@dataclass(frozen=True)
class WorkflowProgress:
    run_id: str
    workflow: str
    status: ProgressStatus
    step: str | None = None
    message: str | None = None


ProgressCallback = Callable[[WorkflowProgress], None]


@dataclass(frozen=True)
class WorkflowParam:
    name: str
    description: str
    required: bool = False


@dataclass(frozen=True)
class WorkflowOutcome:
    run_id: str
    workflow: str
    status: Literal["finished", "waiting"]
    text: str
    """A short sentence for a person: the result, or the question the workflow asks."""
    data: dict[str, Any] = field(default_factory=dict)


class WorkflowError(ValueError):
    """The request cannot start (unknown parameter, missing value, nothing to resume)."""


class WorkflowFailed(RuntimeError):
    """The workflow started and failed."""


@dataclass(frozen=True)
class Workflow:
    name: str
    description: str
    graph: PregelProtocol[Any, Any, Any, Any]
    make_input: Callable[[Mapping[str, str], Mapping[str, Any]], dict[str, Any]]
    """(parameters, conversation context) → graph input."""
    read_result: Callable[[Mapping[str, Any]], tuple[str, dict[str, Any]]]
    """Final graph state → (sentence, JSON-able data)."""
    params: tuple[WorkflowParam, ...] = ()
    side_effecting: bool = False
    """It records something (a request, a booking): only staff may start it on request."""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "side_effecting": self.side_effecting,
            "params": [
                {"name": p.name, "description": p.description, "required": p.required}
                for p in self.params
            ],
        }

    def check_params(self, params: Mapping[str, str]) -> None:
        allowed = {p.name for p in self.params}
        unknown = sorted(set(params) - allowed)
        if unknown:
            names = ", ".join(sorted(allowed)) or "none"
            raise WorkflowError(
                f"{self.name} has no parameter {', '.join(unknown)}; its parameters: {names}"
            )
        missing = [p.name for p in self.params if p.required and not str(params.get(p.name, ""))]
        if missing:
            raise WorkflowError(f"{self.name} needs {', '.join(missing)}")


def _checkpointer(graph: PregelProtocol[Any, Any, Any, Any]) -> BaseCheckpointSaver[Any] | None:
    saver = getattr(graph, "checkpointer", None)
    return saver if isinstance(saver, BaseCheckpointSaver) else None


class WorkflowRegistry:
    """The workflows of one worker, by name, and the runner that reports their progress."""

    def __init__(self, workflows: Iterable[Workflow] = ()) -> None:
        self._workflows: dict[str, Workflow] = {}
        for workflow in workflows:
            if workflow.name in self._workflows:
                raise ValueError(f"workflow {workflow.name!r} is registered twice")
            self._workflows[workflow.name] = workflow

    def get(self, name: str) -> Workflow | None:
        return self._workflows.get(name)

    def all(self) -> list[Workflow]:
        return list(self._workflows.values())

    def names(self) -> list[str]:
        return list(self._workflows)

    async def waiting(self, name: str, *, thread_id: str) -> str | None:
        """The question a paused run of `name` on this thread is waiting on, if any."""
        workflow = self._workflows.get(name)
        if workflow is None or _checkpointer(workflow.graph) is None:
            return None
        snapshot = await workflow.graph.aget_state(_config(thread_id))
        if not snapshot.interrupts:
            return None
        return interrupt_question(snapshot.interrupts[0].value)

    async def run(
        self,
        name: str,
        params: Mapping[str, str],
        *,
        thread_id: str,
        context: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
        resume: str | None = None,
    ) -> WorkflowOutcome:
        """Run `name` to its end or its next question. Raises WorkflowError before starting,
        WorkflowFailed when the run itself fails."""
        workflow = self._workflows.get(name)
        if workflow is None:
            raise WorkflowError(f"unknown workflow {name!r}")
        config = _config(thread_id)
        saver = _checkpointer(workflow.graph)
        graph_input: dict[str, Any] | Command[Any]
        if resume is not None:
            if await self.waiting(name, thread_id=thread_id) is None:
                raise WorkflowError(f"{name} is not waiting for an answer")
            graph_input = Command(resume=resume)
        else:
            workflow.check_params(params)
            graph_input = workflow.make_input(params, context or {})
            if saver is not None:
                await saver.adelete_thread(thread_id)
        run_id = uuid.uuid4().hex[:12]

        def report(
            status: ProgressStatus, step: str | None = None, message: str | None = None
        ) -> None:
            if on_progress is not None:
                on_progress(WorkflowProgress(run_id, name, status, step, message))

        report("started")
        values: Mapping[str, Any] = {}
        questions: list[str] = []
        try:
            stream = workflow.graph.astream(graph_input, config, stream_mode=["updates", "values"])
            async for mode, chunk in stream:
                if mode == "values" and isinstance(chunk, Mapping):
                    values = chunk
                elif mode == "updates" and isinstance(chunk, Mapping):
                    for node, update in chunk.items():
                        if node == "__interrupt__":
                            questions.extend(interrupt_question(i.value) for i in update)
                        else:
                            report("step", step=str(node))
        except Exception as exc:
            logger.warning("workflow %s failed: %s", name, exc, exc_info=True)
            report("failed", message=f"{type(exc).__name__}: {exc}"[:200])
            raise WorkflowFailed(f"{name} failed: {type(exc).__name__}") from exc
        if questions:
            question = " ".join(dict.fromkeys(questions))
            report("waiting", message=question)
            return WorkflowOutcome(run_id, name, "waiting", question, {"question": question})
        text, data = workflow.read_result(values)
        report("finished")
        return WorkflowOutcome(run_id, name, "finished", text, data)


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def document_qa_workflow(store: DocumentStore, *, model: BaseChatModel | None) -> Workflow:
    """`document_qa`: a grounded answer from the documents, with sources and confidence."""
    from workflows.document_qa import build_document_qa_graph

    def make_input(params: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "question": params["question"],
            "property_id": params.get("property_id") or context.get("property_id"),
        }

    def read_result(values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        answer = str(values.get("answer") or "")
        return answer, {
            "answer": answer,
            "sources": list(values.get("sources") or []),
            "confidence": values.get("confidence", 0.0),
            "confidence_label": values.get("confidence_label", "none"),
        }

    return Workflow(
        name="document_qa",
        description="Answer a question from the documents, with sources and a confidence.",
        graph=build_document_qa_graph(store, model=model),
        make_input=make_input,
        read_result=read_result,
        params=(
            WorkflowParam("question", "the question to answer", required=True),
            WorkflowParam("property_id", "limit to one property (default: the caller's)"),
        ),
    )


_OFFER_PARAMS = (
    WorkflowParam("code", "the booking's confirmation code (default: the caller's)"),
    WorkflowParam("last_name", "the last name on the booking (default: the caller's)"),
)


def _offer_input(params: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, Any]:
    facts = {
        "property_id": context.get("property_id"),
        "reservation_code": params.get("code") or context.get("reservation_code"),
        "guest_name": params.get("last_name") or context.get("guest_name"),
    }
    return {"context": {key: value for key, value in facts.items() if value}}


def _offer_result(values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    said = [
        str(m.content) for m in values.get("messages", ()) if isinstance(m, AIMessage) and m.content
    ]
    status = str(values.get("status") or "finished")
    text = said[-1] if said else f"The workflow ended ({status})."
    return text, {"status": status, "offer": values.get("chosen"), "said": said}


def _offer_workflow(
    name: str, description: str, graph: PregelProtocol[Any, Any, Any, Any]
) -> Workflow:
    """A verify → offer → confirm → book flow as a command; it books, so it is side-effecting."""
    return Workflow(
        name=name,
        description=description,
        graph=graph,
        make_input=_offer_input,
        read_result=_offer_result,
        params=_OFFER_PARAMS,
        side_effecting=True,
    )


def upsell_workflow(pms: PMS, desk: GuestDesk) -> Workflow:
    """`upsell`: verify the caller's stay, offer extras, confirm, book (records a request)."""
    from workflows.upsell import build_upsell_graph

    return _offer_workflow(
        "upsell",
        "Offer early check-in, late checkout and extras for the caller's stay.",
        build_upsell_graph(pms, desk=desk, checkpointer=InMemorySaver()),
    )


def gap_nights_workflow(pms: PMS, desk: GuestDesk) -> Workflow:
    """`gap_nights`: offer the discounted free nights next to the caller's stay."""
    from workflows.gap_nights import build_gap_nights_graph

    return _offer_workflow(
        "gap_nights",
        "Offer the discounted free nights next to the caller's stay.",
        build_gap_nights_graph(pms, desk=desk, checkpointer=InMemorySaver()),
    )


def build_workflow_registry(
    *,
    store: DocumentStore | None = None,
    model: BaseChatModel | None = None,
    pms: PMS | None = None,
    desk: GuestDesk | None = None,
    extra: Iterable[Workflow] = (),
) -> WorkflowRegistry:
    """The workflows whose dependencies are given, plus `extra` ones.

    Pass the brain's `desk` so a caller verified in the conversation is verified here too.
    """
    workflows: list[Workflow] = []
    if store is not None:
        workflows.append(document_qa_workflow(store, model=model))
    if pms is not None:
        desk = desk or GuestDesk(pms)
        workflows.extend([upsell_workflow(pms, desk), gap_nights_workflow(pms, desk)])
    workflows.extend(extra)
    return WorkflowRegistry(workflows)
