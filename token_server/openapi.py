"""The OpenAPI 3.1 description of every route, written by hand to match the hand-written checks."""

from __future__ import annotations

from typing import Any

from token_server.token_request import (
    AGENT_NAME_PATTERN,
    ATTRIBUTE_KEY_PATTERN,
    MAX_AGENTS,
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_BODY_BYTES,
    MAX_IDENTITY_CHARS,
    MAX_NAME_CHARS,
)

# The text must hold a JSON object ("" means unset); `contentSchema` describes the object.
JSON_OBJECT_TEXT_PATTERN = r"^(\s*\{[\s\S]*\}\s*)?$"
_DISPATCH_METADATA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "conversation_id": {
            "type": "string",
            "maxLength": 128,
            "description": "Your label for a conversation to continue (needs a verified user).",
        },
        "language": {"type": "string"},
        "property_id": {"type": "string"},
        "reservation_code": {"type": "string"},
        "guest_name": {"type": "string"},
        "context": {"type": "object"},
    },
    "not": {"anyOf": [{"required": ["caller_identity"]}, {"required": ["caller_key"]}]},
}
_NO_CONTROL_CHARS = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"
_JSON = "application/json"


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _nullable_string(**constraints: Any) -> dict[str, Any]:
    return {"type": ["string", "null"], **constraints}


