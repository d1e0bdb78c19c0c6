"""Scripted LangChain chat models and LangGraph graphs for GraphLLM tests and benchmarks.

`ScriptedChatModel` streams its replies word by word like a real provider: text chunks,
tool-call argument chunks, and `usage_metadata` on the last chunk. `build_router_graph`
is the graph the issue describes: a router LLM node, a tool-calling model node and a
LangGraph `ToolNode`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Annotated, Any, TypedDict, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    SystemMessage,
    ToolCallChunk,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt
from pydantic import Field

Reply = AIMessage | str | Exception | Callable[[list[BaseMessage]], "AIMessage | str"]

ROUTER_SECRET = "ROUTE-TO-CONCIERGE"
TOOL_SECRET = "TOOL-RESULT-7781"


def usage(prompt: int, completion: int) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
    )


def tool_call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


class ScriptedChatModel(BaseChatModel):
    """Replies from a script, streamed in word-sized chunks; raises scripted exceptions.

    A reply is an AIMessage (content, tool_calls, usage_metadata), a plain string, an
    exception to raise, or a callable receiving the prompt. When the script runs out the
    `default` reply is used. Every prompt is recorded in `prompts`.
    """

    script: list[Any] = Field(default_factory=list)
    default: Any = "OK."
    model_name: str = "scripted-voice-1"
    token_delay: float = 0.0
    first_token_delay: float = 0.0
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[Any] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "scripted"
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        self.bound_tools = list(tools)
        return self

    def _next_reply(self, messages: list[BaseMessage]) -> AIMessage:
        self.prompts.append(list(messages))
        reply = self.script.pop(0) if self.script else self.default
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, AIMessage):
            reply = reply(messages)
        if isinstance(reply, str):
            reply = AIMessage(content=reply, usage_metadata=usage(len(messages) * 10, 5))
        return reply.model_copy(deep=True)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next_reply(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in _chunks(self._next_reply(messages)):
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = self._next_reply(messages)
        if self.first_token_delay:
            await asyncio.sleep(self.first_token_delay)
        for chunk in _chunks(reply):
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def _chunks(reply: AIMessage) -> list[ChatGenerationChunk]:
    words = [w for w in re.split(r"(\s+)", str(reply.content)) if w]
    chunks = [AIMessageChunk(content=w, id=reply.id) for w in words]
    for index, call in enumerate(reply.tool_calls):
        args = json.dumps(call["args"])
        half = len(args) // 2
        chunks.append(
            AIMessageChunk(
                content="",
                id=reply.id,
                tool_call_chunks=[
                    ToolCallChunk(name=call["name"], args=args[:half], id=call["id"], index=index)
                ],
            )
        )
        chunks.append(
            AIMessageChunk(
                content="",
                id=reply.id,
                tool_call_chunks=[ToolCallChunk(name=None, args=args[half:], id=None, index=index)],
            )
        )
    if not chunks:
        chunks.append(AIMessageChunk(content="", id=reply.id))
    chunks[-1].usage_metadata = reply.usage_metadata
    chunks[-1].chunk_position = "last"
    return [ChatGenerationChunk(message=c) for c in chunks]


class RouterState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    route: str
    instructions: str
    context: dict[str, Any]


def room_rate_tool(*, delay: float = 0.0, fail: bool = False) -> BaseTool:
    @tool
    async def room_rate(room_type: str) -> str:
        """Look up tonight's rate for a room type."""
        if delay:
            await asyncio.sleep(delay)
        if fail:
            raise RuntimeError("rate service unavailable")
        return f"{TOOL_SECRET}: the {room_type} room is 180 euros tonight."

    return room_rate


