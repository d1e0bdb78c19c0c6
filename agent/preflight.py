"""Checks run once before the worker takes calls: configuration that can never work stops
start-up with one line; services that are down now are warned about, not fatal."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from agent.settings import SettingsError, WorkerSettings, load_graph_builder
from tools.pms import PMSConfigError, build_pms
from workflows.checkpoint import redact_url

logger = logging.getLogger(__name__)


async def answers_ping(client: aioredis.Redis, *, timeout_s: float = 2.0) -> bool:
    try:
        return bool(await asyncio.wait_for(client.ping(), timeout_s + 0.5))
    except (RedisError, OSError, TimeoutError):
        return False


async def appendonly_disabled(client: aioredis.Redis, *, timeout_s: float = 2.0) -> bool:
    """True when Redis says ``appendonly no``; False when AOF is on or CONFIG is refused
    (managed Redis often disables it) or the server does not answer."""
    try:
        reply = await asyncio.wait_for(client.config_get("appendonly"), timeout_s + 0.5)
    except (RedisError, OSError, TimeoutError):  # ResponseError (CONFIG refused) included
        return False
    values: dict[Any, Any] = dict(reply)
    return values.get(b"appendonly", values.get("appendonly")) in (b"no", "no")


async def _redis_warning(url: str, *, timeout_s: float = 2.0) -> str | None:
    """Why Redis is not fit to keep conversations (down, or without AOF), over one connection."""
    client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        if not await answers_ping(client, timeout_s=timeout_s):
            return (
                f"REDIS_URL ({redact_url(url)}) does not answer: calls will keep "
                "their state in the local SQLite file until it does"
            )
        if await appendonly_disabled(client, timeout_s=timeout_s):
            return (
                f"Redis at {redact_url(url)} runs with appendonly no: a Redis "
                "restart loses recent conversation state; enable AOF (appendonly yes)"
            )
        return None
    finally:
        await client.aclose()


async def preflight(settings: WorkerSettings) -> list[str]:
    """Raise `SettingsError` for settings that cannot work; return warnings for what is down."""
    load_graph_builder(settings.agent_graph)  # a typo in AGENT_GRAPH stops start-up, not a call
    try:
        pms = build_pms(settings.pms_config())
    except PMSConfigError as exc:
        raise SettingsError(f"invalid PMS configuration: {exc}") from None
    await pms.aclose()
    warnings: list[str] = []
    if settings.redis_url and (warning := await _redis_warning(settings.redis_url)):
        warnings.append(warning)
    for warning in warnings:
        logger.warning(warning)
    return warnings
