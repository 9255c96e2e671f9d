"""Turning a Post into a ScoredPost: the analysis functions applied to a record."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from monitor.analysis.labels import LabelThresholds
from monitor.analysis.sentiment import SentimentModel, extract_keywords
from monitor.analysis.text import normalise_text
from monitor.analysis.topics import TopicMatcher, WatchedTopic
from monitor.records import Post, ScoredPost


class PostScorer:
    """Scores posts: normalise, sentiment, label, keywords, watched topics.

    Args:
        topics: Watched topics to match.
        thresholds: Label thresholds.
        keywords_per_post: How many keywords to keep (0 for none).
        model_path: A snownlp sentiment model file; None for snownlp's own.

    """

    def __init__(
        self,
        topics: list[WatchedTopic],
        thresholds: LabelThresholds,
        *,
        keywords_per_post: int = 5,
        model_path: Path | None = None,
    ) -> None:
        self.model = SentimentModel(model_path)
        self.matcher = TopicMatcher(topics)
        self.thresholds = thresholds
        self.keywords_per_post = keywords_per_post

    def score(self, post: Post, *, now: datetime) -> ScoredPost:
        """Return the scored post; ``now`` becomes its ``scored_at``."""
        text = normalise_text(post.text)
        probability = self.model.positive_probability(text)
        metrics = post.metrics or {}
        return ScoredPost(
            post_id=post.id,
            source=post.source,
            author=post.author,
            url=post.url,
            text=text,
            original_text=post.text,
            positive_probability=probability,
            label=self.thresholds.label(probability),
            keywords=extract_keywords(text, self.keywords_per_post),
            topics=self.matcher.match(text, [post.topic] if post.topic else []),
            published_at=post.published_at,
            scored_at=now,
            likes=metrics.get("likes", 0),
            reposts=metrics.get("reposts", 0),
            followers=metrics.get("followers", 0),
            meta=post.meta or None,
        )
