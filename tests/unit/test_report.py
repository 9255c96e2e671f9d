"""The daily report's pure parts: statistics, charts, escaping and bounds."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from monitor.analysis.tickets.model import Review, Ticket
from monitor.cli.report import report as report_command
from monitor.local.embedded import free_port
from monitor.ops.report import i18n, stats, svg
from monitor.ops.report.data import (
    MAX_PERIOD,
    ReportError,
    ReportRequest,
    _post_excerpt,
)
from monitor.ops.report.model import (
    BurstSummary,
    DurationStats,
    GroupVolume,
    HotWord,
    Note,
    Period,
    PostExcerpt,
    Report,
    ReviewText,
    SentimentMix,
    TimeBucket,
    TopicSeries,
)
from monitor.ops.report.pdf import find_chromium
from monitor.ops.report.render import _time_labels, render_html

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 13, 0, tzinfo=CST)
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = (
    '<script>alert("x")</script> **粗体** [点我](javascript:alert(1)) '
    "<img src=x onerror=alert(1)> &amp; ${ALERT_SECRET}"
)


def minutes(*values: float) -> list[timedelta]:
    return [timedelta(minutes=v) for v in values]


# --- statistics -----------------------------------------------------------------


def test_quantile_interpolates_between_ranks() -> None:
    assert stats.quantile([5.0], 0.9) == 5.0
    assert stats.quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert stats.quantile([10.0, 1.0, 3.0, 2.0, 4.0], 0.9) == pytest.approx(7.6)


@pytest.mark.parametrize("values, q", [([], 0.5), ([1.0], -0.1), ([1.0], 1.5)])
def test_quantile_refuses_no_values_or_q_out_of_range(
    values: list[float], q: float
) -> None:
    with pytest.raises(ValueError):
        stats.quantile(values, q)


@given(
    st.lists(st.floats(0, 1e7, allow_nan=False), min_size=1, max_size=60),
    st.floats(0, 1),
)
def test_quantile_matches_numpy_linear(values: list[float], q: float) -> None:
    expected = float(np.percentile(values, q * 100, method="linear"))
    assert stats.quantile(values, q) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_duration_stats_of_handling_times() -> None:
    found = stats.duration_stats(minutes(4, 1, 3, 2, 10))
    assert found == DurationStats(
        count=5,
        median=timedelta(minutes=3),
        p90=timedelta(minutes=7.6),
        maximum=timedelta(minutes=10),
    )


def test_duration_stats_leave_out_negative_times_and_say_when_empty() -> None:
    assert stats.duration_stats([]) == DurationStats(count=0)
    assert stats.duration_stats(minutes(-5)) == DurationStats(count=0)
    assert stats.duration_stats(minutes(-5, 2)).count == 1


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=40))
def test_duration_stats_are_ordered(seconds: list[int]) -> None:
    found = stats.duration_stats(timedelta(seconds=s) for s in seconds)
    assert found.count == len(seconds)
    assert found.median is not None and found.p90 is not None
    assert timedelta(seconds=min(seconds)) <= found.median <= found.p90
    assert found.p90 <= found.maximum == timedelta(seconds=max(seconds))


@pytest.mark.parametrize(
    "span, interval",
    [
        (timedelta(minutes=30), timedelta(minutes=1)),
        (timedelta(hours=6), timedelta(minutes=10)),
        (timedelta(hours=24), timedelta(minutes=30)),
        (timedelta(days=7), timedelta(hours=6)),
        (timedelta(days=31), timedelta(days=1)),
    ],
)
def test_timeline_interval_keeps_charts_readable(
    span: timedelta, interval: timedelta
) -> None:
    assert stats.timeline_interval(span) == interval


@given(st.integers(1, 31 * 86400))
def test_timeline_never_has_more_than_48_intervals(seconds: int) -> None:
    span = timedelta(seconds=seconds)
    assert span / stats.timeline_interval(span) <= stats.MAX_TIMELINE_BUCKETS


def test_excerpt_is_one_line_without_control_characters_and_bounded() -> None:
    assert stats.excerpt("a\n\n b\tc\x1b[31m red\u202e") == "a b c [31m red"
    cut = stats.excerpt("空" * 500)
    assert len(cut) == stats.EXCERPT_CHARS and cut.endswith("…")


@given(st.text(max_size=400), st.integers(1, 200))
def test_excerpt_never_exceeds_its_limit(text: str, limit: int) -> None:
    cut = stats.excerpt(text, limit)
    assert len(cut) <= limit
    assert "\n" not in cut and "\x1b" not in cut


def test_influence_counts_audience_and_engagement() -> None:
    assert stats.influence(0, 0, 0) == 0.0
    assert stats.influence(999, 0, 0) == pytest.approx(3.0)
    assert stats.influence(0, 0, 10) > stats.influence(0, 10, 0)
    assert stats.influence(-5, -1, -1) == 0.0


def post(post_id: str, text: str, followers: int = 0, **changes: Any) -> PostExcerpt:
    return replace(
        PostExcerpt(
            post_id=post_id,
            source="weibo",
            author="someone",
            published_at=T0,
            excerpt=text,
            followers=followers,
            likes=0,
            reposts=0,
            positive_probability=0.01,
        ),
        **changes,
    )


def test_top_posts_rank_by_influence_and_list_a_text_once() -> None:
    posts = [
        post("a", "空调有霉味", 100),
        post("b", "空调有霉味", 100_000),  # the same text, bigger account
        post("c", "头晕", 5_000),
        post("d", "退款不处理", 10, reposts=900),
    ]
    top = stats.top_posts(posts, 10)
    assert [p.post_id for p in top] == ["b", "d", "c"]
    assert [p.post_id for p in stats.top_posts(posts, 2)] == ["b", "d"]


@pytest.mark.parametrize(
    "word, ok",
    [("空调", True), ("app", True), ("：3", False), ("2026", False), ("", False)],
)
def test_is_word(word: str, ok: bool) -> None:
    assert stats.is_word(word) is ok


def test_hot_words_drop_stop_words_and_non_words_and_flag_emerging_ones() -> None:
    words = stats.hot_words(
        {"空调": 400, "星河": 900, "：3": 50, "投诉": 100, "异味": 4, "话题": 80},
        {"投诉": 100, "空调": 2},
        current_posts=1000,
        previous_posts=1000,
        stop_words={"星河"} | stats.PLATFORM_WORDS,
    )
    assert words == (
        HotWord("空调", 400, 2, True),
        HotWord("投诉", 100, 100, False),
        HotWord("异味", 4, 0, False),  # too few posts to call
    )


def test_hot_words_without_a_previous_period_are_never_emerging() -> None:
    words = stats.hot_words(
        {"空调": 400}, {}, current_posts=1000, previous_posts=0, limit=5
    )
    assert words == (HotWord("空调", 400, 0, False),)


@given(
    st.dictionaries(st.text(min_size=1, max_size=6), st.integers(0, 500), max_size=40),
    st.integers(1, 30),
)
def test_hot_words_are_bounded_and_sorted(counts: dict[str, int], limit: int) -> None:
    words = stats.hot_words(
        counts, {}, current_posts=1000, previous_posts=0, limit=limit
    )
    assert len(words) <= limit
    assert [w.posts for w in words] == sorted((w.posts for w in words), reverse=True)
    assert all(stats.is_word(w.word) and w.posts > 0 for w in words)


def make_ticket(**changes: Any) -> Ticket:
    ticket = Ticket(
        ticket_id="T-3f2a9c01de-1",
        fingerprint="fp-3f2a9c01de",
        sequence=1,
        status="closed",
        priority="P2",
        priority_reason="超过阈值",
        topic="空调异味",
        rule="负面声量",
        kind="negative_volume",
        keyword=None,
        team="facilities",
        owner="王工",
        occurrences=3,
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=10),
        opened_at=T0 + timedelta(minutes=5),
        ack_due=T0 + timedelta(minutes=20),
        resolve_due=T0 + timedelta(hours=2),
        threshold=10,
        opening_value=18,
        growth_reference=18,
        peak_value=23,
        acknowledged_at=T0 + timedelta(minutes=9),
        resolved_at=T0 + timedelta(hours=3),
        closed_at=T0 + timedelta(hours=4),
        review=Review(
            root_cause="B1 空调机组滤网" + "很长" * 400,
            resolution="停机更换滤网",
            lessons="滤网按季度检查",
            author="王工",
            at=T0 + timedelta(hours=4),
        ),
    )
    return replace(ticket, **changes)


def test_incident_handling_times_run_from_opening() -> None:
    incident = stats.incident_of(make_ticket())
    assert incident.time_to_acknowledge == timedelta(minutes=4)
    assert incident.acknowledged_in_time is True
    assert incident.time_to_resolve == timedelta(hours=2, minutes=55)
    assert incident.resolved_in_time is False
    assert incident.review is not None
    assert len(incident.review.root_cause) == stats.REVIEW_CHARS
    assert incident.review.lessons == "滤网按季度检查"


def test_incident_not_yet_handled_has_no_times() -> None:
    incident = stats.incident_of(
        make_ticket(
            status="open", acknowledged_at=None, resolved_at=None, closed_at=None
        )
    )
    assert incident.time_to_acknowledge is None
    assert incident.time_to_resolve is None
    assert incident.acknowledged_in_time is None


def test_incidents_sort_most_urgent_first() -> None:
    tickets = [
        make_ticket(ticket_id="T-3", priority="P3"),
        make_ticket(ticket_id="T-1b", priority="P1", first_seen=T0 + timedelta(1)),
        make_ticket(ticket_id="T-1a", priority="P1"),
    ]
    ordered = sorted(map(stats.incident_of, tickets), key=stats.incident_order)
    assert [i.ticket_id for i in ordered] == ["T-1a", "T-1b", "T-3"]


@pytest.mark.parametrize(
    "seconds, shown",
    [(None, "–"), (12, "12s"), (270, "4m 30s"), (3900, "1h 05m"), (176400, "49h 00m")],
)
def test_format_duration(seconds: int | None, shown: str) -> None:
    duration = None if seconds is None else timedelta(seconds=seconds)
    assert stats.format_duration(duration) == shown


# --- periods and bounds -------------------------------------------------------


NOW = datetime(2026, 11, 21, 1, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "since, until, start, end",
    [
        ("24h", None, datetime(2026, 11, 20, 9, tzinfo=CST), NOW),
        (
            "1h30m",
            "2026-11-20T15:00",
            T0 + timedelta(minutes=30),
            T0 + timedelta(hours=2),
        ),
        (
            "2026-11-20",
            "2026-11-21T00:00:00+08:00",
            T0 - timedelta(hours=13),
            T0 + timedelta(hours=11),
        ),
        ("2026-11-20T05:00:00Z", "2026-11-20T14:00", T0, T0 + timedelta(hours=1)),
    ],
)
def test_period_parse(
    since: str, until: str | None, start: datetime, end: datetime
) -> None:
    period = Period.parse(since, until, now=NOW, zone=CST)
    assert (period.since, period.until) == (start, end)
    assert period.since.utcoffset() == timedelta(hours=8)
    assert period.previous() == Period(start - (end - start), start)


@pytest.mark.parametrize("since", ["yesterday", "24", "-3h", "2026-13-01"])
def test_period_parse_refuses_what_it_cannot_read(since: str) -> None:
    with pytest.raises(ValueError):
        Period.parse(since, None, now=NOW, zone=CST)


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"period": Period(T0, T0)}, "ends before"),
        ({"period": Period(T0, T0 + MAX_PERIOD + timedelta(hours=1))}, "at most 31"),
        ({"topics": tuple(f"t{i}" for i in range(21))}, "at most 20 topics"),
        ({"posts": 51}, "posts must be"),
        ({"hot_words": 0}, "hot words must be"),
    ],
)
def test_report_request_bounds(changes: dict[str, Any], reason: str) -> None:
    request = replace(ReportRequest(Period(T0, T0 + timedelta(days=1))), **changes)
    with pytest.raises(ReportError, match=reason):
        request.check()


def test_a_post_read_from_elasticsearch_is_cut_to_its_bounds() -> None:
    found = _post_excerpt(
        "wb-1",
        {
            "text": "空调" * 5000,
            "author": "作者" * 100,
            "source": "weibo",
            "published_at": "2026-11-20T13:34:10+08:00",
            "followers": "12",
            "likes": None,
            "reposts": -3,
            "topics": [f"t{i}" for i in range(50)],
        },
    )
    assert len(found.excerpt) == stats.EXCERPT_CHARS
    assert found.author is not None and len(found.author) <= 64
    assert (found.followers, found.likes, found.reposts) == (12, 0, 0)
    assert len(found.topics) == 10


# --- charts ---------------------------------------------------------------------


def parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title") is not None
    return root


def test_line_chart_draws_one_polyline_per_series_with_a_point_per_label() -> None:
    labels = [f"13:{m:02d}" for m in range(0, 60, 5)]
    chart = svg.line_chart(
        labels,
        [
            svg.Series("全部", tuple(float(i * 10) for i in range(12)), "#00f", True),
            svg.Series("负面", tuple(float(i) for i in range(12)), "#f00"),
        ],
        title="声量",
        markers=[svg.Marker(3, "空调异味"), svg.Marker(3.2, "星河广场")],
    )
    root = parse_svg(chart)
    lines = root.findall(f"{SVG}polyline")
    assert [line.get("data-name") for line in lines] == ["全部", "负面"]
    for line in lines:
        assert len(line.get("points", "").split()) == len(labels)
    assert len(root.findall(f"{SVG}polygon")) == 1  # the area series
    assert len(root.findall(f"{SVG}line[@class='marker']")) == 2
    ys = [float(p.split(",")[1]) for p in lines[0].get("points", "").split()]
    assert ys == sorted(ys, reverse=True), "a rising series rises (y grows down)"


def test_line_chart_refuses_series_of_another_length() -> None:
    with pytest.raises(ValueError, match="values for 3 labels"):
        svg.line_chart(["a", "b", "c"], [svg.Series("x", (1.0,), "#000")], title="t")


def test_line_chart_of_nothing_is_still_valid() -> None:
    parse_svg(svg.line_chart([], [], title="empty"))
    parse_svg(svg.line_chart(["09:00"], [svg.Series("x", (0.0,), "#000")], title="t"))


def test_bar_chart_scales_bars_to_the_longest_and_highlights() -> None:
    chart = svg.bar_chart(
        [("空调", 400.0), ("投诉", 100.0), ("异味", 0.0)],
        title="热词",
        highlight=frozenset({"投诉"}),
    )
    root = parse_svg(chart)
    bars = root.findall(f"{SVG}rect[@class='bar']")
    assert [b.get("data-label") for b in bars] == ["空调", "投诉", "异味"]
    widths = [float(b.get("width", "0")) for b in bars]
    assert widths[1] == pytest.approx(widths[0] / 4, abs=0.2)
    assert widths[2] == 0
    assert bars[1].get("fill") == svg.PALETTE[2] != bars[0].get("fill")


def test_stacked_bars_split_each_row_by_share() -> None:
    chart = svg.stacked_bars(
        [("空调异味", (19, 11, 725)), ("空", (0, 0, 0))],
        ["正面", "中性", "负面"],
        title="情感",
    )
    root = parse_svg(chart)
    segments = root.findall(f"{SVG}rect[@class='segment']")
    assert len(segments) == 6
    first = [float(s.get("width", "0")) for s in segments[:3]]
    assert first[2] / sum(first) == pytest.approx(725 / 755, abs=1e-3)
    assert all(float(s.get("width", "1")) == 0 for s in segments[3:])
    assert [s.get("data-value") for s in segments[:3]] == ["19", "11", "725"]


def test_stacked_bars_refuse_rows_of_another_width() -> None:
    with pytest.raises(ValueError):
        svg.stacked_bars([("x", (1, 2))], ["a", "b", "c"], title="t")


def test_chart_labels_are_escaped() -> None:
    name = '<script>alert(1)</script>"&'
    for chart in (
        svg.line_chart(["<b>"], [svg.Series(name, (1.0,), "#000")], title=name),
        svg.bar_chart([(name, 1.0)], title=name),
        svg.stacked_bars([(name, (1, 2, 3))], [name, "b", "c"], title=name),
    ):
        root = parse_svg(chart)
        assert not [e for e in root.iter() if e.tag.endswith("script")]
        assert "<script" not in chart


@given(st.floats(0, 1e9, allow_nan=False), st.integers(1, 8))
def test_nice_ticks_cover_the_maximum_with_equal_round_steps(
    maximum: float, count: int
) -> None:
    ticks = svg.nice_ticks(maximum, count)
    assert ticks[0] == 0 and ticks[-1] >= maximum
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5, 10)
    assert len(ticks) <= 2 * count + 2


# --- the page ----------------------------------------------------------------


def sample_report(**changes: Any) -> Report:
    period = Period(T0 - timedelta(hours=4), T0 + timedelta(hours=2))
    timeline = tuple(
        TimeBucket(period.since + timedelta(minutes=10 * i), SentimentMix(5, 2, i))
        for i in range(36)
    )
    incident = stats.incident_of(make_ticket())
    report = Report(
        period=period,
        generated_at=T0 + timedelta(days=1),
        topics_filter=(),
        totals=SentimentMix(2000, 900, 3008),
        previous_total=0,
        interval=timedelta(minutes=10),
        timeline=timeline,
        topic_series=(TopicSeries("空调异味", tuple(range(36))),),
        topics=(
            GroupVolume("星河广场", SentimentMix(772, 352, 1737)),
            GroupVolume("空调异味", SentimentMix(19, 11, 725)),
            GroupVolume("<b>topic</b>", SentimentMix(1, 0, 1)),
        ),
        sources=(
            GroupVolume("weibo", SentimentMix(764, 413, 1250)),
            GroupVolume("heimao", SentimentMix(0, 2, 438)),
        ),
        negative_posts=(
            post(
                "wb-1",
                stats.excerpt(HOSTILE),
                862_457,
                author="<img src=x onerror=alert(2)>",
                url="javascript:alert(3)",
            ),
            post("wb-2", "空调异味 头晕", 5, url="https://weibo.com/u/wb-2?a=1&b=2"),
        ),
        hot_words=(HotWord("空调", 498, 0, False), HotWord("<i>", 3)),
        bursts=(
            BurstSummary(
                "negative:空调异味",
                "negative",
                "空调异味",
                "ended",
                T0,
                T0 + timedelta(minutes=5),
                T0 + timedelta(hours=1),
                4.9,
                7,
                0.1,
            ),
        ),
        incidents=(
            replace(
                incident,
                review=ReviewText(
                    root_cause=HOSTILE,
                    resolution="停机</dd><script>x()</script>",
                    lessons="[链接](javascript:alert(4))",
                    author="王工",
                    at=T0,
                ),
            ),
        ),
        incidents_total=1,
        acknowledge_stats=stats.duration_stats(minutes(4)),
        resolve_stats=stats.duration_stats(minutes(175)),
        notes=(Note("cap_incidents", (200, 250)),),
    )
    return replace(report, **changes)


class Tags(HTMLParser):
    """Every start tag and its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def test_hostile_text_is_escaped_everywhere() -> None:
    page = render_html(sample_report())
    tags = tags_of(page)
    names = {tag for tag, _ in tags}
    assert "script" not in names and "img" not in names and "i" not in names
    assert not [a for _, attrs in tags for a in attrs if a.startswith("on")]
    hrefs = [attrs["href"] for tag, attrs in tags if tag == "a"]
    assert hrefs == ["https://weibo.com/u/wb-2?a=1&b=2"], "no javascript: link"
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "**粗体** [点我](javascript:alert(1))" in page  # markdown stays text
    assert "&amp;amp;" in page  # an entity in a post is shown, not decoded
    assert "停机&lt;/dd&gt;&lt;script&gt;" in page
    assert "&lt;b&gt;topic&lt;/b&gt;" in page
    # The page holds nothing that could run or load.
    assert "default-src 'none'" in page
    assert not re.search(r"<(script|iframe|object|embed|link)\b", page, re.I)


