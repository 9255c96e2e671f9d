"""What the daily report (舆情日报) says, as plain frozen dataclasses.

:mod:`~monitor.ops.report.data` fills a :class:`Report` from Elasticsearch,
:mod:`~monitor.ops.report.stats` computes from these values and
:mod:`~monitor.ops.report.render` turns one into HTML. Nothing here does
I/O. Times are timezone-aware datetimes; durations are ``timedelta``; text
that came from posts or tickets is stored as it is (already cut to its
bound) and escaped only when rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from monitor.config.durations import parse_duration


@dataclass(frozen=True)
class Period:
    """The time range a report covers, ``[since, until)``.

    Attributes:
        since: Start (inclusive, timezone-aware).
        until: End (exclusive, timezone-aware).

    """

    since: datetime
    until: datetime

    @property
    def span(self) -> timedelta:
        """Length of the period."""
        return self.until - self.since

    def previous(self) -> Period:
        """Return the period of the same length just before this one."""
        return Period(self.since - self.span, self.since)

    @classmethod
    def parse(
        cls, since: str, until: str | None, *, now: datetime, zone: tzinfo
    ) -> Period:
        """Read a period as people write it on the command line.

        Args:
            since: A duration back from the end (``24h``, ``7d``, ``1h30m``)
                or a time (``2026-11-20T09:00``, ``2026-11-20``).
            until: A time, or ``None`` for ``now``.
            now: The current time (timezone-aware).
            zone: The zone of times written without an offset, and of the
                returned period.

        Raises:
            ValueError: With the reason, if a value cannot be read.

        """
        end = _moment(until, zone, "until") if until else now.astimezone(zone)
        text = since.strip()
        if text and text[0].isdigit() and text[-1] in "smhd" and "-" not in text:
            start = end - parse_duration(text)
        else:
            start = _moment(text, zone, "since")
        return cls(start.astimezone(zone), end.astimezone(zone))


def _moment(text: str, zone: tzinfo, name: str) -> datetime:
    """Read an ISO 8601 time; one without an offset is in ``zone``."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{name}: {text[:40]!r} is neither a duration (24h, 7d) nor a time "
            "(2026-11-20T09:00+08:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


@dataclass(frozen=True)
class SentimentMix:
    """Posts counted by sentiment label (``label`` of the posts index).

    Attributes:
        positive: Posts labelled positive (>= 0).
        neutral: Posts labelled neutral (>= 0).
        negative: Posts labelled negative (>= 0).

    """

    positive: int = 0
    neutral: int = 0
    negative: int = 0

    @property
    def total(self) -> int:
        """All posts of the three labels."""
        return self.positive + self.neutral + self.negative

    @property
    def negative_share(self) -> float:
        """Negative posts over all posts, 0.0-1.0 (0.0 with no posts)."""
        return self.negative / self.total if self.total else 0.0


@dataclass(frozen=True)
class GroupVolume:
    """Volume and sentiment of one topic or source over the period.

    Attributes:
        name: Topic or source name, as indexed.
        mix: Its posts by sentiment.

    """

    name: str
    mix: SentimentMix


@dataclass(frozen=True)
class TimeBucket:
    """Posts of one interval of the timeline.

    Attributes:
        start: Start of the interval (timezone-aware).
        mix: Its posts by sentiment.

    """

    start: datetime
    mix: SentimentMix


@dataclass(frozen=True)
class TopicSeries:
    """One topic's negative posts per timeline interval.

    Attributes:
        topic: Topic name.
        negative: Negative posts per interval, aligned with the timeline.

    """

    topic: str
    negative: tuple[int, ...]


@dataclass(frozen=True)
class PostExcerpt:
    """A post worth reading, cut to a bounded excerpt.

    Attributes:
        post_id: The post (its Elasticsearch id).
        source: Where it was posted.
        author: Author handle, if known.
        published_at: Event time (timezone-aware).
        excerpt: Its normalised text, cut to the report's bound.
        followers: The author's followers (>= 0).
        likes: Likes (>= 0).
        reposts: Reposts (>= 0).
        positive_probability: snownlp's positive probability, 0.0-1.0.
        topics: Watched topics it matches.
        url: Link to the original, if known.

    """

    post_id: str
    source: str
    author: str | None
    published_at: datetime
    excerpt: str
    followers: int
    likes: int
    reposts: int
    positive_probability: float
    topics: tuple[str, ...] = ()
    url: str | None = None


@dataclass(frozen=True)
class HotWord:
    """A keyword's posts in the period and in the period before.

    Attributes:
        word: The keyword.
        posts: Posts of the period with it (>= 0).
        previous_posts: Posts of the previous period with it (>= 0).
        emerging: True if its share of posts grew sharply (see
            :func:`~monitor.ops.report.stats.hot_words`).

    """

    word: str
    posts: int
    previous_posts: int = 0
    emerging: bool = False


