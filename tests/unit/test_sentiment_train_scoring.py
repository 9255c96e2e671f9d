"""Scoring with a trained model: calibration, the score stage, the cache, ES.

Models are trained on tests/data/sentiment_train.csv (written for these tests).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snownlp import SnowNLP

from monitor.analysis.sentiment.calibration import (
    Calibration,
    expected_calibration_error,
    fit_isotonic,
    fit_platt,
)
from monitor.analysis.sentiment.features import (
    NEGATORS,
    FeatureOptions,
    char_ngram_keys,
    extra_features,
    negated,
    word_bigram_keys,
)
from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.sentiment.linear import LinearModel, train_linear
from monitor.analysis.sentiment.model import DEFAULT_MODEL_ID, TextScore
from monitor.cli.train import train_sentiment
from monitor.config import models
from monitor.records import Post
from monitor.sinks.elasticsearch.posts import to_es_document
from monitor.sinks.elasticsearch.templates import POST_MAPPING
from monitor.stages.score import PostScorer, ScoreCache

DATA = Path(__file__).resolve().parents[1] / "data" / "sentiment_train.csv"
TEXTS = ["味道很好，服务热情", "质量很差，再也不买", "一般般吧", "[怒]不好吃！！"]


@pytest.fixture(scope="module")
def model_name(tmp_path_factory: pytest.TempPathFactory) -> Path:
    name = tmp_path_factory.mktemp("model") / "tiny"
    train_sentiment([DATA], name, holdout=0.25)
    return name


def _post(number: int, text: str) -> Post:
    return Post(
        id=f"p{number}",
        source="test",
        text=text,
        published_at=datetime(2026, 11, 20, 5, tzinfo=timezone.utc),
    )


# --- calibration ------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-60, 60, allow_nan=False), st.integers(0, 1)),
        min_size=4,
        max_size=60,
    ),
    st.sampled_from(["platt", "isotonic"]),
)
def test_calibration_is_monotonic_and_round_trips(
    pairs: list[tuple[float, int]], method: str
) -> None:
    xs = [x for x, _ in pairs]
    ys = [y for _, y in pairs]
    fit = fit_platt if method == "platt" else fit_isotonic
    calibration = fit(xs, ys)
    grid = [-1000.0, *sorted(xs), 1000.0]
    values = [calibration(x) for x in grid]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))
    assert Calibration.from_dict(calibration.to_dict()) == calibration


def test_platt_recovers_a_known_slope() -> None:
    # Log-odds twice too confident: the fit should halve them.
    xs = [x / 10 for x in range(-100, 101)]
    ys = [
        int((i * 7919) % 1000 < 1000 / (1 + math.exp(-x / 2))) for i, x in enumerate(xs)
    ]
    calibration = fit_platt(xs * 5, ys * 5)
    assert 0.3 < calibration.a < 0.8


def test_expected_calibration_error() -> None:
    assert expected_calibration_error([1, 0], [1.0, 0.0]) == 0.0
    # one bin holding 0.75 twice, half of it positive: gap 0.25
    assert expected_calibration_error([1, 0], [0.75, 0.75]) == pytest.approx(0.25)
    assert math.isnan(expected_calibration_error([], []))


def test_stored_calibration_is_the_fitted_one(model_name: Path) -> None:
    model = models.load_sentiment_model(model_name)
    meta = models.read_model_metadata(model_name)
    assert meta is not None
    assert model.calibration == Calibration.from_dict(meta["calibration"])
    assert model.calibration.method == "isotonic"
    # The calibrated probability is the calibration of the raw log-odds.
    (calibrated, raw) = model.probabilities(["味道很好"])[0]
    assert math.isclose(
        calibrated, model.calibration(math.log(raw / (1 - raw))), rel_tol=1e-9
    )


# --- features -----------------------------------------------------------------


def _negated_one_by_one(words: list[str], scope: int) -> list[bool]:
    """The scope rule read plainly: a negator opens ``scope`` words, ends close."""
    marks, left = [], 0
    for w in words:
        if w in "，。！？；,.!?;~～、…":
            left = 0
            marks.append(False)
        else:
            marks.append(left > 0)
            left = max(left - 1, 0)
        if w in NEGATORS:
            left = scope
    return marks


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["不", "没有", "好", "吃", "，", "很"]), max_size=8),
        max_size=4,
    ),
    st.integers(0, 3),
)
def test_negation_scope_marks_the_words_after_a_negator(
    texts: list[list[str]], scope: int
) -> None:
    flat = [w for ws in texts for w in ws]
    doc = np.repeat(np.arange(len(texts)), [len(ws) for ws in texts])
    want = [m for ws in texts for m in _negated_one_by_one(ws, scope)]
    assert negated(flat, doc, scope).tolist() == want


def test_features_of_a_text() -> None:
    options = FeatureOptions(
        negation_scope=1, emoticons=True, emoji=True, repeated_punctuation=True
    )
    got = extra_features("不 好吃[怒]😡！！", ["不", "好吃", "[怒]😡！！"], options)
    assert got == {"e:怒", "j:😡", "p:！！"}
    assert FeatureOptions.from_dict(options.to_dict()) == options
    ((doc, keys),) = char_ngram_keys([["好吃"], [], ["不好", "吃"]], (2,)).values()
    assert doc.tolist() == [0, 2, 2]
    pack = [(ord(a) << 21) | ord(b) for a, b in ("好吃", "不好", "好吃")]
    assert keys.tolist() == pack
    bdoc, bkeys = word_bigram_keys(
        np.array([0, 0, 0, 1, 1]), np.array([3, -1, 4, 5, 6])
    )
    assert bdoc.tolist() == [1] and bkeys.tolist() == [(5 << 32) | 6]


def test_linear_model_learns_and_round_trips() -> None:
    texts = ["很好", "非常好", "好吃", "很差", "非常差", "难吃"] * 3
    words = [[t[:-1], t[-1]] if len(t) > 2 else [t] for t in texts]
    labels = [1, 1, 1, 0, 0, 0] * 3
    options = FeatureOptions(word_bigrams=True, char_ngrams=(1, 2), negation_scope=2)
    model = train_linear(texts, words, labels, options)
    z = model.log_odds(texts, words)
    assert all((v > 0) == (y == 1) for v, y in zip(z.tolist(), labels, strict=True))
    again = LinearModel.from_data(model.to_data(), options)
    assert again.log_odds(texts, words).tolist() == z.tolist()
    # presence, not counts: a repeated word weighs once
    assert model.log_odds(["好好"], [["好", "好"]])[0] == model.log_odds(
        ["好"], [["好"]]
    )[0] + sum(
        w
        for n, (keys, weights) in model.chars.items()
        if n == 2
        for k, w in zip(keys.tolist(), weights.tolist(), strict=True)
        if k == (ord("好") << 21) | ord("好")
    )


# --- the score stage ----------------------------------------------------------


def test_default_model_keeps_snownlps_sentiment() -> None:
    scorer = PostScorer([], LabelThresholds())
    results = scorer.score_many([_post(n, t) for n, t in enumerate(TEXTS)])
    for text, result in zip(TEXTS, results, strict=True):
        assert not isinstance(result, Exception)
        assert result.positive_probability == SnowNLP(text).sentiments
        assert result.raw_positive_probability == result.positive_probability
        assert result.sentiment_model == DEFAULT_MODEL_ID


def test_trained_model_scores_posts_with_its_id(model_name: Path) -> None:
    scorer = PostScorer([], LabelThresholds(), model_path=model_name, cache_size=10)
    model = models.load_sentiment_model(model_name)
    results = scorer.score_many([_post(n, t) for n, t in enumerate(TEXTS)])
    expected = model.probabilities(TEXTS)
    for result, (calibrated, raw) in zip(results, expected, strict=True):
        assert not isinstance(result, Exception)
        assert result.sentiment_model == model.model_id
        assert result.sentiment_model.startswith("tiny@")
        assert result.positive_probability == calibrated
        assert result.raw_positive_probability == raw
        doc = to_es_document(
            result, prefix="m", utc_offset="+00:00", indexed_at=result.scored_at
        )
        assert doc.body["sentiment"] == calibrated
        assert doc.body["sentiment_raw"] == raw
        assert doc.body["sentiment_model"] == model.model_id
    assert {"sentiment_raw", "sentiment_model"} <= set(POST_MAPPING["properties"])


def test_the_cache_is_keyed_by_model() -> None:
    cache = ScoreCache(4)
    one, two = TextScore(0.1, []), TextScore(0.9, [])
    cache.put("好", one, "a@1")
    cache.put("好", two, "b@2")
    assert cache.get("好", "a@1") is one
    assert cache.get("好", "b@2") is two
    assert cache.get("好", "c@3") is None
    assert len(cache) == 2


def test_evaluate_reports_calibration_error_per_file(model_name: Path) -> None:
    import json

    from click.testing import CliRunner

    from monitor.cli import cli

    shown = CliRunner().invoke(
        cli,
        ["evaluate", "sentiment", str(DATA), "--model", str(model_name), "--json"],
        obj={},
    )
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["model"] == models.load_sentiment_model(model_name).model_id
    assert report["ece_bins"] == 15
    for entry in (report["files"]["sentiment_train.csv"], report["overall"]):
        assert 0.0 <= entry["ece"] <= 1.0 and 0.0 <= entry["ece_raw"] <= 1.0
        assert entry["accuracy"] >= 0.9  # it was trained on most of these
