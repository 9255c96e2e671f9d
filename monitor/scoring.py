"""Turning a Post into a ScoredPost: the analysis functions applied to a record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from monitor.analysis.labels import LabelThresholds
from monitor.analysis.sentiment import SentimentModel, TextScore
from monitor.analysis.text import normalise_text
from monitor.analysis.topics import TopicMatcher, WatchedTopic
from monitor.records import Post, ScoredPost, utc_now


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
        (result,) = self.model.score_many([text], self.keywords_per_post)
        return self._scored(post, text, result, now)

    def score_many(self, posts: Sequence[Post]) -> list[ScoredPost | Exception]:
        """Score a batch; a post that fails yields its exception instead.

        The batch is segmented and scored in one pass (much faster per post
        than one by one). CPU-bound: the score stage runs it in a worker
        thread so that the event loop keeps serving Kafka, the other agents
        and /metrics meanwhile. If the batch pass itself fails, each post is
        retried alone so that one bad post cannot sink the others.
        """
        texts = [normalise_text(post.text) for post in posts]
        try:
            results = self.model.score_many(texts, self.keywords_per_post)
        except Exception:  # noqa: BLE001 - find the culprit post by post below
            return [self._score_alone(post) for post in posts]
        now = utc_now()
        return [
            self._scored(post, text, result, now)
            for post, text, result in zip(posts, texts, results, strict=True)
        ]

    def _score_alone(self, post: Post) -> ScoredPost | Exception:
        try:
            return self.score(post, now=utc_now())
        except Exception as exc:  # noqa: BLE001 - returned to the caller, per post
            return exc

    def _scored(
        self, post: Post, text: str, result: TextScore, now: datetime
    ) -> ScoredPost:
        metrics = post.metrics or {}
        return ScoredPost(
            post_id=post.id,
            source=post.source,
            author=post.author,
            url=post.url,
            text=text,
            original_text=post.text,
            positive_probability=result.positive_probability,
            label=self.thresholds.label(result.positive_probability),
            keywords=result.keywords,
            topics=self.matcher.match(text, [post.topic] if post.topic else []),
            published_at=post.published_at,
            scored_at=now,
            likes=metrics.get("likes", 0),
            reposts=metrics.get("reposts", 0),
            followers=metrics.get("followers", 0),
            meta=post.meta or None,
        )
