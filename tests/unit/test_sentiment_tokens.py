"""Words as arrays (tokens.py) and a trained model scored from them.

The array path must find exactly the words ``FastSnowNLP.segment_many``
finds, and a linear model scored from it must give what its weights say,
feature by feature, for the texts it was trained on and for odd ones.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.sentiment import features
from monitor.analysis.sentiment.features import (
    FeatureOptions,
    char_ngram_keys,
    extra_features,
    negated,
)
from monitor.analysis.sentiment.linear import LinearModel, train_linear
from monitor.analysis.sentiment.snowfast import FastSnowNLP
from monitor.analysis.sentiment.tokens import (
    batch_tokens,
    tokens_from_words,
    word_hashes,
)
from monitor.analysis.text import normalise_text
from monitor.config.models import default_scorer

DATA = Path(__file__).resolve().parents[1] / "data" / "sentiment_train.csv"
# CJK, Latin, digits, whitespace of several kinds (str.split's), punctuation,
# an emoticon code's brackets and an emoji.
ALPHABET = "好吃不太差很服务没有中文的了 \t\u3000\x1c\x85\xa0ab1，。！!？[]怒😡"
texts_strategy = st.lists(st.text(ALPHABET, max_size=30), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def scorer() -> FastSnowNLP:
    return default_scorer()


def _labelled() -> tuple[list[str], list[int]]:
    with DATA.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [normalise_text(r["text"]) for r in rows], [int(r["label"]) for r in rows]


@settings(max_examples=150, deadline=None)
@given(texts=texts_strategy)
def test_batch_tokens_are_the_segmenters_words(
    scorer: FastSnowNLP, texts: list[str]
) -> None:
    words = scorer.segment_many(texts)
    tokens = batch_tokens(scorer.tagger, texts)
    assert tokens is not None
    flat = [w for ws in words for w in ws]
    assert tokens.word_hash.tolist() == word_hashes(flat).tolist()
    assert tokens.word_doc.tolist() == [i for i, ws in enumerate(words) for _ in ws]
    joined = "".join(flat)
    assert tokens.points.tolist() == [ord(c) for c in joined]
    assert tokens.doc.tolist() == [i for i, ws in enumerate(words) for _ in "".join(ws)]
    from_words = tokens_from_words(words)
    assert from_words.word_hash.tolist() == tokens.word_hash.tolist()
    assert from_words.doc.tolist() == tokens.doc.tolist()


def test_a_text_with_u0000_is_left_to_the_string_path(scorer: FastSnowNLP) -> None:
    assert batch_tokens(scorer.tagger, ["好吃", "a\x00b"]) is None
    assert batch_tokens(scorer.tagger, ["好吃", "不错"]) is not None


def test_word_hashes_tell_words_apart() -> None:
    words = ["好", "好吃", "吃好", "a", "ab", "ba", "好 ", "\x00好", "好\x00"]
    hashes = word_hashes(words).tolist()
    assert len(set(hashes)) == len(words)
    assert word_hashes(["好吃"]).tolist() == [hashes[1]]
    with pytest.raises(ValueError, match="empty"):
        word_hashes(["好", ""])


def _ngrams_one_by_one(ws: list[str], size: int) -> list[int]:
    text = "".join(ws)[: features.MAX_NGRAM_CHARS].replace("\x00", "")
    out = []
    for i in range(len(text) - size + 1):
        key = 0
        for ch in text[i : i + size]:
            key = (key << 21) | ord(ch)
        out.append(key)
    return out


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(
        st.lists(st.text("好吃a\x00😡", min_size=1, max_size=4), max_size=5),
        max_size=5,
    ),
    limit=st.sampled_from([2, 3, 7, 2000]),
)
def test_char_ngrams_match_one_text_at_a_time(
    words: list[list[str]], limit: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(features, "MAX_NGRAM_CHARS", limit)
        got = char_ngram_keys(words, (1, 2, 3))
        for size, (doc, keys) in got.items():
            want = [
                (i, k)
                for i, ws in enumerate(words)
                for k in _ngrams_one_by_one(ws, size)
            ]
            assert list(zip(doc.tolist(), keys.tolist(), strict=True)) == want


def _reference_log_odds(model: LinearModel, text: str, words: list[str]) -> float:
    """The model's log-odds of one text, summed feature by feature from its weights."""
    opts = model.options
    total = model.bias
    vocab = model.words
    if opts.words:
        total += sum(
            model.word_weights[model.word_index[w]]
            for w in set(words)
            if w in model.word_index
        )
    bigram = {
        (vocab[k >> 32], vocab[k & 0xFFFFFFFF]): w
        for k, w in zip(
            model.bigrams[0].tolist(), model.bigrams[1].tolist(), strict=True
        )
    }
    if opts.word_bigrams:
        total += sum(
            bigram.get(p, 0.0) for p in set(zip(words, words[1:], strict=False))
        )
    if opts.negation_scope:
        marks = negated(words, np.zeros(len(words), np.int64), opts.negation_scope)
        neg = {
            vocab[i]: w
            for i, w in zip(
                model.negated[0].tolist(), model.negated[1].tolist(), strict=True
            )
        }
        total += sum(
            neg.get(w, 0.0)
            for w, m in set(zip(words, marks.tolist(), strict=True))
            if m
        )
    for size in opts.char_ngrams:
        keys, weights = model.chars[size]
        table = dict(zip(keys.tolist(), weights.tolist(), strict=True))
        total += sum(table.get(k, 0.0) for k in set(_ngrams_one_by_one(words, size)))
    total += sum(model.extras.get(f, 0.0) for f in extra_features(text, words, opts))
    return total


@pytest.fixture(scope="module")
def full_model(scorer: FastSnowNLP) -> LinearModel:
    texts, labels = _labelled()
    options = FeatureOptions(
        char_ngrams=(1, 2, 3),
        negation_scope=2,
        emoticons=True,
        emoji=True,
        repeated_punctuation=True,
    )
    return train_linear(texts, scorer.segment_many(texts), labels, options)


@settings(max_examples=60, deadline=None)
@given(extra=texts_strategy)
def test_token_scores_are_the_weights_summed(
    scorer: FastSnowNLP, full_model: LinearModel, extra: list[str]
) -> None:
    texts = _labelled()[0][:40] + extra
    words = scorer.segment_many(texts)
    tokens = batch_tokens(scorer.tagger, texts)
    assert tokens is not None
    got = full_model.log_odds_tokens(texts, tokens)
    want = [
        _reference_log_odds(full_model, t, ws)
        for t, ws in zip(texts, words, strict=True)
    ]
    assert got == pytest.approx(want, abs=1e-9)
    assert full_model.log_odds(texts, words) == pytest.approx(want, abs=1e-9)
