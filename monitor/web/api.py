"""The ticket API (aiohttp), mounted by the worker under ``/api``.

Routes (paths relative to the mount point; :mod:`monitor.web.openapi` has
the full description, served at ``GET /openapi.json``):

=======  ===============================  =========  ==========================
method   path                             role       what
=======  ===============================  =========  ==========================
GET      /health                          (none)     up, and Elasticsearch too?
GET      /openapi.json                    (none)     the OpenAPI 3.1 document
GET      /tickets                         viewer     find tickets
GET      /tickets/{ticket_id}             viewer     a ticket and its events
POST     /tickets/{ticket_id}/actions     responder  ``{"action": ..., ...}``
GET      /me                              viewer     the caller's name and role
GET      /stream                          viewer     ticket changes (SSE)
GET      /board                           viewer     open incidents, topic volume
GET      /reviews                         viewer     reviews of closed tickets
GET      /silences                        viewer     silences
POST     /silences                        admin      add a silence
DELETE   /silences/{silence_id}           admin      end a silence now
=======  ===============================  =========  ==========================

One action route takes every action, so that the audit trail, the
authorization and the error mapping live in one place. Every error is JSON,
``{"error": {"status": N, "message": "..."}}``: 401 missing or unknown
token, 403 role too low, 404 unknown ticket or silence, 405 a method the
path does not take (with ``Allow``), 409 the action is not allowed in the
ticket's status, 413 a body over 1 MiB, 422 malformed body or query (the
message names the field), 503 Elasticsearch unavailable (with
``Retry-After``). What is malformed is exactly what the OpenAPI document
says (:mod:`monitor.web.openapi` holds the bounds and patterns both use).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from monitor.analysis.tickets.codec import (
    event_to_dict,
    silence_to_dict,
    ticket_to_dict,
)
from monitor.analysis.tickets.model import (
    PRIORITIES,
    STATUSES,
    InvalidPolicyError,
    InvalidTransitionError,
    ReviewRequiredError,
    Ticket,
)
from monitor.analysis.tickets.silences import Silence
from monitor.config.durations import parse_duration
from monitor.errors import SinkUnavailable
from monitor.services.ticketing import (
    ACTION_PARAMS,
    InvalidActionError,
    SilenceNotFound,
    TicketNotFound,
    TicketService,
)
from monitor.sinks.elasticsearch.tickets import ConcurrentUpdate
from monitor.web.auth import ADMIN, RESPONDER, VIEWER, Authenticator, AuthError
from monitor.web.feed import TicketFeed
from monitor.web.openapi import (
    MAX_BOARD_HOURS,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_SILENCE,
    NON_BLANK,
    NOTE_ACTIONS,
    RESULT_WINDOW,
    SILENCE_DURATION,
    openapi_document,
)

log = logging.getLogger(__name__)

SERVICE_KEY = web.AppKey("ticket_service", TicketService)
AUTH_KEY = web.AppKey("ticket_auth", Authenticator)
FEED_KEY = web.AppKey("ticket_feed", TicketFeed)
#: Seconds between keep-alive comments on ``GET /stream``.
STREAM_PING_SECONDS = 15.0
#: How far before the earliest evidence post repost counts look.
COPIES_LOOKBACK = timedelta(hours=1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Unprocessable(Exception):
    """A request body or query is malformed (422); the message names the field."""


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Return ``{"error": {"status": N, "message": ...}}`` with that status."""
    return web.json_response(
        {"error": {"status": status, "message": message}},
        status=status,
        headers=headers,
        dumps=_dumps,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _ok(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def error_status(exc: Exception) -> tuple[int, str] | None:
    """Return the API's status and message for a ticket-service failure.

    ``None`` for what is not one (the middleware answers 500). Shared with
    the CLI, so a refused action reads the same wherever it was tried.
    """
    if isinstance(exc, AuthError):
        return exc.status, exc.reason
    if isinstance(exc, TicketNotFound | SilenceNotFound):
        return 404, str(exc)
    if isinstance(exc, ReviewRequiredError):
        return 422, str(exc)
    if isinstance(exc, InvalidTransitionError | ConcurrentUpdate):
        return 409, str(exc)
    if isinstance(exc, InvalidActionError | Unprocessable | InvalidPolicyError):
        return 422, str(exc)
    if isinstance(exc, SinkUnavailable):
        return 503, "Elasticsearch is unavailable; try again later"
    return None


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to a JSON error with the right status."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        # A 405 names the methods the path takes (RFC 9110).
        kept = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        if exc.empty_body:
            return error_response(exc.status, exc.reason, kept)
        return error_response(exc.status, exc.text or exc.reason, kept)
    except Exception as exc:
        mapped = error_status(exc)
        if mapped is None:
            log.exception("ticket API: %s %s failed", request.method, request.path)
            return error_response(500, "internal error; see the worker log")
        status, message = mapped
        headers: dict[str, str] = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, SinkUnavailable):
            log.warning("ticket API: %s", exc)
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return error_response(status, message, headers or None)


def _require(request: web.Request, role: str) -> str:
    """Return the caller's name, if their token has ``role`` or above."""
    token = request.app[AUTH_KEY].authorize(request.headers.get("Authorization"), role)
    return token.name


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError):
        raise Unprocessable("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise Unprocessable("the body must be a JSON object")
    return body


_NON_BLANK = re.compile(NON_BLANK)
_SILENCE_DURATION = re.compile(SILENCE_DURATION)
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def _text(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    """Return the field's text, stripped; None if absent (null is not absent)."""
    if name not in body:
        if required:
            raise Unprocessable(f"{name}: required")
        return None
    value = body[name]
    if not isinstance(value, str) or not _NON_BLANK.search(value):
        raise Unprocessable(f"{name}: must be non-empty text")
    return value.strip()


def _moment(body: Mapping[str, Any], name: str) -> datetime | None:
    value = _text(body, name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Unprocessable(f"{name}: {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise Unprocessable(f"{name}: {value!r} needs a UTC offset")
    return moment


def _choices(
    query: Mapping[str, str], name: str, allowed: tuple[str, ...]
) -> list[str] | None:
    """Values of ``a,b,...`` (exactly: no spaces, no empty items); None if empty."""
    raw = query.get(name)
    if not raw:
        return None
    values = raw.split(",")
    for value in values:
        if value not in allowed:
            raise Unprocessable(
                f"{name}: unknown value {value!r}; expected {', '.join(allowed)}"
            )
    return values


def _integer(
    query: Mapping[str, str], name: str, default: int, low: int, high: int
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise Unprocessable(f"{name}: must be a whole number, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise Unprocessable(f"{name}: must be {low}-{high}, got {value}")
    return value


# --- handlers -----------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """Report whether the API is up and Elasticsearch answers (no token)."""
    up = await request.app[SERVICE_KEY].store.ping()
    body = {"status": "ok" if up else "degraded", "elasticsearch": up}
    return _ok(body, 200 if up else 503)


async def openapi(request: web.Request) -> web.Response:
    """Serve the OpenAPI document, with the server URL where this API is mounted."""
    prefix = request.path.removesuffix("/openapi.json") or "/"
    return _ok(openapi_document(prefix))


async def list_tickets(request: web.Request) -> web.Response:
    """``GET /tickets``: filters status, topic, priority, owner, q, limit, offset."""
    _require(request, VIEWER)
    query = request.query
    offset = _integer(query, "offset", 0, 0, MAX_OFFSET)
    # Elasticsearch serves no page past its result window: cut the page there.
    limit = min(_integer(query, "limit", 50, 1, MAX_LIMIT), RESULT_WINDOW - offset)
    tickets, total = await request.app[SERVICE_KEY].list(
        status=_choices(query, "status", STATUSES),
        topic=query.get("topic") or None,
        priority=_choices(query, "priority", PRIORITIES),
        owner=query.get("owner") or None,
        team=query.get("team") or None,
        text=query.get("q") or None,
        limit=limit,
        offset=offset,
    )
    return _ok(
        {
            "tickets": [ticket_to_dict(ticket) for ticket in tickets],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


async def get_ticket(request: web.Request) -> web.Response:
    """``GET /tickets/{ticket_id}``: the ticket and its audit trail."""
    _require(request, VIEWER)
    service = request.app[SERVICE_KEY]
    ticket, events = await service.get(request.match_info["ticket_id"])
    return _ok(
        {
            "ticket": ticket_to_dict(ticket),
            "events": [event_to_dict(event) for event in events],
            "copies": await _copies(service, ticket),
        }
    )


async def _copies(service: Any, ticket: Any) -> dict[str, int]:
    """Per evidence post, the posts sharing its text since the incident began.

    Counted from an hour before the earliest evidence post (or the opening)
    to now. Best effort: the ticket is shown without counts if the posts
    index cannot answer.
    """
    evidence = list(ticket.evidence)
    if not evidence:
        return {}
    starts = [e.published_at for e in evidence if e.published_at is not None]
    since = min([*starts, ticket.opened_at]) - COPIES_LOOKBACK
    try:
        counts: dict[str, int] = await service.store.copies(
            [e.post_id for e in evidence], since, service.now()
        )
        return counts
    except Exception as exc:  # noqa: BLE001 - the counts are an extra
        log.warning("repost counts of %s unavailable: %s", ticket.ticket_id, exc)
        return {}


def check_action(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Check an action request as the API does; return action, note and params.

    The CLI (``monitor tickets ack|start|...``) builds the same body and
    calls this, so both refuse the same requests with the same words.

    Raises:
        Unprocessable: The body is malformed (422); the message names the field.

    """
    action = _text(body, "action", required=True)
    assert action is not None
    if action not in ACTION_PARAMS:
        raise Unprocessable(
            f"action: unknown action {action!r}; expected one of "
            f"{', '.join(ACTION_PARAMS)}"
        )
    allowed = {"action", "note"} | ACTION_PARAMS[action]
    for name in body:
        if name not in allowed:
            raise Unprocessable(
                f"{name}: not a field of {action}; expected "
                f"{', '.join(sorted(allowed))}"
            )
    note = body.get("note", "")
    if not isinstance(note, str):
        raise Unprocessable("note: must be text")
    if action in NOTE_ACTIONS and not _NON_BLANK.search(note):
        raise Unprocessable(f"note: {action} needs a note saying why")
    params = {name: body[name] for name in ACTION_PARAMS[action] if name in body}
    if action == "assign" and "owner" not in params:
        raise Unprocessable("owner: assign needs the new owner")
    if action == "transfer" and not params:
        raise Unprocessable("owner or team: transfer needs one or both")
    return action, note, params


async def act(request: web.Request) -> web.Response:
    """``POST /tickets/{ticket_id}/actions``: apply one action as the caller."""
    actor = _require(request, RESPONDER)
    action, note, params = check_action(await _json_object(request))
    ticket, event = await request.app[SERVICE_KEY].act(
        request.match_info["ticket_id"], action, actor, note, **params
    )
    return _ok({"ticket": ticket_to_dict(ticket), "event": event_to_dict(event)})


async def me(request: web.Request) -> web.Response:
    """``GET /me``: the caller's token name and role (a console hides the rest)."""
    token = request.app[AUTH_KEY].authorize(
        request.headers.get("Authorization"), VIEWER
    )
    return _ok({"name": token.name, "role": token.role})


async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /stream``: ticket changes as server-sent events (see the OpenAPI text)."""
    _require(request, VIEWER)
    feed = request.app[FEED_KEY]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        }
    )
    await response.prepare(request)
    async with feed.subscribe() as queue:
        try:
            # Greet only once the worker follows the tickets topic: a console
            # refetches on hello, and from then on misses nothing.
            while not feed.following.is_set():
                try:
                    await asyncio.wait_for(
                        feed.following.wait(), STREAM_PING_SECONDS
                    )
                except asyncio.TimeoutError:
                    await response.write(b": waiting for the ticket feed\n\n")
            await response.write(b"event: hello\ndata: {}\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), STREAM_PING_SECONDS)
                except asyncio.TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                if message is None:  # fell behind: end, the client reconnects
                    break
                await response.write(b"event: ticket\ndata: " + message + b"\n\n")
        except ConnectionResetError:  # the client went away
            pass
    return response


async def board(request: web.Request) -> web.Response:
    """``GET /board``: open incidents by priority, negative volume per topic."""
    _require(request, VIEWER)
    hours = _integer(request.query, "hours", 6, 1, MAX_BOARD_HOURS)
    service = request.app[SERVICE_KEY]
    since = service.now() - timedelta(hours=hours)
    open_counts = await service.store.open_by_priority()
    docs = await service.store.topic_counts(since)
    return _ok(board_view(open_counts, docs, hours))


def board_view(
    open_by_priority: Mapping[str, int],
    docs: list[dict[str, Any]],
    hours: int,
) -> dict[str, Any]:
    """Shape the board: one bucket list per topic, oldest first.

    ``docs`` are count documents of kind ``topic``; the latest document of a
    window wins (an open window is rewritten as it fills).
    """
    topics: dict[str, dict[str, dict[str, Any]]] = {}
    seconds = 0
    for doc in docs:
        topic, start = str(doc.get("key") or ""), str(doc.get("window_start"))
        if not topic:
            continue
        seconds = seconds or int(doc.get("window_seconds") or 0)
        topics.setdefault(topic, {})[start] = {
            "start": start,
            "posts": int(doc.get("posts") or 0),
            "negative": int(doc.get("negative") or 0),
        }
    return {
        "open_by_priority": {p: int(open_by_priority.get(p, 0)) for p in PRIORITIES},
        "bucket_seconds": seconds,
        "hours": hours,
        "topics": [
            {"topic": topic, "buckets": [windows[k] for k in sorted(windows)]}
            for topic, windows in sorted(topics.items())
        ],
    }


async def reviews(request: web.Request) -> web.Response:
    """``GET /reviews``: reviews (复盘) of closed tickets, latest first."""
    _require(request, VIEWER)
    limit = _integer(request.query, "limit", 50, 1, MAX_LIMIT)
    tickets = await request.app[SERVICE_KEY].store.reviews(limit)
    return _ok({"reviews": [review_entry(t) for t in tickets if t.review]})


def review_entry(ticket: Ticket) -> dict[str, Any]:
    """Return the review list's entry for a closed ticket with a review."""
    review = ticket.review
    assert review is not None
    return {
        "ticket_id": ticket.ticket_id,
        "topic": ticket.topic,
        "priority": str(ticket.priority),
        "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
        "closed_by": review.author,
        "root_cause": review.root_cause,
        "resolution": review.resolution,
        "lessons": review.lessons,
    }


def _silence_json(silence: Silence, source: str) -> dict[str, Any]:
    return {**silence_to_dict(silence), "source": source}


async def list_silences(request: web.Request) -> web.Response:
    """``GET /silences``: stored silences, then the rules file's."""
    _require(request, VIEWER)
    raw = request.query.get("include_expired", "false").lower()
    if raw not in {"true", "false", "1", "0"}:
        raise Unprocessable("include_expired: must be true or false")
    include_expired = raw in {"true", "1"}
    service = request.app[SERVICE_KEY]
    stored = await service.silences(include_expired=include_expired)
    now = service.now()
    configured = [
        s
        for s in service.configured_silences()
        if include_expired or s.expires_at > now
    ]
    return _ok(
        {
            "silences": [_silence_json(s, "api") for s in stored]
            + [_silence_json(s, "rules") for s in configured]
        }
    )


_SILENCE_FIELDS = frozenset(
    {
        "reason",
        "topic",
        "keyword",
        "rule",
        "starts_at",
        "expires_at",
        "duration",
        "clock",
    }
)


async def add_silence(request: web.Request) -> web.Response:
    """``POST /silences``: mute matching triggers; the caller is the author."""
    author = _require(request, ADMIN)
    body = await _json_object(request)
    for name in body:
        if name not in _SILENCE_FIELDS:
            raise Unprocessable(
                f"{name}: not a silence field; expected "
                f"{', '.join(sorted(_SILENCE_FIELDS))}"
            )
    reason = _text(body, "reason", required=True)
    assert reason is not None
    matchers = {name: _text(body, name) for name in ("topic", "keyword", "rule")}
    if not any(matchers.values()):
        raise Unprocessable("topic, keyword or rule: a silence needs one to match")
    clock = _text(body, "clock") or "event"
    if clock not in ("event", "wall"):
        raise Unprocessable(f"clock: {clock!r} is not event or wall")
    service = request.app[SERVICE_KEY]
    starts_at = _moment(body, "starts_at")
    expires_at = _moment(body, "expires_at")
    duration = _text(body, "duration")
    if (expires_at is None) == (duration is None):
        raise Unprocessable("expires_at or duration: give exactly one")
    now = service.now()
    start = starts_at or now
    days = MAX_SILENCE.days
    # Aware times compare and subtract without overflow at any year; adding a
    # duration does not overflow once the start is bounded.
    if start - now > MAX_SILENCE:
        raise Unprocessable(f"starts_at: at most {days} days from now")
    if duration is not None:
        expires_at = start + _silence_duration(duration)
    assert expires_at is not None
    if expires_at - start > MAX_SILENCE:
        raise Unprocessable(f"expires_at: at most {days} days after the start")
    silence = await service.add_silence(
        author=author,
        reason=reason,
        expires_at=expires_at,
        starts_at=starts_at,
        clock=clock,
        **matchers,
    )
    return _ok({"silence": _silence_json(silence, "api")}, 201)


def _silence_duration(text: str) -> timedelta:
    """Parse a silence's ``duration``: the documented form, at most 90 days.

    The form is checked first: it bounds every number, so parsing cannot
    overflow ``timedelta`` (``525531871929662s`` did).
    """
    if not _SILENCE_DURATION.fullmatch(text):
        raise Unprocessable(
            f"duration: {text!r} is not a duration of at most "
            f"{MAX_SILENCE.days} days like 90d, 36h or 1h30m"
        )
    return parse_duration(text)


async def expire_silence(request: web.Request) -> web.Response:
    """``DELETE /silences/{silence_id}``: end a stored silence now."""
    actor = _require(request, ADMIN)
    silence_id = request.match_info["silence_id"]
    service = request.app[SERVICE_KEY]
    if any(s.silence_id == silence_id for s in service.configured_silences()):
        return error_response(
            409, f"silence {silence_id} is in the rules file; remove it there"
        )
    silence = await service.expire_silence(silence_id, actor)
    return _ok({"silence": _silence_json(silence, "api")})


def api_app(
    service: TicketService, auth: Authenticator, feed: TicketFeed | None = None
) -> web.Application:
    """Build the ticket API application.

    Mount it in the worker's web server with
    ``web_app.add_subapp("/api", api_app(service, auth))``.

    Args:
        service: The ticket service (its store is the source of truth).
        auth: Checks the callers' bearer tokens.
        feed: Live ticket changes for ``GET /stream`` (an empty feed if
            none: the stream then only pings).

    """
    app = web.Application(middlewares=[_errors])
    app[SERVICE_KEY] = service
    app[AUTH_KEY] = auth
    app[FEED_KEY] = feed if feed is not None else TicketFeed()
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/tickets", list_tickets)
    app.router.add_get("/tickets/{ticket_id}", get_ticket)
    app.router.add_post("/tickets/{ticket_id}/actions", act)
    app.router.add_get("/me", me)
    app.router.add_get("/stream", stream)
    app.router.add_get("/board", board)
    app.router.add_get("/reviews", reviews)
    app.router.add_get("/silences", list_silences)
    app.router.add_post("/silences", add_silence)
    app.router.add_delete("/silences/{silence_id}", expire_silence)
    return app
