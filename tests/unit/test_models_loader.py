"""monitor.config.models reads snownlp's model files; analysis gets their data.

A missing or corrupt model file is a ConfigError naming the file; snownlp's
own models are read once per process, a model file once per path.
"""

from __future__ import annotations

import gzip
import marshal
from pathlib import Path

import pytest
from snownlp import SnowNLP
from snownlp import sentiment as snownlp_sentiment

from monitor.analysis.sentiment import snowfast
from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.sentiment.model import SentimentModel
from monitor.analysis.sentiment.snowfast import FastSnowNLP, SnowNLPModels
from monitor.config import models
from monitor.errors import ConfigError, MonitorError
from monitor.stages.score import PostScorer

TEXTS = ["这家店的服务态度非常好", "手机用了三天就坏了，太失望了。", "好"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentiment model saved with snownlp's own API (file ``<name>.3``)."""
    root = tmp_path_factory.mktemp("model")
    classifier = snownlp_sentiment.Sentiment()
    classifier.train(neg_docs=["难吃", "差评"], pos_docs=["好吃", "好评"])
    classifier.save(str(root / "small.marshal"))
    return root / "small.marshal"


def _problem(caught: pytest.ExceptionInfo[ConfigError]) -> str:
    assert len(caught.value.problems) == 1
    return caught.value.problems[0]


def test_missing_model_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.marshal"
    with pytest.raises(ConfigError) as caught:
        models.load_sentiment_model(missing)
    problem = _problem(caught)
    assert f"{missing}.3" in problem
    assert "No such file" in problem


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a model at all",
        gzip.compress(b"\xff\xfe garbage"),
        gzip.compress(b"x" * 100)[:20],  # a truncated gzip stream
    ],
    ids=["empty", "text", "gzip_of_garbage", "truncated_gzip"],
)
def test_corrupt_model_file_names_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.marshal"
    (tmp_path / "bad.marshal.3").write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        models.load_sentiment_model(path)
    problem = _problem(caught)
    assert str(path) in problem
    assert "not a snownlp model file" in problem


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([1, 2, 3], "holds a list"),
        ({"d": {}}, "no ['total']"),
    ],
)
def test_marshal_data_of_the_wrong_shape_names_the_file(
    tmp_path: Path, data: object, reason: str
) -> None:
    path = tmp_path / "wrong.marshal"
    (tmp_path / "wrong.marshal.3").write_bytes(gzip.compress(marshal.dumps(data)))
    with pytest.raises(ConfigError) as caught:
        models.load_sentiment_model(path)
    problem = _problem(caught)
    assert str(path) in problem
    assert reason in problem


def test_malformed_classes_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "classes.marshal"
    data = {"d": {"pos": {"total": 1}}, "total": 1}  # a class without its counts
    (tmp_path / "classes.marshal.3").write_bytes(gzip.compress(marshal.dumps(data)))
    with pytest.raises(ConfigError) as caught:
        models.load_sentiment_model(path)
    assert str(path) in _problem(caught)


def test_missing_stopwords_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        models.read_stopwords(tmp_path / "stop.txt")
    assert str(tmp_path / "stop.txt") in _problem(caught)


def test_the_score_stage_reports_a_missing_model_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.marshal"):
        PostScorer([], LabelThresholds(), model_path=tmp_path / "nope.marshal")


def test_a_model_file_is_loaded_once_per_path(trained: Path) -> None:
    first = models.load_sentiment_model(trained)
    again = models.load_sentiment_model(Path(str(trained)))
    assert first._fast is again._fast
    assert first._fast is not models.default_scorer()
    stock = snownlp_sentiment.Sentiment()
    stock.load(str(trained))
    assert first.positive_probabilities(TEXTS) == [
        stock.classify(text) for text in TEXTS
    ]


def test_default_model_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[SnowNLPModels] = []

    def counting_reader() -> SnowNLPModels:
        reads.append(models.read_snownlp_models())
        return reads[-1]

    # A fresh process as far as the shared scorer goes; restored afterwards.
    monkeypatch.setattr(snowfast, "_default", None)
    monkeypatch.setattr(snowfast, "_read_default_models", counting_reader)
    shared = models.default_scorer()
    assert models.load_scorer(None) is shared
    assert models.load_sentiment_model()._fast is shared
    assert SentimentModel()._fast is shared
    assert PostScorer([], LabelThresholds()).model._fast is shared
    assert snowfast.score_texts(TEXTS) == [SnowNLP(t).sentiments for t in TEXTS]
    assert len(reads) == 1


def test_models_are_plain_data_the_scorer_does_not_keep() -> None:
    data = models.read_snownlp_models()
    assert isinstance(data.segmenter, dict)
    assert isinstance(data.classifier, dict)
    assert isinstance(data.stopwords, frozenset)
    fast = FastSnowNLP(data)
    assert data not in vars(fast).values()
    assert fast.sentiments(TEXTS) == models.default_scorer().sentiments(TEXTS)


def test_without_an_installed_reader_analysis_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(snowfast, "_read_default_models", None)
    with pytest.raises(MonitorError, match="monitor.config.models"):
        FastSnowNLP()
