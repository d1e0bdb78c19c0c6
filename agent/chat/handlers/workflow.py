"""`/workflow [name] [key=value ...]`: list the workflows, or run one with progress events.

A workflow that asks a question (e.g. "Shall I request late checkout?") pauses; the same
sender answers with `/workflow <name> answer=<text>`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.chat.pipeline import (
    Access,
    ArgumentError,
    CommandContext,
    CommandError,
    CommandResult,
    CommandSpec,
    key_values,
)
from agent.chat.protocol import ErrorCode, EventType, Wire, WorkflowProgressData
from workflows.registry import (
    Workflow,
    WorkflowError,
    WorkflowFailed,
    WorkflowProgress,
    WorkflowRegistry,
)

__all__ = ["WorkflowReply", "command"]

ParamValue = str | int | float | bool


class WorkflowArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=64)
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=20)
    answer: str | None = Field(default=None, min_length=1, max_length=500)


class WorkflowParamInfo(Wire):
    name: str
    description: str
    required: bool


class WorkflowInfo(Wire):
    name: str
    description: str
    side_effecting: bool
    params: list[WorkflowParamInfo]


class WorkflowList(Wire):
    workflows: list[WorkflowInfo]


class WorkflowRun(Wire):
    run_id: str
    workflow: str
    status: Literal["finished", "waiting"]
    text: str
    result: dict[str, Any]


WorkflowReply = WorkflowList | WorkflowRun


def _from_text(text: str) -> dict[str, Any]:
    bare, pairs = key_values(text)
    if len(bare) > 1:
        raise ArgumentError(
            f"expected one workflow name and key=value parameters, got {len(bare)} words "
            '(quote values with spaces: question="where can I park")'
        )
    args: dict[str, Any] = {}
    if bare:
        args["name"] = bare[0]
    if "answer" in pairs:
        args["answer"] = pairs.pop("answer")
    if pairs:
        args["params"] = pairs
    return args


def _param_text(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _may_run(ctx: CommandContext, workflow: Workflow) -> bool:
    return ctx.sender.is_staff or not workflow.side_effecting


def _listing(ctx: CommandContext, registry: WorkflowRegistry) -> CommandResult:
    usable = [w for w in registry.all() if _may_run(ctx, w)]
    if not usable:
        return CommandResult(WorkflowList(workflows=[]), "No workflows are available.")
    lines = ["Workflows (run with /workflow <name> key=value ...):"]
    for workflow in usable:
        params = " ".join(f"{p.name}=…" if p.required else f"[{p.name}=…]" for p in workflow.params)
        lines.append(f"{workflow.name} {params}".rstrip() + f" — {workflow.description}")
    listing = WorkflowList.model_validate({"workflows": [w.describe() for w in usable]})
    return CommandResult(listing, "\n".join(lines))


async def _workflow(ctx: CommandContext, args: WorkflowArgs) -> CommandResult:
    registry = ctx.services.workflows
    if registry is None or not registry.names():
        raise CommandError(ErrorCode.UNAVAILABLE, "no workflows are configured")
    if args.name is None:
        if args.params or args.answer is not None:
            raise ArgumentError("name the workflow to run")
        return _listing(ctx, registry)
    workflow = registry.get(args.name)
    if workflow is None:
        names = ", ".join(w.name for w in registry.all() if _may_run(ctx, w))
        raise ArgumentError(f"unknown workflow {args.name[:64]!r}; available: {names}")
    if not _may_run(ctx, workflow):
        raise CommandError(
            ErrorCode.FORBIDDEN, f"{workflow.name} records changes, so it is for staff only"
        )
    running = ctx.services.workflow_running
    if running.locked():
        raise CommandError(ErrorCode.BUSY, "a workflow is already running; try again soon")

    def progress(event: WorkflowProgress) -> None:
        ctx.services.events.emit(
            EventType.WORKFLOW_PROGRESS,
            WorkflowProgressData(
                run_id=event.run_id,
                workflow=event.workflow,
                status=event.status,
                step=event.step,
                message=event.message,
                request_id=ctx.request_id,
            ),
        )

    async with running:
        try:
            outcome = await registry.run(
                workflow.name,
                {key: _param_text(value) for key, value in args.params.items()},
                thread_id=ctx.services.conversation.thread_id,
                context=await ctx.services.conversation.facts(),
                on_progress=progress,
                resume=args.answer,
            )
        except WorkflowError as exc:
            raise ArgumentError(str(exc)) from None
        except WorkflowFailed as exc:
            raise CommandError(ErrorCode.COMMAND_FAILED, str(exc)) from None
    text = outcome.text
    if outcome.status == "waiting":
        text += f"\nAnswer with /workflow {workflow.name} answer=<your answer>"
    run = WorkflowRun(
        run_id=outcome.run_id,
        workflow=outcome.workflow,
        status=outcome.status,
        text=outcome.text,
        result=outcome.data,
    )
    return CommandResult(run, text)


command = CommandSpec(
    name="workflow",
    summary="list the workflows, or run one and get its progress and result",
    usage="/workflow [name] [key=value ...]",
    access=Access.CALLER,
    args_model=WorkflowArgs,
    reply_model=WorkflowReply,
    handler=_workflow,
    from_text=_from_text,
)
