"""Build the configured PMS backend and its per-conversation stores from settings."""

from __future__ import annotations

from urllib.parse import urlparse

import redis.asyncio as aioredis

from tools.pms.apaleo import ApaleoClient, ApaleoPMS
from tools.pms.calendar import GapNightPolicy
from tools.pms.clock import Clock
from tools.pms.demo import DemoPMS
from tools.pms.ledger import InMemoryLedger, RedisLedger, RequestLedger
from tools.pms.protocol import PMS
from tools.pms.throttle import (
    InMemoryVerificationThrottle,
    RedisVerificationThrottle,
    ThrottlePolicy,
    VerificationThrottle,
)
from tools.pms.verification import (
    InMemoryVerificationStore,
    RedisVerificationStore,
    VerificationStore,
)
from tools.settings import ToolsSettings

__all__ = [
    "PMSConfigError",
    "build_ledger",
    "build_pms",
    "build_verification_store",
    "build_verification_throttle",
    "throttle_policy",
]


class PMSConfigError(ValueError):
    """The PMS settings cannot work; the message is one line naming the variable to fix."""


def _check_url(name: str, value: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise PMSConfigError(f"{name} must be an http(s) URL, got {value!r}")


def build_ledger(redis: aioredis.Redis | None = None) -> RequestLedger:
    return RedisLedger(redis) if redis is not None else InMemoryLedger()


def build_verification_store(redis: aioredis.Redis | None = None) -> VerificationStore:
    """Redis-backed when a client is given (shared by all workers), else in-process."""
    return RedisVerificationStore(redis) if redis is not None else InMemoryVerificationStore()


def throttle_policy(settings: ToolsSettings) -> ThrottlePolicy:
    return ThrottlePolicy(
        code_lock_after=settings.pms_verify_code_lock_after,
        name_lock_after=settings.pms_verify_name_lock_after,
        lock_s=settings.pms_verify_lock_s,
        window_s=max(3600.0, settings.pms_verify_lock_s),
    )


def build_verification_throttle(
    redis: aioredis.Redis | None = None, policy: ThrottlePolicy | None = None
) -> VerificationThrottle:
    """Counts failed attempts per code and name in Redis (all workers) or in this process."""
    if redis is not None:
        return RedisVerificationThrottle(redis, policy)
    return InMemoryVerificationThrottle(policy)


def build_pms(
    settings: ToolsSettings,
    *,
    redis: aioredis.Redis | None = None,
    clock: Clock | None = None,
) -> PMS:
    """The backend named by PMS_BACKEND; raises PMSConfigError on settings that cannot work."""
    policy = GapNightPolicy(
        discount_percent=settings.pms_gap_night_discount_pct,
        max_nights=settings.pms_gap_night_max_nights,
    )
    if settings.pms_backend == "demo":
        path = settings.resolved_pms_demo_path
        if path.is_dir():
            raise PMSConfigError(f"PMS_DEMO_PATH must name a file, but {path} is a directory")
        return DemoPMS(path, clock=clock, gap_policy=policy, timeout_s=settings.pms_timeout_s)
    secret = (
        settings.apaleo_client_secret.get_secret_value() if settings.apaleo_client_secret else ""
    )
    if not settings.apaleo_client_id or not secret:
        raise PMSConfigError("PMS_BACKEND=apaleo needs APALEO_CLIENT_ID and APALEO_CLIENT_SECRET")
    _check_url("APALEO_BASE_URL", settings.apaleo_base_url)
    _check_url("APALEO_IDENTITY_URL", settings.apaleo_identity_url)
    client = ApaleoClient(
        base_url=settings.apaleo_base_url,
        identity_url=settings.apaleo_identity_url,
        client_id=settings.apaleo_client_id,
        client_secret=secret,
        timeout_s=settings.pms_timeout_s,
    )
    return ApaleoPMS(client, clock=clock, gap_policy=policy, ledger=build_ledger(redis))