def test_the_page_is_chinese_by_default_with_a_cjk_font() -> None:
    page = render_html(sample_report())
    assert '<html lang="zh-CN">' in page
    for words in ("舆情日报", "话题声量与情感", "预警工单与处置时效", "复盘", "根因"):
        assert words in page
    assert "Noto Sans CJK SC" in page
    assert "微博" in page and "黑猫投诉" in page  # source names
    assert "2026-11-20 09:00 – 2026-11-20 15:00" in page
    assert "4m 00s" in page and "2h 55m" in page  # handling times
    assert "工单只读取了 200 张（共 250 张）" in page  # a cap is stated
    assert page.count("<svg") == 5


def test_time_labels_fall_on_round_times() -> None:
    labels = [name for name in _time_labels(sample_report(), CST) if name]
    assert labels == ["09:00", "10:00", "11:00", "12:00", "13:00", "14:00"]
    midnight = T0.replace(hour=0)
    week = sample_report(
        period=Period(midnight, midnight + timedelta(days=7)),
        interval=timedelta(hours=6),
        timeline=tuple(
            TimeBucket(midnight + timedelta(hours=6 * i), SentimentMix())
            for i in range(28)
        ),
    )
    labels = [name for name in _time_labels(week, CST) if name]
    assert labels == [f"11-{day} 00:00" for day in range(20, 27)]


