"""From complete windows to window counts, bursts and rule triggers.

:class:`WindowEvaluator` sees each complete window (all partitions merged,
see :mod:`monitor.analysis.windows`) once, in time order. For every series it
follows it runs a :class:`~monitor.analysis.bursts.BurstDetector`:

* ``topic:<name>``: posts matching a watched topic;
* ``negative:<name>``: negative posts matching it (the baseline of
  ``negative_volume`` rules);
* ``keyword:<word>``: posts with a keyword, once the keyword has had
  ``keyword_min_posts`` posts in one window (rarer words would only cost
  memory; emerging words are caught by the emerging-term detector).

Per topic it also keeps an :class:`~monitor.analysis.emerging.EmergingTermDetector`
over the keywords of the topic's posts. Then it checks each topic's
``burst`` and ``emerging_keyword`` rules against the window and returns
:class:`~monitor.analysis.tickets.Trigger` objects for the ticket policy
(threshold rules run on their own windows: :mod:`monitor.analysis.rulewindows`).
A window is the sum of the merge's buckets (``window_seconds``, a whole
number of buckets). Pure: no Faust, no I/O; state round-trips through JSON-able dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.analysis.bursts import (
    BurstDetector,
    BurstPhase,
    DetectorConfig,
    WindowScore,
)
from monitor.analysis.emerging import EmergingTermConfig, EmergingTermDetector
from monitor.analysis.tickets.model import (
    BURST,
    EMERGING_KEYWORD,
    AlertRule,
    Evidence,
    Trigger,
)
from monitor.analysis.tickets.priority import CUSTOMER_TIER_POINTS
from monitor.analysis.windows import TopicCounts, WindowAggregate, to_datetime

#: A new series learns this long before it may start a burst event. Shorter
#: than the detector's own default (tuned on days-long benchmark series) so
#: that a topic added today can alarm today; the burst-score rules do not wait.
PRODUCT_WARMUP_SECONDS = 2 * 3600
#: Keywords on a trigger, most frequent first.
TRIGGER_KEYWORDS = 10
#: A keyword series is dropped after this long without a post (seconds).
SERIES_TTL_SECONDS = 7 * 86_400
#: Keyword series followed at most; the least recently active go first.
MAX_KEYWORD_SERIES = 20_000


@dataclass(frozen=True)
class SeriesPoint:
    """One series' value in one window, with the detector's verdict.

    Attributes:
        series: ``topic:<name>``, ``negative:<name>`` or ``keyword:<word>``.
        kind: ``topic``, ``negative`` or ``keyword``.
        key: The topic name or keyword.
        window_start: Window start, UTC epoch seconds.
        window_seconds: Window length.
        observed: Count in the window.
        expected: The baseline's expectation before seeing the count.
        score: Surprise, ``-log10`` of the tail probability.
        anomalous: The detector's verdict on this window.
        negative: Negative posts (topic and keyword series).
        posts: Posts (topic and keyword series).
        negative_influence: Influence-weighted negative volume (topics).

    """

    series: str
    kind: str
    key: str
    window_start: int
    window_seconds: int
    observed: float
    expected: float
    score: float
    anomalous: bool
    posts: int = 0
    negative: int = 0
    negative_influence: float = 0.0


@dataclass(frozen=True)
class BurstUpdate:
    """A burst event that started, peaked or ended in a window.

    Attributes:
        burst_id: ``<series>@<start epoch>``: stable for the whole event.
        series: The series it is on.
        kind: Series kind.
        key: Topic name or keyword.
        phase: ``started``, ``peaked``, ``ended`` (or ``emerging`` for an
            emerging keyword, which is a one-window event).
        window_start: The window that caused the update (epoch seconds).
        window_seconds: Window length.
        observed: Count of that window.
        expected: Baseline of that window.
        score: Score of that window.
        started_at: Event start (epoch seconds).
        peak_at: Window of the highest score so far (epoch seconds).
        ended_at: Last window of the event, once ended.
        peak_score: Highest score in the event.
        peak_observed: Count at the peak.
        peak_expected: Baseline at the peak.
        post_ids: Ids of the most representative posts of the window.

    """

    burst_id: str
    series: str
    kind: str
    key: str
    phase: str
    window_start: int
    window_seconds: int
    observed: float
    expected: float
    score: float
    started_at: int
    peak_at: int
    ended_at: int | None
    peak_score: float
    peak_observed: float
    peak_expected: float
    post_ids: tuple[str, ...] = ()


@dataclass
class WindowReport:
    """What one complete window produced.

    Attributes:
        window_start: Window start, UTC epoch seconds.
        window_seconds: Window length.
        complete: False if a partition was given up on.
        posts: Posts in the window (all partitions).
        negative: Negative posts in it.
        points: Every series' value and verdict.
        bursts: Burst events that started, peaked or ended.
        triggers: Rules that fired.

    """

    window_start: int
    window_seconds: int
    complete: bool
    posts: int = 0
    negative: int = 0
    points: list[SeriesPoint] = field(default_factory=list)
    bursts: list[BurstUpdate] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)


def _burst_fires(score: WindowScore, rule: AlertRule) -> bool:
    """Whether a ``burst`` rule fires on a topic's closed window.

    A new burst fires when the window's alert score (its score if the window
    is news: see :attr:`~monitor.analysis.bursts.WindowScore.alert_score`)
    reaches the threshold: the signal ``monitor evaluate bursts`` measures.
    While the detector's event is ongoing, a window whose score reaches the
    threshold and whose count is above its baseline fires again; those
    firings fold into the same incident, so they are not new alarms. The
    ungated score alone would also fire on the noise of busy series.
    """
    if score.alert_score >= rule.threshold:
        return True
    ongoing = score.event is not None and score.event.ended_at is None
    return (
        ongoing
        and score.score >= rule.threshold
        and score.observed_count > score.expected_count
    )


def trigger_evidence(
    counts: TopicCounts, post_ids: Iterable[str] | None = None
) -> tuple[Evidence, ...]:
    """Return a topic's evidence posts (those of ``post_ids`` if given)."""
    wanted = None if post_ids is None else set(post_ids)
    return tuple(
        Evidence(
            post_id=item["post_id"],
            excerpt=item.get("excerpt", ""),
            followers=int(item.get("followers", 0)),
            reposts=int(item.get("reposts", 0)),
            published_at=(
                to_datetime(item["published"]) if item.get("published") else None
            ),
            author=item.get("author"),
            url=item.get("url"),
        )
        for item in counts.evidence
        if wanted is None or item["post_id"] in wanted
    )


