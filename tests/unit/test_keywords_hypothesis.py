"""Batched TextRank keywords against stock snownlp on generated word lists.

``rank_keywords`` sorts each iteration's ranking with packed int64 keys
(cut where they do not fit, then mended) and keeps dict order as places;
these tests compare it with ``KeywordTextRank`` itself (which the module
reproduces bit for bit) on texts hypothesis builds, batched and alone, and
check the packed sort on keys made to collide once cut.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.sentiment import keywords
from monitor.analysis.sentiment.keywords import rank_keywords

snownlp = pytest.importorskip("snownlp")
from snownlp.summary.textrank import KeywordTextRank  # noqa: E402

# Few distinct short words: repeats, cliques and symmetric graphs, so many ties.
WORDS = st.sampled_from(["甲", "乙", "丙", "丁", "戊", "己", "庚", "辛", "壬癸", "ab"])
TEXT = st.lists(st.lists(WORDS, max_size=14), max_size=6)


def stock_keywords(docs: list[list[str]], limit: int) -> list[str]:
    rank = KeywordTextRank([list(doc) for doc in docs])
    rank.solve()
    return rank.top_index(limit)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=30), st.integers(-4, 12))
def test_generated_texts_rank_as_stock_snownlp(
    graphs: list[list[list[str]]], limit: int
) -> None:
    assert rank_keywords(graphs, limit) == [stock_keywords(g, limit) for g in graphs]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.text(min_size=1, max_size=3), max_size=30), max_size=4))
def test_generated_unicode_words_rank_as_stock_snownlp(
    docs: list[list[str]],
) -> None:
    assert rank_keywords([docs, docs[::-1]], 50) == [
        stock_keywords(docs, 50),
        stock_keywords(docs[::-1], 50),
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 2**62), min_size=2, max_size=60),
    st.integers(0, 8),
    st.randoms(use_true_random=False),
)
def test_packed_sort_with_cut_keys_equals_lexsort(
    majors: list[int], spread_bits: int, rng: object
) -> None:
    """Majors near 2**62 and wide minors force a cut; the mend restores order."""
    major = np.array(majors, dtype=np.int64)
    # Close pairs: many majors differ only in their low bits.
    major[::2] = major[0] + np.arange(len(major[::2])) % (1 << spread_bits)
    minor = np.arange(len(major), dtype=np.int64) * 997 + 2**20
    minor = minor[np.argsort(np.array([rng.random() for _ in minor]))]  # type: ignore[attr-defined]
    labels, cut = keywords._sort_pairs(major, minor)
    where = {int(m): i for i, m in enumerate(minor.tolist())}
    at = np.array([where[int(m)] for m in labels.tolist()], dtype=np.int64)
    if cut:
        at = keywords._exact_order(at, major[at], minor[at])
    assert at.tolist() == np.lexsort((minor, major)).tolist()
