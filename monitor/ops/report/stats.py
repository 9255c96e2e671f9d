"""The daily report's arithmetic: pure functions on plain values.

Percentiles of handling times are computed here, client-side: the local
Elasticsearch-protocol server has no ``percentiles`` aggregation, and a
report reads at most a few hundred tickets. Also here: the timeline's
interval, the influence ranking of negative posts, hot and emerging words,
excerpts and the summary of a ticket. Nothing here does I/O.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from monitor.analysis.tickets.model import Ticket
from monitor.ops.report.model import (
    DurationStats,
    HotWord,
    Incident,
    PostExcerpt,
    ReviewText,
    SentimentMix,
)
from monitor.records import CONTROL_CHARACTERS

#: Timeline intervals to choose from, shortest first.
INTERVALS = tuple(
    timedelta(minutes=minutes)
    for minutes in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
)
#: The timeline has at most this many intervals (a 31-day report has 31 days).
MAX_TIMELINE_BUCKETS = 48
#: Characters of a post kept in an excerpt.
EXCERPT_CHARS = 140
#: Characters kept of each part of a review.
REVIEW_CHARS = 400
#: Longest keyword shown as a hot word.
MAX_WORD_CHARS = 24
#: A word is emerging with at least this many posts ...
EMERGING_MIN_POSTS = 5
#: ... and at least this many times its share of the previous period's posts.
EMERGING_MIN_RATIO = 3.0

#: Words of the platforms' own markup, never hot words: xiaohongshu tags
#: end in ``[话题]``, weibo has 超话 and 转发 (reposts), links read 网页链接.
PLATFORM_WORDS: frozenset[str] = frozenset({"话题", "超话", "转发", "网页链接"})

_PRIORITY_ORDER = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}


def quantile(values: Sequence[float], q: float) -> float:
    """Return the ``q`` quantile of ``values`` by linear interpolation.

    The same definition as numpy's default (``method="linear"``): the value
    at rank ``q * (n - 1)`` of the sorted values, interpolated between its
    two neighbours.

    Args:
        values: At least one number, in any order.
        q: 0.0-1.0 (0.5 is the median).

    Raises:
        ValueError: If ``values`` is empty or ``q`` is outside 0-1.

    """
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be 0-1, got {q}")
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def duration_stats(durations: Iterable[timedelta]) -> DurationStats:
    """Median, 90th percentile and maximum of some durations.

    Negative durations (a reopened ticket acknowledged before its reopening)
    are left out.
    """
    seconds = [d.total_seconds() for d in durations if d >= timedelta(0)]
    if not seconds:
        return DurationStats(count=0)
    return DurationStats(
        count=len(seconds),
        median=timedelta(seconds=quantile(seconds, 0.5)),
        p90=timedelta(seconds=quantile(seconds, 0.9)),
        maximum=timedelta(seconds=max(seconds)),
    )


def timeline_interval(
    span: timedelta, max_buckets: int = MAX_TIMELINE_BUCKETS
) -> timedelta:
    """Return the shortest of :data:`INTERVALS` giving at most ``max_buckets``.

    Args:
        span: Length of the period (> 0).
        max_buckets: Most intervals wanted (>= 1).

    Returns:
        The interval (one day for periods longer than ``max_buckets`` days).

    """
    for interval in INTERVALS:
        if span / interval <= max_buckets:
            return interval
    return INTERVALS[-1]


def mix_of(counts: Mapping[str, int]) -> SentimentMix:
    """Return the sentiment mix of ``label -> posts`` (other labels ignored)."""
    return SentimentMix(
        positive=int(counts.get("positive", 0)),
        neutral=int(counts.get("neutral", 0)),
        negative=int(counts.get("negative", 0)),
    )


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Return ``text`` on one line, without control characters, cut to ``limit``.

    White space runs become one space; a cut text ends with ``…`` (counted in
    ``limit``). The result is plain text: the renderer escapes it.

    Args:
        text: Post or review text, as stored.
        limit: Most characters kept (>= 1).

    """
    flat = " ".join(CONTROL_CHARACTERS.sub(" ", text).split())
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 0)].rstrip() + "…"


def influence(followers: int, likes: int, reposts: int) -> float:
    """Return how far a post reaches, on a log scale.

    ``log10(1 + followers) + log10(1 + likes + 2 * reposts)``: audience and
    engagement count alike, each on a log scale, so neither a
    big account's routine post nor one viral post of a small one dominates;
    a repost spreads further than a like.
    """
    audience = max(followers, 0)
    engagement = max(likes, 0) + 2 * max(reposts, 0)
    return math.log10(1 + audience) + math.log10(1 + engagement)


