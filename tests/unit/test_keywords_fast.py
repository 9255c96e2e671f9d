"""Batched TextRank keywords must equal stock snownlp's, order and ties included.

``monitor.analysis.sentiment.keywords`` ranks every text of a batch together
and works out CPython's set iteration order from the words' hashes (stock
snownlp's ties follow it). These tests compare against stock snownlp in the
same process: ``KeywordTextRank`` on the same word lists, ``SnowNLP(text)
.keywords(k)`` on texts of the sample feed, the sets themselves against
Python sets, and the same under other ``PYTHONHASHSEED`` values.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from itertools import chain
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis.sentiment import keywords
from monitor.analysis.sentiment.keywords import rank_keywords, sentence_words
from monitor.analysis.sentiment.snowfast import FastSnowNLP
from monitor.config.models import load_scorer

snownlp = pytest.importorskip("snownlp")
from snownlp import SnowNLP, normal, seg  # noqa: E402
from snownlp.summary.textrank import KeywordTextRank  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
ALPHABET = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可"


def stock_keywords(docs: list[list[str]], limit: int) -> list[str]:
    rank = KeywordTextRank([list(doc) for doc in docs])
    rank.solve()
    return rank.top_index(limit)


def random_graphs(seed: int, count: int) -> list[list[list[str]]]:
    """Texts of random words: few distinct words give many ties and repeats."""
    rng = random.Random(seed)
    graphs = []
    for _ in range(count):
        vocabulary = [
            "".join(rng.choices(ALPHABET, k=rng.randint(1, 3)))
            for _ in range(rng.choice([2, 3, 5, 8, 20, 60]))
        ]
        graphs.append(
            [
                rng.choices(vocabulary, k=rng.choice([0, 1, 2, 3, 5, 7, 12, 40]))
                for _ in range(rng.randint(0, 6))
            ]
        )
    return graphs


@pytest.fixture(scope="module")
def fast() -> FastSnowNLP:
    return load_scorer()


@pytest.fixture(scope="module")
def feed_texts() -> list[str]:
    texts: dict[str, None] = {}
    for line in FEED.read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        if text:
            texts[text] = None
    return list(texts)


@pytest.mark.parametrize("limit", [0, 1, 5, 20, 1000, -1, -3])
def test_random_word_lists_match_keyword_textrank(limit: int) -> None:
    graphs = random_graphs(seed=limit + 10, count=400)
    assert rank_keywords(graphs, limit) == [stock_keywords(g, limit) for g in graphs]


def test_one_text_at_a_time_equals_the_batch() -> None:
    graphs = random_graphs(seed=3, count=60)
    assert [rank_keywords([g], 8)[0] for g in graphs] == rank_keywords(graphs, 8)


@pytest.mark.parametrize(
    "docs",
    [
        [],
        [[]],
        [["甲"]],
        [["甲"], ["乙"], ["丙"]],
        [["甲", "甲", "甲"]],
        [["甲", "乙"]],
        [["甲", "乙", "丙"]],
        [["甲", "乙", "丙", "丁", "戊"]],
        [["甲", "乙"], ["乙", "甲"], ["丙", "丁"]],
        [["甲", "乙", "甲", "乙", "甲", "乙", "丙"]],
    ],
    ids=repr,
)
def test_small_graphs_and_ties_match(docs: list[list[str]]) -> None:
    """Complete and symmetric graphs: every score ties, dict order decides."""
    for limit in (0, 2, 10):
        assert rank_keywords([docs], limit) == [stock_keywords(docs, limit)]


def test_hub_words_with_many_neighbours_match() -> None:
    """Sets past 18 keys (built as Python sets) and every table size below."""
    rng = random.Random(7)
    graphs = []
    for size in (4, 5, 6, 17, 18, 19, 20, 40, 77, 78, 120):
        others = [f"w{rng.randrange(10**6)}" for _ in range(size)]
        graphs.append([list(chain.from_iterable(("中心", w) for w in others))])
    assert rank_keywords(graphs, 30) == [stock_keywords(g, 30) for g in graphs]


def test_neighbour_sets_iterate_as_python_sets() -> None:
    """The emulated table of every word equals CPython's set, key for key."""
    graphs = random_graphs(seed=11, count=300)
    names, first, sentence_lengths, text_words = keywords._intern(graphs)
    token_first = np.array(first, dtype=np.int64)
    is_word = token_first == np.arange(len(first))
    word = (np.cumsum(is_word) - 1)[token_first]
    text = np.repeat(np.arange(len(graphs)), text_words)
    sentence = np.repeat(np.arange(len(sentence_lengths)), sentence_lengths)
    degree, added = keywords._links(word, sentence, text)
    expected: list[str] = []
    for docs in graphs:
        sets: dict[str, set[str]] = {}
        for doc in docs:
            queue: list[str] = []
            for w in doc:
                sets.setdefault(w, set())
                queue.append(w)
                if len(queue) > 5:
                    queue.pop(0)
                for w1 in queue:
                    for w2 in queue:
                        if w1 != w2:
                            sets[w1].add(w2)
                            sets[w2].add(w1)
        expected += chain.from_iterable(sets.values())
    for emulate in (None, True, False):
        adjacency = keywords._set_order(degree, added, names, emulate=emulate)
        assert [names[i] for i in adjacency.tolist()] == expected


def test_this_interpreter_builds_sets_as_emulated() -> None:
    """Else every set would be built in Python: right, but slower."""
    assert keywords._emulation_holds()


def test_feed_texts_match_stock_keywords(
    fast: FastSnowNLP, feed_texts: list[str]
) -> None:
    sample = feed_texts[::25]
    stock = [SnowNLP(t).keywords(20) for t in sample]
    assert [a.keywords for a in fast.analyse_many(sample, 20)] == stock
    # keywords(5) is the first five of the same ranking.
    assert [a.keywords for a in fast.analyse_many(sample, 5)] == [
        top[:5] for top in stock
    ]


def test_sentence_words_match_stock_sentences(
    fast: FastSnowNLP, feed_texts: list[str]
) -> None:
    tricky = [
        "好的，ok。then！再见？真的；嗯\n第二行\r\n第三行",
        "a，b。c\nd e\r\n f；g！h？i",
        "，，。\n\n",
        "开头 ok，\t空白\u3000全角\x1c分隔。",
        "abc！！好 😀 666",
        "x\x85y，z\u2028w",
    ]
    texts = tricky + feed_texts[::50]
    for text, (parts, run_words) in zip(texts, fast._tag_batches(texts), strict=True):
        stock = [
            normal.filter_stop(seg.seg(sentence))
            for sentence in normal.get_sentences(text)
        ]
        ours = sentence_words(parts, run_words, fast.stopwords)
        assert [d for d in ours if d] == [d for d in stock if d], text


@pytest.mark.parametrize("seed", ["0", "12345"])
def test_other_hash_seeds_match_stock_too(seed: str) -> None:
    """Set order changes with the seed; the emulation follows it."""
    script = (
        "import json, random, sys\n"
        "from tests.unit.test_keywords_fast import random_graphs, stock_keywords\n"
        "from monitor.analysis.sentiment.keywords import rank_keywords\n"
        "graphs = random_graphs(seed=5, count=300)\n"
        "ok = rank_keywords(graphs, 10) == [stock_keywords(g, 10) for g in graphs]\n"
        "print(json.dumps(ok))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout) is True
