"""The assistant graph: a tool-calling chat model for voice, with memory and a fallback.

```
START ─┬─▶ summarize ─┬─▶ model ─┬─▶ tools ─▶ model …
       │              │          ├─▶ fallback ─▶ END   (the model failed)
       ├─▶ model      └─▶ fallback                     (no model configured)
       └─▶ fallback              └─▶ END
```

Only `model` and `fallback` produce text meant for the caller (`SPEAKING_NODES`); the
summarizer and tool results are never spoken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    RemoveMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from workflows.confirm import confirm
from workflows.fallback import FallbackResponder, FallbackWording
from workflows.fallback_wording import FALLBACK_WORDINGS
from workflows.history import repair_tool_pairs, split_for_summary
from workflows.prompts import DEFAULT_INSTRUCTIONS, build_system_prompt
from workflows.speech import strip_markdown
from workflows.state import AssistantState, ConversationContext, merge_context
from workflows.summarize import summarize_turns, thread_tokens
from workflows.tool_runner import (
    ToolRunner,
    confirmation_question,
    declined_message,
    is_side_effecting,
    spoken_name,
)

__all__ = [
    "SPEAKING_NODES",
    "AssistantConfig",
    "AssistantState",
    "ConversationContext",
    "build_assistant_graph",
    "build_graph",
]

logger = logging.getLogger(__name__)

SPEAKING_NODES: tuple[str, ...] = ("model", "fallback")

# A router returns the name of the next node (or END).
_Route = str


@dataclass(frozen=True, slots=True)
class AssistantConfig:
    """Tuning of the assistant graph; the defaults suit a phone conversation."""

    # Tool-node runs per caller turn; at the cap the model must answer without tools.
    max_tool_steps: int = 4
    max_tool_calls_per_step: int = 8
    tool_timeout_s: float = 20.0
    # Beyond this many (approximate) tokens of thread + summary, older turns are summarised.
    token_budget: int = 3000
    keep_last_messages: int = 8
    max_summary_chars: int = 1200
    summary_timeout_s: float = 15.0
    # Attempts per model call; a call that already streamed text is never retried.
    model_attempts: int = 2
    model_retry_backoff_s: float = 0.25
    model_timeout_s: float = 30.0
    fallback_on_model_error: bool = True
    default_instructions: str = DEFAULT_INSTRUCTIONS
    tool_cap_reply: str = (
        "Sorry, I couldn't finish looking that up. Could you ask me in a different way?"
    )
    # Keyed by base language code; the caller's `context["language"]` picks one.
    fallback_wordings: Mapping[str, FallbackWording] = field(
        default_factory=lambda: dict(FALLBACK_WORDINGS)
    )
    fallback_max_chars: int = 600
    fallback_fact_chars: int = 300

    def __post_init__(self) -> None:
        positive = {
            "max_tool_steps": self.max_tool_steps,
            "max_tool_calls_per_step": self.max_tool_calls_per_step,
            "tool_timeout_s": self.tool_timeout_s,
            "token_budget": self.token_budget,
            "keep_last_messages": self.keep_last_messages,
            "max_summary_chars": self.max_summary_chars,
            "summary_timeout_s": self.summary_timeout_s,
            "model_attempts": self.model_attempts,
            "model_timeout_s": self.model_timeout_s,
            "fallback_max_chars": self.fallback_max_chars,
            "fallback_fact_chars": self.fallback_fact_chars,
        }
        if bad := [name for name, value in positive.items() if value <= 0]:
            raise ValueError(f"AssistantConfig values must be positive: {', '.join(bad)}")
        if self.model_retry_backoff_s < 0:
            raise ValueError("AssistantConfig.model_retry_backoff_s must not be negative")


class _SpokeWatcher(BaseCallbackHandler):
    """Notes whether a model call has streamed any text (which may already be playing)."""

    run_inline = True

    def __init__(self) -> None:
        self.spoke = False

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        if token:
            self.spoke = True


class _Nodes:
    """The graph's nodes and routers, sharing the model, the tools and the config."""

    def __init__(
        self, model: BaseChatModel | None, tools: Sequence[BaseTool], cfg: AssistantConfig
    ) -> None:
        self.cfg = cfg
        self.model = model
        self.runner = ToolRunner(tools, timeout_s=cfg.tool_timeout_s)
        self.bound: Runnable[Any, BaseMessage] | None = None
        if model is not None and tools:
            try:
                self.bound = model.bind_tools(list(tools))
            except NotImplementedError as exc:
                raise ValueError(
                    f"chat model {type(model).__name__} does not support tool calling"
                ) from exc
        self.responder = FallbackResponder(
            self.runner,
            cfg.fallback_wordings,
            max_chars=cfg.fallback_max_chars,
            fact_chars=cfg.fallback_fact_chars,
        )

    # Routers

    def _answerer(self) -> _Route:
        return "model" if self.model is not None else "fallback"

    def route_start(self, state: AssistantState) -> _Route:
        messages = state.get("messages", [])
        if thread_tokens(messages, state.get("summary", "")) > self.cfg.token_budget:
            older, _ = split_for_summary(messages, self.cfg.keep_last_messages)
            if older:
                return "summarize"
        return self._answerer()

    def route_after_summary(self, state: AssistantState) -> _Route:
        return self._answerer()

    def route_after_model(self, state: AssistantState) -> _Route:
        messages = state.get("messages", [])
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage):
            return "fallback"  # the model node wrote nothing: the model failed
        if last.tool_calls or last.invalid_tool_calls:
            return "tools"
        return END

    # Nodes

    async def summarize(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        older, _ = split_for_summary(state.get("messages", []), self.cfg.keep_last_messages)
        if not older:
            return {}
        summary = await summarize_turns(
            model=self.model,
            previous=state.get("summary", ""),
            older=older,
            max_chars=self.cfg.max_summary_chars,
            timeout_s=self.cfg.summary_timeout_s,
            config=config,
        )
        removals = [RemoveMessage(id=m.id) for m in older if m.id]
        return {"summary": summary, "messages": removals}

    async def call_model(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        assert self.model is not None
        messages = state.get("messages", [])
        mid_turn = bool(messages) and isinstance(messages[-1], ToolMessage)
        steps = state.get("tool_steps", 0) if mid_turn else 0
        use_tools = self.bound is not None and steps < self.cfg.max_tool_steps
        system = build_system_prompt(
            instructions=state.get("instructions") or self.cfg.default_instructions,
            context=state.get("context"),
            summary=state.get("summary", ""),
            tools_exhausted=self.bound is not None and not use_tools,
        )
        runnable: Runnable[Any, BaseMessage] = (
            self.bound if use_tools and self.bound is not None else self.model
        )
        prompt: list[AnyMessage] = [SystemMessage(system), *repair_tool_pairs(messages)]
        try:
            reply = await self._invoke(runnable, prompt, config)
        except Exception:
            if not self.cfg.fallback_on_model_error:
                raise
            logger.exception("chat model failed; the fallback responder answers this turn")
            return {"tool_steps": steps}
        return {"messages": [self._for_speech(reply, use_tools)], "tool_steps": steps}

    async def _invoke(
        self, runnable: Runnable[Any, BaseMessage], prompt: list[AnyMessage], config: RunnableConfig
    ) -> BaseMessage:
        watcher = _SpokeWatcher()
        watched = merge_configs(config, {"callbacks": [watcher]})
        for attempt in range(1, self.cfg.model_attempts + 1):
            try:
                async with asyncio.timeout(self.cfg.model_timeout_s):
                    return await runnable.ainvoke(prompt, watched)
            except Exception:
                if watcher.spoke or attempt >= self.cfg.model_attempts:
                    raise
                logger.warning("chat model call failed (attempt %d), retrying", attempt)
                await asyncio.sleep(self.cfg.model_retry_backoff_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _for_speech(self, reply: BaseMessage, tools_allowed: bool) -> AIMessage:
        """The reply as stored: plain text, and no tool calls once the cap is reached."""
        if not isinstance(reply, AIMessage):
            reply = AIMessage(content=reply.content, id=reply.id)
        if not tools_allowed and (reply.tool_calls or reply.invalid_tool_calls):
            text = strip_markdown(reply.text).strip()
            if text:
                return AIMessage(
                    content=text,
                    id=reply.id,
                    usage_metadata=reply.usage_metadata,
                    response_metadata=reply.response_metadata,
                )
            # A fresh id makes LangGraph emit the substitute, so it is spoken too.
            return AIMessage(content=self.cfg.tool_cap_reply)
        if isinstance(reply.content, str):
            cleaned = strip_markdown(reply.content)
            if cleaned != reply.content:
                return reply.model_copy(update={"content": cleaned})
        return reply

    async def run_tools(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        messages = state.get("messages", [])
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage):
            return {}
        limit = self.cfg.max_tool_calls_per_step
        calls: list[ToolCall] = list(last.tool_calls)
        results: list[ToolMessage | None] = [None] * len(calls)
        approved: list[int] = []
        for index, call in enumerate(calls):
            tool = self.runner.get(call["name"])
            if index >= limit:
                results[index] = ToolMessage(
                    content=f"Skipped: at most {limit} tool calls run at once; ask again.",
                    tool_call_id=call["id"] or "",
                    name=call["name"],
                    status="error",
                )
            elif tool is not None and is_side_effecting(tool):
                # Confirm before anything runs: a resumed node re-executes from its start.
                if confirm(confirmation_question(tool, call["args"])):
                    approved.append(index)
                else:
                    results[index] = declined_message(call)
            else:
                approved.append(index)
        outcomes = await self.runner.run_many([calls[i] for i in approved], config)
        learned: ConversationContext = {}
        for index, outcome in zip(approved, outcomes, strict=True):
            results[index] = outcome.message
            learned = merge_context(learned, outcome.context)
        invalid = [
            ToolMessage(
                content=(
                    f"The request to {spoken_name(bad.get('name') or 'a tool')} was malformed "
                    f"and did not run: {bad.get('error') or 'unreadable arguments'}."
                ),
                tool_call_id=bad["id"] or "",
                name=bad.get("name") or "unknown",
                status="error",
            )
            for bad in last.invalid_tool_calls
            if bad.get("id")
        ]
        update: dict[str, Any] = {
            "messages": [m for m in results if m is not None] + invalid,
            "tool_steps": state.get("tool_steps", 0) + 1,
        }
        if learned:
            update["context"] = learned
        return update

    async def answer_without_model(
        self, state: AssistantState, config: RunnableConfig
    ) -> dict[str, Any]:
        reply = await self.responder.answer(
            state.get("messages", []), state.get("context") or {}, config
        )
        update: dict[str, Any] = {"messages": [reply.message()]}
        if reply.context:
            update["context"] = reply.context
        return update


def build_assistant_graph(
    *,
    model: BaseChatModel | None,
    tools: Sequence[BaseTool],
    checkpointer: BaseCheckpointSaver[Any] | None,
    config: AssistantConfig | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the assistant graph.

    `model=None` gives the deterministic fallback responder only. Side-effecting tools
    ask for confirmation with `interrupt()`, which needs a checkpointer on this graph or
    on the parent graph it runs in.
    """
    nodes = _Nodes(model, tools, config or AssistantConfig())
    answerers: list[str] = ["model", "fallback"] if model is not None else ["fallback"]

    builder = StateGraph(AssistantState)
    builder.add_node("summarize", nodes.summarize)
    builder.add_node("fallback", nodes.answer_without_model)
    builder.add_conditional_edges(START, nodes.route_start, ["summarize", *answerers])
    builder.add_conditional_edges("summarize", nodes.route_after_summary, answerers)
    builder.add_edge("fallback", END)
    if model is not None:
        builder.add_node("model", nodes.call_model)
        builder.add_node("tools", nodes.run_tools)
        builder.add_conditional_edges("model", nodes.route_after_model, ["tools", "fallback", END])
        builder.add_edge("tools", "model")
    return builder.compile(checkpointer=checkpointer, name="assistant")


def build_graph(
    model: BaseChatModel | None,
    tools: Sequence[BaseTool],
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The brain's seam (`AGENT_GRAPH`): the worker and `langgraph_app` build their graph here.

    A team's own graph is a function with this signature (see docs/assistant-graph.md).
    """
    return build_assistant_graph(model=model, tools=tools, checkpointer=checkpointer)
