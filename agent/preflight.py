"""Checks run once before the worker takes calls: configuration that can never work stops
start-up with one line; services that are down now are warned about, not fatal."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from agent.settings import SettingsError, WorkerSettings
from tools.pms import PMSConfigError, build_pms
from workflows.checkpoint import redact_url

logger = logging.getLogger(__name__)


async def answers_ping(client: aioredis.Redis, *, timeout_s: float = 2.0) -> bool:
    try:
        return bool(await asyncio.wait_for(client.ping(), timeout_s + 0.5))
    except (RedisError, OSError, TimeoutError):
        return False


async def redis_reachable(url: str, *, timeout_s: float = 2.0) -> bool:
    client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return await answers_ping(client, timeout_s=timeout_s)
    finally:
        await client.aclose()


async def preflight(settings: WorkerSettings) -> list[str]:
    """Raise `SettingsError` for settings that cannot work; return warnings for what is down."""
    try:
        pms = build_pms(settings)
    except PMSConfigError as exc:
        raise SettingsError(f"invalid PMS configuration: {exc}") from None
    await pms.aclose()
    warnings: list[str] = []
    if settings.redis_url and not await redis_reachable(settings.redis_url):
        warnings.append(
            f"REDIS_URL ({redact_url(settings.redis_url)}) does not answer: calls will keep "
            "their state in the local SQLite file until it does"
        )
    for warning in warnings:
        logger.warning(warning)
    return warnings
