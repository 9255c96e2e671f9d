"""The daily report as one self-contained HTML page.

:func:`render_html` turns a :class:`~monitor.ops.report.model.Report` into
HTML with inline CSS and inline SVG charts (:mod:`~monitor.ops.report.svg`):
no script, no external file, so the page can be mailed, archived or printed
to PDF as it is. Every piece of text from posts, tickets or settings goes
through :func:`html.escape` (post text is never markup); links are made only
of URLs :func:`~monitor.sinks.notifiers.messages.link_target` accepts, and
carry ``rel="noopener noreferrer"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html import escape

from monitor.ops.report import stats, svg
from monitor.ops.report.i18n import source_name, text
from monitor.ops.report.model import (
    DurationStats,
    GroupVolume,
    Incident,
    Report,
)
from monitor.sinks.notifiers.messages import link_target

#: The page's style: A4 when printed, CJK fonts named first.
CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: %(font)s; color: #222; margin: 0 auto; max-width: 1100px;
  padding: 24px 28px; font-size: 14px; line-height: 1.55; background: #fff; }
header { border-bottom: 3px solid #c0392b; padding-bottom: 10px; margin-bottom: 18px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: 1px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-left: 8px;
  border-left: 4px solid #c0392b; }
.meta { color: #555; font-size: 13px; }
.kpis { display: flex; gap: 12px; flex-wrap: wrap; margin: 14px 0; }
.kpi { flex: 1 1 110px; border: 1px solid #e3e6ea; border-radius: 6px;
  padding: 10px 14px; background: #fafbfc; }
.kpi .value { font-size: 24px; font-weight: 700; }
.kpi .label { color: #666; font-size: 12px; }
.kpi.alert .value { color: #c0392b; }
.headline { background: #fdf3f2; border-radius: 6px; padding: 10px 14px; margin: 0; }
.headline p { margin: 2px 0; }
table { border-collapse: collapse; width: 100%%; margin: 8px 0 4px; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 5px 8px; text-align: left;
  vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
tr { page-break-inside: avoid; break-inside: avoid; }
.chart { width: 100%%; height: auto; display: block; margin: 6px 0; }
.note { color: #666; font-size: 12px; margin: 4px 0; }
.neg { color: #c0392b; font-weight: 600; }
.late { color: #c0392b; font-size: 12px; }
.p1, .p2 { color: #fff; background: #c0392b; border-radius: 3px; padding: 0 5px; }
.p3 { color: #fff; background: #e08a1e; border-radius: 3px; padding: 0 5px; }
.p4 { color: #fff; background: #7f8c8d; border-radius: 3px; padding: 0 5px; }
.post { border: 1px solid #e3e6ea; border-radius: 6px; padding: 8px 12px;
  margin: 8px 0; break-inside: avoid; page-break-inside: avoid; }
.post .who { color: #555; font-size: 12px; }
.post .body { margin: 4px 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.review { border-left: 3px solid #2f6fb5; padding: 4px 12px; margin: 10px 0;
  break-inside: avoid; page-break-inside: avoid; }
.review dt { font-weight: 600; }
.review dd { margin: 0 0 6px; overflow-wrap: anywhere; }
section { break-inside: auto; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
footer { margin-top: 30px; border-top: 1px solid #e3e6ea; padding-top: 8px; }
@media print { body { padding: 0; max-width: none; } h2 { break-after: avoid; } }
""" % {"font": svg.FONT_FAMILY}


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return escape(str(value), quote=True)


