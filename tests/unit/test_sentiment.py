"""Sentiment scores (snownlp), the three-way label and keyword extraction."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from snownlp import SnowNLP
from snownlp import sentiment as snownlp_sentiment

from monitor.analysis.sentiment.model import (
    EMPTY_TEXT_PROBABILITY,
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    InvalidThresholdsError,
    LabelThresholds,
    SentimentModel,
    extract_keywords,
)
from monitor.config.models import load_sentiment_model
from monitor.errors import MonitorError

POSTS = [
    "这家店的服务态度非常好，菜品也很新鲜，下次还会再来！",
    "手机用了三天就坏了，客服还不理人，太失望了。",
    "快递慢得离谱，包装也破了",
    "环境一般，价格偏贵，味道还可以",
    "物流超快，第二天就到了，好评",
    "垃圾产品，千万别买",
    "电池续航很差，充电半小时用一小时",
    "空调有异味，晚上根本睡不着",
    "The service was great 服务很好",
    "#新品发布# 期待已久 @官方微博 http://t.cn/A6xyz",
    "。",
    "好",
]
_POST_IDS = [f"post{number}" for number in range(len(POSTS))]


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return SentimentModel()


@pytest.mark.parametrize("text", POSTS, ids=_POST_IDS)
def test_default_model_equals_snownlp_exactly(model: SentimentModel, text: str) -> None:
    probability = model.positive_probability(text)
    assert type(probability) is float
    assert probability == SnowNLP(text).sentiments
    assert 0.0 <= probability <= 1.0


def test_scores_separate_obvious_posts(model: SentimentModel) -> None:
    assert model.positive_probability("物流超快，第二天就到了，好评") > 0.7
    assert model.positive_probability("垃圾产品，千万别买") < 0.3


def test_empty_text_is_neutral_probability(model: SentimentModel) -> None:
    assert EMPTY_TEXT_PROBABILITY == 0.5
    assert model.positive_probability("") == EMPTY_TEXT_PROBABILITY
    with pytest.raises(ZeroDivisionError):  # what snownlp itself does
        SnowNLP("").sentiments  # noqa: B018


def test_model_path_loads_a_trained_model(
    tmp_path: Path, model: SentimentModel
) -> None:
    inverted = snownlp_sentiment.Sentiment()
    inverted.train(
        neg_docs=["好吃", "很好吃", "好评"], pos_docs=["难吃", "很难吃", "差评"]
    )
    inverted.save(str(tmp_path / "inverted.marshal"))
    custom = load_sentiment_model(tmp_path / "inverted.marshal")
    assert (
        custom.positive_probability("好吃") < 0.5 < model.positive_probability("好吃")
    )
    assert custom.positive_probability("难吃") > 0.5


def test_a_model_path_is_for_the_loader_not_the_model(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="load_sentiment_model"):
        SentimentModel(tmp_path / "inverted.marshal")  # type: ignore[arg-type]


# --- LabelThresholds ---------------------------------------------------------


@pytest.mark.parametrize(
    ("probability", "label"),
    [
        (0.0, NEGATIVE),
        (0.29999, NEGATIVE),
        (0.3, NEUTRAL),  # exactly negative_below
        (0.5, NEUTRAL),
        (0.69999, NEUTRAL),
        (0.7, POSITIVE),  # exactly positive_from
        (1.0, POSITIVE),
    ],
)
def test_default_label_boundaries(probability: float, label: str) -> None:
    assert LabelThresholds().label(probability) == label


@pytest.mark.parametrize(
    ("thresholds", "probability", "label"),
    [
        (LabelThresholds(0.4, 0.6), 0.39, NEGATIVE),
        (LabelThresholds(0.4, 0.6), 0.4, NEUTRAL),
        (LabelThresholds(0.4, 0.6), 0.6, POSITIVE),
        (LabelThresholds(0.5, 0.5), 0.49, NEGATIVE),
        (LabelThresholds(0.5, 0.5), 0.5, POSITIVE),  # no neutral band
        (LabelThresholds(0.0, 1.0), 0.0, NEUTRAL),
        (LabelThresholds(0.0, 1.0), 1.0, POSITIVE),
    ],
)
def test_custom_label_boundaries(
    thresholds: LabelThresholds, probability: float, label: str
) -> None:
    assert thresholds.label(probability) == label


@pytest.mark.parametrize(
    ("negative_below", "positive_from"),
    [(0.8, 0.2), (-0.1, 0.5), (0.5, 1.1), (-0.5, -0.1), (1.2, 1.5)],
)
def test_invalid_thresholds_raise(negative_below: float, positive_from: float) -> None:
    with pytest.raises(InvalidThresholdsError) as caught:
        LabelThresholds(negative_below, positive_from)
    assert isinstance(caught.value, MonitorError)
    assert str(negative_below) in str(caught.value)


_RANK = {NEGATIVE: 0, NEUTRAL: 1, POSITIVE: 2}
_unit = st.floats(min_value=0.0, max_value=1.0)


@given(cuts=st.tuples(_unit, _unit).map(sorted), p=_unit, q=_unit)
def test_label_is_monotone_in_probability(
    cuts: list[float], p: float, q: float
) -> None:
    thresholds = LabelThresholds(*cuts)
    low, high = min(p, q), max(p, q)
    assert _RANK[thresholds.label(low)] <= _RANK[thresholds.label(high)]


@given(cuts=st.tuples(_unit, _unit).map(sorted), p=_unit)
def test_label_agrees_with_the_thresholds(cuts: list[float], p: float) -> None:
    thresholds = LabelThresholds(*cuts)
    label = thresholds.label(p)
    assert (label == NEGATIVE) == (p < thresholds.negative_below)
    assert (label == POSITIVE) == (p >= thresholds.positive_from)


# --- extract_keywords --------------------------------------------------------


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in ("L", "N")


def _check_keywords(keywords: list[str], limit: int) -> None:
    assert len(keywords) <= limit
    assert len(set(keywords)) == len(keywords)
    for word in keywords:
        assert len(word) >= 2, word
        assert word == word.strip()
        assert word == word.lower(), word
        assert any(_is_word_char(char) for char in word), word


@pytest.mark.parametrize("text", POSTS, ids=_POST_IDS)
@pytest.mark.parametrize("limit", [1, 3, 5])
def test_keywords_obey_the_rules(text: str, limit: int) -> None:
    _check_keywords(extract_keywords(text, limit), limit)


def test_keywords_of_a_complaint() -> None:
    keywords = extract_keywords("空调有异味，晚上根本睡不着", 5)
    assert "空调" in keywords
    assert "异味" in keywords


def test_keywords_are_a_filtered_prefix_of_snownlp_keywords() -> None:
    text = "垃圾产品，千万别买"
    keywords = extract_keywords(text, 5)
    candidates = [w.lower() for w in SnowNLP(text).keywords(10) if len(w) >= 2]
    assert keywords == candidates[: len(keywords)]
    assert keywords  # a real post yields keywords


def test_latin_keywords_are_lower_cased() -> None:
    keywords = extract_keywords("The Service was GREAT 服务很好", 10)
    assert "service" in keywords
    assert "great" in keywords
    assert "the" in keywords
    assert "Service" not in keywords


def test_punctuation_and_single_characters_are_dropped() -> None:
    assert extract_keywords("！！！……。。。", 5) == []
    assert extract_keywords("好", 5) == []


@pytest.mark.parametrize(
    ("text", "limit"), [("", 5), ("垃圾产品，千万别买", 0), ("垃圾产品", -1)]
)
def test_no_keywords_for_empty_text_or_zero_limit(text: str, limit: int) -> None:
    assert extract_keywords(text, limit) == []


_post_text = st.text(
    alphabet=st.sampled_from(
        list("手机电池续航很差客服态度好评差评物流快递太慢了环境不错服务")
        + list("ABCabcXYZ123，。！？、 .,!?-_#@😀的了是")
    ),
    max_size=40,
)


@given(text=_post_text, limit=st.integers(min_value=0, max_value=6))
def test_keywords_obey_the_rules_for_any_text(text: str, limit: int) -> None:
    _check_keywords(extract_keywords(text, limit), limit)
