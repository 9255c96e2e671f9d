"""``monitor sources``: the sources file (webhooks, HTTP polling, RSS feeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from monitor.cli.output import safe_text


@click.group("sources")
def sources_group() -> None:
    """Check and run the sources of posts: webhooks, HTTP polling, RSS."""


@sources_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def sources_check(file: Path) -> None:
    """Validate a sources FILE: exit 0 with a summary, or 2 listing every problem.

    Secret references (``${SOURCE_*}``) are resolved from the environment, as
    the worker would; a missing variable is a problem naming it.
    """
    from monitor.errors import ConfigError
    from monitor.sources.config import load_sources

    try:
        config = load_sources(file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(safe_text(problem, markup=False))
        raise SystemExit(2) from None
    for name in config.webhooks:
        click.echo(safe_text(f"  webhook   {name}: POST /ingest/{name}", markup=False))
    for name, poller in config.pollers.items():
        every = f"{poller.interval:g}s"
        click.echo(safe_text(f"  {poller.kind:<9} {name}: every {every}", markup=False))
    click.echo(
        f"{file}: OK: {len(config.webhooks)} webhooks, {len(config.pollers)} pollers"
    )


def _poller_file(ctx: click.Context, file: Path | None) -> tuple[Any, Any]:
    """Return (settings, sources config) for FILE or MONITOR_SOURCES; exit 2 if bad."""
    from monitor.cli.context import load_settings
    from monitor.errors import ConfigError
    from monitor.sources.config import load_sources

    settings = load_settings(ctx)
    path = file or settings.sources
    if path is None:
        raise click.UsageError("name a sources FILE or set MONITOR_SOURCES")
    try:
        config = load_sources(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(safe_text(problem, markup=False), err=True)
        raise SystemExit(2) from None
    return settings, config


@sources_group.command("run")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--leases",
    is_flag=True,
    help="Poll only the sources this process holds in the source-lease group "
    "(as workers do), so it can run beside workers or other `sources run`.",
)
@click.pass_context
def sources_run(ctx: click.Context, file: Path | None, leases: bool) -> None:
    """Poll the http_poll and rss sources of FILE (default: MONITOR_SOURCES).

    Posts go to the posts topic, rejected items to the dead letters, and each
    page's cursor to the source-state topic once both are acknowledged; a
    restart resumes there. Runs until Ctrl-C or SIGTERM, which finish the
    page in flight and write the cursors. Logs each page's counts.
    """
    import logging

    from monitor.cli.context import configure_logging, resolve_servers, run

    settings, config = _poller_file(ctx, file)
    if not config.pollers:
        raise click.ClickException(f"{config.path}: no http_poll or rss source to run")
    configure_logging("warning")
    logging.getLogger("monitor.sources").setLevel(logging.INFO)
    with resolve_servers(settings, start=False) as resolved:
        healths = run(_run_pollers(resolved, config, leases=leases))
    for name, line in sorted(healths.items()):
        click.echo(safe_text(f"{name}: {line}", markup=False))


async def _run_pollers(settings: Any, config: Any, *, leases: bool) -> dict[str, str]:
    import asyncio
    import signal

    from monitor.sources.runner import SourcePollers
    from monitor.topics import prepare_topics

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await prepare_topics(settings)
    from monitor.topics import pace_empty_fetches

    pace_empty_fetches()
    pollers = SourcePollers(settings, config, leases=leases)
    summary: dict[str, str] = {}
    try:
        await pollers.start()
        click.echo(
            f"polling {len(config.pollers)} sources"
            + (" (those this process leases)" if leases else "")
            + "; Ctrl-C stops",
            err=True,
        )
        await stop.wait()
        for name in pollers.runner.running:
            health = pollers.runner.health(name)
            if health is not None:
                summary[name] = (
                    f"in all {health.fetched} pages, {health.accepted} accepted, "
                    f"{sum(health.rejected.values())} rejected, "
                    f"{health.duplicates} duplicates, {health.errors} errors"
                )
    finally:
        await pollers.stop()
    return summary


@sources_group.command("status")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def sources_status(ctx: click.Context, file: Path | None, as_json: bool) -> None:
    """Show each poller's cursor and health, from the source-state topic.

    Counts are totals since the source was first polled, by any worker.
    "stale" marks a source whose last successful poll is older than three
    intervals (or that never succeeded). FILE (default: MONITOR_SOURCES, if it
    loads) adds the configured pollers that have no state yet.
    """
    import time

    from rich.table import Table

    from monitor.cli.context import (
        configure_logging,
        load_settings,
        resolve_servers,
        run,
    )
    from monitor.cli.output import dump_json, out
    from monitor.sources.cursors import KafkaCursorStore

    settings = load_settings(ctx)
    configure_logging("warning")
    configured = _configured_pollers(file or settings.sources)
    with resolve_servers(settings, start=False) as resolved:
        assert resolved.kafka_url is not None
        store = KafkaCursorStore(resolved.kafka_url, resolved.topic_source_state)
        states = run(store.load_all())
    now = time.time()
    rows = [_status_row(state, now) for state in states.values()]
    for name, (kind, interval) in configured.items():
        if name not in states:
            rows.append(_never_row(name, kind, interval))
    rows.sort(key=lambda row: row["source"])
    if as_json:
        click.echo(dump_json(rows))
        return
    table = Table(title=f"{len(rows)} polling sources")
    for column in (
        "source",
        "kind",
        "cursor",
        "last success",
        "fetched",
        "accepted",
        "rejected",
        "dup.",
        "errors",
        "lag",
        "state",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            safe_text(row["source"]),
            safe_text(row["kind"]),
            safe_text(row["cursor"] if row["cursor"] is not None else "-"),
            _ago(row["last_success_epoch_s"], now),
            str(row["fetched"]),
            str(row["accepted"]),
            str(sum(row["rejected"].values())),
            str(row["duplicates"]),
            str(row["errors"]),
            "-"
            if row["cursor_lag_seconds"] is None
            else _span(row["cursor_lag_seconds"]),
            "[red]stale[/red]" if row["stale"] else "ok",
        )
    out.print(table)
    for row in rows:
        if row["last_error"]:
            name, error = safe_text(row["source"]), safe_text(row["last_error"])
            out.print(f"{name}: last error: {error}")


#: Characters of a cursor shown by ``sources status``.
CURSOR_SHOWN = 40


def _status_row(state: Any, now: float) -> dict[str, Any]:
    """One source's status as plain data (the JSON row)."""
    cursor = state.cursor
    shown = cursor
    if cursor is not None and len(cursor) > CURSOR_SHOWN:
        shown = cursor[: CURSOR_SHOWN - 1] + "…"
    return {
        "source": state.source,
        "kind": state.kind,
        "cursor": shown,
        "cursor_bytes": None if cursor is None else len(cursor.encode("utf-8")),
        "interval_seconds": state.interval_seconds,
        "last_success_epoch_s": state.last_success_epoch_s,
        "written_at_epoch_s": state.written_at_epoch_s,
        "fetched": state.fetched,
        "accepted": state.accepted,
        "rejected": dict(state.rejected),
        "duplicates": state.duplicates,
        "errors": state.errors,
        "cursor_lag_seconds": state.cursor_lag_seconds,
        "last_error": state.last_error,
        "stale": state.is_stale(now),
    }


