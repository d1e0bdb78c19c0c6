"""The LiveKit `Agent` that fronts a GraphLLM: the graph owns tools and instructions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from livekit.agents import Agent, FlushSentinel, ModelSettings, llm

from agent.graph_llm.speech import graph_llm_node


class GraphAgent(Agent):
    """An Agent whose replies come from the graph, flushed to TTS at tool boundaries."""

    def __init__(self, *, instructions: str, **kwargs: Any) -> None:
        super().__init__(instructions=instructions, **kwargs)

    def llm_node(
        self,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        model_settings: ModelSettings,
    ) -> AsyncIterator[llm.ChatChunk | str | FlushSentinel]:
        # Without the flush, sentence-splitting TTS holds "Let me check." until the tool ends.
        return graph_llm_node(self, chat_ctx, tools, model_settings)
