"""Read one report's figures from Elasticsearch into a :class:`Report`.

Every figure comes from the product's own indices (mappings in
:mod:`monitor.sinks.elasticsearch.templates`): posts
(``<prefix>-posts-*``), bursts (``<prefix>-bursts``) and tickets
(``<prefix>-tickets``). Requests use only aggregations both Elasticsearch
and the local noida-db server answer: ``terms`` (with sub-aggregations),
``date_histogram`` (``fixed_interval``, ``time_zone``, ``extended_bounds``),
``filter`` and ``filters``. The local server ignores ``include``/``exclude``
on ``terms`` and has no ``percentiles``, so topic and stop-word filtering of
buckets and the handling-time percentiles are done here and in
:mod:`~monitor.ops.report.stats`, on bounded results.

Everything is bounded: the period (:data:`MAX_PERIOD`), buckets per
aggregation, posts and tickets read; a cap that cut something off is
recorded as a :class:`~monitor.ops.report.model.Note`, which the report
prints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from monitor.analysis.tickets.codec import ticket_from_dict
from monitor.config.durations import parse_utc_offset
from monitor.errors import MonitorError
from monitor.ops.report import stats
from monitor.ops.report.model import (
    BurstSummary,
    GroupVolume,
    Note,
    Period,
    PostExcerpt,
    Report,
    TimeBucket,
    TopicSeries,
)
from monitor.sinks.elasticsearch.posts import posts_index_pattern
from monitor.sinks.elasticsearch.templates import tickets_index

T = TypeVar("T")

#: Longest period a report covers.
MAX_PERIOD = timedelta(days=31)
#: Most topics and sources listed.
MAX_GROUPS = 20
#: Topics drawn in the negative-volume chart.
MAX_CHART_TOPICS = 5
#: Most topics ``--topic`` may name.
MAX_TOPIC_FILTER = 20
#: Most negative posts listed.
MAX_POSTS = 50
#: Negative posts read per ranking (followers, reposts, likes) before the
#: influence ranking picks the top ones.
POSTS_PER_RANKING = 60
#: Most hot words listed.
MAX_HOT_WORDS = 30
#: Keyword buckets read (stop words and non-words are dropped from them).
KEYWORD_BUCKETS = 200
#: Most bursts listed.
MAX_BURSTS = 20
#: Most tickets read (their handling times are computed over these).
MAX_INCIDENTS = 200
#: Seconds per Elasticsearch request.
REQUEST_TIMEOUT = 30.0
#: Fields of a post read for its excerpt.
_POST_FIELDS = [
    "post_id",
    "source",
    "author",
    "published_at",
    "text",
    "followers",
    "likes",
    "reposts",
    "sentiment",
    "topics",
    "url",
]


class ReportError(MonitorError):
    """The report could not be made; the message says why (no secrets in it)."""


@dataclass(frozen=True)
class ReportRequest:
    """What to report on.

    Attributes:
        period: The time range.
        topics: Only these topics (empty: every post).
        utc_offset: The zone times are shown and bucketed in, ``+08:00``.
        posts: Negative posts to list (1-:data:`MAX_POSTS`).
        hot_words: Hot words to list (1-:data:`MAX_HOT_WORDS`).
        stop_words: Words never shown as hot words.

    """

    period: Period
    topics: tuple[str, ...] = ()
    utc_offset: str = "+00:00"
    posts: int = 10
    hot_words: int = 20
    stop_words: frozenset[str] = frozenset()

    def check(self) -> None:
        """Refuse a request out of bounds.

        Raises:
            ReportError: With the reason.

        """
        if self.period.since.tzinfo is None or self.period.until.tzinfo is None:
            raise ReportError("the period's times need a UTC offset")
        if self.period.until <= self.period.since:
            raise ReportError("the period ends before it starts")
        if self.period.span > MAX_PERIOD:
            raise ReportError(
                f"a report covers at most {MAX_PERIOD.days} days, "
                f"not {self.period.span.total_seconds() / 86400:.1f}"
            )
        if len(self.topics) > MAX_TOPIC_FILTER:
            raise ReportError(
                f"at most {MAX_TOPIC_FILTER} topics, not {len(self.topics)}"
            )
        if not 1 <= self.posts <= MAX_POSTS:
            raise ReportError(f"posts must be 1-{MAX_POSTS}")
        if not 1 <= self.hot_words <= MAX_HOT_WORDS:
            raise ReportError(f"hot words must be 1-{MAX_HOT_WORDS}")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _period_filter(period: Period, field: str = "published_at") -> dict[str, Any]:
    return {"range": {field: {"gte": _iso(period.since), "lt": _iso(period.until)}}}


def _label_counts(aggregation: Mapping[str, Any]) -> dict[str, int]:
    return {
        str(bucket["key"]): int(bucket["doc_count"])
        for bucket in aggregation.get("buckets", [])
    }


def _by_label() -> dict[str, Any]:
    return {"labels": {"terms": {"field": "label", "size": 5}}}


class ReportReader:
    """Reads a report's figures from one Elasticsearch.

    Args:
        client: An ``AsyncElasticsearch`` client (closed by :meth:`close`).
        prefix: Index prefix (``settings.index_prefix``).

    """

    def __init__(self, client: AsyncElasticsearch, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._posts = posts_index_pattern(prefix)
        self._bursts = f"{prefix}-bursts"
        self._tickets = tickets_index(prefix)

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.close()

    async def _call(self, request: Awaitable[T]) -> T:
        try:
            return await request
        except ApiError as exc:
            raise ReportError(
                f"Elasticsearch refused a report query ({exc.meta.status}): "
                f"{exc.message}"
            ) from None
        except TransportError as exc:
            raise ReportError(
                f"Elasticsearch did not answer ({type(exc).__name__}); "
                "check MONITOR_ES_URL"
            ) from None

    async def _search(self, index: str, **body: Any) -> dict[str, Any]:
        response = await self._call(
            self.client.search(
                index=index, ignore_unavailable=True, allow_no_indices=True, **body
            )
        )
        return dict(response)

    def _posts_query(
        self, period: Period, topics: Sequence[str], *extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        filters: list[Any] = [_period_filter(period), *extra]
        if topics:
            filters.append({"terms": {"topics": list(topics)}})
        return {"bool": {"filter": filters}}

    async def read(self, request: ReportRequest, generated_at: datetime) -> Report:
        """Query Elasticsearch and assemble the report.

        Args:
            request: What to report on (checked first).
            generated_at: When the report is made (timezone-aware).

        Raises:
            ReportError: If the request is out of bounds or Elasticsearch
                refuses or does not answer.

        """
        request.check()
        period = request.period
        interval = stats.timeline_interval(period.span)
        zone = parse_utc_offset(request.utc_offset)
        overview, posts, bursts, tickets = await asyncio.gather(
            self._overview(request, interval),
            self._negative_posts(request),
            self._bursts_of(request),
            self._tickets_of(request),
        )
        notes: list[Note] = []
        totals = stats.mix_of(_label_counts(overview["labels"]))
        topics = self._groups(overview["topics"], request.topics)
        sources = self._groups(overview["sources"], ())
        for key, aggregation in (("cap_topics", "topics"), ("cap_sources", "sources")):
            other = int(overview[aggregation].get("sum_other_doc_count", 0))
            if other:
                notes.append(Note(key, (MAX_GROUPS, other)))
        timeline = tuple(
            TimeBucket(
                datetime.fromtimestamp(bucket["key"] / 1000, tz=zone),
                stats.mix_of(_label_counts(bucket["labels"])),
            )
            for bucket in overview["timeline"]["buckets"]
        )
        series = self._topic_series(overview["negative"]["topics"], request.topics)
        keyword_counts = {
            str(b["key"]): int(b["doc_count"]) for b in overview["keywords"]["buckets"]
        }
        words = stats.hot_words(
            keyword_counts,
            {},
            current_posts=totals.total,
            previous_posts=0,
            stop_words=request.stop_words | stats.PLATFORM_WORDS,
            limit=request.hot_words,
        )
        previous_total, previous_counts = await self._previous(
            request, [w.word for w in words]
        )
        words = stats.hot_words(
            keyword_counts,
            previous_counts,
            current_posts=totals.total,
            previous_posts=previous_total,
            stop_words=request.stop_words | stats.PLATFORM_WORDS,
            limit=request.hot_words,
        )
        ticket_hits, tickets_total = tickets
        incidents = tuple(
            sorted(
                (stats.incident_of(ticket_from_dict(hit)) for hit in ticket_hits),
                key=stats.incident_order,
            )
        )
        if tickets_total > len(incidents):
            notes.append(Note("cap_incidents", (len(incidents), tickets_total)))
        return Report(
            period=period,
            generated_at=generated_at,
            topics_filter=request.topics,
            totals=totals,
            previous_total=previous_total,
            interval=interval,
            timeline=timeline,
            topic_series=series,
            topics=topics,
            sources=sources,
            negative_posts=stats.top_posts(posts, request.posts),
            hot_words=words,
            bursts=bursts,
            incidents=incidents,
            incidents_total=tickets_total,
            acknowledge_stats=stats.duration_stats(
                i.time_to_acknowledge
                for i in incidents
                if i.time_to_acknowledge is not None
            ),
            resolve_stats=stats.duration_stats(
                i.time_to_resolve for i in incidents if i.time_to_resolve is not None
            ),
            notes=tuple(notes),
        )

    # -- posts -----------------------------------------------------------------

    async def _overview(
        self, request: ReportRequest, interval: timedelta
    ) -> dict[str, Any]:
        """Totals, topics, sources, the timeline and keywords in one search."""
        period = request.period
        seconds = int(interval.total_seconds())
        histogram = {
            "field": "published_at",
            "fixed_interval": f"{seconds}s",
            "time_zone": request.utc_offset,
            "min_doc_count": 0,
            "extended_bounds": {
                "min": int(period.since.timestamp() * 1000),
                "max": int(period.until.timestamp() * 1000) - 1,
            },
        }
        # With --topic, a post's other topics show up in the topic buckets
        # too; ask for enough buckets to keep every requested one.
        topic_buckets = MAX_GROUPS + len(request.topics)
        response = await self._search(
            self._posts,
            size=0,
            track_total_hits=True,
            query=self._posts_query(period, request.topics),
            aggs={
                **_by_label(),
                "topics": {
                    "terms": {"field": "topics", "size": topic_buckets},
                    "aggs": _by_label(),
                },
                "sources": {
                    "terms": {"field": "source", "size": MAX_GROUPS},
                    "aggs": _by_label(),
                },
                "timeline": {"date_histogram": histogram, "aggs": _by_label()},
                "negative": {
                    "filter": {"term": {"label": "negative"}},
                    "aggs": {
                        "topics": {
                            "terms": {"field": "topics", "size": topic_buckets},
                            "aggs": {"timeline": {"date_histogram": histogram}},
                        }
                    },
                },
                "keywords": {"terms": {"field": "keywords", "size": KEYWORD_BUCKETS}},
            },
        )
        return (
            dict(response["aggregations"])
            if "aggregations" in response
            else (_empty_overview())
        )

    @staticmethod
    def _groups(
        aggregation: Mapping[str, Any], only: Sequence[str]
    ) -> tuple[GroupVolume, ...]:
        groups = [
            GroupVolume(
                str(bucket["key"]), stats.mix_of(_label_counts(bucket["labels"]))
            )
            for bucket in aggregation.get("buckets", [])
            if not only or bucket["key"] in only
        ]
        groups.sort(key=lambda g: (-g.mix.total, g.name))
        return tuple(groups[:MAX_GROUPS])

    @staticmethod
    def _topic_series(
        aggregation: Mapping[str, Any], only: Sequence[str]
    ) -> tuple[TopicSeries, ...]:
        series = [
            TopicSeries(
                str(bucket["key"]),
                tuple(int(b["doc_count"]) for b in bucket["timeline"]["buckets"]),
            )
            for bucket in aggregation.get("buckets", [])
            if not only or bucket["key"] in only
        ]
        series.sort(key=lambda s: (-sum(s.negative), s.topic))
        return tuple(series[:MAX_CHART_TOPICS])

    async def _negative_posts(self, request: ReportRequest) -> list[PostExcerpt]:
        """Read the most followed, reposted and liked negative posts."""
        query = self._posts_query(
            request.period, request.topics, {"term": {"label": "negative"}}
        )
        rankings = await asyncio.gather(
            *(
                self._search(
                    self._posts,
                    size=POSTS_PER_RANKING,
                    query=query,
                    sort=[{field: "desc"}, {"published_at": "asc"}],
                    source=_POST_FIELDS,
                )
                for field in ("followers", "reposts", "likes")
            )
        )
        seen: dict[str, PostExcerpt] = {}
        for response in rankings:
            for hit in response["hits"]["hits"]:
                source = hit["_source"]
                post_id = str(source.get("post_id") or hit["_id"])
                if post_id not in seen:
                    seen[post_id] = _post_excerpt(post_id, source)
        return list(seen.values())

    async def _previous(
        self, request: ReportRequest, words: Sequence[str]
    ) -> tuple[int, dict[str, int]]:
        """Count the previous period's posts, in all and per word (``filters``)."""
        aggs: dict[str, Any] = {}
        if words:
            aggs["words"] = {
                "filters": {
                    "filters": {
                        str(index): {"term": {"keywords": word}}
                        for index, word in enumerate(words)
                    }
                }
            }
        response = await self._search(
            self._posts,
            size=0,
            track_total_hits=True,
            query=self._posts_query(request.period.previous(), request.topics),
            aggs=aggs or None,
        )
        total = int(response["hits"]["total"]["value"])
        buckets = response.get("aggregations", {}).get("words", {}).get("buckets", {})
        counts = {
            word: int(buckets.get(str(index), {}).get("doc_count", 0))
            for index, word in enumerate(words)
        }
        return total, counts

    # -- bursts and tickets ----------------------------------------------------

    async def _bursts_of(self, request: ReportRequest) -> tuple[BurstSummary, ...]:
        """Bursts that overlap the period, strongest first."""
        period = request.period
        filters: list[Any] = [{"range": {"started_at": {"lt": _iso(period.until)}}}]
        if request.topics:
            filters.append({"terms": {"key": list(request.topics)}})
            filters.append({"terms": {"kind": ["topic", "negative"]}})
        response = await self._search(
            self._bursts,
            size=MAX_BURSTS * 3,
            query={
                "bool": {
                    "filter": filters,
                    "should": [
                        {"range": {"ended_at": {"gte": _iso(period.since)}}},
                        {"bool": {"must_not": {"exists": {"field": "ended_at"}}}},
                    ],
                    "minimum_should_match": 1,
                }
            },
            sort=[{"peak_score": "desc"}, {"burst_id": "asc"}],
        )
        bursts = []
        for hit in response["hits"]["hits"]:
            burst = _burst(hit["_source"])
            if burst is None:
                continue
            if burst.kind == "keyword" and (
                not stats.is_word(burst.key)
                or burst.key in request.stop_words
                or burst.key in stats.PLATFORM_WORDS
            ):
                continue
            bursts.append(burst)
        return tuple(bursts[:MAX_BURSTS])

    async def _tickets_of(
        self, request: ReportRequest
    ) -> tuple[list[dict[str, Any]], int]:
        """Read the tickets first seen or opened in the period.

        Both count: a replayed feed's tickets are opened now but first seen
        in the feed's time.
        """
        period = request.period
        filters: list[Any] = []
        if request.topics:
            filters.append({"terms": {"topic": list(request.topics)}})
        response = await self._search(
            self._tickets,
            size=MAX_INCIDENTS,
            track_total_hits=True,
            query={
                "bool": {
                    "filter": filters,
                    "should": [
                        _period_filter(period, "first_seen"),
                        _period_filter(period, "opened_at"),
                    ],
                    "minimum_should_match": 1,
                }
            },
            sort=[{"first_seen": "asc"}, {"ticket_id": "asc"}],
        )
        hits = response["hits"]
        return [hit["_source"] for hit in hits["hits"]], int(hits["total"]["value"])