def _tier(counts: TopicCounts) -> str | None:
    tiers = [tier for tier in counts.customer_tiers if tier in CUSTOMER_TIER_POINTS]
    return max(tiers, key=lambda tier: CUSTOMER_TIER_POINTS[tier], default=None)


def signal_id(rule: AlertRule, end: int, keyword: str | None = None) -> str:
    """Return a firing's id: ``<rule>@<topic>[/<keyword>]@<window end epoch s>``.

    The same as :attr:`~monitor.analysis.tickets.Trigger.signal_key`, so a
    window that fires early and again at its close is one signal.
    """
    series = rule.topic if keyword is None else f"{rule.topic}/{keyword}"
    return f"{rule.name}@{series}@{end}"


def build_trigger(
    rule: AlertRule,
    counts: TopicCounts,
    start: int,
    end: int,
    *,
    observed_value: float,
    expected_value: float | None = None,
    burst_score: float | None = None,
    keyword: str | None = None,
    evidence: tuple[Evidence, ...] | None = None,
    keywords: tuple[str, ...] | None = None,
    provisional: bool = False,
    retracted: bool = False,
) -> Trigger:
    """Return the trigger of ``rule`` on the window ``[start, end)``.

    ``counts`` is the topic's counts in that window (or, before it closes,
    what is known of them). The crossing post is the topic's latest negative
    post to reach the pipeline, when one is known; the repeat-complaints
    figure is the most negative posts by one author in the window.
    """
    followers = max((item["followers"] for item in counts.evidence), default=0)
    latest = counts.latest_negative or {}
    received = latest.get("received")
    published = latest.get("published")
    return Trigger(
        topic=rule.topic,
        rule=rule.name,
        kind=rule.kind,
        keyword=keyword,
        window_start=to_datetime(start),
        window_end=to_datetime(end),
        observed_value=observed_value,
        threshold=rule.threshold,
        expected_value=expected_value,
        burst_score=burst_score,
        author_followers=int(followers),
        repeat_complaints=max(
            (count for count, _ in counts.negative_authors.values()), default=0
        ),
        customer_tier=_tier(counts),
        evidence=trigger_evidence(counts) if evidence is None else evidence,
        keywords=tuple(
            word for word, _ in counts.keywords.most_common(TRIGGER_KEYWORDS)
        )
        if keywords is None
        else keywords,
        signal_id=signal_id(rule, end, keyword),
        provisional=provisional,
        retracted=retracted,
        crossing_post_id=latest.get("post_id"),
        crossing_published_at=to_datetime(published) if published else None,
        crossing_received_at=to_datetime(received) if received else None,
    )


