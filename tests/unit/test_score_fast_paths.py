"""The score stage's fast paths equal their straightforward references."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from hashlib import blake2b
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis import simhash as simhash_module
from monitor.analysis.sentiment.keywords import sentence_words, split_words
from monitor.analysis.sentiment.snowfast import _join_words, default_scorer
from monitor.analysis.simhash import fingerprint_text, simhash_many
from monitor.analysis.text import normalise_text
from monitor.analysis.topics import TopicMatcher, WatchedTopic
from monitor.config import models as _models  # noqa: F401 - installs the model reader
from monitor.config.watchlist import load_watchlist
from monitor.records import ScoredPost, encode_scored_post, new_scored_post

ROOT = Path(__file__).resolve().parents[2]
_FEED = sorted(
    {json.loads(line)["text"] for line in (ROOT / "samples/feed.jsonl").open()}
)
SAMPLE = [normalise_text(t) for t in _FEED[:1500]]
_ALPHABET = [
    *"好差的了是我你他空调异味停车星河广场招聘ab AB,.，。！？；\n@/:：_&#",
    "转发微博",
    "repost",
    "//@x:",
    "回复@y：",
    "😀",
    "ſ",
    "K",
    "１２３",
    "İ",
    "Σ",
]
TEXTS = st.lists(st.sampled_from(_ALPHABET), max_size=40).map("".join)


def _reference_fingerprint(text: str) -> str:
    text = simhash_module._REPOST_FILLER.sub(
        " ", simhash_module._REPLY_TO.sub(" ", text)
    )
    links = [
        link
        for link in simhash_module._CHAIN_LINK.split(text)
        if any(c.isalnum() for c in link)
    ]
    if links:
        text = links[-1]
    return simhash_module._NOT_ALNUM.sub("", text.lower())


def _reference_simhash_many(texts: list[str]) -> list[int]:
    """The previous implementation, per shingle (trailing-empty quirk included)."""
    hashes: list[int] = []
    starts: list[int] = []
    for text in texts:
        starts.append(len(hashes))
        core = _reference_fingerprint(text)
        shingles = (
            ([core] if core else [])
            if len(core) <= 3
            else [core[i : i + 3] for i in range(len(core) - 2)]
        )
        hashes += [
            int.from_bytes(blake2b(s.encode(), digest_size=8).digest(), "little")
            for s in shingles
        ]
    if not hashes:
        return [0] * len(texts)
    bits = np.unpackbits(
        np.array(hashes, dtype="<u8").view(np.uint8).reshape(-1, 8), axis=1
    )
    ends = [*starts[1:], len(hashes)]
    clipped = np.minimum(np.array(starts), len(hashes) - 1)
    ones = np.add.reduceat(bits, clipped, axis=0, dtype=np.int32)
    counts = np.array(ends) - np.array(starts)
    packed = np.packbits(ones * 2 > counts[:, None], axis=1).view("<u8")[:, 0]
    return [
        (v - (1 << 64) if v >= 1 << 63 else v) if c else 0
        for v, c in zip(packed.tolist(), counts.tolist(), strict=True)
    ]


def test_simhash_many_equals_reference_on_sample_texts() -> None:
    assert simhash_many(SAMPLE) == _reference_simhash_many(SAMPLE)


@settings(max_examples=200, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=12))
def test_simhash_many_equals_reference_on_generated_texts(texts: list[str]) -> None:
    assert [fingerprint_text(t) for t in texts] == [
        _reference_fingerprint(t) for t in texts
    ]
    assert simhash_many(texts) == _reference_simhash_many(texts)


def test_bit_counts_overflow_path_equals_lanes() -> None:
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**63, 5000).astype(np.uint64) * np.uint64(2)
    starts = np.array([0, 7, 7, 1000, 4999], dtype=np.int64)
    lanes = simhash_module._bit_counts(hashes, starts, 4992)
    fallback = simhash_module._bit_counts(hashes, starts, 1 << 20)
    assert np.array_equal(lanes, fallback)


def test_split_words_equals_join_filter_and_sentences() -> None:
    fast = default_scorer()
    stop = fast.stopwords
    texts = [*SAMPLE[:600], "a ， b。c！好的 the of 。", "，，。\n", "我们 and 你们"]
    tagged = list(fast._tag_batches(texts))
    cache: dict = {}
    found = [
        row
        for batch, words, first in fast._tag_chunks(texts)
        for row in split_words(batch, words, first, stop, cache)
    ]
    for (parts, run_words), (words, kept, docs) in zip(tagged, found, strict=True):
        joined = _join_words(parts, run_words)
        assert words == joined
        assert kept == [w for w in joined if w not in stop]
        assert docs == sentence_words(parts, run_words, stop)


def test_batched_naive_bayes_equals_per_text() -> None:
    fast = default_scorer()
    docs = [w for w in fast.segment_many(SAMPLE[:400])]
    docs += [["好"] * 300, [], ["unknown-word-xyz"] * 3]
    bayes = fast.classifier
    assert bayes.positive_probabilities(docs) == [
        bayes.positive_probability(d) for d in docs
    ]


def _reference_match(
    matcher: TopicMatcher, text: str, declared: list[str]
) -> list[str]:
    folded = text.lower()
    found = {name for name in declared if name}
    for name, keywords, exclude in matcher._topics:
        if any(w in folded for w in keywords) and not any(w in folded for w in exclude):
            found.add(name)
    return sorted(found)


def test_topic_matcher_equals_substring_tests() -> None:
    matcher = TopicMatcher(load_watchlist(ROOT / "samples/topics.yaml"))
    for text in SAMPLE:
        assert matcher.match(text) == _reference_match(matcher, text, [])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.lists(st.text("abc停车场", min_size=1, max_size=4), max_size=3),
            st.lists(st.text("abc停车场", min_size=1, max_size=4), max_size=2),
        ),
        max_size=4,
    ),
    st.text("abc停车场 ", max_size=20),
)
def test_topic_matcher_equals_substring_tests_on_overlapping_words(
    topics: list[tuple[str, list[str], list[str]]], text: str
) -> None:
    matcher = TopicMatcher(
        WatchedTopic(name, tuple(kws), tuple(ex)) for name, kws, ex in topics
    )
    assert matcher.match(text, ["d"]) == _reference_match(matcher, text, ["d"])


def test_new_scored_post_equals_record_init() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    fields = dict(
        post_id="1",
        source="s",
        text="t",
        original_text="o",
        positive_probability=0.25,
        label="negative",
        keywords=["a"],
        topics=[],
        published_at=now,
        scored_at=now,
        author=None,
        url="u",
        likes=None,
        reposts=3,
        followers=None,
        meta={"k": 1},
        simhash=-5,
        raw_positive_probability=0.25,
        sentiment_model="snownlp",
    )
    built, fast = ScoredPost(**fields), new_scored_post(**fields)
    assert list(fast.__dict__.items()) == list(built.__dict__.items())
    assert fast == built and repr(fast) == repr(built)
    assert encode_scored_post(fast) == encode_scored_post(built)
    assert fast.dumps() == built.dumps()


def test_new_scored_post_refuses_what_init_refuses() -> None:
    import pytest

    with pytest.raises(TypeError):
        new_scored_post(post_id="1")
    with pytest.raises(TypeError):
        new_scored_post(bogus=1)


def test_sample_random_pairs_score_identically_to_reference_paths() -> None:
    rng = random.Random(4)
    texts = [f"{rng.choice(SAMPLE)}，{rng.choice(SAMPLE)}" for _ in range(300)]
    fast = default_scorer()
    analyses = fast.analyse_many(texts, 10)
    assert [a.words for a in analyses] == fast.segment_many(texts)
    assert [a.positive_probability for a in analyses] == fast.sentiments(texts)