def _empty_overview() -> dict[str, Any]:
    empty: dict[str, Any] = {"buckets": []}
    return {
        "labels": empty,
        "topics": empty,
        "sources": empty,
        "timeline": empty,
        "negative": {"topics": empty},
        "keywords": empty,
    }


def _int(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def _post_excerpt(post_id: str, source: Mapping[str, Any]) -> PostExcerpt:
    topics = source.get("topics") or []
    return PostExcerpt(
        post_id=stats.excerpt(post_id, 64),
        source=stats.excerpt(str(source.get("source") or ""), 64),
        author=stats.excerpt(str(source["author"]), 64)
        if source.get("author")
        else None,
        published_at=datetime.fromisoformat(str(source["published_at"])),
        excerpt=stats.excerpt(str(source.get("text") or "")),
        followers=_int(source.get("followers")),
        likes=_int(source.get("likes")),
        reposts=_int(source.get("reposts")),
        positive_probability=float(source.get("sentiment") or 0.0),
        topics=tuple(str(t) for t in topics[:10]),
        url=source.get("url") or None,
    )


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _burst(source: Mapping[str, Any]) -> BurstSummary | None:
    started = _time(source.get("started_at")) or _time(source.get("window_start"))
    if started is None:
        return None
    return BurstSummary(
        series=stats.excerpt(str(source.get("series", "")), 64),
        kind=str(source.get("kind", "")),
        key=stats.excerpt(str(source.get("key", "")), 64),
        phase=str(source.get("phase", "")),
        started_at=started,
        peak_at=_time(source.get("peak_at")) or started,
        ended_at=_time(source.get("ended_at")),
        peak_score=float(source.get("peak_score") or 0.0),
        peak_observed=float(source.get("peak_observed") or 0.0),
        peak_expected=float(source.get("peak_expected") or 0.0),
    )