def _topic_point(
    window: WindowAggregate,
    kind: str,
    name: str,
    counts: TopicCounts,
    verdict: tuple[float, float, float, bool],
) -> SeriesPoint:
    """Point of a topic or negative series; verdict: observed, expected, score, flag."""
    observed, expected, score, anomalous = verdict
    return SeriesPoint(
        f"{kind}:{name}",
        kind,
        name,
        window.start,
        window.size,
        observed,
        float(expected),
        float(score),
        bool(anomalous),
        posts=counts.posts,
        negative=counts.negative,
        negative_influence=counts.negative_influence,
    )


def point_verdicts(report: WindowReport) -> dict[str, list[Any]]:
    """Return ``series -> [expected, score, anomalous]`` of a report's topic series.

    Kept for a window emitted without some partition, so that a late partial
    can correct its counts without running the detectors again.
    """
    return {
        point.series: [point.expected, point.score, point.anomalous]
        for point in report.points
        if point.kind != "keyword"
    }


def amended_points(
    window: WindowAggregate, verdicts: Mapping[str, Sequence[Any]]
) -> list[SeriesPoint]:
    """Return the topic series points of a window a late partial corrected.

    Counts come from ``window`` (all partials so far); expected value, score
    and verdict stay those the detector gave when the window was first
    emitted (see :func:`point_verdicts`): the detectors have moved on and are
    not run twice on one window. A topic first seen in the late partial gets
    no expectation (0).
    """
    names = {series.split(":", 1)[1] for series in verdicts} | set(window.topics)
    points = []
    for name in sorted(names):
        counts = window.topics.get(name) or TopicCounts()
        for kind, value in (("topic", counts.posts), ("negative", counts.negative)):
            series = f"{kind}:{name}"
            expected, score, anomalous = verdicts.get(series, (0.0, 0.0, False))
            points.append(
                _topic_point(
                    window, kind, name, counts, (value, expected, score, anomalous)
                )
            )
    return points


