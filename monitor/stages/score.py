"""Turning a Post into a ScoredPost: the analysis functions applied to a record."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.sentiment.model import SentimentModel, TextScore
from monitor.analysis.simhash import simhash_many
from monitor.analysis.text import normalise_text
from monitor.analysis.topics import TopicMatcher, WatchedTopic
from monitor.config.models import load_sentiment_model
from monitor.records import Post, ScoredPost, new_scored_post, utc_now
from monitor.settings import Settings


class ScoreCache:
    """A bounded LRU map from (model id, normalised text) to its :class:`TextScore`.

    Repost storms send the same text thousands of times; each is scored once.
    Keyed by the model as well: a score is never served for another model.
    ``hits`` and ``misses`` count look-ups (texts repeated within one batch
    count as hits). Thread-safe: scoring runs in worker threads.

    Args:
        size: Texts kept at most; 0 turns the cache off.

    """

    def __init__(self, size: int) -> None:
        """Start empty."""
        if size < 0:
            raise ValueError("cache size must be >= 0")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str], TextScore] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, text: str, model: str = "") -> TextScore | None:
        """Return the cached score of ``text`` by ``model`` (count a hit or a miss)."""
        key = (model, text)
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
                self._entries.move_to_end(key)
            return found

    def count_hit(self) -> None:
        """Count a hit served without a look-up (a repeat within one batch)."""
        with self._lock:
            self.hits += 1

    def put(self, text: str, score: TextScore, model: str = "") -> None:
        """Remember ``model``'s score of ``text``, evicting beyond ``size``."""
        if not self.size:
            return
        key = (model, text)
        with self._lock:
            self._entries[key] = score
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class PostScorer:
    """Scores posts: normalise, sentiment, label, keywords, watched topics.

    Args:
        topics: Watched topics to match.
        thresholds: Label thresholds.
        keywords_per_post: How many keywords to keep (0 for none).
        model_path: A sentiment model (``MODEL`` for ``MODEL.3`` and, if
            trained by ``monitor train sentiment``, ``MODEL.json``); None for
            snownlp's own.
        cache_size: Distinct texts whose scores are kept (0: no cache).

    """

    def __init__(
        self,
        topics: list[WatchedTopic],
        thresholds: LabelThresholds,
        *,
        keywords_per_post: int = 5,
        model_path: Path | None = None,
        cache_size: int = 0,
    ) -> None:
        """Load the model (snownlp's own unless ``model_path``).

        Raises:
            ConfigError: If ``model_path`` is missing or not a snownlp model.

        """
        self.model: SentimentModel = load_sentiment_model(model_path)
        #: Recorded on every scored post and part of every cache key.
        self.model_id = self.model.model_id
        self.cache = ScoreCache(cache_size)
        self.matcher = TopicMatcher(topics)
        self.thresholds = thresholds
        self.keywords_per_post = keywords_per_post

    def score(self, post: Post, *, now: datetime) -> ScoredPost:
        """Return the scored post; ``now`` becomes its ``scored_at``."""
        text = normalise_text(post.text)
        (result,) = self.model.score_many([text], self.keywords_per_post)
        (fingerprint,) = simhash_many([text])
        return self._scored(post, text, result, fingerprint, now)

    def score_many(self, posts: Sequence[Post]) -> list[ScoredPost | Exception]:
        """Score a batch; a post that fails yields its exception instead.

        The batch is segmented and scored in one pass (much faster per post
        than one by one). CPU-bound: the score stage runs it in a worker
        thread so that the event loop keeps serving Kafka, the other agents
        and /metrics meanwhile. If the batch pass itself fails (normalising
        included), each post is retried alone so that one bad post cannot sink
        the others; this method itself does not raise.
        """
        try:
            texts = [normalise_text(post.text) for post in posts]
            results = self._analyse(texts)
            fingerprints = simhash_many(texts)
        except Exception:  # noqa: BLE001 - find the culprit post by post below
            return [self._score_alone(post) for post in posts]
        now = utc_now()
        return [
            self._scored(post, text, result, fingerprint, now)
            for post, text, result, fingerprint in zip(
                posts, texts, results, fingerprints, strict=True
            )
        ]

    def _analyse(self, texts: Sequence[str]) -> list[TextScore]:
        """Scores of ``texts``; each distinct uncached text is analysed once."""
        found: dict[str, TextScore | None] = {}
        for text in texts:
            if text not in found:
                found[text] = self.cache.get(text, self.model_id)
            else:
                self.cache.count_hit()  # a repeat within the batch
        missing = [text for text, score in found.items() if score is None]
        if missing:
            scores = self.model.score_many(missing, self.keywords_per_post)
            for text, score in zip(missing, scores, strict=True):
                found[text] = score
                self.cache.put(text, score, self.model_id)
        return [found[text] for text in texts]  # type: ignore[misc]

    def _score_alone(self, post: Post) -> ScoredPost | Exception:
        try:
            return self.score(post, now=utc_now())
        except Exception as exc:  # noqa: BLE001 - returned to the caller, per post
            return exc

    def _scored(
        self,
        post: Post,
        text: str,
        result: TextScore,
        fingerprint: int,
        now: datetime,
    ) -> ScoredPost:
        metrics = post.metrics or {}
        # new_scored_post: ScoredPost(...) without Faust's per-field descriptors.
        return new_scored_post(
            post_id=post.id,
            source=post.source,
            author=post.author,
            url=post.url,
            text=text,
            original_text=post.text,
            positive_probability=result.positive_probability,
            raw_positive_probability=result.raw,
            sentiment_model=self.model_id,
            label=self.thresholds.label(result.positive_probability),
            keywords=result.keywords,
            simhash=fingerprint,
            topics=self.matcher.match(text, [post.topic] if post.topic else []),
            published_at=post.published_at,
            scored_at=now,
            likes=metrics.get("likes", 0),
            reposts=metrics.get("reposts", 0),
            followers=metrics.get("followers", 0),
            meta=post.meta or None,
        )


def scorer_for(settings: Settings, rule_topics: Sequence[WatchedTopic]) -> PostScorer:
    """Build the scorer the worker runs, from the settings.

    It watches ``MONITOR_TOPICS_FILE``'s watch list if set, else the rules
    file's topics, with the settings' labels, keyword count, sentiment model
    and cache.
    """
    from monitor.config.watchlist import load_watchlist

    watched = (
        load_watchlist(settings.topics_file)
        if settings.topics_file
        else list(rule_topics)
    )
    return PostScorer(
        watched,
        settings.label_thresholds,
        keywords_per_post=settings.keywords_per_post,
        model_path=settings.sentiment_model,
        cache_size=settings.score_cache_size,
    )