def _when(moment: datetime | None, zone: timezone, *, date: bool = True) -> str:
    if moment is None:
        return "–"
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M}" if date else f"{local:%H:%M}"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _interval_text(lang: str, interval: timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    if minutes % 1440 == 0:
        return text(lang, "days", minutes // 1440)
    if minutes % 60 == 0:
        return text(lang, "hours", minutes // 60)
    return text(lang, "minutes", minutes)


def _table(
    headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[tuple[str, bool]]]
) -> str:
    """Return a table; cells are (already escaped HTML, numeric?) pairs."""
    head = "".join(
        f'<th class="num">{cell}</th>' if numeric else f"<th>{cell}</th>"
        for cell, numeric in headers
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if numeric else f"<td>{cell}</td>"
            for cell, numeric in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kpis(report: Report, lang: str) -> str:
    totals = report.totals
    if report.previous_total:
        change = (totals.total - report.previous_total) / report.previous_total
        change_text = text(lang, "kpi_change", f"{change * 100:+.0f}%")
    else:
        change_text = text(lang, "kpi_no_previous")
    cards = [
        (text(lang, "kpi_posts"), f"{totals.total:,}", change_text, False),
        (text(lang, "kpi_negative"), f"{totals.negative:,}", "", False),
        (
            text(lang, "kpi_negative_share"),
            _percent(totals.negative_share),
            "",
            totals.negative_share >= 0.5,
        ),
        (
            text(lang, "kpi_incidents"),
            f"{report.incidents_total:,}",
            "",
            report.incidents_total > 0,
        ),
        (text(lang, "kpi_bursts"), f"{len(report.bursts):,}", "", False),
    ]
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi{" alert" if alert else ""}"><div class="label">{_e(name)}'
            f'</div><div class="value">{_e(value)}</div>'
            f'<div class="label">{_e(extra)}</div></div>'
            for name, value, extra, alert in cards
        )
        + "</div>"
    )


def _headline(report: Report, lang: str, zone: timezone) -> str:
    lines = []
    if not report.totals.total:
        lines.append(text(lang, "headline_empty"))
    else:
        worst = max(
            report.topics,
            key=lambda g: (g.mix.negative, g.mix.negative_share),
            default=None,
        )
        if worst is not None and worst.mix.negative:
            lines.append(
                text(
                    lang,
                    "headline_topic",
                    worst.name,
                    f"{worst.mix.negative:,}",
                    _percent(worst.mix.negative_share),
                )
            )
    strongest = next((b for b in report.bursts if b.kind != "keyword"), None)
    if strongest is not None:
        lines.append(
            text(
                lang,
                "headline_burst",
                strongest.key,
                text(lang, f"kind_{strongest.kind}"),
                _when(strongest.peak_at, zone, date=False),
                f"{strongest.peak_observed:g}",
                f"{strongest.peak_expected:.1f}",
            )
        )
    if report.incidents:
        urgent = sum(1 for i in report.incidents if i.priority in ("P1", "P2"))
        unresolved = sum(
            1 for i in report.incidents if i.status not in ("resolved", "closed")
        )
        lines.append(
            text(lang, "headline_incidents", report.incidents_total, urgent, unresolved)
        )
    else:
        lines.append(text(lang, "headline_quiet"))
    return (
        '<div class="headline">' + "".join(f"<p>{_e(x)}</p>" for x in lines) + "</div>"
    )


def _trend(report: Report, lang: str, zone: timezone) -> str:
    if not report.timeline:
        return ""
    labels = _time_labels(report, zone)
    start = report.timeline[0].start
    markers = []
    for burst in report.bursts:
        if burst.kind == "keyword":
            continue
        index = (burst.peak_at - start) / report.interval
        if 0 <= index <= len(report.timeline) - 1:
            markers.append(svg.Marker(index, burst.key))
    markers = _spread(markers)
    chart = svg.line_chart(
        labels,
        [
            svg.Series(
                text(lang, "all_posts"),
                tuple(float(b.mix.total) for b in report.timeline),
                svg.PALETTE[1],
                area=True,
            ),
            svg.Series(
                text(lang, "negative"),
                tuple(float(b.mix.negative) for b in report.timeline),
                svg.SENTIMENT_COLOURS[2],
            ),
            svg.Series(
                text(lang, "positive"),
                tuple(float(b.mix.positive) for b in report.timeline),
                svg.SENTIMENT_COLOURS[0],
            ),
        ],
        title=text(lang, "sec_trend"),
        markers=markers,
    )
    note = text(lang, "trend_note", _interval_text(lang, report.interval))
    return (
        f"<h2>{_e(text(lang, 'sec_trend'))}</h2>{chart}<p class='note'>{_e(note)}</p>"
    )


