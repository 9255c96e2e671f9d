"""``monitor dead-letters``: the records a stage could not process."""

from __future__ import annotations

import click
from rich.table import Table

from monitor.cli.context import (
    configure_logging,
    load_settings,
    resolve_servers,
    run,
)
from monitor.cli.output import dump_json, out, safe_text


@click.command("dead-letters")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def dead_letters(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List recent dead letters: stage, reason, time and the payload."""
    from monitor.sinks.deadletters import read_dead_letters

    settings = load_settings(ctx)
    configure_logging("warning")
    with resolve_servers(settings, start=False) as resolved:
        assert resolved.kafka_url is not None
        letters = run(
            read_dead_letters(
                resolved.kafka_url, resolved.topic_dead_letters, limit=limit
            )
        )
    if as_json:
        click.echo(dump_json([letter.asdict() for letter in letters]))
        return
    table = Table(title=f"{len(letters)} most recent dead letters")
    for column in ("failed at", "stage", "source", "reason", "payload"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        excerpt = (
            letter.payload if len(letter.payload) <= 80 else letter.payload[:77] + "..."
        )
        table.add_row(
            f"{letter.failed_at:%Y-%m-%d %H:%M:%S}",
            safe_text(letter.stage),
            safe_text(letter.source),
            safe_text(letter.reason),
            safe_text(excerpt),
        )
    out.print(table)
