"""``monitor tickets``: alert tickets (预警工单) as Elasticsearch holds them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from monitor.cli.context import (
    configure_logging,
    load_settings,
    resolve_servers,
    run,
)
from monitor.cli.output import dump_json, out, safe_text
from monitor.settings import Settings

if TYPE_CHECKING:
    from monitor.sinks.elasticsearch.tickets import TicketStore


def _ticket_store(settings: Settings) -> TicketStore:
    """Return a TicketStore on the configured (or running embedded) server."""
    from monitor.sinks.elasticsearch.tickets import TicketStore

    assert settings.es_url is not None
    return TicketStore.connect(
        settings.es_url,
        settings.index_prefix,
        api_key=settings.es_api_key,
        request_timeout=settings.es_request_timeout_seconds,
    )


def _when(moment: Any) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M %z}"


@click.group("tickets")
def tickets_group() -> None:
    """Look at alert tickets (预警工单) as Elasticsearch holds them."""


@tickets_group.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["open", "acknowledged", "in_progress", "resolved", "closed"]),
    help="Only tickets in this status (repeat for several).",
)
@click.option("--topic", default=None, help="Only tickets of this watched topic.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def tickets_list(
    ctx: click.Context,
    statuses: tuple[str, ...],
    topic: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List tickets, most recently opened first."""
    from monitor.analysis.tickets.codec import ticket_to_dict

    settings = load_settings(ctx)
    configure_logging("warning")

    async def find() -> tuple[list[Any], int]:
        store = _ticket_store(resolved)
        try:
            found: tuple[list[Any], int] = await store.search(
                status=list(statuses) or None, topic=topic, limit=limit
            )
            return found
        finally:
            await store.close()

    with resolve_servers(settings, start=False) as resolved:
        tickets, total = run(find())
    if as_json:
        click.echo(dump_json([ticket_to_dict(ticket) for ticket in tickets]))
        return
    table = Table(title=f"{len(tickets)} of {total} tickets")
    for column in (
        "ticket",
        "priority",
        "status",
        "topic",
        "rule",
        "owner",
        "occurrences",
        "opened",
        "ack due",
    ):
        table.add_column(column, overflow="fold")
    for ticket in tickets:
        rule = ticket.rule + (f" ({ticket.keyword})" if ticket.keyword else "")
        table.add_row(
            *(
                safe_text(cell)
                for cell in (
                    ticket.ticket_id,
                    ticket.priority,
                    ticket.status,
                    ticket.topic,
                    rule,
                    ticket.owner or "-",
                    ticket.occurrences,
                    _when(ticket.opened_at),
                    _when(ticket.ack_due) if ticket.status == "open" else "",
                )
            )
        )
    out.print(table)