def test_the_page_in_english() -> None:
    page = render_html(sample_report(), lang="en")
    assert '<html lang="en">' in page
    assert "Public-opinion daily report" in page and "Time to acknowledge" in page
    assert "舆情日报" not in page
    with pytest.raises(ValueError):
        render_html(sample_report(), lang="fr")


def test_an_empty_period_renders() -> None:
    empty = sample_report(
        totals=SentimentMix(),
        timeline=(),
        topic_series=(),
        topics=(),
        sources=(),
        negative_posts=(),
        hot_words=(),
        bursts=(),
        incidents=(),
        incidents_total=0,
        acknowledge_stats=DurationStats(0),
        resolve_stats=DurationStats(0),
        notes=(),
    )
    page = render_html(empty)
    assert "本期没有帖子" in page and "本期没有预警工单" in page
    assert "<svg" not in page


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    for key, (zh, en) in i18n.MESSAGES.items():
        assert zh and en, key
        assert sorted(re.findall(r"\{\d\}", zh)) == sorted(re.findall(r"\{\d\}", en)), (
            key
        )
    assert i18n.text("zh", "kpi_change", "+5%") == "较上一周期 +5%"
    assert i18n.text("en", "unknown-key") == "unknown-key"
    with pytest.raises(ValueError):
        i18n.text("de", "title")


