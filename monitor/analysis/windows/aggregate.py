"""Window counts: what one post adds, one topic's counts, one window's aggregate.

A :class:`WindowAggregate` is one window's counts, either one partition's share
(a *partial*) or every partition's sum; it round-trips through JSON-able
dicts (``to_dict``/``from_dict``). See :mod:`monitor.analysis.windows`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

NEGATIVE = "negative"
#: Most representative negative posts kept per topic and window.
EVIDENCE_LIMIT = 10
#: Characters of a post's text kept on its evidence entry.
EXCERPT_CHARS = 120
#: Negative post ids kept per author, topic and window (repeat complaints).
AUTHOR_POSTS_LIMIT = 10
#: Keywords kept per topic and per window when a window leaves, most frequent
#: first; rarer words cannot start a burst or an emerging-keyword alert.
TOPIC_KEYWORD_LIMIT = 200
GLOBAL_KEYWORD_LIMIT = 2000
#: Authors kept per topic and window when a window leaves (most negative first).
AUTHOR_LIMIT = 500


def influence(reposts: int, followers: int) -> float:
    """Return the weight of one post in the influence-weighted volume (>= 1)."""
    return (
        1.0 + math.log10(1 + max(reposts, 0)) + 0.5 * math.log10(1 + max(followers, 0))
    )


def window_start(epoch_seconds: float, size: int) -> int:
    """Return the start (UTC epoch seconds) of the window holding a moment."""
    return int(epoch_seconds // size) * size


def to_datetime(epoch_seconds: float) -> datetime:
    """Return a UTC datetime for epoch seconds."""
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)


@dataclass(frozen=True)
class PostFacts:
    """What counting needs of one scored post.

    Attributes:
        post_id: The post's id.
        published: Event time, UTC epoch seconds.
        negative: True if its label is negative.
        topics: Watched topics it matches.
        keywords: Its keywords.
        author: Author handle, if known.
        followers: The author's followers (>= 0).
        reposts: Reposts (>= 0).
        excerpt: The start of its text.
        url: Link to the original, if known.
        customer_tier: Customer tier the source gave (``vip``, ``gold``), if any.
        received: When the post reached the ``posts`` topic (its record
            timestamp, UTC epoch seconds), if known: where alert latency
            starts.

    """

    post_id: str
    published: float
    negative: bool
    topics: tuple[str, ...]
    keywords: tuple[str, ...]
    author: str | None = None
    followers: int = 0
    reposts: int = 0
    excerpt: str = ""
    url: str | None = None
    customer_tier: str | None = None
    received: float | None = None

    @classmethod
    def from_scored(cls, scored: Mapping[str, Any] | Any) -> PostFacts:
        """Build from a ``ScoredPost`` (record or its dict)."""
        get: Callable[[str], Any] = (
            scored.get if isinstance(scored, Mapping) else scored.__getattribute__
        )
        published = get("published_at")
        if isinstance(published, str):
            published = datetime.fromisoformat(published)
        meta = get("meta") or {}
        tier = meta.get("customer_tier") if isinstance(meta, Mapping) else None
        received = (
            scored.get("received_at")
            if isinstance(scored, Mapping)
            else getattr(scored, "received_at", None)
        )
        if isinstance(received, str):
            received = datetime.fromisoformat(received)
        return cls(
            post_id=get("post_id"),
            published=published.timestamp(),
            negative=get("label") == NEGATIVE,
            topics=tuple(get("topics") or ()),
            keywords=tuple(dict.fromkeys(get("keywords") or ())),
            author=get("author"),
            followers=int(get("followers") or 0),
            reposts=int(get("reposts") or 0),
            excerpt=(get("text") or "")[:EXCERPT_CHARS],
            url=get("url"),
            customer_tier=str(tier).lower() if tier else None,
            received=received.timestamp() if received is not None else None,
        )


def _arrival(item: Mapping[str, Any]) -> tuple[float, float, str]:
    """Order posts by arrival (record time, else event time), then id."""
    received = item.get("received")
    published = float(item.get("published") or 0.0)
    arrived = published if received is None else float(received)
    return (arrived, published, item["post_id"])


def _evidence_rank(item: Mapping[str, Any]) -> tuple[int, int, float, str]:
    return (-item["followers"], -item["reposts"], item["published"], item["post_id"])


@dataclass
class TopicCounts:
    """One watched topic's counts in one window (a partial or the whole)."""

    posts: int = 0
    negative: int = 0
    negative_influence: float = 0.0
    keywords: Counter[str] = field(default_factory=Counter)
    #: author -> [negative posts, post ids (bounded)]
    negative_authors: dict[str, list[Any]] = field(default_factory=dict)
    #: most representative negative posts, best first (bounded)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    customer_tiers: Counter[str] = field(default_factory=Counter)
    #: the negative post that reached the pipeline last:
    #: ``{"post_id", "published", "received"}`` (epoch seconds), or None
    latest_negative: dict[str, Any] | None = None

    def add(self, post: PostFacts) -> None:
        """Count one post that matches the topic."""
        self.posts += 1
        self.keywords.update(post.keywords)
        if not post.negative:
            return
        self.negative += 1
        self.negative_influence += influence(post.reposts, post.followers)
        self._note_latest(
            {
                "post_id": post.post_id,
                "published": post.published,
                "received": post.received,
            }
        )
        if post.customer_tier:
            self.customer_tiers[post.customer_tier] += 1
        if post.author:
            entry = self.negative_authors.setdefault(post.author, [0, []])
            entry[0] += 1
            if len(entry[1]) < AUTHOR_POSTS_LIMIT:
                entry[1].append(post.post_id)
        self._add_evidence(
            [
                {
                    "post_id": post.post_id,
                    "excerpt": post.excerpt,
                    "followers": post.followers,
                    "reposts": post.reposts,
                    "published": post.published,
                    "author": post.author,
                    "url": post.url,
                }
            ]
        )

    def _note_latest(self, item: Mapping[str, Any] | None) -> None:
        if item is not None and (
            self.latest_negative is None
            or _arrival(item) >= _arrival(self.latest_negative)
        ):
            self.latest_negative = dict(item)

    def _add_evidence(self, items: Iterable[Mapping[str, Any]]) -> None:
        seen = {item["post_id"]: item for item in self.evidence}
        for item in items:
            seen.setdefault(item["post_id"], dict(item))
        self.evidence = sorted(seen.values(), key=_evidence_rank)[:EVIDENCE_LIMIT]

    def merge(self, other: TopicCounts) -> None:
        """Add another partial of the same topic and window."""
        self.posts += other.posts
        self.negative += other.negative
        self.negative_influence += other.negative_influence
        self.keywords.update(other.keywords)
        self.customer_tiers.update(other.customer_tiers)
        for author, (count, ids) in other.negative_authors.items():
            entry = self.negative_authors.setdefault(author, [0, []])
            entry[0] += count
            entry[1] = (entry[1] + list(ids))[:AUTHOR_POSTS_LIMIT]
        self._add_evidence(other.evidence)
        self._note_latest(other.latest_negative)

    def to_dict(self, bounded: bool = True) -> dict[str, Any]:
        """Return a JSON-able dict; ``bounded`` keeps the top keywords/authors."""
        keywords = (
            self.keywords.most_common(TOPIC_KEYWORD_LIMIT)
            if bounded
            else self.keywords.items()
        )
        authors = sorted(self.negative_authors.items(), key=lambda kv: -kv[1][0])
        data = {
            "posts": self.posts,
            "negative": self.negative,
            "negative_influence": self.negative_influence,
            "keywords": dict(keywords),
            "negative_authors": dict(authors[:AUTHOR_LIMIT] if bounded else authors),
            "evidence": self.evidence,
            "customer_tiers": dict(self.customer_tiers),
        }
        if self.latest_negative is not None:
            data["latest_negative"] = self.latest_negative
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TopicCounts:
        """Inverse of :meth:`to_dict`."""
        return cls(
            posts=int(data["posts"]),
            negative=int(data["negative"]),
            negative_influence=float(data["negative_influence"]),
            keywords=Counter(data.get("keywords", {})),
            negative_authors={
                author: [int(count), list(ids)]
                for author, (count, ids) in data.get("negative_authors", {}).items()
            },
            evidence=[dict(item) for item in data.get("evidence", [])],
            customer_tiers=Counter(data.get("customer_tiers", {})),
            latest_negative=dict(data["latest_negative"])
            if data.get("latest_negative")
            else None,
        )