@tickets_group.command("show")
@click.argument("ticket_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def tickets_show(ctx: click.Context, ticket_id: str, as_json: bool) -> None:
    """Show one ticket with its evidence and audit trail."""
    from monitor.analysis.tickets.codec import event_to_dict, ticket_to_dict

    settings = load_settings(ctx)
    configure_logging("warning")

    async def read() -> tuple[Any, list[Any]] | None:
        store = _ticket_store(resolved)
        try:
            found = await store.get(ticket_id)
            if found is None:
                return None
            return found[0], await store.events(ticket_id)
        finally:
            await store.close()

    with resolve_servers(settings, start=False) as resolved:
        shown = run(read())
    if shown is None:
        raise click.ClickException(f"no ticket {ticket_id!r}")
    ticket, events = shown
    if as_json:
        body = {
            "ticket": ticket_to_dict(ticket),
            "events": [event_to_dict(event) for event in events],
        }
        click.echo(dump_json(body))
        return
    out.print(
        f"[bold]{safe_text(ticket.ticket_id)}[/bold]  "
        f"{safe_text(ticket.priority)}  {safe_text(ticket.status)}"
    )
    facts = [
        ("topic", ticket.topic),
        ("rule", f"{ticket.rule} ({ticket.kind})"),
        ("keyword", ticket.keyword or "-"),
        ("team / owner", f"{ticket.team} / {ticket.owner or '-'}"),
        ("priority reason", ticket.priority_reason),
        ("occurrences", str(ticket.occurrences)),
        ("seen", f"{_when(ticket.first_seen)} .. {_when(ticket.last_seen)}"),
        ("opened", _when(ticket.opened_at)),
        (
            "ack due / resolve due",
            f"{_when(ticket.ack_due)} / {_when(ticket.resolve_due)}",
        ),
        (
            "escalation",
            f"level {ticket.escalation_level} {ticket.escalation_contact or ''}",
        ),
        ("value", f"peak {ticket.peak_value:g}, threshold {ticket.threshold:g}"),
        ("keywords", ", ".join(ticket.keywords) or "-"),
        ("delivery", ", ".join(f"{k}: {v}" for k, v in ticket.delivery.items()) or "-"),
    ]
    for name, value in facts:
        out.print(
            f"  {name:<22} {safe_text(value, markup=False)}",
            markup=False,
            highlight=False,
        )
    if ticket.evidence:
        evidence = Table(title="evidence")
        for column in ("post", "author", "followers", "excerpt"):
            evidence.add_column(column, overflow="fold")
        for item in ticket.evidence:
            evidence.add_row(
                safe_text(item.post_id),
                safe_text(item.author or "-"),
                str(item.followers),
                safe_text(item.excerpt),
            )
        out.print(evidence)
    trail = Table(title="audit trail")
    for column in ("#", "at", "actor", "action", "status", "note"):
        trail.add_column(column, overflow="fold")
    for event in events:
        status = f"{event.from_status or '-'} → {event.to_status}"
        trail.add_row(
            safe_text(event.event_id.rpartition("#")[2]),
            _when(event.at),
            safe_text(event.actor),
            safe_text(event.action),
            safe_text(status),
            safe_text(event.note),
        )
    out.print(trail)


# --- actions ------------------------------------------------------------------------

#: ``monitor tickets <verb>`` -> the API's action.
_VERBS = {
    "ack": "acknowledge",
    "start": "start",
    "assign": "assign",
    "transfer": "transfer",
    "comment": "comment",
    "escalate": "escalate",
    "resolve": "resolve",
    "close": "close",
    "reopen": "reopen",
}


def _default_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name (containers): still an actor
        return "cli"


def _act(
    ctx: click.Context,
    ticket_id: str,
    body: dict[str, Any],
    actor: str,
    as_json: bool,
) -> None:
    """Apply one action through the ticket service, as the API would.

    The body is checked by the API's own :func:`~monitor.web.api.check_action`
    and failures are worded and numbered as the API's (printed as
    ``{"error": {"status", "message"}}`` with ``--json``); the exit status
    is 2 for a malformed request (422), 1 for any other refusal.
    """
    from monitor.analysis.tickets.codec import event_to_dict, ticket_to_dict
    from monitor.errors import MonitorError
    from monitor.services.ticketing import TicketService
    from monitor.web.api import check_action, error_status

    settings = load_settings(ctx)
    configure_logging("warning")
    body = {name: value for name, value in body.items() if value is not None}
    ruleset = None
    if settings.rules is not None:
        from monitor.cli.backtest import load_rules_or_exit

        ruleset = load_rules_or_exit(settings.rules, settings)

    async def apply() -> tuple[Any, Any]:
        store = _ticket_store(resolved)
        service = TicketService(store, lambda: ruleset)
        try:
            action, note, params = check_action(body)
            return await service.act(ticket_id, action, actor, note, **params)
        finally:
            await store.close()

    try:
        with resolve_servers(settings, start=False) as resolved:
            ticket, event = asyncio.run(apply())
    except Exception as exc:
        mapped = error_status(exc)
        if mapped is None:
            if isinstance(exc, MonitorError):
                raise click.ClickException(safe_text(exc, markup=False)) from None
            raise
        status, message = mapped
        if as_json:
            click.echo(dump_json({"error": {"status": status, "message": message}}))
        else:
            click.echo(f"error {status}: {safe_text(message, markup=False)}", err=True)
        raise SystemExit(2 if status == 422 else 1) from None
    if as_json:
        click.echo(
            dump_json({"ticket": ticket_to_dict(ticket), "event": event_to_dict(event)})
        )
        return
    out.print(
        f"{safe_text(ticket.ticket_id)}: {safe_text(event.action)} by "
        f"{safe_text(event.actor)} → {safe_text(ticket.status)}"
        + (f" (owner {safe_text(ticket.owner)})" if ticket.owner else ""),
        highlight=False,
    )


def _action_options(func: Any) -> Any:
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)
    func = click.option(
        "--as",
        "actor",
        default=_default_actor,
        show_default="cli:<user>",
        help="Who is acting (recorded in the audit trail).",
    )(func)
    return click.pass_context(func)