# --- Chromium and the command ------------------------------------------------


def test_a_missing_chromium_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="Chromium is missing .*chromium package"):
        find_chromium(tmp_path / "no-chromium")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "yesterday"], "neither a duration"),
        (["--since", "40d"], "at most 31 days"),
        (["--since", "2026-11-21", "--until", "2026-11-20"], "ends before"),
        (["--lang", "fr"], "'fr' is not one of"),
        (["--posts", "500"], "500 is not in the range"),
    ],
)
def test_the_command_refuses_bad_arguments_before_reading(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        report_command,
        [*args, "--out", str(tmp_path / "r.html")],
        env={"MONITOR_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "r.html").exists()


def test_an_unreachable_elasticsearch_is_a_clear_error_without_secrets(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        report_command,
        ["--out", str(tmp_path / "r.html")],
        env={
            "MONITOR_DATA_DIR": str(tmp_path / "data"),
            "MONITOR_KAFKA_URL": "kafka://127.0.0.1:9",
            "MONITOR_ES_URL": f"http://elastic:hunter2@127.0.0.1:{free_port()}",
            "MONITOR_ES_API_KEY": "top-secret-api-key",
        },
    )
    assert result.exit_code == 1, result.output
    assert "Elasticsearch did not answer" in result.output
    assert "hunter2" not in result.output and "top-secret" not in result.output
    assert not (tmp_path / "r.html").exists()
