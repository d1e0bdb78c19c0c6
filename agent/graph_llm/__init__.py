"""GraphLLM: any LangGraph graph with a `messages` channel as a LiveKit Agents LLM.

    from agent.graph_llm import GraphLLM

    session = AgentSession(llm=GraphLLM(graph, thread_id="conv-42"), stt=..., tts=..., vad=...)

`graph` is a compiled graph with a checkpointer, or a `RemoteGraph` on a LangGraph server.

The package imports langgraph, langchain-core and livekit-agents, plus one function, the
project's yes/no vocabulary (`workflows.confirm.spoken_yes_no`, standard library only): to copy
the package into another worker, copy that function with it. See docs/graph-llm.md.
"""

from .builders import default_speaking_nodes, node_names, recognise_builder, side_effecting_tools
from .events import GraphLLMEvent, ToolFinished, ToolStarted, TurnLatency
from .llm import (
    DEFAULT_APOLOGY,
    DEFAULT_FILLER,
    GraphLLM,
    GraphLLMStream,
    to_api_error,
)
from .speech import FLUSH_MARKER, flush_chunk, graph_llm_node, interrupt_question, resume_value
from .threads import server_thread_id
from .turn import FLUSH_EVENT, SAY_EVENT

__all__ = [
    "DEFAULT_APOLOGY",
    "DEFAULT_FILLER",
    "FLUSH_EVENT",
    "FLUSH_MARKER",
    "SAY_EVENT",
    "GraphLLM",
    "GraphLLMEvent",
    "GraphLLMStream",
    "ToolFinished",
    "ToolStarted",
    "TurnLatency",
    "default_speaking_nodes",
    "flush_chunk",
    "graph_llm_node",
    "interrupt_question",
    "node_names",
    "recognise_builder",
    "resume_value",
    "server_thread_id",
    "side_effecting_tools",
    "to_api_error",
]