def _note_option(required: bool = False) -> Any:
    return click.option(
        "--note",
        "-m",
        required=required,
        default=None,
        help="Why, in your words" + (" (required)." if required else "."),
    )


def _simple_action(verb: str, help_text: str, *, note_required: bool = False) -> None:
    @tickets_group.command(verb, help=help_text)
    @click.argument("ticket_id")
    @_note_option(note_required)
    @_action_options
    def command(
        ctx: click.Context,
        ticket_id: str,
        note: str | None,
        actor: str,
        as_json: bool,
    ) -> None:
        _act(ctx, ticket_id, {"action": _VERBS[verb], "note": note}, actor, as_json)


_simple_action("ack", "Acknowledge a ticket (受理).")
_simple_action("start", "Start working on a ticket (处理).")
_simple_action("escalate", "Raise a ticket's priority one level.")
_simple_action("resolve", "Mark a ticket resolved.")
_simple_action("reopen", "Reopen a resolved or closed ticket.", note_required=True)


@tickets_group.command("comment")
@click.argument("ticket_id")
@click.argument("note")
@_action_options
def tickets_comment(
    ctx: click.Context, ticket_id: str, note: str, actor: str, as_json: bool
) -> None:
    """Add a comment to a ticket's audit trail (跟踪)."""
    _act(ctx, ticket_id, {"action": "comment", "note": note}, actor, as_json)


@tickets_group.command("assign")
@click.argument("ticket_id")
@click.argument("owner")
@click.option("--team", default=None, help="Also move it to this team.")
@_note_option()
@_action_options
def tickets_assign(
    ctx: click.Context,
    ticket_id: str,
    owner: str,
    team: str | None,
    note: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Give a ticket to OWNER."""
    body = {"action": "assign", "owner": owner, "team": team, "note": note}
    _act(ctx, ticket_id, body, actor, as_json)


@tickets_group.command("transfer")
@click.argument("ticket_id")
@click.option("--owner", default=None, help="The new owner.")
@click.option("--team", default=None, help="The new team.")
@_note_option()
@_action_options
def tickets_transfer(
    ctx: click.Context,
    ticket_id: str,
    owner: str | None,
    team: str | None,
    note: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Move a ticket to another owner and/or team."""
    body = {"action": "transfer", "owner": owner, "team": team, "note": note}
    _act(ctx, ticket_id, body, actor, as_json)


@tickets_group.command("close")
@click.argument("ticket_id")
@click.option("--root-cause", default=None, help="Review: why it happened.")
@click.option("--resolution", default=None, help="Review: what was done.")
@click.option("--lessons", default=None, help="Review: what to change.")
@_note_option()
@_action_options
def tickets_close(
    ctx: click.Context,
    ticket_id: str,
    root_cause: str | None,
    resolution: str | None,
    lessons: str | None,
    note: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Close a resolved ticket with its review (复盘; required for P1/P2)."""
    body = {
        "action": "close",
        "root_cause": root_cause,
        "resolution": resolution,
        "lessons": lessons,
        "note": note,
    }
    _act(ctx, ticket_id, body, actor, as_json)


@tickets_group.command("reviews")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def tickets_reviews(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List the reviews (复盘) of closed tickets, latest first."""
    from monitor.web.api import review_entry

    settings = load_settings(ctx)
    configure_logging("warning")

    async def find() -> list[Any]:
        store = _ticket_store(resolved)
        try:
            return list(await store.reviews(limit))
        finally:
            await store.close()

    with resolve_servers(settings, start=False) as resolved:
        tickets = run(find())
    entries = [review_entry(ticket) for ticket in tickets if ticket.review]
    if as_json:
        click.echo(dump_json(entries))
        return
    table = Table(title=f"{len(entries)} reviews")
    for column in (
        "ticket",
        "priority",
        "topic",
        "closed",
        "by",
        "root cause",
        "resolution",
        "lessons",
    ):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            *(
                safe_text(entry[key] or "")
                for key in (
                    "ticket_id",
                    "priority",
                    "topic",
                    "closed_at",
                    "closed_by",
                    "root_cause",
                    "resolution",
                    "lessons",
                )
            )
        )
    out.print(table)