def top_posts(posts: Iterable[PostExcerpt], limit: int) -> tuple[PostExcerpt, ...]:
    """Return the ``limit`` most influential posts, one per distinct excerpt.

    Reposts of one text show once (its most influential copy). Ties go to
    the earlier post, then the smaller id.
    """
    best: dict[str, PostExcerpt] = {}
    for post in posts:
        key = post.excerpt
        if key not in best or _rank(post) < _rank(best[key]):
            best[key] = post
    return tuple(sorted(best.values(), key=_rank)[:limit])


def _rank(post: PostExcerpt) -> tuple[float, datetime, str]:
    return (
        -influence(post.followers, post.likes, post.reposts),
        post.published_at,
        post.post_id,
    )


def is_word(word: str) -> bool:
    """Return True if ``word`` can be a hot word: a letter in it, not too long.

    Keywords such as ``：3`` (an emoticon) or ``2026`` are not words.
    """
    return 0 < len(word) <= MAX_WORD_CHARS and any(
        unicodedata.category(char).startswith("L") for char in word
    )


def hot_words(
    current: Mapping[str, int],
    previous: Mapping[str, int],
    *,
    current_posts: int,
    previous_posts: int,
    stop_words: Iterable[str] = (),
    limit: int = 20,
) -> tuple[HotWord, ...]:
    """Return the period's most frequent words, each marked if emerging.

    A word is emerging when the previous period had posts, it has at least
    :data:`EMERGING_MIN_POSTS` posts and its share of the period's posts is
    at least :data:`EMERGING_MIN_RATIO` times its share of the previous
    period's (counted as one post there if it had none, so a brand-new word
    needs real volume).

    Args:
        current: ``word -> posts`` of the period.
        previous: ``word -> posts`` of the previous period (missing: 0).
        current_posts: All posts of the period.
        previous_posts: All posts of the previous period (0: no comparison).
        stop_words: Words never shown.
        limit: Most words returned.

    Returns:
        Words, most posts first (ties by word).

    """
    stop = set(stop_words)
    words = sorted(
        (
            (word, posts)
            for word, posts in current.items()
            if posts > 0 and word not in stop and is_word(word)
        ),
        key=lambda item: (-item[1], item[0]),
    )[:limit]
    found = []
    for word, posts in words:
        before = int(previous.get(word, 0))
        emerging = False
        if previous_posts > 0 and current_posts > 0 and posts >= EMERGING_MIN_POSTS:
            share = posts / current_posts
            share_before = max(before, 1) / previous_posts
            emerging = share >= EMERGING_MIN_RATIO * share_before
        found.append(HotWord(word, posts, before, emerging))
    return tuple(found)


def incident_of(ticket: Ticket, text_limit: int = REVIEW_CHARS) -> Incident:
    """Summarise a ticket for the report, with its handling times.

    Args:
        ticket: The ticket as stored.
        text_limit: Characters kept of each part of its review.

    """
    to_ack = to_resolve = None
    ack_in_time = resolved_in_time = None
    if ticket.acknowledged_at is not None:
        to_ack = ticket.acknowledged_at - ticket.opened_at
        ack_in_time = ticket.acknowledged_at <= ticket.ack_due
    if ticket.resolved_at is not None:
        to_resolve = ticket.resolved_at - ticket.opened_at
        resolved_in_time = ticket.resolved_at <= ticket.resolve_due
    review = None
    if ticket.review is not None:
        review = ReviewText(
            root_cause=excerpt(ticket.review.root_cause, text_limit),
            resolution=excerpt(ticket.review.resolution, text_limit),
            lessons=excerpt(ticket.review.lessons, text_limit),
            author=excerpt(ticket.review.author, 64),
            at=ticket.review.at,
        )
    return Incident(
        ticket_id=ticket.ticket_id,
        topic=ticket.topic,
        priority=str(ticket.priority),
        status=str(ticket.status),
        rule=ticket.rule,
        team=ticket.team,
        owner=ticket.owner,
        first_seen=ticket.first_seen,
        opened_at=ticket.opened_at,
        signals=len(ticket.signals),
        occurrences=ticket.occurrences,
        peak_value=ticket.peak_value,
        time_to_acknowledge=to_ack,
        time_to_resolve=to_resolve,
        acknowledged_in_time=ack_in_time,
        resolved_in_time=resolved_in_time,
        review=review,
    )


def incident_order(incident: Incident) -> tuple[int, datetime, str]:
    """Sort key: most urgent priority first, then the earliest seen."""
    return (
        _PRIORITY_ORDER.get(incident.priority, len(_PRIORITY_ORDER)),
        incident.first_seen,
        incident.ticket_id,
    )


def format_duration(duration: timedelta | None) -> str:
    """Return ``1h 05m``, ``4m 30s`` or ``12s`` (``–`` for ``None``).

    Days show as hours (``49h 00m``): handling times are read in hours.
    """
    if duration is None:
        return "–"
    seconds = round(duration.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {seconds:02d}s"
    return f"{sign}{seconds}s"
