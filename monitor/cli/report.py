"""``monitor report``: the daily report (舆情日报) as HTML, and PDF if asked.

Reads Elasticsearch (:mod:`monitor.ops.report.data`), writes one
self-contained HTML page (:mod:`monitor.ops.report.render`) and, with
``--pdf``, prints it with headless Chromium (:mod:`monitor.ops.report.pdf`).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli.context import configure_logging, load_settings, resolve_servers, run
from monitor.cli.output import out, safe_text

if TYPE_CHECKING:
    from monitor.ops.report.data import ReportRequest
    from monitor.ops.report.model import Report
    from monitor.settings import Settings


@click.command("report")
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Start: a duration back from --until (24h, 7d) or a time "
    "(2026-11-20T09:00+08:00).",
)
@click.option("--until", default=None, help="End: a time (default: now).")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    help="Only this watched topic (repeat for several; at most 20).",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the HTML report.",
)
@click.option(
    "--pdf",
    "pdf_path",
    default=None,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also print it to this PDF (headless Chromium).",
)
@click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    default="zh",
    show_default=True,
    help="Language of the report.",
)
@click.option(
    "--utc-offset",
    default=None,
    help="Zone of times shown, of times written without an offset and of the "
    "timeline's intervals (default: MONITOR_INDEX_UTC_OFFSET).",
)
@click.option(
    "--posts",
    default=10,
    show_default=True,
    type=click.IntRange(1, 50),
    help="Negative posts to list.",
)
@click.option(
    "--hot-words",
    default=20,
    show_default=True,
    type=click.IntRange(1, 30),
    help="Hot words to list.",
)
@click.option(
    "--chromium",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Chromium executable for --pdf (default /usr/bin/chromium).",
)
@click.pass_context
def report(
    ctx: click.Context,
    since: str,
    until: str | None,
    topics: tuple[str, ...],
    out_path: Path,
    pdf_path: Path | None,
    lang: str,
    utc_offset: str | None,
    posts: int,
    hot_words: int,
    chromium: Path | None,
) -> None:
    """Write the daily report (舆情日报) for a period as HTML (and PDF).

    Volume and sentiment by topic and source, the most influential negative
    posts, hot words, bursts, and alert tickets with their handling times
    and reviews, from Elasticsearch. Example:

        monitor report --since 24h --out report.html --pdf report.pdf
    """
    from monitor.config.durations import parse_utc_offset
    from monitor.ops.report.data import ReportError, ReportRequest
    from monitor.ops.report.model import Period
    from monitor.ops.report.pdf import print_pdf
    from monitor.ops.report.render import render_html

    ctx.ensure_object(dict)
    settings = load_settings(ctx)
    configure_logging("warning")
    try:
        zone = parse_utc_offset(utc_offset or settings.index_utc_offset)
        period = Period.parse(since, until, now=datetime.now(timezone.utc), zone=zone)
    except ValueError as exc:
        raise click.UsageError(safe_text(exc, markup=False)) from None
    request = ReportRequest(
        period=period,
        topics=tuple(dict.fromkeys(t.strip() for t in topics if t.strip())),
        utc_offset=_offset_text(period.since),
        posts=posts,
        hot_words=hot_words,
        stop_words=_stop_words(settings),
    )
    try:
        request.check()
    except ReportError as exc:
        raise click.UsageError(safe_text(exc, markup=False)) from None

    with resolve_servers(settings, start=False) as resolved:
        made: Report = run(_read(resolved, request))
    page = render_html(made, lang=lang, prefix=settings.index_prefix)
    _write(out_path, page)
    out.print(
        f"wrote {safe_text(out_path)}: {made.totals.total:,} posts, "
        f"{made.incidents_total} tickets, {len(made.bursts)} bursts",
        highlight=False,
    )
    if pdf_path is not None:
        try:
            print_pdf(out_path, pdf_path, chromium=chromium)
        except ReportError as exc:
            raise click.ClickException(safe_text(exc, markup=False)) from None
        out.print(f"wrote {safe_text(pdf_path)}", highlight=False)


async def _read(settings: Settings, request: ReportRequest) -> Report:
    from monitor.ops.report.data import REQUEST_TIMEOUT, ReportReader
    from monitor.sinks.elasticsearch.bulk import es_client

    assert settings.es_url is not None
    reader = ReportReader(
        es_client(
            settings.es_url,
            api_key=settings.es_api_key,
            request_timeout=min(settings.es_request_timeout_seconds, REQUEST_TIMEOUT),
        ),
        settings.index_prefix,
    )
    try:
        return await reader.read(request, datetime.now(timezone.utc))
    finally:
        await reader.close()


def _offset_text(moment: datetime) -> str:
    """``+08:00`` for a time at UTC+8 (the form Elasticsearch's time_zone takes)."""
    offset = f"{moment:%z}"
    return f"{offset[:3]}:{offset[3:5]}"


def _stop_words(settings: Settings) -> frozenset[str]:
    """Return the hot-word stop list: built-in words plus the rules file's."""
    from monitor.analysis.hotwords import BUILTIN_STOP_WORDS

    words = set(BUILTIN_STOP_WORDS)
    if settings.rules is not None:
        from monitor.cli.backtest import load_rules_or_exit

        words |= set(load_rules_or_exit(settings.rules, settings).stop_words)
    return frozenset(words)


def _write(path: Path, page: str) -> None:
    """Write the page through a temporary file, so a reader never sees half."""
    path = path.resolve()
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(
            f"cannot write {safe_text(path, markup=False)}: {exc.strerror}"
        ) from None
