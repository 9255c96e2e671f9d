"""The ``monitor`` command line.

Everything printed that comes from posts, dead letters, tickets, rules or
settings passes through :func:`safe_text` first: it may hold rich markup
(``[/x]`` would crash the table) or terminal escape sequences. The consoles
print with ``emoji=False``: rich would turn ``:thumbs_down:`` in a post into
an emoji.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from monitor.errors import MonitorError
from monitor.local.embedded import EmbeddedServers
from monitor.settings import Settings

if TYPE_CHECKING:
    from monitor.sinks.elasticsearch.tickets import TicketStore

console = Console(stderr=True, emoji=False)
out = Console(emoji=False)

#: Layout the terminal may keep, though CONTROL_CHARACTERS holds them too.
_LAYOUT = "\t\n"


def _control_characters() -> re.Pattern[str]:
    # Imported here: monitor.records imports faust (a third of a second), and
    # commands that print no data (rules check, tokens hash) start without it.
    from monitor.records import CONTROL_CHARACTERS

    return CONTROL_CHARACTERS


def safe_text(value: object, *, markup: bool = True) -> str:
    """Return ``value`` as text that prints as it is on the operator's terminal.

    Control characters (:data:`monitor.records.CONTROL_CHARACTERS` but
    newline and tab: so ESC and every escape sequence, and the bidirectional
    overrides) are removed, and rich markup is escaped so that text such as
    ``[/x]`` is shown, not parsed.

    Args:
        value: Data from a post, dead letter, ticket, rule or setting.
        markup: False for text printed without rich (``click.echo``, error
            messages): only the control characters are removed then.

    """
    text = _control_characters().sub(_keep_layout, str(value))
    return escape(text) if markup else text


def _keep_layout(match: re.Match[str]) -> str:
    return match[0] if match[0] in _LAYOUT else ""


def dump_json(value: Any) -> str:
    r"""Encode ``value`` as indented JSON for the terminal, data unchanged.

    JSON escapes C0 controls itself; the other
    :data:`monitor.records.CONTROL_CHARACTERS` (DEL, C1, bidirectional
    overrides), which it leaves raw, are written as ``\u`` escapes too: the
    same data, parsed. Newlines are the indentation's (JSON strings never
    hold a raw one).
    """
    text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    return _control_characters().sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    char = match[0]
    return char if char in _LAYOUT else f"\\u{ord(char):04x}"


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def load_settings(ctx: click.Context, **overrides: Any) -> Settings:
    """Load settings from --config, MONITOR_* and CLI overrides; exit 2 if bad."""
    try:
        return Settings.load(config_file=ctx.obj.get("config"), **overrides)
    except MonitorError as exc:
        raise click.UsageError(safe_text(exc, markup=False)) from None


@contextlib.contextmanager
def resolve_servers(settings: Settings, *, start: bool = True) -> Iterator[Settings]:
    """Yield settings with server addresses.

    With no addresses configured: join the embedded server running under the
    data dir, or start one when ``start`` (long-running commands only). A
    one-shot command must not own it: stopping it on exit would pull the
    server from under a worker that joined it meanwhile.
    """
    if not settings.embedded:
        yield settings
        return
    if not start:
        running = EmbeddedServers(settings.data_dir).running()
        if running is None:
            raise click.ClickException(
                f"no embedded server is running under {settings.data_dir.resolve()}: "
                "start `monitor worker` (or `monitor demo`) first, from the same "
                "directory or with the same MONITOR_DATA_DIR, or set "
                "MONITOR_KAFKA_URL and MONITOR_ES_URL"
            )
        yield settings.model_copy(
            update={"kafka_url": running.kafka_url, "es_url": running.es_url}
        )
        return
    servers = EmbeddedServers(settings.data_dir)
    try:
        addresses = servers.start()
    except MonitorError as exc:
        raise click.ClickException(safe_text(exc, markup=False)) from None
    try:
        yield settings.model_copy(
            update={
                "kafka_url": addresses.kafka_url,
                "es_url": addresses.es_url,
                # One worker per embedded server: a fixed static-membership id
                # lets a crashed worker's successor take its place at once.
                "instance_id": settings.instance_id or f"{settings.app_id}-local",
            }
        )
    finally:
        servers.stop()


def run(coro: Any) -> Any:
    """Run a coroutine, turning MonitorError into a clean CLI error."""
    try:
        return asyncio.run(coro)
    except MonitorError as exc:
        raise click.ClickException(safe_text(exc, markup=False)) from None


@click.group()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML settings file (else $MONITOR_CONFIG).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Streaming public-opinion monitor: score, index and alert on posts."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@cli.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the Faust worker (all agents) against the configured servers.

    With no MONITOR_KAFKA_URL / MONITOR_ES_URL it starts (or joins) the
    embedded noida-db server under the data dir and stops it on exit.
    """
    settings = load_settings(ctx)  # before the heavy imports: a bad value fails fast
    configure_logging(settings.log_level)

    import faust

    from monitor.app import create_app
    from monitor.topics import prepare_topics

    with resolve_servers(settings) as resolved:
        run(prepare_topics(resolved))
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            app = create_app(resolved)
        except MonitorError as exc:
            raise click.ClickException(str(exc)) from None
        console.print(
            f"worker: Kafka {resolved.kafka_url}  Elasticsearch {resolved.es_url}  "
            f"metrics http://{resolved.web_host}:{resolved.web_port}/metrics"
        )
        worker = _stopping_worker(faust.Worker)(app, loglevel=resolved.log_level)
        # Faust's progress spinner sets the root logger to DEBUG so that every
        # record turns it; building those records cost a busy worker ~7% CPU.
        worker.spinner = None
        worker.execute_from_commandline()


