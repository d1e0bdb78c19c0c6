"""HS256 signing of LiveKit access tokens without a JWT library on the hot path.

The output is byte-for-byte what PyJWT (and so livekit-api's AccessToken) produces for the same
claims when they are ASCII; tests verify every token with livekit-api's TokenVerifier.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from typing import Any

import orjson

_B64_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url(data: bytes) -> bytes:
    """Unpadded base64url, as JWS compact serialisation wants it."""
    return binascii.b2a_base64(data, newline=False).translate(_B64_TO_URLSAFE).rstrip(b"=")


class LiveKitSigner:
    """Signs claim sets for one LiveKit API key/secret pair."""

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key = api_key
        # Keyed once: copying the prepared HMAC state skips re-deriving the pads per token.
        self._mac = hmac.new(api_secret.encode(), digestmod=hashlib.sha256)
        # PyJWT's header for HS256 with sorted keys: the same bytes for every token.
        self._header_segment = b64url(b'{"alg":"HS256","typ":"JWT"}') + b"."

    def sign(self, claims: dict[str, Any]) -> str:
        """The compact JWT for `claims` (which must already hold iss, sub, nbf and exp)."""
        signing_input = self._header_segment + b64url(orjson.dumps(claims))
        mac = self._mac.copy()
        mac.update(signing_input)
        signature = mac.digest()
        return (signing_input + b"." + b64url(signature)).decode("ascii")