@dataclass(frozen=True)
class BurstSummary:
    """A burst the detector recorded (``<prefix>-bursts``) in the period.

    Attributes:
        series: Series id, e.g. ``negative:空调异味``.
        kind: ``topic``, ``negative`` or ``keyword``.
        key: The topic or keyword.
        phase: The burst's latest phase (``started``, ``ongoing``, ``ended``).
        started_at: First window of the burst.
        peak_at: Window of its peak.
        ended_at: When it ended, ``None`` while it goes on.
        peak_score: Detector score at the peak (-log10 tail probability).
        peak_observed: Observed count at the peak.
        peak_expected: Baseline at the peak.

    """

    series: str
    kind: str
    key: str
    phase: str
    started_at: datetime
    peak_at: datetime
    ended_at: datetime | None
    peak_score: float
    peak_observed: float
    peak_expected: float


@dataclass(frozen=True)
class ReviewText:
    """The review (复盘) recorded when a ticket was closed, cut to bounds.

    Attributes:
        root_cause: Why it happened.
        resolution: What was done.
        lessons: What to change.
        author: Who closed the ticket.
        at: When.

    """

    root_cause: str
    resolution: str
    lessons: str
    author: str
    at: datetime


@dataclass(frozen=True)
class Incident:
    """An alert ticket (预警工单) of the period and how it was handled.

    Handling times are measured from ``opened_at`` (the latest open or
    reopen), so a reopened ticket counts from its reopening.

    Attributes:
        ticket_id: The ticket.
        topic: Watched topic.
        priority: ``P1`` .. ``P4``.
        status: Lifecycle status.
        rule: The rule that opened it.
        team: Owning team.
        owner: Person working on it, if any.
        first_seen: Start of the first window that fired (event time).
        opened_at: When the ticket was opened (wall clock).
        signals: Rule series folded into it.
        occurrences: Triggers folded into it.
        peak_value: Highest observed value.
        time_to_acknowledge: ``acknowledged_at - opened_at``, if acknowledged.
        time_to_resolve: ``resolved_at - opened_at``, if resolved.
        acknowledged_in_time: Acknowledged by its deadline (``None``: not yet).
        resolved_in_time: Resolved by its deadline (``None``: not yet).
        review: Its review, if it was closed with one.

    """

    ticket_id: str
    topic: str
    priority: str
    status: str
    rule: str
    team: str
    owner: str | None
    first_seen: datetime
    opened_at: datetime
    signals: int
    occurrences: int
    peak_value: float
    time_to_acknowledge: timedelta | None = None
    time_to_resolve: timedelta | None = None
    acknowledged_in_time: bool | None = None
    resolved_in_time: bool | None = None
    review: ReviewText | None = None


@dataclass(frozen=True)
class DurationStats:
    """Median, 90th percentile and maximum of some durations.

    Attributes:
        count: How many durations (0: the others are ``None``).
        median: 50th percentile (linear interpolation).
        p90: 90th percentile (linear interpolation).
        maximum: The longest.

    """

    count: int
    median: timedelta | None = None
    p90: timedelta | None = None
    maximum: timedelta | None = None


@dataclass(frozen=True)
class Note:
    """A bound that applied, for the report's footnotes.

    Attributes:
        key: What it is about (an i18n key of the renderer, e.g.
            ``cap_incidents``).
        values: Numbers the message quotes, in order.

    """

    key: str
    values: tuple[int, ...] = ()


@dataclass(frozen=True)
class Report:
    """Everything the daily report shows.

    Attributes:
        period: What it covers.
        generated_at: When it was made (timezone-aware).
        topics_filter: Topics it was limited to (empty: every topic).
        totals: All posts of the period by sentiment.
        previous_total: Posts of the previous period (same length).
        interval: Length of one timeline interval.
        timeline: Posts per interval, oldest first, covering the period.
        topic_series: Negative posts per interval for the most negative
            topics.
        topics: Volume per topic, largest first (bounded).
        sources: Volume per source, largest first (bounded).
        negative_posts: The most influential negative posts (bounded).
        hot_words: Most frequent keywords, most posts first (bounded).
        bursts: Bursts of the period, strongest first (bounded).
        incidents: Tickets of the period, most urgent first (bounded).
        incidents_total: Tickets of the period in Elasticsearch (may exceed
            ``len(incidents)``).
        acknowledge_stats: Time to acknowledge over ``incidents``.
        resolve_stats: Time to resolve over ``incidents``.
        notes: Caps that applied and what was left out, in the report's
            language-neutral form (key, numbers) for the renderer.

    """

    period: Period
    generated_at: datetime
    topics_filter: tuple[str, ...]
    totals: SentimentMix
    previous_total: int
    interval: timedelta
    timeline: tuple[TimeBucket, ...]
    topic_series: tuple[TopicSeries, ...]
    topics: tuple[GroupVolume, ...]
    sources: tuple[GroupVolume, ...]
    negative_posts: tuple[PostExcerpt, ...]
    hot_words: tuple[HotWord, ...]
    bursts: tuple[BurstSummary, ...]
    incidents: tuple[Incident, ...]
    incidents_total: int
    acknowledge_stats: DurationStats
    resolve_stats: DurationStats
    notes: tuple[Note, ...] = field(default=())