class WindowEvaluator:
    """Burst detectors and emerging terms over complete detector windows.

    Args:
        window_seconds: Window length.
        detector: Burst detector settings for every series.
        emerging: Emerging-term settings.
        keyword_min_posts: Posts a keyword needs in one window before it gets
            its own burst detector.

    """

    def __init__(
        self,
        window_seconds: int,
        detector: DetectorConfig | None = None,
        emerging: EmergingTermConfig | None = None,
        keyword_min_posts: int = 3,
    ) -> None:
        """Start with no history."""
        self.window_seconds = window_seconds
        self.detector_config = detector or DetectorConfig(
            window_seconds=window_seconds, warmup_seconds=PRODUCT_WARMUP_SECONDS
        )
        # Per-topic keyword vocabularies are small; keep their state small too.
        self.emerging_config = emerging or EmergingTermConfig(max_terms=5_000)
        self.keyword_min_posts = keyword_min_posts
        self.detectors: dict[str, BurstDetector] = {}
        self.last_active: dict[str, int] = {}
        self.emerging: dict[str, EmergingTermDetector] = {}
        self.last_window: int | None = None

    # -- the window ------------------------------------------------------------

    def evaluate(
        self,
        window: WindowAggregate,
        rules: Sequence[AlertRule],
        topics: Iterable[str] = (),
        complete: bool = True,
    ) -> WindowReport:
        """Score one complete window and check the rules against it.

        Args:
            window: All partitions' counts of the window.
            rules: Alert rules of every topic.
            topics: Watched topics to follow even when they have no posts.
            complete: False if the window was completed on a timeout.

        Returns:
            Points for every followed series, burst updates and triggers. A
            window at or before the last one evaluated gives an empty report
            (a replay after a restart).

        """
        report = WindowReport(
            window.start, window.size, complete, window.posts, window.negative
        )
        if self.last_window is not None and window.start <= self.last_window:
            return report
        self.last_window = window.start
        start = to_datetime(window.start)
        names = set(topics) | set(window.topics) | {rule.topic for rule in rules}
        names |= {name for name in self.emerging}
        scores: dict[str, WindowScore] = {}
        for name in sorted(names):
            counts = window.topics.get(name) or TopicCounts()
            for kind, value in (("topic", counts.posts), ("negative", counts.negative)):
                series = f"{kind}:{name}"
                score = self._update(series, start, value, window.start)
                scores[series] = score
                verdict = (
                    value,
                    score.expected_count,
                    score.score,
                    score.is_anomalous,
                )
                report.points.append(_topic_point(window, kind, name, counts, verdict))
                self._burst(report, series, kind, name, score, counts)
        for keyword, (posts, negative) in sorted(window.keywords.items()):
            series = f"keyword:{keyword}"
            if series not in self.detectors and posts < self.keyword_min_posts:
                continue
            score = self._update(series, start, posts, window.start)
            report.points.append(
                SeriesPoint(
                    series,
                    "keyword",
                    keyword,
                    window.start,
                    window.size,
                    posts,
                    score.expected_count,
                    score.score,
                    score.is_anomalous,
                    posts=posts,
                    negative=negative,
                )
            )
            self._burst(report, series, "keyword", keyword, score, None)
        # Followed keywords without posts in this window still see their zero.
        for series in [s for s in self.detectors if s.startswith("keyword:")]:
            keyword = series.split(":", 1)[1]
            if keyword not in window.keywords:
                score = self._update(series, start, 0, None)
                self._burst(report, series, "keyword", keyword, score, None)
        self._expire(window.start)
        emerging = self._emerging(window)
        for rule in rules:
            report.triggers.extend(
                self._check(rule, window, scores, emerging.get(rule.topic, []))
            )
        return report

    def _update(
        self, series: str, start: Any, value: float, active_at: int | None
    ) -> WindowScore:
        detector = self.detectors.get(series)
        if detector is None:
            detector = self.detectors[series] = BurstDetector(self.detector_config)
        if active_at is not None and value > 0:
            self.last_active[series] = active_at
        elif series not in self.last_active:
            self.last_active[series] = int(start.timestamp())
        return detector.update(start, value)

    def _burst(
        self,
        report: WindowReport,
        series: str,
        kind: str,
        key: str,
        score: WindowScore,
        counts: TopicCounts | None,
    ) -> None:
        event = score.event
        if event is None or score.phase is None:
            return
        started = int(event.started_at.timestamp())
        report.bursts.append(
            BurstUpdate(
                burst_id=f"{series}@{started}",
                series=series,
                kind=kind,
                key=key,
                phase=score.phase.value,
                window_start=int(score.window_start.timestamp()),
                window_seconds=self.window_seconds,
                observed=score.observed_count,
                expected=score.expected_count,
                score=score.score,
                started_at=started,
                peak_at=int(event.peak_at.timestamp()),
                ended_at=int(event.ended_at.timestamp()) if event.ended_at else None,
                peak_score=event.peak_score,
                peak_observed=event.peak_observed_count,
                peak_expected=event.peak_expected_count,
                post_ids=tuple(item["post_id"] for item in counts.evidence)
                if counts is not None and score.phase is not BurstPhase.ENDED
                else (),
            )
        )

    def _expire(self, now: int) -> None:
        stale = [
            series
            for series, seen in self.last_active.items()
            if series.startswith("keyword:") and now - seen > SERIES_TTL_SECONDS
        ]
        if len(self.last_active) - len(stale) > MAX_KEYWORD_SERIES:
            keywords = sorted(
                (seen, series)
                for series, seen in self.last_active.items()
                if series.startswith("keyword:") and series not in stale
            )
            stale += [series for _, series in keywords[:-MAX_KEYWORD_SERIES]]
        for series in stale:
            self.detectors.pop(series, None)
            self.last_active.pop(series, None)

    def _emerging(self, window: WindowAggregate) -> dict[str, list[Any]]:
        found = {}
        start = to_datetime(window.start)
        for name, counts in window.topics.items():
            detector = self.emerging.get(name)
            if detector is None:
                detector = self.emerging[name] = EmergingTermDetector(
                    self.emerging_config
                )
            total = max(counts.posts, max(counts.keywords.values(), default=0))
            found[name] = detector.update(start, counts.keywords, total)
        return found

    # -- rules -------------------------------------------------------------------

    def _check(
        self,
        rule: AlertRule,
        window: WindowAggregate,
        scores: Mapping[str, WindowScore],
        emerging: Sequence[Any],
    ) -> list[Trigger]:
        """Check a detector-window rule (``burst``, ``emerging_keyword``).

        Threshold rules (volume, share, repeat complaints) are summed over
        their own windows of buckets: :mod:`monitor.analysis.rulewindows`.
        """
        counts = window.topics.get(rule.topic) or TopicCounts()
        volume = scores.get(f"topic:{rule.topic}")
        if rule.kind == BURST and volume is not None and _burst_fires(volume, rule):
            return [
                build_trigger(
                    rule,
                    counts,
                    window.start,
                    window.end,
                    observed_value=volume.score,
                    expected_value=volume.expected_count,
                    burst_score=volume.score,
                )
            ]
        if rule.kind == EMERGING_KEYWORD:
            common = tuple(
                word for word, _ in counts.keywords.most_common(TRIGGER_KEYWORDS)
            )
            return [
                build_trigger(
                    rule,
                    counts,
                    window.start,
                    window.end,
                    keyword=term.term,
                    observed_value=term.observed_count,
                    expected_value=term.expected_count,
                    burst_score=term.score,
                    keywords=(term.term, *common),
                )
                for term in emerging
                if term.observed_count >= rule.threshold
            ]
        return []

    def burst_crossed(
        self, rule: AlertRule, window_start: int, observed: float
    ) -> tuple[float, float] | None:
        """Return ``(score, expected)`` if a running count already fires ``rule``.

        ``observed`` is a lower bound of the topic's posts in the detector
        window starting at ``window_start``, the next one after the last
        evaluated. The score grows with the count, so if the lower bound
        fires the burst rule the closed window will too (on the detector's
        state as it is now). None if it does not, or if the detector is not
        up to date (the window before is not evaluated yet).
        """
        if (
            self.last_window is None
            or window_start != self.last_window + self.window_seconds
        ):
            return None
        detector = self.detectors.get(f"topic:{rule.topic}")
        if detector is None:
            return None
        start = to_datetime(window_start)
        expected = detector.expected(start)
        score = detector.peek(start, observed)
        if score >= rule.threshold:
            return score, expected
        # Within an ongoing event the rule keeps firing on windows above
        # their baseline (see _burst_fires); they fold into its incident.
        score = detector.surprise(start, observed)
        if (
            detector.event is not None
            and score >= rule.threshold
            and observed > expected
        ):
            return score, expected
        return None

    # -- persistence -------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return the state as JSON-able entries, one per series or topic.

        Keys: ``meta``, ``detector:<series>`` and ``emerging:<topic>``.
        Entries stay small (a Kafka message each) and only those of series
        that changed need rewriting after a window.
        """
        entries: dict[str, Any] = {
            "meta": {"last_window": self.last_window},
        }
        for series, detector in self.detectors.items():
            entries[f"detector:{series}"] = {
                "state": detector.snapshot(),
                "last_active": self.last_active.get(series),
            }
        for topic, emerging in self.emerging.items():
            entries[f"emerging:{topic}"] = emerging.snapshot()
        return entries

    def restore(self, entries: Mapping[str, Any]) -> None:
        """Continue from :meth:`snapshot` entries (same settings)."""
        for key, value in entries.items():
            kind, _, name = key.partition(":")
            if kind == "meta":
                self.last_window = value.get("last_window")
            elif kind == "detector":
                self.detectors[name] = BurstDetector.restore(
                    value["state"], self.detector_config
                )
                if value.get("last_active") is not None:
                    self.last_active[name] = int(value["last_active"])
            elif kind == "emerging":
                self.emerging[name] = EmergingTermDetector.restore(
                    value, self.emerging_config
                )

    def snapshot_keys(self) -> list[str]:
        """Return the keys :meth:`snapshot` would produce."""
        return [
            "meta",
            *(f"detector:{series}" for series in self.detectors),
            *(f"emerging:{topic}" for topic in self.emerging),
        ]