def _stopping_worker(base: type) -> type:
    """Return a Faust worker class whose SIGTERM/SIGINT bound the shutdown.

    On the signal the pipeline's retry loops learn that the worker is
    stopping (a batch that cannot finish is abandoned unacknowledged) and a
    clock starts: after ``MONITOR_SHUTDOWN_SECONDS`` the process exits
    whatever is still running (see
    :func:`monitor.pipelines.start_shutdown_clock`).
    """
    from monitor.pipelines.batches import start_shutdown_clock

    class StoppingWorker(base):  # type: ignore[misc, valid-type]
        def _begin_stopping(self) -> None:
            pipeline = self.app.monitor_pipeline
            start_shutdown_clock(
                pipeline.shutdown, pipeline.settings.shutdown_seconds
            )

        def _on_sigterm(self) -> None:
            self._begin_stopping()
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            self._begin_stopping()
            super()._on_sigint()

    return StoppingWorker


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Posts per second (default: as fast as the broker takes them).",
)
@click.option(
    "--show-rejected",
    default=20,
    show_default=True,
    help="How many rejected lines to list.",
)
@click.pass_context
def replay(
    ctx: click.Context, file: Path, rate: float | None, show_rejected: int
) -> None:
    """Send posts from a JSON Lines or CSV FILE to the posts topic."""
    from monitor.sources.replay import replay_file

    settings = load_settings(ctx)
    configure_logging("warning")
    with resolve_servers(settings, start=False) as resolved:
        summary = run(replay_file(resolved, file, rate=rate, progress=True))
    out.print(
        f"sent {summary.sent} posts to '{safe_text(resolved.topic_posts)}' "
        f"in {summary.seconds:.1f} s; rejected {len(summary.rejected)}"
    )
    for line, reason in summary.rejected[:show_rejected]:
        out.print(f"  line {line}: {safe_text(reason)}")
    if len(summary.rejected) > show_rejected:
        out.print(f"  ... and {len(summary.rejected) - show_rejected} more")


@cli.command("dead-letters")
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


@cli.group()
def evaluate() -> None:
    """Measure the product's analysis on labelled data."""


@evaluate.command("sentiment")
@click.argument(
    "csv_files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def evaluate_sentiment_command(
    ctx: click.Context, csv_files: tuple[Path, ...], as_json: bool
) -> None:
    """Score text,label CSV files (1 positive, 0 negative) and report quality."""
    from monitor.analysis.evaluation.sentiment import (
        evaluate_sentiment,
        read_labelled_csv,
    )
    from monitor.analysis.sentiment.model import SentimentModel

    settings = load_settings(ctx)
    total = sum(len(read_labelled_csv(path)[0]) for path in csv_files)
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("score", total=total)
        try:
            report = evaluate_sentiment(
                list(csv_files),
                model=SentimentModel(settings.sentiment_model),
                thresholds=settings.label_thresholds,
                on_progress=lambda n: progress.advance(task, n),
            )
        except MonitorError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(dump_json(_finite(report)))
        return
    table = Table(title="sentiment: binary at 0.5, AUC, per-class F1, three-way labels")
    for column in (
        "file",
        "n",
        "accuracy",
        "ROC AUC",
        "F1 neg",
        "F1 pos",
        "true neg → neg/neu/pos",
        "true pos → neg/neu/pos",
        "texts/s",
    ):
        table.add_column(column, justify="right")
    rows = list(report["files"].items()) + [("overall", report["overall"])]
    for name, r in rows:
        dist = r["label_distribution"]
        table.add_row(
            safe_text(name),
            str(r["n"]),
            f"{r['accuracy']:.4f}",
            f"{r['roc_auc']:.4f}",
            f"{r['classes']['negative']['f1']:.4f}",
            f"{r['classes']['positive']['f1']:.4f}",
            "/".join(str(v) for v in dist["true_negative"].values()),
            "/".join(str(v) for v in dist["true_positive"].values()),
            f"{r['texts_per_second']:.0f}",
        )
    out.print(table)