def _never_row(name: str, kind: str, interval: float) -> dict[str, Any]:
    from monitor.sources.cursors import SourceState

    return _status_row(SourceState(name, kind, None, interval, 0.0), 0.0)


def _configured_pollers(path: Path | None) -> dict[str, tuple[str, float]]:
    """Pollers of the sources file, if it loads (else a warning, and none)."""
    if path is None:
        return {}
    from monitor.errors import ConfigError
    from monitor.sources.config import load_sources

    try:
        config = load_sources(path)
    except (ConfigError, OSError) as exc:
        click.echo(
            safe_text(
                f"{path}: not read ({str(exc)[:200]}); state topic only", markup=False
            ),
            err=True,
        )
        return {}
    return {name: (p.kind, p.interval) for name, p in config.pollers.items()}


def _ago(epoch_s: float | None, now: float) -> str:
    if epoch_s is None:
        return "never"
    from datetime import datetime, timezone

    at = datetime.fromtimestamp(epoch_s, timezone.utc)
    return f"{at:%Y-%m-%d %H:%M:%S}Z ({_span(max(0.0, now - epoch_s))} ago)"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


@sources_group.command("sample-server")
@click.option("--api-port", type=int, default=8081, show_default=True)
@click.option("--rss-port", type=int, default=8082, show_default=True)
@click.option(
    "--feed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON Lines feed to serve (default: the sample feed).",
)
@click.option(
    "--bearer-env",
    default="SOURCE_REVIEWS_TOKEN",
    show_default=True,
    help="Environment variable holding the token the API requires (unset: none).",
)
def sources_sample_server(
    api_port: int, rss_port: int, feed: Path | None, bearer_env: str
) -> None:
    """Serve the sample feed as the vendors in examples/sources.yaml would.

    The feed's dianping reviews as a paged JSON API
    (``/reviews?since=CURSOR``) and its heimao complaints as an RSS feed
    (``/feed.xml``), until Ctrl-C. With the example file, ``monitor sources
    run examples/sources.yaml`` (or a worker with ``MONITOR_SOURCES``) polls
    them.
    """
    import os
    import signal
    import threading

    from monitor.local.sample_sources import SampleSources

    feed = feed or Path(__file__).resolve().parents[2] / "samples" / "feed.jsonl"
    if not feed.is_file():
        raise click.ClickException(f"{feed}: no such feed; pass --feed FILE")
    bearer = os.environ.get(bearer_env) or None
    sample = SampleSources(feed, api_port=api_port, rss_port=rss_port, bearer=bearer)
    try:
        sample.start()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"reviews API: {sample.api_url}  ({len(sample.items)} reviews)")
    click.echo(f"complaints:  {sample.rss_url}")
    if bearer:
        click.echo(f"the API wants Authorization: Bearer ${bearer_env}")
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    sample.stop()
