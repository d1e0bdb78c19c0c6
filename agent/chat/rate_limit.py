"""Per-participant sliding-window rate limit for commands and typed messages.

Each participant may send `limit` messages per `window_s`. Over the limit, a message gets a
polite refusal; refusals are themselves limited to `limit` per window, and beyond that a
flooding sender's messages are dropped without a reply (so a flood cannot make the agent
flood back).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = ["RateDecision", "RateLimiter", "Verdict"]


class Verdict(Enum):
    ALLOW = "allow"
    REFUSE = "refuse"
    DROP = "drop"


@dataclass(frozen=True)
class RateDecision:
    verdict: Verdict
    retry_after_s: float = 0.0


class _Window:
    __slots__ = ("accepted", "refused")

    def __init__(self) -> None:
        self.accepted: deque[float] = deque()
        self.refused: deque[float] = deque()


class RateLimiter:
    """`limit` messages per `window_s` seconds per key; in-process (one job = one call)."""

    def __init__(
        self,
        *,
        limit: int = 10,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._windows: dict[str, _Window] = {}

    def _window(self, key: str, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self._max_keys:
                self._forget_idle(now)
            window = self._windows[key] = _Window()
        return window

    def _forget_idle(self, now: float) -> None:
        horizon = now - self.window_s
        idle = [
            key
            for key, w in self._windows.items()
            if (not w.accepted or w.accepted[-1] <= horizon)
            and (not w.refused or w.refused[-1] <= horizon)
        ]
        for key in idle:
            del self._windows[key]

    def check(self, key: str) -> RateDecision:
        """Count one message from `key` and say what to do with it."""
        now = self._clock()
        window = self._window(key, now)
        horizon = now - self.window_s
        for stamps in (window.accepted, window.refused):
            while stamps and stamps[0] <= horizon:
                stamps.popleft()
        if len(window.accepted) < self.limit:
            window.accepted.append(now)
            return RateDecision(Verdict.ALLOW)
        retry_after = max(window.accepted[0] + self.window_s - now, 0.0)
        if len(window.refused) < self.limit:
            window.refused.append(now)
            return RateDecision(Verdict.REFUSE, retry_after_s=retry_after)
        return RateDecision(Verdict.DROP, retry_after_s=retry_after)