def openapi_document(*, version: str, max_metadata_bytes: int) -> dict[str, Any]:
    """The document served at /openapi.json."""
    metadata_text = _nullable_string(
        maxLength=max_metadata_bytes,
        description=f"Free text, at most {max_metadata_bytes} UTF-8 bytes.",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LiveKit token server",
            "version": version,
            "description": (
                "LiveKit's standard token endpoint (the request and response the client SDKs' "
                "TokenSource.endpoint send and read), with authentication, least-privilege "
                "grants, server-side agent dispatch and rate limits."
            ),
        },
        "paths": {
            "/token": {
                "post": {
                    "operationId": "createToken",
                    "summary": "Mint a LiveKit access token for the authenticated caller",
                    "description": (
                        "Every field is optional; an empty body gets a fresh room and the "
                        "default agent dispatch. The server decides the identity (unique per "
                        "token, under the authenticated subject), the room (server-named unless "
                        "configured otherwise) and the conversation key the agent receives. "
                        "Only room_config.agents[] is accepted, and only allow-listed agent names."
                    ),
                    "security": [{"bearerAuth": []}],
                    "requestBody": {
                        "required": False,
                        "content": {
                            _JSON: {"schema": {"$ref": "#/components/schemas/TokenRequest"}}
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "A token for the room",
                            "headers": {
                                "Cache-Control": {
                                    "required": True,
                                    "schema": {"type": "string", "const": "no-store"},
                                }
                            },
                            "content": {
                                _JSON: {"schema": {"$ref": "#/components/schemas/TokenResponse"}}
                            },
                        },
                        "400": _error("The body is not a JSON object"),
                        "401": _error("Missing, malformed, unknown, expired or forged credentials"),
                        "403": _error(
                            "Forbidden by policy: other identity, client-named room, room prefix, "
                            "agent name, room_config field, reserved attribute or metadata key, "
                            "conversation label without a verified end user, CORS origin"
                        ),
                        "413": _error(f"The body is larger than {MAX_BODY_BYTES} bytes"),
                        "415": _error("The body is not application/json"),
                        "422": _error("A field has the wrong type, format or size"),
                        "429": _error(
                            "Rate limit exceeded for this client IP or principal",
                            {
                                "Retry-After": {
                                    "required": True,
                                    "description": "Seconds until the window resets",
                                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                                }
                            },
                        ),
                        "503": _error("The identity provider's signing keys cannot be loaded"),
                    },
                },
                "options": {
                    "operationId": "corsPreflight",
                    "summary": "CORS preflight for browser apps on the allow-list",
                    "security": [],
                    "parameters": [
                        {"name": "Origin", "in": "header", "schema": {"type": "string"}},
                        {
                            "name": "Access-Control-Request-Method",
                            "in": "header",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "204": {"description": "Preflight accepted"},
                        "403": _error("Origin or method not allowed"),
                    },
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: the process serves requests",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Alive",
                            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Status"}}},
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: Redis and the OIDC keys are reachable when configured",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Ready",
                            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Status"}}},
                        },
                        "503": _error("A dependency is unreachable"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {_JSON: {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/webhooks/livekit": {
                "post": {
                    "operationId": "livekitWebhook",
                    "summary": "Receive a signed LiveKit webhook",
                    "security": [{"livekitWebhook": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/webhook+json": {
                                "schema": {"$ref": "#/components/schemas/WebhookEvent"}
                            },
                            _JSON: {"schema": {"$ref": "#/components/schemas/WebhookEvent"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Verified and recorded",
                            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Status"}}},
                        },
                        "400": _error("Signed, but not a LiveKit event"),
                        "401": _error("Unsigned, wrongly signed or tampered"),
                        "413": _error("The body is too large"),
                        "415": _error("Not application/webhook+json or application/json"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "An API key from TOKEN_API_KEYS, or an OIDC JWT (RS256/ES256) from "
                        "the configured issuer for the configured audience."
                    ),
                },
                "livekitWebhook": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The JWT LiveKit signs each webhook with (body sha256 inside).",
                },
            },
            "schemas": {
                "TokenRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "room_name": _nullable_string(
                            pattern="^[A-Za-z0-9_.:-]{0,128}$",
                            description=(
                                "Omit it: the server names a fresh room. A name is accepted only "
                                "under a prefix your roles allow (TOKEN_ROOM_PREFIXES) or when "
                                "TOKEN_ALLOW_CLIENT_ROOM_NAMES is on; otherwise 403."
                            ),
                        ),
                        "participant_identity": _nullable_string(
                            maxLength=MAX_IDENTITY_CHARS,
                            pattern=_NO_CONTROL_CHARS,
                            description=(
                                "Your end user's id when your API key has asserts_users; "
                                "otherwise omit it or send your authenticated subject. The "
                                "token's identity is this plus a unique suffix."
                            ),
                        ),
                        "participant_name": _nullable_string(
                            maxLength=MAX_NAME_CHARS, pattern=_NO_CONTROL_CHARS
                        ),
                        "participant_metadata": metadata_text,
                        "participant_attributes": {
                            # "" means unset, as in protobuf JSON; maxLength binds only strings.
                            "type": ["object", "null", "string"],
                            "maxLength": 0,
                            "maxProperties": MAX_ATTRIBUTES,
                            "propertyNames": {"pattern": ATTRIBUTE_KEY_PATTERN},
                            "additionalProperties": {
                                "type": "string",
                                "maxLength": MAX_ATTRIBUTE_VALUE_CHARS,
                            },
                            "description": (
                                f"At most {max_metadata_bytes} bytes in total; keys set from "
                                "roles, keys the voice agent reads (property_id, "
                                "reservation_code, guest_name, language, conversation_id, "
                                "caller_identity, caller_key) and keys starting with lk. are "
                                "reserved for the server (403)."
                            ),
                        },
                        "room_config": {"$ref": "#/components/schemas/RoomConfig"},
                    },
                },
                "RoomConfig": {
                    "type": ["object", "null", "string"],
                    "maxLength": 0,
                    "additionalProperties": False,
                    "description": "Only agents[] may be set; any other field is refused (403).",
                    "properties": {
                        "agents": {
                            "type": ["array", "null"],
                            "maxItems": MAX_AGENTS,
                            "items": {"$ref": "#/components/schemas/RoomAgentDispatch"},
                        }
                    },
                },
                "RoomAgentDispatch": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "agent_name": _nullable_string(
                            pattern=AGENT_NAME_PATTERN,
                            description="An allow-listed agent; omitted means the default agent.",
                        ),
                        "metadata": _nullable_string(
                            maxLength=max_metadata_bytes,
                            # The server parses the text and refuses (422) anything but an object.
                            pattern=JSON_OBJECT_TEXT_PATTERN,
                            contentMediaType=_JSON,
                            contentSchema=_DISPATCH_METADATA,
                            description=(
                                "A JSON object encoded as a string, e.g. "
                                '\'{"conversation_id":"trip-2","language":"de"}\'; any other '
                                "JSON text (array, number, string) is refused with 422. Merged "
                                "with server-side context from the caller's claims; "
                                "conversation_id is only a label the server binds to your end "
                                "user, and caller_identity / caller_key are set by the server."
                            ),
                        ),
                    },
                },
                "TokenResponse": {
                    "type": "object",
                    "required": [
                        "server_url",
                        "participant_token",
                        "room_name",
                        "participant_name",
                    ],
                    "additionalProperties": False,
                    "properties": {
                        "server_url": {"type": "string", "description": "LIVEKIT_URL"},
                        "participant_token": {"type": "string", "description": "The JWT"},
                        "room_name": {"type": "string"},
                        "participant_name": {"type": "string"},
                    },
                },
                "Status": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string"},
                        "checks": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                },
                "WebhookEvent": {
                    "type": "object",
                    "description": "livekit.WebhookEvent in protobuf JSON",
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "additionalProperties": False,
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "additionalProperties": False,
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
            },
        },
    }