def build_router_graph(
    *,
    router: BaseChatModel,
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    checkpointer: BaseCheckpointSaver[Any] | None,
    confirm_before_tools: bool = False,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """START → router (LLM, not spoken) → model (tool-calling, spoken) ⇄ tools → END."""
    bound = model.bind_tools(tools)

    async def route(state: RouterState) -> dict[str, Any]:
        decision = await router.ainvoke(
            [SystemMessage("Classify the request."), *state["messages"][-1:]]
        )
        return {"route": str(decision.content)}

    async def respond(state: RouterState) -> dict[str, Any]:
        system = SystemMessage(state.get("instructions") or "You are a hotel concierge.")
        reply = await bound.ainvoke([system, *state["messages"]])
        return {"messages": [reply]}

    async def confirm_tools(state: RouterState) -> Command[str]:
        last = state["messages"][-1]
        calls = last.tool_calls if isinstance(last, AIMessage) else []
        names = ", ".join(call["name"] for call in calls)
        answer = interrupt({"type": "confirm", "question": f"Shall I run {names} for you?"})
        # GraphLLM resumes a confirm interrupt with True/False; Studio users type the answer
        if answer is True or (isinstance(answer, str) and "yes" in answer.lower()):
            return Command(goto="tools")
        declined = [
            ToolMessage("The caller declined.", tool_call_id=call["id"], name=call["name"])
            for call in calls
        ]
        return Command(goto="model", update={"messages": declined})

    def after_model(state: RouterState) -> str:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.tool_calls:
            return "confirm" if confirm_before_tools else "tools"
        return END

    builder = StateGraph(RouterState)
    builder.add_node("router", route)
    builder.add_node("model", respond)
    builder.add_node("tools", ToolNode(list(tools), handle_tool_errors=True))
    builder.add_edge(START, "router")
    builder.add_edge("router", "model")
    targets = ["confirm" if confirm_before_tools else "tools", END]
    builder.add_conditional_edges("model", after_model, targets)
    if confirm_before_tools:
        builder.add_node("confirm", confirm_tools, destinations=("tools", "model"))
    builder.add_edge("tools", "model")
    return builder.compile(checkpointer=checkpointer)


class InnerState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_subgraph_graph(
    *,
    specialist: BaseChatModel,
    model: BaseChatModel,
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """START → specialist (a subgraph whose own node is also called "model") → model → END."""

    async def inner_model(state: InnerState) -> dict[str, Any]:
        return {"messages": [await specialist.ainvoke(state["messages"])]}

    inner = StateGraph(InnerState)
    inner.add_node("model", inner_model)
    inner.add_edge(START, "model")
    inner.add_edge("model", END)

    async def outer_model(state: InnerState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(InnerState)
    builder.add_node("specialist", inner.compile())
    builder.add_node("model", outer_model)
    builder.add_edge(START, "specialist")
    builder.add_edge("specialist", "model")
    builder.add_edge("model", END)
    return builder.compile(checkpointer=checkpointer)


def build_fallback_graph(
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """No model at all: a non-speaking note-taker, then a deterministic speaking responder."""

    async def take_note(state: InnerState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"NOTE: caller said {state['messages'][-1].content}")]}

    async def fallback(state: InnerState) -> dict[str, Any]:
        return {"messages": [AIMessage("My language model is unavailable right now.")]}

    builder = StateGraph(InnerState)
    builder.add_node("notes", take_note)
    builder.add_node("fallback", fallback)
    builder.add_edge(START, "notes")
    builder.add_edge("notes", "fallback")
    builder.add_edge("fallback", END)
    return builder.compile(checkpointer=checkpointer)


def build_recording_graph(
    model: BaseChatModel, writes: dict[str, list[Any]]
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A one-node graph with `instructions` and `context` keys whose reducers log each write."""

    def recorder(key: str) -> Callable[[Any, Any], Any]:
        def reduce(_old: Any, new: Any) -> Any:
            writes[key].append(new)
            return new

        return reduce

    # the functional form evaluates the Annotated reducers now, closing over `writes`
    RecordingState = TypedDict(  # type: ignore[misc]  # noqa: UP013
        "RecordingState",
        {
            "messages": Annotated[list[AnyMessage], add_messages],
            "instructions": Annotated[str, recorder("instructions")],
            "context": Annotated[dict[str, Any], recorder("context")],
        },
        total=False,
    )

    async def respond(values: Any) -> dict[str, Any]:
        system = SystemMessage(values.get("instructions", ""))
        return {"messages": [await model.ainvoke([system, *values["messages"]])]}

    builder: StateGraph[Any, None, Any, Any] = StateGraph(cast(Any, RecordingState))
    builder.add_node("model", respond)  # type: ignore[arg-type]  # state type is built at runtime
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile(checkpointer=InMemorySaver())


async def thread_messages(
    graph: CompiledStateGraph[Any, Any, Any, Any], thread_id: str
) -> list[BaseMessage]:
    state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    return list(state.values.get("messages", []))


def spoken(result: Any) -> str:
    """The assistant text of a LiveKit RunResult; fails if the turn produced anything else."""
    texts = []
    for event in result.events:
        assert event.type == "message", f"unexpected {event.type} event"
        assert event.item.role == "assistant"
        texts.append((event.item.text_content or "").strip())
    return " ".join(texts)


def add_transcript(chat_ctx: Any, text: str) -> None:
    """Add a user line the way LiveKit's preemptive generation builds it: from STT, with the
    transcript's confidence (typed lines have none)."""
    from livekit.agents import llm

    chat_ctx.insert(llm.ChatMessage(role="user", content=[text], transcript_confidence=0.9))
