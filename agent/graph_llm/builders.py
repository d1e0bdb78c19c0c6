"""What GraphLLM knows about a graph before its first turn: node names, builder, input keys,
side-effecting tools.

It recognises the graphs LangGraph's and LangChain's own builders make, so a team can pass
them without naming speaking nodes:

* ``langgraph.prebuilt.create_react_agent`` — the model node is ``agent``;
* ``langchain.agents.create_agent`` (LangChain v1) — the model node is ``model``;
* ``langgraph_supervisor.create_supervisor`` — every worker speaks, the supervisor never;
* ``langgraph_swarm.create_swarm`` — every agent speaks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, get_type_hints

from langchain_core.tools import BaseTool
from langgraph.channels.binop import BinaryOperatorAggregate
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from langgraph.pregel.protocol import PregelProtocol

__all__ = [
    "check_messages_channel",
    "default_speaking_nodes",
    "graph_input_keys",
    "may_write_custom_stream",
    "node_names",
    "recognise_builder",
    "side_effecting_tools",
    "validate_speaking_nodes",
]

logger = logging.getLogger(__name__)

_START = "__start__"
# node names create_react_agent may add besides its model node
_REACT_NODES = frozenset(
    {"agent", "tools", "pre_model_hook", "post_model_hook", "generate_structured_response"}
)
# tool metadata langgraph-supervisor puts on its handoff tools
_HANDOFF_DESTINATION = "__handoff_destination"
_MAX_DEPTH = 8


def _nodes(graph: Any) -> list[str]:
    return [name for name in getattr(graph, "nodes", {}) if name != _START]


def _subgraphs(graph: Any) -> dict[str, Any]:
    get = getattr(graph, "get_subgraphs", None)
    if get is None:
        return {}
    try:
        return dict(get())
    except Exception:
        return {}


def node_names(graph: Any, prefix: str = "", depth: int = 0) -> Iterator[str]:
    """Every node of `graph`, subgraph nodes as ``"parent/child"``."""
    subgraphs = _subgraphs(graph) if depth < _MAX_DEPTH else {}
    for name in _nodes(graph):
        path = f"{prefix}{name}"
        yield path
        if name in subgraphs:
            yield from node_names(subgraphs[name], f"{path}/", depth + 1)


def _schema_module(graph: Any) -> str:
    schema = getattr(getattr(graph, "builder", None), "state_schema", None)
    return str(getattr(schema, "__module__", ""))


def _tools(graph: Any, *, nested: bool = False, depth: int = 0) -> Iterator[BaseTool]:
    """Tools of every ToolNode in `graph`, and with `nested` in its subgraphs too."""
    for node in getattr(graph, "nodes", {}).values():
        bound = getattr(node, "bound", None)
        if isinstance(bound, ToolNode):
            yield from bound.tools_by_name.values()
        elif nested and isinstance(bound, Pregel) and depth < _MAX_DEPTH:
            yield from _tools(bound, nested=True, depth=depth + 1)


def _is_supervisor_node(graph: Any) -> bool:
    return any(_HANDOFF_DESTINATION in (tool.metadata or {}) for tool in _tools(graph))


def recognise_builder(graph: Any) -> str | None:
    """``"create_agent"``, ``"create_react_agent"``, ``"supervisor"``, ``"swarm"`` or None."""
    metadata = (getattr(graph, "config", None) or {}).get("metadata") or {}
    module = _schema_module(graph)
    nodes = set(_nodes(graph))
    channels = getattr(graph, "channels", {}) or {}
    if metadata.get("ls_integration") == "langchain_create_agent" or module.startswith(
        "langchain.agents"
    ):
        return "create_agent"
    if module.startswith("langgraph_supervisor"):
        return "supervisor"
    if module.startswith("langgraph_swarm") or (
        "active_agent" in channels and nodes and nodes <= set(_subgraphs(graph))
    ):
        return "swarm"
    if "agent" in nodes and nodes <= _REACT_NODES:
        return "create_react_agent"
    return None


def default_speaking_nodes(graph: Any) -> tuple[str, ...]:
    """The speaking nodes for a recognised builder's graph; raises ValueError otherwise."""
    if not getattr(graph, "nodes", None):
        return ("model",)  # a remote graph: its nodes are only known on the server
    builder = recognise_builder(graph)
    nodes = _nodes(graph)
    if builder == "create_agent":
        return ("model",)
    if builder == "create_react_agent":
        return ("agent",)
    if builder == "supervisor":
        subgraphs = _subgraphs(graph)
        workers = tuple(
            n for n in nodes if not (n in subgraphs and _is_supervisor_node(subgraphs[n]))
        )
        if workers and len(workers) < len(nodes):
            return workers
    if builder == "swarm" and nodes:
        return tuple(nodes)
    if "model" in nodes:
        return ("model",)
    raise ValueError(
        "GraphLLM cannot tell which nodes of this graph answer the caller; pass "
        f"speaking_nodes=... naming some of: {', '.join(node_names(graph)) or '(no nodes)'}"
    )


