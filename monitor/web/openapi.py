"""The OpenAPI 3.1 document of the ticket API (served at ``/api/openapi.json``).

The document states every rule :mod:`monitor.web.api` enforces on a request:
the constants below are what both use, so a request the document calls valid
is one the API accepts. The only rules a JSON Schema cannot state are a
silence's times relative to the server's clock (see ``SilenceRequest``); they
are written in its description, and refused with 422 like the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from monitor.analysis.tickets.lifecycle import ACTIONS, MAX_REVIEW_CHARS
from monitor.analysis.tickets.model import PRIORITIES, STATUSES
from monitor.services.ticketing import ACTION_PARAMS
from monitor.sinks.elasticsearch.tickets import MAX_PAGE_SIZE as MAX_LIMIT
from monitor.sinks.elasticsearch.tickets import MAX_RESULT_WINDOW as RESULT_WINDOW

#: Paths relative to where the API is mounted (``/api`` in the worker).
API_BASE = "/api"

# MAX_LIMIT (largest page of ``GET /tickets``) and RESULT_WINDOW (a page
# never reaches past this many tickets) are the ticket store's own bounds.
#: Largest ``offset`` of ``GET /tickets`` (the page is cut at the window).
MAX_OFFSET = RESULT_WINDOW - 1

#: Longest silence, and how far ahead of now one may start.
MAX_SILENCE = timedelta(days=90)
#: Longest look-back of ``GET /board`` (hours).
MAX_BOARD_HOURS = 48

#: Pattern of a text that has a character other than white space.
NON_BLANK = r"\S"

#: Actions that need a note saying why.
NOTE_ACTIONS = ("reopen", "comment")


def choice_list_pattern(choices: Iterable[str]) -> str:
    """Return the pattern of one or more ``choices`` joined by commas.

    Empty text matches too (no filter); spaces and empty items do not.
    """
    one = "(?:" + "|".join(re.escape(choice) for choice in choices) + ")"
    return f"^(?:{one}(?:,{one})*)?$"


def _digit_range(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _at_most(limit: int) -> str:
    """Return a pattern of the decimal numbers 1..limit, without leading zeros."""
    digits = str(limit)
    width = len(digits)
    options = [f"[1-9][0-9]{{0,{width - 2}}}"] if width > 1 else []
    for position, digit in enumerate(digits):
        low = 1 if position == 0 else 0
        if int(digit) > low:
            rest = width - position - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            options.append(digits[:position] + _digit_range(low, int(digit) - 1) + tail)
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


def _silence_duration_pattern(longest: timedelta) -> str:
    """Durations of at most ``longest`` (whole days), in the form people write.

    Either one number and unit (``90d``, ``36h``, ``90m``, ``3600s``), or
    days, hours, minutes and seconds in that order, each below the next unit
    and days below the limit (``1h30m``, ``2d12h``). No part is zero or has
    leading zeros.
    """
    days = longest.days
    hours, minutes, seconds = _at_most(23), _at_most(59), _at_most(59)
    combined = (
        f"{_at_most(days - 1)}d(?:{hours}h)?(?:{minutes}m)?(?:{seconds}s)?"
        f"|{hours}h(?:{minutes}m)?(?:{seconds}s)?"
        f"|{minutes}m(?:{seconds}s)?"
    )
    single = (
        f"{_at_most(days)}d|{_at_most(days * 24)}h"
        f"|{_at_most(days * 24 * 60)}m|{_at_most(days * 24 * 3600)}s"
    )
    return f"^(?:{combined}|{single})$"


#: Pattern of a silence's ``duration``: at most :data:`MAX_SILENCE`.
SILENCE_DURATION = _silence_duration_pattern(MAX_SILENCE)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(
    schema: dict[str, Any],
    description: str,
    headers: dict[str, Any] | None = None,
    links: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    if links:
        response["links"] = links
    return response


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


_ERROR_TEXT = {
    401: "Missing, malformed or unknown token",
    403: "The token's role is too low",
    404: "No such ticket or silence",
    409: "Not allowed in the ticket's status, or a silence of the rules file",
    413: "The body is larger than the server accepts (1 MiB)",
    422: "The request is malformed; the message names the field",
    503: "Elasticsearch is unavailable; retry after Retry-After seconds",
}
_ERROR_HEADERS = {
    401: {"WWW-Authenticate": _header("Always Bearer", {"const": "Bearer"})},
    503: {
        "Retry-After": _header(
            "Seconds to wait", {"type": "string", "pattern": "^[1-9][0-9]*$"}
        )
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): _json(
            _ref("Error"), _ERROR_TEXT[status], headers=_ERROR_HEADERS.get(status)
        )
        for status in statuses
    }


def _link(operation_id: str, parameter: str, pointer: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "parameters": {parameter: f"$response.body#{pointer}"},
    }


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """Return an object schema whose ``properties`` are all always present."""
    return {"type": "object", "required": list(properties), "properties": properties}


_TIME = {"type": "string", "format": "date-time"}
_OPT_TIME = {"type": ["string", "null"], "format": "date-time"}
_OPT_TEXT = {"type": ["string", "null"]}
_TEXT = {"type": "string"}
_INT = {"type": "integer"}
_NUMBER = {"type": "number"}
_OPT_NUMBER = {"type": ["number", "null"]}
_NON_BLANK = {"type": "string", "pattern": NON_BLANK}

_NOTE = {"type": "string", "description": "Why, in the actor's words"}
_PEOPLE = {
    "owner": {**_NON_BLANK, "description": "Who works on the ticket"},
    "team": {**_NON_BLANK, "description": "Team that owns the ticket"},
}
_REVIEW = {
    name: {**_NON_BLANK, "maxLength": MAX_REVIEW_CHARS, "description": what}
    for name, what in (
        ("root_cause", "Why it happened (复盘: 原因)"),
        ("resolution", "What was done (处理)"),
        ("lessons", "What to change (改进)"),
    )
}
#: Actions that take nothing but an optional note.
_PLAIN_ACTIONS = [
    str(a) for a in ACTIONS if a not in NOTE_ACTIONS and not ACTION_PARAMS[a]
]


def _action(
    actions: list[str], properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["action", *required],
        "additionalProperties": False,
        "properties": {"action": {"enum": actions}, **properties},
    }


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
    "Health": _object(
        {"status": {"enum": ["ok", "degraded"]}, "elasticsearch": {"type": "boolean"}}
    ),
    "Evidence": _object(
        {
            "post_id": _TEXT,
            "excerpt": _TEXT,
            "followers": _INT,
            "reposts": _INT,
            "published_at": _OPT_TIME,
            "author": _OPT_TEXT,
            "url": _OPT_TEXT,
        }
    ),
    "Observation": _object(
        {
            "window_start": _TIME,
            "window_end": _TIME,
            "observed_value": _NUMBER,
            "expected_value": _OPT_NUMBER,
        }
    ),
    "Ticket": {
        **_object(
            {
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
                "expected_value": _OPT_NUMBER,
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
                "review": {
                    "oneOf": [{"type": "null"}, _ref("Review")],
                    "description": "The review (复盘) of its latest close",
                },
            }
        ),
        "description": "An alert ticket (预警工单); times are ISO 8601 with offset.",
    },
    "Review": _object(
        {
            "root_cause": _TEXT,
            "resolution": _TEXT,
            "lessons": _TEXT,
            "author": _TEXT,
            "at": _TIME,
        }
    ),
    "ReviewEntry": _object(
        {
            "ticket_id": _TEXT,
            "topic": _TEXT,
            "priority": {"enum": list(PRIORITIES)},
            "closed_at": _OPT_TIME,
            "closed_by": _TEXT,
            "root_cause": _TEXT,
            "resolution": _TEXT,
            "lessons": _TEXT,
        }
    ),
    "Me": _object({"name": _TEXT, "role": {"enum": ["viewer", "responder", "admin"]}}),
    "Board": _object(
        {
            "open_by_priority": {
                "type": "object",
                "required": list(PRIORITIES),
                "additionalProperties": _INT,
            },
            "bucket_seconds": _INT,
            "hours": _INT,
            "topics": {
                "type": "array",
                "items": _object(
                    {
                        "topic": _TEXT,
                        "buckets": {
                            "type": "array",
                            "items": _object(
                                {"start": _TIME, "posts": _INT, "negative": _INT}
                            ),
                        },
                    }
                ),
            },
        }
    ),
    "TicketEvent": {
        **_object(
            {
                "ticket_id": _TEXT,
                "event_id": _TEXT,
                "at": _TIME,
                "actor": _TEXT,
                "action": _TEXT,
                "from_status": {"enum": [*STATUSES, None]},
                "to_status": {"enum": list(STATUSES)},
                "note": _TEXT,
                "details": {"type": "object"},
            }
        ),
        "description": "One entry of the audit trail: who, when, what and why.",
    },
    "ActionRequest": {
        "type": "object",
        "description": "One action; each takes its own fields (see oneOf): "
        f"{', '.join(NOTE_ACTIONS)} need a note with some text; assign needs "
        "an owner and may change the team; transfer needs an owner or a team "
        "or both; close takes a review (root_cause, resolution, lessons: all "
        "three, required for the priorities the rules file names, P1 and P2 "
        "by default); the others take only a note.",
        "required": ["action"],
        "additionalProperties": False,
        "properties": {
            "action": {"enum": list(ACTIONS)},
            "note": _NOTE,
            **_PEOPLE,
            **_REVIEW,
        },
        "oneOf": [
            _ref("PlainAction"),
            _ref("NotedAction"),
            _ref("AssignAction"),
            _ref("TransferAction"),
            _ref("CloseAction"),
        ],
    },
    "PlainAction": _action(_PLAIN_ACTIONS, {"note": _NOTE}, []),
    "NotedAction": _action(
        list(NOTE_ACTIONS),
        {"note": {**_NOTE, "pattern": NON_BLANK, "description": "Why (required)"}},
        ["note"],
    ),
    "CloseAction": _action(
        ["close"],
        {"note": _NOTE, **_REVIEW},
        [],
    ),
    "AssignAction": _action(["assign"], {"note": _NOTE, **_PEOPLE}, ["owner"]),
    "TransferAction": {
        **_action(["transfer"], {"note": _NOTE, **_PEOPLE}, []),
        "anyOf": [{"required": ["owner"]}, {"required": ["team"]}],
    },
    "Silence": _object(
        {
            "silence_id": _TEXT,
            "starts_at": _TIME,
            "expires_at": _TIME,
            "author": _TEXT,
            "reason": _TEXT,
            "topic": _OPT_TEXT,
            "keyword": _OPT_TEXT,
            "rule": _OPT_TEXT,
            "clock": {
                "enum": ["event", "wall"],
                "description": "event: mutes triggers whose posts were published "
                "between starts_at and expires_at, however late they are "
                "processed; wall: mutes whatever arrives in that time.",
            },
            "source": {
                "enum": ["api", "rules"],
                "description": "Made through the API, or in the rules file.",
            },
        }
    ),
    "SilenceRequest": {
        "type": "object",
        "description": "Mutes triggers matching every matcher given (topic, "
        "keyword, rule: at least one). It lasts a duration or until "
        "expires_at (exactly one of them). Rules on times, refused with 422: "
        f"starts_at (default: now) is at most {MAX_SILENCE.days} days after "
        "now; the silence ends after now, after it starts, and at most "
        f"{MAX_SILENCE.days} days after it starts. Times need a UTC offset.",
        "required": ["reason"],
        "additionalProperties": False,
        "properties": {
            "reason": {**_NON_BLANK, "description": "Why (required)"},
            "topic": _NON_BLANK,
            "keyword": _NON_BLANK,
            "rule": _NON_BLANK,
            "clock": {
                "enum": ["event", "wall"],
                "description": "Which time the silence is judged by (default "
                "event: the posts' published time; wall: arrival)",
            },
            "starts_at": _TIME,
            "expires_at": _TIME,
            "duration": {
                "type": "string",
                "pattern": SILENCE_DURATION,
                "description": f"At most {MAX_SILENCE.days} days: one number and "
                "unit (s, m, h, d: 90d, 36h, 90m) or days, hours, minutes, "
                "seconds in that order, each below the next unit (1h30m, 2d12h)",
            },
        },
        "allOf": [
            {"anyOf": [{"required": [name]} for name in ("topic", "keyword", "rule")]},
            {"oneOf": [{"required": ["expires_at"]}, {"required": ["duration"]}]},
        ],
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


def _body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

_TICKET_LINKS = {
    "GetTicket": _link("getTicket", "ticket_id", "/ticket/ticket_id"),
    "ActOnTicket": _link("actOnTicket", "ticket_id", "/ticket/ticket_id"),
}

_PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Is the API up, and can it reach Elasticsearch? No token.",
            "security": [],
            "responses": {
                "200": _json(_ref("Health"), "Up"),
                "503": _json(_ref("Health"), "Elasticsearch is unreachable"),
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
                _query(
                    "status",
                    {"type": "string", "pattern": choice_list_pattern(STATUSES)},
                    "A status, or several joined by commas",
                ),
                _query("topic", _TEXT, "Exact watched topic"),
                _query(
                    "priority",
                    {"type": "string", "pattern": choice_list_pattern(PRIORITIES)},
                    "A priority, or several joined by commas",
                ),
                _query("owner", _TEXT, "Exact owner"),
                _query("team", _TEXT, "Exact team"),
                _query("q", _TEXT, "Words that must all appear (id, topic, text)"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    "Page size, default 50; cut so that offset + limit stays "
                    f"within {RESULT_WINDOW}",
                ),
                _query(
                    "offset",
                    {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                    "Skip, default 0",
                ),
            ],
            "responses": {
                "200": _json(
                    _object(
                        {
                            "tickets": {"type": "array", "items": _ref("Ticket")},
                            "total": _INT,
                            "limit": {**_INT, "description": "The page size used"},
                            "offset": _INT,
                        }
                    ),
                    "A page of tickets",
                    links={
                        name: _link(op, "ticket_id", "/tickets/0/ticket_id")
                        for name, op in (
                            ("GetTicket", "getTicket"),
                            ("ActOnTicket", "actOnTicket"),
                        )
                    },
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
                    _object(
                        {
                            "ticket": _ref("Ticket"),
                            "events": {"type": "array", "items": _ref("TicketEvent")},
                            "copies": {
                                "type": "object",
                                "additionalProperties": {"type": "integer"},
                                "description": "Per evidence post id: posts sharing "
                                "its text's SimHash (reposts, the post included) "
                                "from an hour before the earliest evidence post to "
                                "now; empty if the posts index cannot answer.",
                            },
                        }
                    ),
                    "The ticket, its events and its evidence's repost counts",
                    links={"ActOnTicket": _TICKET_LINKS["ActOnTicket"]},
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
            "requestBody": _body("ActionRequest"),
            "responses": {
                "200": _json(
                    _object({"ticket": _ref("Ticket"), "event": _ref("TicketEvent")}),
                    "The ticket after the action, and the event recording it",
                    links=_TICKET_LINKS,
                ),
                **_errors(401, 403, 404, 409, 413, 422, 503),
            },
        }
    },
    "/me": {
        "get": {
            "operationId": "whoAmI",
            "summary": "The caller's token name and role (viewer).",
            "responses": {"200": _json(_ref("Me"), "Who"), **_errors(401)},
        }
    },
    "/stream": {
        "get": {
            "operationId": "streamTickets",
            "summary": "Ticket changes as they happen, from every worker "
            "(viewer). Server-sent events over a plain response (read it with "
            "fetch(), since EventSource cannot send the bearer header): "
            "`event: ticket` with data `{ticket, event}`, `event: hello` once "
            "this worker follows every worker's changes (refetch what you "
            "show then; until then only comments are sent), `: ping` every "
            "15 s. The stream ends when the worker stops following: reconnect.",
            "responses": {
                "200": {
                    "description": "An endless text/event-stream",
                    "content": {
                        "text/event-stream": {
                            "schema": {
                                "type": "object",
                                "description": "Each event's data: {} for "
                                "hello, {ticket, event} for ticket",
                            }
                        }
                    },
                },
                **_errors(401),
            },
        }
    },
    "/board": {
        "get": {
            "operationId": "board",
            "summary": "Open incidents by priority, and posts and negative posts "
            "per watched topic per bucket over the last hours (viewer).",
            "parameters": [
                _query(
                    "hours",
                    {"type": "integer", "minimum": 1, "maximum": MAX_BOARD_HOURS},
                    "Look-back, default 6",
                )
            ],
            "responses": {
                "200": _json(_ref("Board"), "The board"),
                **_errors(401, 422, 503),
            },
        }
    },
    "/reviews": {
        "get": {
            "operationId": "listReviews",
            "summary": "Reviews (复盘) of closed tickets, latest first (viewer).",
            "parameters": [
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    "How many, default 50",
                )
            ],
            "responses": {
                "200": _json(
                    _object(
                        {"reviews": {"type": "array", "items": _ref("ReviewEntry")}}
                    ),
                    "Reviews",
                ),
                **_errors(401, 422, 503),
            },
        }
    },
    "/silences": {
        "get": {
            "operationId": "listSilences",
            "summary": "Silences of the API and the rules file (viewer).",
            "parameters": [
                _query(
                    "include_expired",
                    {"type": "boolean"},
                    "Also expired ones (true or false, default false)",
                )
            ],
            "responses": {
                "200": _json(
                    _object({"silences": {"type": "array", "items": _ref("Silence")}}),
                    "Silences",
                    links={
                        "ExpireSilence": _link(
                            "expireSilence", "silence_id", "/silences/0/silence_id"
                        )
                    },
                ),
                **_errors(401, 403, 422, 503),
            },
        },
        "post": {
            "operationId": "addSilence",
            "summary": "Mute matching triggers until it expires (admin).",
            "requestBody": _body("SilenceRequest"),
            "responses": {
                "201": _json(
                    _object({"silence": _ref("Silence")}),
                    "The silence",
                    links={
                        "ExpireSilence": _link(
                            "expireSilence", "silence_id", "/silence/silence_id"
                        )
                    },
                ),
                **_errors(401, 403, 413, 422, 503),
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
                    _object({"silence": _ref("Silence")}),
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
            'Errors are `{"error": {"status": N, "message": "..."}}`. A method '
            "a path does not take is answered 405 with `Allow`.",
        },
        "servers": [{"url": server_url}],
        "security": _BEARER,
        "paths": _PATHS,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