@dataclass
class WindowAggregate:
    """Counts of one window: one partition's partial, or all partitions merged.

    Attributes:
        start: Window start, UTC epoch seconds (a multiple of ``size``).
        size: Window length in seconds.
        posts: Posts in the window.
        negative: Negative posts in the window.
        topics: Counts per watched topic.
        keywords: Per keyword, ``[posts, negative posts]``.
        max_published: Latest event time counted (epoch seconds), 0 if none.

    """

    start: int
    size: int
    posts: int = 0
    negative: int = 0
    topics: dict[str, TopicCounts] = field(default_factory=dict)
    keywords: dict[str, list[int]] = field(default_factory=dict)
    max_published: float = 0.0

    @property
    def end(self) -> int:
        """Window end (exclusive), UTC epoch seconds."""
        return self.start + self.size

    def add(self, post: PostFacts) -> None:
        """Count one post (it must fall in this window)."""
        self.posts += 1
        self.negative += post.negative
        self.max_published = max(self.max_published, post.published)
        for topic in post.topics:
            counts = self.topics.get(topic)
            if counts is None:
                counts = self.topics[topic] = TopicCounts()
            counts.add(post)
        for keyword in post.keywords:
            entry = self.keywords.get(keyword)
            if entry is None:
                entry = self.keywords[keyword] = [0, 0]
            entry[0] += 1
            entry[1] += post.negative

    @classmethod
    def span(
        cls, start: int, size: int, parts: Iterable[WindowAggregate]
    ) -> WindowAggregate:
        """Return the sum of shorter windows (buckets) as one window.

        Every part must lie within ``[start, start + size)``.
        """
        total = cls(start, size)
        for part in parts:
            if part.start < start or part.end > start + size:
                raise ValueError(
                    f"bucket {part.start}+{part.size} is not inside "
                    f"window {start}+{size}"
                )
            total._absorb(part)
        return total

    def as_bucket(self, size: int) -> WindowAggregate:
        """Return this window as the bucket of length ``size`` at its start.

        State logged before buckets (whole 5-minute windows) is read this
        way: its counts are kept, as if all were published in the window's
        first bucket.
        """
        if size == self.size:
            return self
        return WindowAggregate(
            int(self.start // size) * size,
            size,
            posts=self.posts,
            negative=self.negative,
            topics=self.topics,
            keywords=self.keywords,
            max_published=self.max_published,
        )

    def merge(self, other: WindowAggregate) -> None:
        """Add another partial of the same window."""
        if (other.start, other.size) != (self.start, self.size):
            raise ValueError("can only merge partials of the same window")
        self._absorb(other)

    def _absorb(self, other: WindowAggregate) -> None:
        self.posts += other.posts
        self.negative += other.negative
        self.max_published = max(self.max_published, other.max_published)
        for topic, counts in other.topics.items():
            mine = self.topics.get(topic)
            if mine is None:
                mine = self.topics[topic] = TopicCounts()
            mine.merge(counts)
        for keyword, (posts, negative) in other.keywords.items():
            entry = self.keywords.get(keyword)
            if entry is None:
                entry = self.keywords[keyword] = [0, 0]
            entry[0] += posts
            entry[1] += negative

    def to_dict(self, bounded: bool = True) -> dict[str, Any]:
        """Return a JSON-able dict; ``bounded`` keeps the most frequent keywords."""
        keywords: Iterable[tuple[str, list[int]]] = self.keywords.items()
        if bounded and len(self.keywords) > GLOBAL_KEYWORD_LIMIT:
            keywords = sorted(keywords, key=lambda kv: (-kv[1][0], kv[0]))[
                :GLOBAL_KEYWORD_LIMIT
            ]
        return {
            "start": self.start,
            "size": self.size,
            "posts": self.posts,
            "negative": self.negative,
            "max_published": self.max_published,
            "topics": {
                topic: counts.to_dict(bounded) for topic, counts in self.topics.items()
            },
            "keywords": dict(keywords),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowAggregate:
        """Inverse of :meth:`to_dict`."""
        return cls(
            start=int(data["start"]),
            size=int(data["size"]),
            posts=int(data["posts"]),
            negative=int(data["negative"]),
            max_published=float(data.get("max_published", 0.0)),
            topics={
                topic: TopicCounts.from_dict(counts)
                for topic, counts in data.get("topics", {}).items()
            },
            keywords={
                keyword: [int(posts), int(negative)]
                for keyword, (posts, negative) in data.get("keywords", {}).items()
            },
        )

