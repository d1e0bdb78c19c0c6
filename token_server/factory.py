"""Wires settings into the components of the app; the only place that reads the settings."""

from __future__ import annotations

import logging

import httpx
import orjson
from livekit.api import TokenVerifier, WebhookReceiver
from redis.asyncio import Redis

from token_server import __version__
from token_server.app import TokenServerApp
from token_server.auth import Authenticator, Principal
from token_server.cors import CorsPolicy
from token_server.health import Readiness
from token_server.livekit_jwt import LiveKitSigner
from token_server.metrics import Metrics
from token_server.oidc import JwksCache, OidcVerifier
from token_server.openapi import openapi_document
from token_server.rate_limit import (
    InProcessRateLimiter,
    RateLimiter,
    RateLimitSpec,
    RedisRateLimiter,
)
from token_server.settings import TokenServerSettings
from token_server.static_files import WebPage
from token_server.token_policy import TokenPolicy, TokenPolicyConfig
from token_server.webhooks import WebhookHandler

logger = logging.getLogger("token_server")


def create_app(settings: TokenServerSettings) -> TokenServerApp:
    """The ASGI app for `settings`; its lifespan closes the Redis and HTTP clients it opens."""
    metrics = Metrics()
    secret = settings.livekit_api_secret.get_secret_value()
    redis = (
        Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        if settings.redis_url
        else None
    )
    http_client: httpx.AsyncClient | None = None
    jwks: JwksCache | None = None
    oidc: OidcVerifier | None = None
    if settings.oidc_jwks_url and settings.oidc_issuer and settings.oidc_audience:
        http_client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.oidc_timeout_s), follow_redirects=False
        )
        jwks = JwksCache(
            settings.oidc_jwks_url,
            http_client,
            max_age_s=settings.oidc_jwks_cache_s,
            timeout_s=settings.oidc_timeout_s,
            min_refresh_interval_s=settings.oidc_jwks_min_refresh_s,
        )
        oidc = OidcVerifier(
            jwks,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            roles_claim=settings.oidc_roles_claim,
            context_claims=settings.context_claim_map,
            leeway_s=settings.oidc_leeway_s,
        )
    authenticator = Authenticator(
        {
            digest: Principal(
                subject=entry.sub,
                method="api_key",
                roles=frozenset(entry.roles),
                name=entry.name,
                context=dict(entry.context),
                asserts_users=entry.asserts_users,
            )
            for digest, entry in settings.api_keys.items()
        },
        oidc=oidc,
        allow_anonymous=settings.allow_insecure_dev,
    )
    policy = TokenPolicy(
        TokenPolicyConfig(
            server_url=settings.livekit_url,
            ttl_s=settings.ttl_seconds,
            allowed_agents=settings.resolved_allowed_agents,
            default_dispatch=settings.default_dispatch,
            publish_sources=tuple(settings.publish_sources),
            room_prefixes={role: tuple(p) for role, p in settings.room_prefixes.items()},
            client_room_names=settings.allow_client_room_names,
            role_attributes=settings.role_attributes,
            context_keys=frozenset(settings.context_claim_map.values()),
        ),
        LiveKitSigner(settings.livekit_api_key, secret),
    )

    def limiter(spec: RateLimitSpec, namespace: str) -> RateLimiter:
        if redis is None:
            return InProcessRateLimiter(spec)
        return RedisRateLimiter(
            redis,
            spec,
            namespace=namespace,
            timeout_s=settings.redis_timeout_s,
            on_backend_error=metrics.count_backend_error,
        )

    readiness = Readiness(redis=redis, jwks=jwks, timeout_s=settings.redis_timeout_s)

    async def on_startup() -> None:
        checks = await readiness.check()
        for name, result in checks.items():
            if result != "ok":
                logger.warning("%s is not ready at start-up: %s", name, result)

    async def on_shutdown() -> None:
        if redis is not None:
            await redis.aclose()
        if http_client is not None:
            await http_client.aclose()

    return TokenServerApp(
        authenticator=authenticator,
        policy=policy,
        cors=CorsPolicy(settings.cors_origins),
        ip_limiter=limiter(settings.ip_rate_limit, "ip"),
        principal_limiter=limiter(settings.rate_limit, "principal"),
        app_limiter=limiter(settings.app_rate_limit, "app"),
        webhooks=WebhookHandler(WebhookReceiver(TokenVerifier(settings.livekit_api_key, secret))),
        readiness=readiness,
        metrics=metrics,
        openapi=orjson.dumps(
            openapi_document(version=__version__, max_metadata_bytes=settings.max_metadata_bytes)
        ),
        max_metadata_bytes=settings.max_metadata_bytes,
        web_page=WebPage() if settings.web_page_enabled else None,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