#: Steps between time labels to choose from, shortest first.
_LABEL_STEPS = tuple(
    timedelta(minutes=m)
    for m in (5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
)


def _time_labels(report: Report, zone: timezone, most: int = 8) -> list[str]:
    """Labels of the timeline's intervals: round times only, at most ``most``.

    The step is the shortest of :data:`_LABEL_STEPS` that is a whole number
    of intervals and gives at most ``most`` labels; an interval is labelled
    if it starts on a multiple of the step in local time (09:00, 10:00...).
    Without such a step every interval gets its label (the chart thins them).
    """
    days = report.period.span > timedelta(days=1)
    names = [
        f"{b.start.astimezone(zone):%m-%d %H:%M}"
        if days
        else f"{b.start.astimezone(zone):%H:%M}"
        for b in report.timeline
    ]
    span = report.interval * len(report.timeline)
    for step in _LABEL_STEPS:
        if step < report.interval or step % report.interval or span / step > most:
            continue
        offset = zone.utcoffset(None).total_seconds()
        aligned = [
            name if (b.start.timestamp() + offset) % step.total_seconds() == 0 else ""
            for b, name in zip(report.timeline, names, strict=True)
        ]
        if any(aligned):
            return aligned
    return names


def _spread(markers: list[svg.Marker]) -> list[svg.Marker]:
    """One marker per x position (the first, i.e. strongest, burst's label)."""
    seen: set[float] = set()
    kept = []
    for marker in markers:
        if marker.index not in seen:
            seen.add(marker.index)
            kept.append(marker)
    return kept


def _mix_section(
    groups: Sequence[GroupVolume], lang: str, title_key: str, name_key: str
) -> str:
    title = text(lang, title_key)
    if name_key == "source":
        groups = [replace(g, name=source_name(lang, g.name)) for g in groups]
    if not groups:
        return f"<h2>{_e(title)}</h2><p>{_e(text(lang, 'none'))}</p>"
    segments = [text(lang, k) for k in ("positive", "neutral", "negative")]
    chart = svg.stacked_bars(
        [(g.name, (g.mix.positive, g.mix.neutral, g.mix.negative)) for g in groups],
        segments,
        title=title,
    )
    table = _table(
        [
            (_e(text(lang, name_key)), False),
            (_e(text(lang, "posts")), True),
            *((_e(s), True) for s in segments),
            (_e(text(lang, "negative_share")), True),
        ],
        (
            [
                (_e(g.name), False),
                (f"{g.mix.total:,}", True),
                (f"{g.mix.positive:,}", True),
                (f"{g.mix.neutral:,}", True),
                (f'<span class="neg">{g.mix.negative:,}</span>', True),
                (_percent(g.mix.negative_share), True),
            ]
            for g in groups
        ),
    )
    return f"<h2>{_e(title)}</h2>{chart}{table}"


def _topic_trend(report: Report, lang: str, zone: timezone) -> str:
    if not report.topic_series or not report.timeline:
        return ""
    labels = _time_labels(report, zone)
    series = [
        svg.Series(
            one.topic,
            tuple(float(v) for v in one.negative[: len(labels)])
            + (0.0,) * max(len(labels) - len(one.negative), 0),
            svg.PALETTE[index % len(svg.PALETTE)],
        )
        for index, one in enumerate(report.topic_series)
    ]
    title = text(lang, "sec_topic_trend")
    return f"<h2>{_e(title)}</h2>" + svg.line_chart(labels, series, title=title)


def _hot_words(report: Report, lang: str) -> str:
    title = text(lang, "sec_hot_words")
    if not report.hot_words:
        return f"<h2>{_e(title)}</h2><p>{_e(text(lang, 'none'))}</p>"
    chart = svg.bar_chart(
        [(w.word, float(w.posts)) for w in report.hot_words],
        title=title,
        highlight=frozenset(w.word for w in report.hot_words if w.emerging),
    )
    if report.previous_total:
        note = text(
            lang,
            "hot_words_note",
            f"{stats.EMERGING_MIN_RATIO:g}",
            stats.EMERGING_MIN_POSTS,
        )
    else:
        note = text(lang, "hot_words_no_previous")
    return f"<h2>{_e(title)}</h2>{chart}<p class='note'>{_e(note)}</p>"


def _bursts(report: Report, lang: str, zone: timezone) -> str:
    title = text(lang, "sec_bursts")
    if not report.bursts:
        return f"<h2>{_e(title)}</h2><p>{_e(text(lang, 'no_bursts'))}</p>"
    rows = (
        [
            (_e(b.key), False),
            (_e(text(lang, f"kind_{b.kind}")), False),
            (_e(_when(b.started_at, zone)), False),
            (_e(_when(b.peak_at, zone)), False),
            (
                _e(
                    _when(b.ended_at, zone)
                    if b.ended_at is not None
                    else text(lang, "ongoing")
                ),
                False,
            ),
            (f"{b.peak_observed:g} / {b.peak_expected:.1f}", True),
            (f"{b.peak_score:.1f}", True),
        ]
        for b in report.bursts
    )
    headers = [
        (_e(text(lang, "word") + " / " + text(lang, "topic")), False),
        (_e(text(lang, "kind")), False),
        (_e(text(lang, "started")), False),
        (_e(text(lang, "peak")), False),
        (_e(text(lang, "ended")), False),
        (_e(text(lang, "observed_expected")), True),
        (_e(text(lang, "score")), True),
    ]
    return f"<h2>{_e(title)}</h2>" + _table(headers, rows)


def _stats_table(report: Report, lang: str) -> str:
    def row(name: str, values: DurationStats) -> list[tuple[str, bool]]:
        return [
            (_e(text(lang, name)), False),
            (str(values.count), True),
            (_e(stats.format_duration(values.median)), True),
            (_e(stats.format_duration(values.p90)), True),
            (_e(stats.format_duration(values.maximum)), True),
        ]

    return _table(
        [
            (_e(text(lang, "metric")), False),
            (_e(text(lang, "count")), True),
            (_e(text(lang, "median")), True),
            (_e(text(lang, "p90")), True),
            (_e(text(lang, "maximum")), True),
        ],
        [
            row("to_ack", report.acknowledge_stats),
            row("to_resolve", report.resolve_stats),
        ],
    )


def _handling(duration: timedelta | None, in_time: bool | None, lang: str) -> str:
    shown = _e(stats.format_duration(duration))
    if in_time is False:
        shown += f' <span class="late">{_e(text(lang, "late"))}</span>'
    return shown


def _incidents(report: Report, lang: str, zone: timezone) -> str:
    title = text(lang, "sec_incidents")
    if not report.incidents:
        return f"<h2>{_e(title)}</h2><p>{_e(text(lang, 'no_incidents'))}</p>"

    def row(i: Incident) -> list[tuple[str, bool]]:
        css = i.priority.lower() if i.priority in ("P1", "P2", "P3", "P4") else ""
        return [
            (_e(i.ticket_id), False),
            (f'<span class="{css}">{_e(i.priority)}</span>', False),
            (_e(i.topic), False),
            (_e(i.rule), False),
            (_e(text(lang, f"status_{i.status}")), False),
            (_e(i.owner or "–"), False),
            (_e(_when(i.first_seen, zone)), False),
            (str(i.signals), True),
            (_handling(i.time_to_acknowledge, i.acknowledged_in_time, lang), True),
            (_handling(i.time_to_resolve, i.resolved_in_time, lang), True),
        ]

    headers = [
        (_e(text(lang, key)), key in ("signals", "to_ack", "to_resolve"))
        for key in (
            "ticket",
            "priority",
            "topic",
            "rule",
            "status",
            "owner",
            "first_seen",
            "signals",
            "to_ack",
            "to_resolve",
        )
    ]
    return (
        f"<h2>{_e(title)}</h2>"
        + _stats_table(report, lang)
        + f"<p class='note'>{_e(text(lang, 'stats_note'))}</p>"
        + _table(headers, (row(i) for i in report.incidents))
    )


def _reviews(report: Report, lang: str, zone: timezone) -> str:
    title = text(lang, "sec_reviews")
    reviewed = [i for i in report.incidents if i.review is not None]
    if not reviewed:
        return f"<h2>{_e(title)}</h2><p>{_e(text(lang, 'no_reviews'))}</p>"
    parts = [f"<h2>{_e(title)}</h2>"]
    for incident in reviewed:
        review = incident.review
        assert review is not None
        by = text(lang, "review_by", review.author, _when(review.at, zone))
        parts.append(
            f'<div class="review"><div><strong>{_e(incident.ticket_id)}</strong> · '
            f"{_e(incident.topic)} · {_e(by)}</div><dl>"
            f"<dt>{_e(text(lang, 'root_cause'))}</dt><dd>{_e(review.root_cause)}</dd>"
            f"<dt>{_e(text(lang, 'resolution'))}</dt><dd>{_e(review.resolution)}</dd>"
            f"<dt>{_e(text(lang, 'lessons'))}</dt><dd>{_e(review.lessons)}</dd>"
            "</dl></div>"
        )
    return "".join(parts)


def _posts(report: Report, lang: str, zone: timezone) -> str:
    title = text(lang, "sec_posts")
    if not report.negative_posts:
        return f"<h2>{_e(title)}</h2><p>{_e(text(lang, 'no_posts'))}</p>"
    parts = [
        f"<h2>{_e(title)}</h2><p class='note'>"
        f"{_e(text(lang, 'posts_note', stats.EXCERPT_CHARS))}</p>"
    ]
    for post in report.negative_posts:
        who = " · ".join(
            [
                post.author or "–",
                source_name(lang, post.source),
                _when(post.published_at, zone),
                f"{text(lang, 'followers')} {post.followers:,}",
                f"{text(lang, 'likes')} {post.likes:,}",
                f"{text(lang, 'reposts')} {post.reposts:,}",
            ]
            + ([" / ".join(post.topics)] if post.topics else [])
        )
        target = link_target(post.url)
        link = (
            f' · <a href="{_e(target)}" rel="noopener noreferrer">'
            f"{_e(text(lang, 'original'))}</a>"
            if target
            else ""
        )
        parts.append(
            f'<div class="post"><div class="who">{_e(who)}{link}</div>'
            f'<p class="body">{_e(post.excerpt)}</p></div>'
        )
    return "".join(parts)


def _notes(report: Report, lang: str, prefix: str) -> str:
    indices = ", ".join(f"{prefix}-{name}" for name in ("posts-*", "bursts", "tickets"))
    items = [text(lang, "note_source", indices)]
    items += [text(lang, note.key, *note.values) for note in report.notes]
    return (
        f"<footer><h2>{_e(text(lang, 'notes'))}</h2><ul class='note'>"
        + "".join(f"<li>{_e(item)}</li>" for item in items)
        + "</ul></footer>"
    )


def render_html(report: Report, *, lang: str = "zh", prefix: str = "monitor") -> str:
    """Return the report as one self-contained HTML document.

    Args:
        report: What to show.
        lang: ``zh`` (default) or ``en``.
        prefix: Index prefix, named in the footnotes.

    Raises:
        ValueError: If ``lang`` is unknown.

    """
    zone = report.period.since.tzinfo
    if not isinstance(zone, timezone):
        zone = timezone(report.period.since.utcoffset() or timedelta(0))
    offset = f"{report.period.since:%z}"
    offset = f"{offset[:3]}:{offset[3:]}" if offset else "+00:00"
    title = text(lang, "title")
    topics = (
        "、".join(report.topics_filter)
        if lang == "zh"
        else ", ".join(report.topics_filter)
    ) or text(lang, "all_topics")
    period = (
        f"{_when(report.period.since, zone)} – {_when(report.period.until, zone)} "
        f"({text(lang, 'zone', offset)})"
    )
    meta = (
        f"{text(lang, 'period')}: {period} · {text(lang, 'topics_filter')}: {topics}"
        f" · {text(lang, 'generated')}: {_when(report.generated_at, zone)}"
    )
    body = [
        f"<header><h1>{_e(title)}</h1><div class='meta'>{_e(meta)}</div></header>",
        _kpis(report, lang),
        _headline(report, lang, zone),
        _trend(report, lang, zone),
        _mix_section(report.topics, lang, "sec_topics", "topic"),
        _topic_trend(report, lang, zone),
        _incidents(report, lang, zone),
        _reviews(report, lang, zone),
        _posts(report, lang, zone),
        _hot_words(report, lang),
        _bursts(report, lang, zone),
        _mix_section(report.sources, lang, "sec_sources", "source"),
        _notes(report, lang, prefix),
    ]
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{html_lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{_e(title)} · {_e(period)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
