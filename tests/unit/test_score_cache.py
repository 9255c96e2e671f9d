"""The score cache: repeated texts are analysed once, with exact results."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.sentiment.model import TextScore
from monitor.records import Post
from monitor.stages.score import PostScorer, ScoreCache

TEXTS = ["空调有股怪味，太难受了", "电影很好看", "停车场排队一小时", "客服态度不错"]


class CountingModel:
    """Wraps the real model and records every text it analyses."""

    def __init__(self, model) -> None:  # noqa: ANN001
        self.model = model
        self.analysed: list[str] = []

    def score_many(self, texts, keyword_limit):  # noqa: ANN001, ANN201
        self.analysed += texts
        return self.model.score_many(texts, keyword_limit)


def _post(number: int, text: str) -> Post:
    return Post(
        id=f"p{number}",
        source="test",
        text=text,
        published_at=datetime(2026, 11, 20, 5, tzinfo=timezone.utc),
    )


@pytest.fixture(scope="module")
def plain() -> PostScorer:
    return PostScorer([], LabelThresholds())


def _scorer(plain: PostScorer, size: int) -> tuple[PostScorer, CountingModel]:
    scorer = PostScorer([], LabelThresholds(), cache_size=size)
    scorer.model = counting = CountingModel(plain.model)
    return scorer, counting


def test_cache_evicts_the_least_recently_used() -> None:
    cache = ScoreCache(2)
    a, b, c = (TextScore(p, []) for p in (0.1, 0.2, 0.3))
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recent
    cache.put("c", c)
    assert cache.get("b") is None and len(cache) == 2
    assert cache.get("a") is a and cache.get("c") is c
    assert (cache.hits, cache.misses) == (3, 1)


def test_a_cache_of_size_zero_keeps_nothing() -> None:
    cache = ScoreCache(0)
    cache.put("a", TextScore(0.5, []))
    assert cache.get("a") is None and len(cache) == 0
    with pytest.raises(ValueError):
        ScoreCache(-1)


def test_repeated_texts_are_analysed_once(plain: PostScorer) -> None:
    scorer, counting = _scorer(plain, 100)
    storm = [_post(n, TEXTS[n % 2]) for n in range(50)]
    first = scorer.score_many(storm)
    assert sorted(counting.analysed) == sorted(TEXTS[:2])  # once each, in-batch
    second = scorer.score_many([_post(100 + n, TEXTS[n % 2]) for n in range(10)])
    assert sorted(counting.analysed) == sorted(TEXTS[:2])  # across batches
    assert scorer.cache.misses == 2 and scorer.cache.hits == 58
    for result in (*first, *second):
        assert not isinstance(result, Exception)
    expected = {
        text: plain.score(_post(0, text), now=datetime.now(timezone.utc))
        for text in TEXTS[:2]
    }
    for post, result in zip(storm, first, strict=True):
        want = expected[post.text]
        assert result.positive_probability == want.positive_probability
        assert result.keywords == want.keywords
        assert result.post_id == post.id


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from(TEXTS), min_size=1, max_size=30),
    st.integers(0, 3),
)
def test_cached_scores_equal_uncached_ones(
    plain: PostScorer, texts: list[str], size: int
) -> None:
    scorer, counting = _scorer(plain, size)
    posts = [_post(n, text) for n, text in enumerate(texts)]
    for _ in range(2):  # a second pass hits the cache where it holds the text
        got = scorer.score_many(posts)
        want = plain.score_many(posts)
        assert [(r.positive_probability, r.keywords, r.label) for r in got] == [  # type: ignore[union-attr]
            (r.positive_probability, r.keywords, r.label)
            for r in want  # type: ignore[union-attr]
        ]
    assert len(counting.analysed) <= 2 * len(set(texts))
    assert len(scorer.cache) <= size
    assert scorer.cache.hits + scorer.cache.misses == 2 * len(texts)
