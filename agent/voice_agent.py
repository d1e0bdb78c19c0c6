"""The LiveKit `Agent` that fronts a GraphLLM: the graph owns tools and instructions."""

from __future__ import annotations

from typing import Any

from livekit.agents import Agent


class GraphAgent(Agent):
    """An Agent whose replies come from the graph; GraphLLM flushes TTS at tool boundaries."""

    def __init__(self, *, instructions: str, **kwargs: Any) -> None:
        super().__init__(instructions=instructions, **kwargs)
