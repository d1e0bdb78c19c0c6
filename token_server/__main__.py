"""`python -m token_server [serve | hash-key]`: run the token server on uvicorn."""

from __future__ import annotations

import argparse
import gc
import hashlib
import logging
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from token_server.connections import connection_cap, protocol_class
from token_server.factory import create_app
from token_server.settings import TokenServerSettings

logger = logging.getLogger("token_server")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m token_server",
        description="LiveKit token endpoint for web and mobile apps (configured by environment).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP server (the default)")
    commands.add_parser(
        "hash-key", help="read an API key on stdin and print its sha256 for TOKEN_API_KEYS"
    )
    args = parser.parse_args(argv)
    if args.command == "hash-key":
        key = sys.stdin.readline().strip()
        if not key:
            print("token_server: no API key on stdin", file=sys.stderr)
            return 2
        print(hashlib.sha256(key.encode()).hexdigest())
        return 0
    return serve()


def serve() -> int:
    try:
        settings = TokenServerSettings()  # type: ignore[call-arg]  # filled from the environment
    except ValidationError as exc:
        print(f"token_server: configuration error: {describe(exc)}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"token_server: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.allow_insecure_dev:
        logger.warning(
            "INSECURE DEVELOPMENT MODE (TOKEN_ALLOW_INSECURE_DEV): requests without credentials "
            "get tokens for any identity they name. Never run this in production."
        )
    app = create_app(settings)
    max_connections = connection_cap(settings.max_connections)
    if max_connections < settings.max_connections:
        logger.warning(
            "TOKEN_MAX_CONNECTIONS=%d lowered to %d to stay under the open-file limit",
            settings.max_connections,
            max_connections,
        )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        # httptools with a read deadline per request and a cap on open connections
        http=protocol_class(
            read_timeout_s=settings.read_timeout_s, max_connections=max_connections
        ),
        timeout_keep_alive=settings.keepalive_s,
        ws="none",
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        # X-Forwarded-For is honoured only from proxies named in TOKEN_FORWARDED_ALLOW_IPS.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        server_header=False,
    )
    server = uvicorn.Server(config)
    config.load()  # imports the loop and protocol modules now, so the freeze covers them
    # Everything built so far lives as long as the process: keep the cyclic collector off it,
    # and collect the young generation less often (requests free their objects by refcount).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    logger.info(
        "token server on http://%s:%d (auth: %s; rate limits %s; at most %d connections, "
        "%.0f s to send a request)",
        settings.host,
        settings.port,
        ", ".join(auth_methods(settings)) or "none",
        "in Redis" if settings.redis_url else "in process",
        max_connections,
        settings.read_timeout_s,
    )
    server.run()
    return 0 if server.started else 1


def auth_methods(settings: TokenServerSettings) -> list[str]:
    methods = []
    if settings.api_keys:
        methods.append(f"{len(settings.api_keys)} API key(s)")
    if settings.oidc_jwks_url:
        methods.append(f"OIDC issuer {settings.oidc_issuer}")
    if settings.allow_insecure_dev:
        methods.append("ANONYMOUS (insecure dev)")
    return methods


def describe(exc: ValidationError) -> str:
    """One line naming each bad variable and what it expects."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