@evaluate.command("bursts")
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--profile",
    type=click.Choice(["standard", "reward_low_FP_rate", "reward_low_FN_rate"]),
    default="standard",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_bursts_command(directory: Path, profile: str, as_json: bool) -> None:
    """Run the burst detector over NAB-format series and print the NAB score."""
    from monitor.analysis.evaluation.bursts import evaluate_dir

    try:
        report = evaluate_dir(directory, profile)
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(_finite(report), indent=2))
        return
    table = Table(title=f"NAB score ({profile} profile, normalised 0-100)")
    table.add_column("file")
    table.add_column("score", justify="right")
    for name, score in report["files"].items():
        table.add_row(safe_text(name), f"{score:.2f}")
    table.add_row("overall", f"{report['score']:.2f}")
    out.print(table)


@cli.command()
@click.option(
    "--feed",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Posts to replay (default: the bundled samples/feed.jsonl).",
)
@click.option(
    "--topics",
    "topics_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Watched topics (default: the rules file's topics).",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Alert rules (default: the bundled examples/rules.yaml).",
)
@click.option(
    "--rate",
    type=float,
    default=300.0,
    show_default=True,
    help="Replay speed, posts per second.",
)
@click.option(
    "--exit-when-done",
    is_flag=True,
    help="Stop once the feed is indexed instead of waiting for Ctrl-C.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    feed: Path | None,
    topics_file: Path | None,
    rules_file: Path | None,
    rate: float,
    exit_when_done: bool,
) -> None:
    """Run the main job on the embedded default: servers, worker, the sample feed.

    Tickets are raised by the bundled rules and delivered to local stand-ins
    of the six on-call channels, which print what they receive.
    """
    from monitor.local.demo import run_demo

    root = Path(__file__).resolve().parents[2]
    feed = feed or root / "samples" / "feed.jsonl"
    rules_file = rules_file or root / "examples" / "rules.yaml"
    for path in (feed, rules_file, topics_file):
        if path is not None and not path.is_file():
            raise click.UsageError(
                f"{path} not found (run from the repository, or pass it)"
            )
    settings = load_settings(ctx, topics_file=topics_file, rules=rules_file)
    configure_logging("warning")
    run_demo(settings, feed, rate=rate, exit_when_done=exit_when_done, console=out)


# --- tickets, rules, tokens ---------------------------------------------------


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


@cli.group("tickets")
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
    from monitor.sinks.elasticsearch.tickets import ticket_to_dict

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
    from monitor.sinks.elasticsearch.tickets import event_to_dict, ticket_to_dict

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


@cli.group("rules")
def rules_group() -> None:
    """Alert rules files."""


@rules_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def rules_check(file: Path) -> None:
    """Validate a rules FILE: exit 0 with a summary, or 2 listing every problem."""
    from monitor.config.rules import load_rules
    from monitor.errors import ConfigError

    try:
        ruleset = load_rules(file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(safe_text(problem, markup=False))
        raise SystemExit(2) from None
    click.echo(
        f"{file}: OK: {len(ruleset.topics)} topics, {len(ruleset.rules)} rules, "
        f"{len(ruleset.teams)} teams, {len(ruleset.channels)} channels, "
        f"{len(ruleset.silences)} silences, {len(ruleset.maintenance)} "
        "maintenance windows"
    )


@cli.group("tokens")
def tokens_group() -> None:
    """Ticket API tokens (MONITOR_API_TOKENS holds name:role:sha256)."""


@tokens_group.command("hash")
@click.option("--new", "make_new", is_flag=True, help="Make a new random token.")
@click.option("--name", default=None, help="Also print the settings entry for NAME.")
@click.option(
    "--role",
    type=click.Choice(["viewer", "responder", "admin"]),
    default=None,
    help="Role of the settings entry (with --name).",
)
def tokens_hash(make_new: bool, name: str | None, role: str | None) -> None:
    """Print the SHA-256 of a token read from stdin (or of a new one with --new).

    Only the hash goes in the settings; give the token itself to its holder.
    """
    from monitor.web.auth import hash_token, new_token

    if (name is None) != (role is None):
        raise click.UsageError("--name and --role go together")
    if make_new:
        token = new_token()
    else:
        token = sys.stdin.read().rstrip("\r\n")
        if not token.strip():
            raise click.UsageError("no token on stdin (or use --new)")
    digest = hash_token(token)
    if make_new:
        click.echo(f"token:  {token}")
        click.echo(f"sha256: {digest}")
    else:
        click.echo(digest)
    if name is not None:
        click.echo(f"entry:  {name}:{role}:{digest}")


def _finite(value: Any) -> Any:
    """Replace NaN/inf (not JSON) with None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def main() -> None:
    """Console-script entry point."""
    cli(obj={})
