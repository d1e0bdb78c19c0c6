"""Build the configured PMS backend and its per-conversation stores from a `PMSConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
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

PMSBackend = Literal["demo", "apaleo"]

__all__ = [
    "PMSBackend",
    "PMSConfig",
    "PMSConfigError",
    "build_ledger",
    "build_pms",
    "build_verification_store",
    "build_verification_throttle",
    "throttle_policy",
]


@dataclass(frozen=True)
class PMSConfig:
    """Which PMS to reach and its house rules; the edge fills it (PMS_*, APALEO_*)."""

    backend: PMSBackend = "demo"
    demo_path: Path = Path(".data") / "demo_pms.sqlite3"
    apaleo_client_id: str | None = None
    apaleo_client_secret: str | None = field(default=None, repr=False)
    apaleo_base_url: str = "https://api.apaleo.com"
    apaleo_identity_url: str = "https://identity.apaleo.com"
    timeout_s: float = 8.0
    gap_night_discount_pct: int = 25
    gap_night_max_nights: int = 3
    # failed verifications per reservation code / last name, across all conversations
    verify_code_lock_after: int = 10
    verify_name_lock_after: int = 30
    verify_lock_s: float = 3600.0


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


def throttle_policy(config: PMSConfig) -> ThrottlePolicy:
    return ThrottlePolicy(
        code_lock_after=config.verify_code_lock_after,
        name_lock_after=config.verify_name_lock_after,
        lock_s=config.verify_lock_s,
        window_s=max(3600.0, config.verify_lock_s),
    )


def build_verification_throttle(
    redis: aioredis.Redis | None = None, policy: ThrottlePolicy | None = None
) -> VerificationThrottle:
    """Counts failed attempts per code and name in Redis (all workers) or in this process."""
    if redis is not None:
        return RedisVerificationThrottle(redis, policy)
    return InMemoryVerificationThrottle(policy)


def build_pms(
    config: PMSConfig,
    *,
    redis: aioredis.Redis | None = None,
    clock: Clock | None = None,
) -> PMS:
    """The backend named by PMS_BACKEND; raises PMSConfigError on a config that cannot work."""
    policy = GapNightPolicy(
        discount_percent=config.gap_night_discount_pct,
        max_nights=config.gap_night_max_nights,
    )
    if config.backend == "demo":
        path = config.demo_path
        if path.is_dir():
            raise PMSConfigError(f"PMS_DEMO_PATH must name a file, but {path} is a directory")
        return DemoPMS(path, clock=clock, gap_policy=policy, timeout_s=config.timeout_s)
    secret = config.apaleo_client_secret or ""
    if not config.apaleo_client_id or not secret:
        raise PMSConfigError("PMS_BACKEND=apaleo needs APALEO_CLIENT_ID and APALEO_CLIENT_SECRET")
    _check_url("APALEO_BASE_URL", config.apaleo_base_url)
    _check_url("APALEO_IDENTITY_URL", config.apaleo_identity_url)
    client = ApaleoClient(
        base_url=config.apaleo_base_url,
        identity_url=config.apaleo_identity_url,
        client_id=config.apaleo_client_id,
        client_secret=secret,
        timeout_s=config.timeout_s,
    )
    return ApaleoPMS(client, clock=clock, gap_policy=policy, ledger=build_ledger(redis))
