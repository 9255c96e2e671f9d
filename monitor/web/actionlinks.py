"""The action-link API (aiohttp): what the console page ``/console/a`` calls.

A chat card's button opens ``/console/a#t=<token>`` (see
:mod:`monitor.web.links`); the page reads the token from the fragment and
POSTs it here. The token is the credential: no bearer header, no cookie
(nothing a foreign site could make a browser send). Mounted by the worker
under ``/api/links``:

=======  ==========  ============================================================
method   path        what
=======  ==========  ============================================================
POST     /inspect    ``{"token"}`` -> the ticket, the action, whom and where the
                     link was issued to, its expiry, and whether it is usable
POST     /redeem     ``{"token"}`` -> apply the action once; the ticket and event
=======  ==========  ============================================================

Every response carries ``Referrer-Policy: no-referrer``, ``Cache-Control:
no-store`` and ``Content-Security-Policy: frame-ancestors 'none'``; other
methods answer 405 and change nothing; a body over 8 KiB answers 413.

Errors are ``{"error": {"status", "message", "code", "state"?}}``:

* 400 ``malformed``: not a JSON object with a ``token``, or not a token;
* 403 ``forged`` (a changed byte), ``unknown_key`` (signed with a key this
  server does not have), ``expired``;
* 404 ``unknown_ticket``;
* 409 ``used`` (the link was redeemed before: "already acknowledged by X at
  T"), ``stale`` (the ticket changed since the link was issued), ``status``
  (the action is not allowed in the ticket's status); ``state`` is the
  ticket's current summary;
* 503 Elasticsearch unavailable (with ``Retry-After``).

``inspect`` answers 200 for every authentic token, expired or used ones
too, with ``usable`` and the ``reason``; it changes nothing.

A redeem checks, in order: signature and expiry, the ledger (used before?),
the ticket (changed since the link's revision? delivery records and the
system's "still unacknowledged" reminders do not count as changes), then
claims the link in the ledger (``op_type=create``: of concurrent redeems
exactly one goes on) and applies the action with
:meth:`~monitor.services.ticketing.TicketService.act` as the link's intended
actor, noting ``via link issued to <actor> in <channel>``: a group card is
read by the whole group, so that is what the audit trail can vouch for.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from monitor.analysis.tickets.codec import event_to_dict, ticket_to_dict
from monitor.analysis.tickets.lifecycle import ACTION_SOURCES
from monitor.analysis.tickets.model import (
    SYSTEM_ACTOR,
    InvalidTransitionError,
    Ticket,
    TicketAction,
    TicketEvent,
)
from monitor.errors import SinkUnavailable
from monitor.services.ticketing import TicketNotFound, TicketService
from monitor.sinks.elasticsearch.links import LinkLedger
from monitor.sinks.elasticsearch.tickets import ConcurrentUpdate, event_revision
from monitor.web.links import ActionLinkError, ActionLinkIssuer, Claims, ExpiredLink

log = logging.getLogger(__name__)

#: Largest request body read, in bytes.
MAX_BODY_BYTES = 8 * 1024
#: Headers of every response.
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
#: How each status reads in "already <verb> by X at T".
_STATUS_VERBS = {
    "open": "opened",
    "acknowledged": "acknowledged",
    "in_progress": "started",
    "resolved": "resolved",
    "closed": "closed",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ActionLinks:
    """What the action-link API needs besides the ticket service.

    Attributes:
        issuer: Verifies tokens (its keys and clock).
        ledger: Records used links.

    """

    issuer: ActionLinkIssuer
    ledger: LinkLedger


LINKS_KEY = web.AppKey("action_links", ActionLinks)
SERVICE_KEY = web.AppKey("action_links_service", TicketService)


class LinkRefused(Exception):
    """A redeem or inspect is refused; becomes the JSON error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.status, self.code, self.message, self.state = status, code, message, state
        super().__init__(message)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def link_error(
    status: int,
    message: str,
    code: str,
    state: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Return ``{"error": {"status", "message", "code", "state"?}}``."""
    error: dict[str, Any] = {"status": status, "message": message, "code": code}
    if state is not None:
        error["state"] = state
    return web.json_response(
        {"error": error}, status=status, headers=headers, dumps=_dumps
    )


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map failures to JSON errors and put the security headers on everything."""
    response: web.StreamResponse
    try:
        response = await handler(request)
    except LinkRefused as exc:
        response = link_error(exc.status, exc.message, exc.code, exc.state)
    except ActionLinkError as exc:
        response = link_error(exc.status, str(exc), exc.code)
    except SinkUnavailable as exc:
        log.warning("action links: %s", exc)
        retry = str(max(1, math.ceil(exc.retry_after)))
        response = link_error(
            503,
            "Elasticsearch is unavailable; try again later",
            "unavailable",
            headers={"Retry-After": retry},
        )
    except web.HTTPException as exc:
        kept = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        response = link_error(exc.status, exc.reason, "http", headers=kept)
    except Exception:
        log.exception("action links: %s %s failed", request.method, request.path)
        response = link_error(500, "internal error; see the worker log", "internal")
    response.headers.update(SECURITY_HEADERS)
    return response


async def _token(request: web.Request) -> str:
    """Read ``{"token": "..."}``, at most :data:`MAX_BODY_BYTES` of it."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise LinkRefused(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    body = bytearray()
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise LinkRefused(
                413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes"
            )
    try:
        data = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise LinkRefused(400, "malformed", 'the body must be {"token": "..."}')
    return str(data["token"])


def _summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "ticket_id": ticket.ticket_id,
        "topic": ticket.topic,
        "priority": str(ticket.priority),
        "status": str(ticket.status),
        "owner": ticket.owner,
        "priority_reason": ticket.priority_reason,
    }


def _last_status_change(events: Sequence[TicketEvent]) -> TicketEvent | None:
    changes = [e for e in events if e.from_status != e.to_status]
    return changes[-1] if changes else None


def describe(ticket: Ticket, events: Sequence[TicketEvent]) -> str:
    """Say where a ticket is: ``acknowledged by 王工 at 2026-...``."""
    verb = _STATUS_VERBS.get(str(ticket.status), str(ticket.status))
    change = _last_status_change(events)
    if change is None or str(change.to_status) != str(ticket.status):
        return verb
    return f"{verb} by {change.actor} at {change.at.isoformat(timespec='seconds')}"


def _state(ticket: Ticket, events: Sequence[TicketEvent]) -> dict[str, Any]:
    state = _summary(ticket)
    change = _last_status_change(events)
    if change is not None and str(change.to_status) == str(ticket.status):
        state["changed_by"] = change.actor
        state["changed_at"] = change.at.isoformat()
    state["revision"] = ticket.revision
    return state


def _counts_as_change(event: TicketEvent) -> bool:
    """Return False for bookkeeping: delivery records, the system's reminders."""
    if event.action == TicketAction.DELIVERY:
        return False
    return not (event.action == TicketAction.COMMENT and event.actor == SYSTEM_ACTOR)


def _changed_since(
    ticket: Ticket, events: Sequence[TicketEvent], revision: int
) -> list[TicketEvent]:
    if ticket.revision < revision:
        return list(events)  # not the ticket the link was issued for
    return [e for e in events if event_revision(e) > revision and _counts_as_change(e)]


def _verify(request: web.Request, token: str) -> Claims:
    links = request.app[LINKS_KEY]
    return links.issuer.verify(token)


async def _ticket(
    service: TicketService, claims: Claims
) -> tuple[Ticket, list[TicketEvent]]:
    try:
        return await service.get(claims.ticket_id)
    except TicketNotFound:
        raise LinkRefused(
            404, "unknown_ticket", f"ticket {claims.ticket_id} does not exist"
        ) from None


def _used_message(ticket: Ticket, events: Sequence[TicketEvent]) -> str:
    return (
        f"this link was already used: ticket {ticket.ticket_id} is already "
        f"{describe(ticket, events)}"
    )


def _stale_message(ticket: Ticket, events: Sequence[TicketEvent]) -> str:
    return (
        f"ticket {ticket.ticket_id} has changed since this link was issued (it is "
        f"now {describe(ticket, events)}); open it in the console to act"
    )


async def inspect(request: web.Request) -> web.Response:
    """``POST /inspect``: what the link would do, and whether it still can."""
    token = await _token(request)
    links, service = request.app[LINKS_KEY], request.app[SERVICE_KEY]
    usable, reason, code = True, "", "ok"
    try:
        claims = _verify(request, token)
    except ExpiredLink as exc:
        claims = exc.claims
        usable, reason, code = False, str(exc), exc.code
    ticket, events = await _ticket(service, claims)
    if usable and await links.ledger.get(claims.link_id) is not None:
        usable, reason, code = False, _used_message(ticket, events), "used"
    elif usable and _changed_since(ticket, events, claims.revision):
        usable, reason, code = False, _stale_message(ticket, events), "stale"
    elif usable and ticket.status not in ACTION_SOURCES[TicketAction(claims.action)]:
        usable, reason, code = (
            False,
            f"cannot {claims.action} a ticket that is {ticket.status}",
            "status",
        )
    return web.json_response(
        {
            "ticket": _summary(ticket),
            "action": claims.action,
            "actor": claims.actor,
            "channel": claims.channel,
            "expires_at": claims.expires_at.isoformat(),
            "usable": usable,
            "reason": reason,
            "code": code,
        },
        dumps=_dumps,
    )


async def redeem(request: web.Request) -> web.Response:
    """``POST /redeem``: apply the link's action, once."""
    token = await _token(request)
    links, service = request.app[LINKS_KEY], request.app[SERVICE_KEY]
    claims = _verify(request, token)
    ticket, events = await _ticket(service, claims)
    if await links.ledger.get(claims.link_id) is not None:
        raise LinkRefused(
            409, "used", _used_message(ticket, events), _state(ticket, events)
        )
    if _changed_since(ticket, events, claims.revision):
        raise LinkRefused(
            409, "stale", _stale_message(ticket, events), _state(ticket, events)
        )
    now = service.now()
    claimed = await links.ledger.claim(
        claims.link_id,
        {
            "ticket_id": claims.ticket_id,
            "action": claims.action,
            "actor": claims.actor,
            "channel": claims.channel,
            "key_id": claims.key_id,
            "issued_revision": claims.revision,
            "expires_at": claims.expires_at.isoformat(),
            "claimed_at": now.isoformat(),
            "outcome": "claimed",
        },
    )
    if not claimed:
        ticket, events = await _ticket(service, claims)
        raise LinkRefused(
            409, "used", _used_message(ticket, events), _state(ticket, events)
        )
    try:
        new, event = await service.act(
            claims.ticket_id, claims.action, claims.actor, note=claims.note
        )
    except InvalidTransitionError as exc:
        await _finish(links.ledger, claims.link_id, "refused", None, service.now())
        ticket, events = await _ticket(service, claims)
        raise LinkRefused(409, "status", str(exc), _state(ticket, events)) from None
    except (SinkUnavailable, ConcurrentUpdate):
        # Not applied (or not known to be): let the link be tried again.
        try:
            await links.ledger.release(claims.link_id)
        except Exception:
            log.warning(
                "action link on %s: could not release its claim", claims.ticket_id
            )
        raise
    await _finish(links.ledger, claims.link_id, "applied", event, service.now())
    log.info(
        "action link: %s %s via link issued in %s",
        claims.action,
        claims.ticket_id,
        claims.channel,
    )
    return web.json_response(
        {"ticket": ticket_to_dict(new), "event": event_to_dict(event)}, dumps=_dumps
    )


async def _finish(
    ledger: LinkLedger,
    link_id: str,
    outcome: str,
    event: TicketEvent | None,
    now: datetime,
) -> None:
    """Record a claim's outcome (best effort: the claim itself is what counts)."""
    fields: dict[str, Any] = {"outcome": outcome, "finished_at": now.isoformat()}
    if event is not None:
        fields["event_id"] = event.event_id
    try:
        await ledger.finish(link_id, fields)
    except Exception:
        log.warning("action link: could not record the outcome %s", outcome)


def action_links_app(service: TicketService, links: ActionLinks) -> web.Application:
    """Build the action-link API; mount it with ``add_subapp("/api/links", ...)``.

    Args:
        service: The ticket service (applies the actions).
        links: The token issuer/verifier and the ledger of used links.

    """
    app = web.Application(middlewares=[_guard])
    app[SERVICE_KEY] = service
    app[LINKS_KEY] = links
    for path, handler in (("/inspect", inspect), ("/redeem", redeem)):
        app.router.add_post(path, handler)
    return app
