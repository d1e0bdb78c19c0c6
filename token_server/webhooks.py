"""LiveKit webhooks: signature and body hash checked by livekit-api, lifecycle events logged."""

from __future__ import annotations

import logging

from google.protobuf.json_format import ParseError
from livekit.api import WebhookReceiver
from livekit.protocol.webhook import WebhookEvent

from token_server.errors import HttpError

logger = logging.getLogger("token_server.webhooks")

MAX_WEBHOOK_BYTES = 256 * 1024


class WebhookHandler:
    """Verifies one delivery and returns the parsed event."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self._receiver = receiver

    def receive(self, body: bytes, authorization: bytes | None) -> WebhookEvent:
        if not authorization:
            raise _unauthorized("the webhook is not signed")
        token = authorization.decode("latin-1").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "invalid_json", "the webhook body is not UTF-8") from None
        try:
            event = self._receiver.receive(text, token)
        except ParseError:
            raise HttpError(
                400, "invalid_json", "the webhook body is not a LiveKit event"
            ) from None
        except Exception as exc:
            # livekit-api raises PyJWTError for the signature and bare Exception for the hash.
            logger.warning("rejected webhook: %s", type(exc).__name__)
            raise _unauthorized("the webhook signature or body hash is invalid") from None
        log_event(event)
        return event


def log_event(event: WebhookEvent) -> None:
    """One info line per room or participant lifecycle event; never tokens or metadata."""
    room = event.room.name if event.HasField("room") else ""
    participant = event.participant.identity if event.HasField("participant") else ""
    logger.info(
        "livekit event %s room=%s participant=%s id=%s",
        event.event or "unknown",
        room or "-",
        participant or "-",
        event.id or "-",
    )


def _unauthorized(message: str) -> HttpError:
    return HttpError(401, "invalid_signature", message)
