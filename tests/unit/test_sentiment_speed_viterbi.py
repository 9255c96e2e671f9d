"""The tagger's and TextRank's faster paths give stock snownlp's results exactly.

``_Tagger.tag_runs`` keeps its tensors with the runs on the last axis, builds
its log-probabilities a block of positions at a time and finds each step's
first best predecessor by counting comparisons; ``keywords._exact_order``
sorts again only the runs of cut keys that descend. Each is checked here
against snownlp's own ``CharacterBasedGenerativeModel.tag`` or an exact sort,
on runs built to hit ties (repeated and unseen characters), block edges and
both of the step's reductions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snownlp import seg as stock_seg

from monitor.analysis.sentiment import keywords, snowfast
from monitor.analysis.sentiment.snowfast import default_scorer
from monitor.config import models as _models  # noqa: F401 - installs the model reader

ROOT = Path(__file__).resolve().parents[2]
_FEED = sorted(
    {json.loads(line)["text"] for line in (ROOT / "samples/feed.jsonl").open()}
)
FEED_RUNS = re.findall("[\u4e00-\u9fa5]+", "".join(_FEED[:400]))
STOCK = stock_seg.segger.segger


def _unseen_characters() -> str:
    uni = STOCK.uni.d
    return "".join(
        c
        for c in map(chr, range(0x4E00, 0x9FA6))
        if not any((c, t) in uni for t in "bmes")
    )


UNSEEN = _unseen_characters()[:40]
SEEN = "".join(sorted(set("".join(FEED_RUNS))))[:300]


def _stock_tags(runs: list[str]) -> list[int]:
    status = list(default_scorer().tagger.status)
    return [status.index(tag) for run in runs for _, tag in STOCK.tag(run)]


def test_feed_runs_tag_as_stock_snownlp() -> None:
    tagger = default_scorer().tagger
    assert len(FEED_RUNS) > 2000
    assert tagger.tag_runs(FEED_RUNS).tolist() == _stock_tags(FEED_RUNS)


@pytest.mark.parametrize("narrow", [0, 10**9], ids=["counting", "argmax"])
@pytest.mark.parametrize("block", [1, 37, 100_000])
def test_reductions_and_blocks_tag_as_stock_snownlp(
    monkeypatch: pytest.MonkeyPatch, narrow: int, block: int
) -> None:
    """Every step's two reductions, and blocks cut anywhere, tag alike."""
    monkeypatch.setattr(snowfast, "_NARROW", narrow)
    monkeypatch.setattr(snowfast, "_LP_BLOCK", block)
    runs = FEED_RUNS[:300] + ["哈" * 9, UNSEEN[:5], "好" + UNSEEN[:3] + "好"]
    assert default_scorer().tagger.tag_runs(runs).tolist() == _stock_tags(runs)


_RUN = st.text(
    alphabet=st.sampled_from(SEEN + UNSEEN + "哈哈哈的的了"), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(_RUN, min_size=1, max_size=70),
    st.sampled_from([1, 5, 64, 100_000]),
)
def test_generated_runs_tag_as_stock_snownlp(runs: list[str], block: int) -> None:
    """Runs of seen, unseen and repeated characters, many or few at a step."""
    saved = snowfast._LP_BLOCK
    snowfast._LP_BLOCK = block
    try:
        tags = default_scorer().tagger.tag_runs(runs).tolist()
    finally:
        snowfast._LP_BLOCK = saved
    assert tags == _stock_tags(runs)


def test_log_probs_runs_last_is_log_probs_transposed() -> None:
    tagger = default_scorer().tagger
    ids = tagger.ids("".join(FEED_RUNS[:500]))
    c1, c2 = np.roll(ids, 1), np.roll(ids, 2)
    c1[0] = c2[0] = c2[1] = tagger.bos
    buffer = np.full(tagger.n_tags**3 * (len(ids) + 5), np.nan)
    assert np.array_equal(
        tagger._log_probs_runs_last(c2, c1, ids, buffer),
        tagger.log_probs(c2, c1, ids).transpose(3, 2, 1, 0),
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 2**62), min_size=2, max_size=80),
    st.integers(0, 10),
    st.integers(0, 2**20),
    st.randoms(use_true_random=False),
)
def test_cut_sort_mended_by_runs_equals_lexsort(
    majors: list[int], spread_bits: int, minor_base: int, rng: object
) -> None:
    """Mending only the descending runs of cut keys orders as a full sort."""
    major = np.array(majors, dtype=np.int64)
    # Close keys (differing in low bits only), exact ties and far ones.
    major[::2] = major[0] + np.arange(len(major[::2])) % (1 << spread_bits)
    major[1::5] = major[0]
    minor = np.arange(len(major), dtype=np.int64) * 997 + minor_base
    minor = minor[np.argsort(np.array([rng.random() for _ in minor]))]  # type: ignore[attr-defined]
    labels, cut = keywords._sort_pairs(major, minor)
    where = {int(m): i for i, m in enumerate(minor.tolist())}
    at = np.array([where[int(m)] for m in labels.tolist()], dtype=np.int64)
    mended = keywords._exact_order(at, major[at], minor[at], cut)
    assert mended.tolist() == np.lexsort((minor, major)).tolist()
    # Without the cut bits it sorts everything again: the same order.
    resorted = keywords._exact_order(at, major[at], minor[at])
    assert resorted.tolist() == mended.tolist()


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=6), min_size=26, max_size=40, unique=True),
    st.lists(st.integers(1, 22), min_size=1, max_size=3),
)
def test_few_emulated_sets_iterate_as_python_sets(
    names: list[str], degrees: list[int]
) -> None:
    """One to three sets, so keys often probe at the very end of the tables."""
    n, owners = len(names), len(degrees)
    degree = np.zeros(n, dtype=np.int64)
    degree[:owners] = degrees
    # Set i holds degrees[i] distinct words that own no set, from the i-th on.
    added = np.concatenate(
        [(np.arange(d) + i) % (n - owners) + owners for i, d in enumerate(degrees)]
    ).astype(np.int64)
    expected = keywords._set_order(degree, added, names, emulate=False)
    emulated = keywords._set_order(degree, added, names, emulate=True)
    assert emulated.tolist() == expected.tolist()
