"""The OpenAPI 3.1 document of the ticket API (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

from monitor.analysis.tickets import ACTIONS, PRIORITIES, STATUSES

#: Paths relative to where the API is mounted (``/api`` in the worker).
API_BASE = "/api"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        401: "Missing or unknown token",
        403: "The token's role is too low",
        404: "No such ticket or silence",
        409: "The action is not allowed in the ticket's status",
        422: "The request is malformed; the message names the field",
        503: "Elasticsearch is unavailable; retry later (Retry-After)",
    }
    return {str(status): _json(_ref("Error"), text[status]) for status in statuses}


_TIME = {"type": "string", "format": "date-time"}
_OPT_TIME = {"type": ["string", "null"], "format": "date-time"}
_OPT_TEXT = {"type": ["string", "null"]}
_TEXT = {"type": "string"}
_INT = {"type": "integer"}
_NUMBER = {"type": "number"}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {"status": _INT, "message": _TEXT},
            }
        },
    },
    "Evidence": {
        "type": "object",
        "properties": {
            "post_id": _TEXT,
            "excerpt": _TEXT,
            "followers": _INT,
            "reposts": _INT,
            "published_at": _OPT_TIME,
            "author": _OPT_TEXT,
            "url": _OPT_TEXT,
        },
    },
    "Observation": {
        "type": "object",
        "properties": {
            "window_start": _TIME,
            "window_end": _TIME,
            "observed_value": _NUMBER,
            "expected_value": {"type": ["number", "null"]},
        },
    },
    "Ticket": {
        "type": "object",
        "description": "An alert ticket (预警工单); times are ISO 8601 with offset.",
        "required": ["ticket_id", "status", "priority", "topic", "rule", "revision"],
        "properties": {
            "ticket_id": _TEXT,
            "fingerprint": _TEXT,
            "sequence": _INT,
            "status": {"enum": list(STATUSES)},
            "priority": {"enum": list(PRIORITIES)},
            "priority_reason": _TEXT,
            "topic": _TEXT,
            "rule": _TEXT,
            "kind": _TEXT,
            "keyword": _OPT_TEXT,
            "team": _TEXT,
            "owner": _OPT_TEXT,
            "occurrences": _INT,
            "first_seen": _TIME,
            "last_seen": _TIME,
            "opened_at": _TIME,
            "acknowledged_at": _OPT_TIME,
            "started_at": _OPT_TIME,
            "resolved_at": _OPT_TIME,
            "closed_at": _OPT_TIME,
            "ack_due": _TIME,
            "resolve_due": _TIME,
            "escalation_level": _INT,
            "escalation_contact": _OPT_TEXT,
            "threshold": _NUMBER,
            "opening_value": _NUMBER,
            "growth_reference": _NUMBER,
            "peak_value": _NUMBER,
            "expected_value": {"type": ["number", "null"]},
            "evidence": {"type": "array", "items": _ref("Evidence")},
            "keywords": {"type": "array", "items": _TEXT},
            "history": {"type": "array", "items": _ref("Observation")},
            "reopen_count": _INT,
            "opened_times": {"type": "array", "items": _TIME},
            "flapping": {"type": "boolean"},
            "sla_breaches": {"type": "array", "items": _TEXT},
            "delivery": {"type": "object", "additionalProperties": _TEXT},
            "channels": {"type": "array", "items": _TEXT},
            "revision": _INT,
        },
    },
    "TicketEvent": {
        "type": "object",
        "description": "One entry of the audit trail: who, when, what and why.",
        "properties": {
            "ticket_id": _TEXT,
            "event_id": _TEXT,
            "at": _TIME,
            "actor": _TEXT,
            "action": _TEXT,
            "from_status": _OPT_TEXT,
            "to_status": _TEXT,
            "note": _TEXT,
            "details": {"type": "object"},
        },
    },
    "ActionRequest": {
        "type": "object",
        "required": ["action"],
        "additionalProperties": False,
        "properties": {
            "action": {"enum": list(ACTIONS)},
            "note": {
                "type": "string",
                "description": "Why; required by reopen and comment.",
            },
            "owner": {"type": "string", "description": "assign, transfer only"},
            "team": {"type": "string", "description": "transfer only"},
        },
    },
    "Silence": {
        "type": "object",
        "properties": {
            "silence_id": _TEXT,
            "starts_at": _TIME,
            "expires_at": _TIME,
            "author": _TEXT,
            "reason": _TEXT,
            "topic": _OPT_TEXT,
            "keyword": _OPT_TEXT,
            "rule": _OPT_TEXT,
            "source": {
                "enum": ["api", "rules"],
                "description": "Made through the API, or in the rules file.",
            },
        },
    },
    "SilenceRequest": {
        "type": "object",
        "required": ["reason"],
        "additionalProperties": False,
        "description": "At least one of topic, keyword, rule; and expires_at or "
        "duration (e.g. 2h, 30m).",
        "properties": {
            "reason": _TEXT,
            "topic": _TEXT,
            "keyword": _TEXT,
            "rule": _TEXT,
            "starts_at": _TIME,
            "expires_at": _TIME,
            "duration": {"type": "string", "pattern": "^(\\d+[smhd])+$"},
        },
    },
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _TEXT}


_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

_PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Is the API up, and can it reach Elasticsearch? No token.",
            "security": [],
            "responses": {
                "200": _json({"type": "object"}, "Up"),
                "503": _json({"type": "object"}, "Elasticsearch is unreachable"),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document. No token.",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
        }
    },
    "/tickets": {
        "get": {
            "operationId": "listTickets",
            "summary": "Find tickets, most recently opened first (viewer).",
            "parameters": [
                _query("status", _TEXT, "Status, or several comma-separated"),
                _query("topic", _TEXT, "Exact watched topic"),
                _query("priority", _TEXT, "P1-P4, or several comma-separated"),
                _query("owner", _TEXT, "Exact owner"),
                _query("q", _TEXT, "Words that must all appear (id, topic, text)"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 500},
                    "Page size, default 50",
                ),
                _query("offset", {"type": "integer", "minimum": 0}, "Skip, default 0"),
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "tickets": {"type": "array", "items": _ref("Ticket")},
                            "total": _INT,
                            "limit": _INT,
                            "offset": _INT,
                        },
                    },
                    "A page of tickets",
                ),
                **_errors(401, 403, 422, 503),
            },
        }
    },
    "/tickets/{ticket_id}": {
        "get": {
            "operationId": "getTicket",
            "summary": "One ticket with its audit trail, oldest event first (viewer).",
            "parameters": [_path("ticket_id")],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "ticket": _ref("Ticket"),
                            "events": {"type": "array", "items": _ref("TicketEvent")},
                        },
                    },
                    "The ticket and its events",
                ),
                **_errors(401, 403, 404, 503),
            },
        }
    },
    "/tickets/{ticket_id}/actions": {
        "post": {
            "operationId": "actOnTicket",
            "summary": "Acknowledge, start, resolve, close, reopen, assign, "
            "transfer, escalate or comment (responder). The token's name is "
            "recorded as the actor.",
            "parameters": [_path("ticket_id")],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ActionRequest")}},
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "ticket": _ref("Ticket"),
                            "event": _ref("TicketEvent"),
                        },
                    },
                    "The ticket after the action, and the event recording it",
                ),
                **_errors(401, 403, 404, 409, 422, 503),
            },
        }
    },
    "/silences": {
        "get": {
            "operationId": "listSilences",
            "summary": "Silences of the API and the rules file (viewer).",
            "parameters": [
                _query("include_expired", {"type": "boolean"}, "Also expired ones")
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "silences": {"type": "array", "items": _ref("Silence")}
                        },
                    },
                    "Silences",
                ),
                **_errors(401, 403, 503),
            },
        },
        "post": {
            "operationId": "addSilence",
            "summary": "Mute matching triggers until it expires (admin).",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("SilenceRequest")}},
            },
            "responses": {
                "201": _json(
                    {"type": "object", "properties": {"silence": _ref("Silence")}},
                    "The silence",
                ),
                **_errors(401, 403, 422, 503),
            },
        },
    },
    "/silences/{silence_id}": {
        "delete": {
            "operationId": "expireSilence",
            "summary": "End a silence made through the API now (admin).",
            "parameters": [_path("silence_id")],
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"silence": _ref("Silence")}},
                    "The silence as it was ended",
                ),
                **_errors(401, 403, 404, 409, 503),
            },
        }
    },
}


def openapi_document(server_url: str = API_BASE) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the ticket API.

    Args:
        server_url: Where the API is mounted, relative or absolute.

    """
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "monitor ticket API",
            "version": "1",
            "description": "Alert tickets (预警工单) and silences. Send "
            "`Authorization: Bearer <token>`; roles viewer < responder < admin. "
            'Errors are `{"error": {"status": N, "message": "..."}}`.',
        },
        "servers": [{"url": server_url}],
        "security": _BEARER,
        "paths": _PATHS,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