def validate_speaking_nodes(graph: Any, speaking_nodes: Sequence[str]) -> tuple[str, ...]:
    """`speaking_nodes` as a tuple, after checking each names a node of the graph."""
    nodes = tuple(speaking_nodes)
    if not nodes:
        raise ValueError("speaking_nodes must name at least one node")
    if not getattr(graph, "nodes", None):
        return nodes  # a remote graph: its nodes are only known on the server
    known = set(node_names(graph))
    unknown = [n for n in nodes if n.strip("/") not in known]
    if len(unknown) == len(nodes):
        raise ValueError(
            f"speaking_nodes {list(nodes)} name no node of this graph, so nothing would be "
            f"spoken; its nodes are: {', '.join(sorted(known))}"
        )
    if unknown:
        # graphs built with optional nodes (a model only when one is configured) list both
        logger.info("speaking nodes %s are not in this graph", unknown)
    return nodes


def _writes_custom_stream(func: Any) -> bool:
    code = getattr(getattr(func, "__wrapped__", func), "__code__", None)
    if code is None:
        return False
    return (
        "get_stream_writer" in code.co_names
        or "writer" in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    )


def may_write_custom_stream(graph: Any, depth: int = 0) -> bool:
    """Whether a node function of `graph` (or its subgraphs) uses LangGraph's custom stream.

    Found by the node's own code naming `get_stream_writer` or taking a `writer` argument;
    a node that reaches the writer through a helper needs ``node_speech=True``.
    """
    nodes = getattr(graph, "nodes", None)
    if not nodes:
        return True  # a remote graph: assume it may
    for node in nodes.values():
        bound = getattr(node, "bound", None)
        if any(_writes_custom_stream(getattr(bound, a, None)) for a in ("func", "afunc")):
            return True
    if depth >= _MAX_DEPTH:
        return False
    return any(may_write_custom_stream(sub, depth + 1) for sub in _subgraphs(graph).values())


def check_messages_channel(graph: Any) -> None:
    """Refuse a ``messages`` channel without a reducer: each turn would replace the history."""
    channels: Mapping[str, Any] = getattr(graph, "channels", None) or {}
    channel = channels.get("messages")
    if channel is not None and not isinstance(channel, BinaryOperatorAggregate):
        raise ValueError(
            "the graph's 'messages' channel has no reducer, so every turn would replace the "
            "conversation; declare it as Annotated[list[AnyMessage], add_messages] "
            "(or subclass langgraph.graph.MessagesState)"
        )


def side_effecting_tools(graph: Any, tools: Sequence[BaseTool] = ()) -> tuple[str, ...]:
    """Names of tools marked `metadata={"side_effecting": True}` in `tools` or the graph."""
    names = {
        tool.name
        for tool in (*tools, *_tools(graph, nested=True))
        if (tool.metadata or {}).get("side_effecting")
    }
    return tuple(sorted(names))


def graph_input_keys(graph: PregelProtocol[Any, Any, Any, Any]) -> frozenset[str]:
    """Top-level keys of a local graph's input schema."""
    schema = getattr(getattr(graph, "builder", None), "input_schema", None)
    if schema is not None:
        fields = getattr(schema, "model_fields", None)
        if isinstance(fields, Mapping):
            return frozenset(fields)
        try:
            return frozenset(get_type_hints(schema))
        except Exception:
            return frozenset(getattr(schema, "__annotations__", {}))
    try:
        return frozenset(graph.get_input_jsonschema().get("properties", {}))
    except Exception:
        return frozenset({"messages"})
