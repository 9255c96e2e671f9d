"""``monitor tickets``: alert tickets (预警工单) as Elasticsearch holds them."""

from __future__ import annotations

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
