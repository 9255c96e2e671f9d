"""``monitor train sentiment``: training, the model files, their metadata.

Trains on tests/data/sentiment_train.csv (40 short reviews written for these
tests), never on the corpora in ../shared/data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from snownlp import sentiment as snownlp_sentiment

from monitor.analysis.sentiment.naive_bayes import train_naive_bayes
from monitor.cli import cli
from monitor.cli.train import TrainingDataError, read_training_csv, train_sentiment
from monitor.config import models
from monitor.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data" / "sentiment_train.csv"
PROBES = [
    "味道很好，服务热情",
    "太差了，再也不来",
    "一般般吧",
    "好",
    "送餐很慢，菜也凉了",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An nblr and a naive Bayes model trained on the test set."""
    root = tmp_path_factory.mktemp("models")
    return {kind: _train(root / kind, kind) for kind in ("nblr", "naive_bayes")}


def _train(name: Path, kind: str) -> Path:
    train_sentiment([DATA], name, holdout=0.25, kind=kind)
    return name


def test_naive_bayes_counts_are_snownlps() -> None:
    docs = [["好", "吃", "的"], ["好", "好"], ["差", "吃"]]
    data = train_naive_bayes(docs, [1, 1, 0], frozenset({"的"}))
    # AddOneProb: a word's count is 1 + occurrences; total adds 1 per new word.
    assert data == {
        "total": 10.0,
        "d": {
            "neg": {"d": {"差": 2, "吃": 2}, "total": 4.0, "none": 1},
            "pos": {"d": {"好": 4, "吃": 2}, "total": 6.0, "none": 1},
        },
    }
    assert list(data["d"]) == ["neg", "pos"]


def test_naive_bayes_matches_snownlps_own_training(trained: dict[str, Path]) -> None:
    texts, labels = read_training_csv(DATA)
    meta = models.read_model_metadata(trained["naive_bayes"])
    assert meta is not None
    stock = snownlp_sentiment.Sentiment()
    # What our command trained on: all but the held-out texts.
    held = set(_held_out(labels, meta["options"]["holdout"]))
    stock.train(
        [
            t
            for i, (t, y) in enumerate(zip(texts, labels, strict=True))
            if y == 0 and i not in held
        ],
        [
            t
            for i, (t, y) in enumerate(zip(texts, labels, strict=True))
            if y == 1 and i not in held
        ],
    )
    ours = models.read_marshal_model(trained["naive_bayes"])
    assert ours == {
        "total": stock.classifier.total,
        "d": {k: v.__dict__ for k, v in stock.classifier.d.items()},
    }


def _held_out(labels: list[int], share: float) -> list[int]:
    from monitor.analysis.sentiment.trainer import split_holdout

    return split_holdout(labels, share, 20240521)[1]


def test_trained_naive_bayes_scores_as_snownlp_after_load(
    trained: dict[str, Path],
) -> None:
    name = trained["naive_bayes"]
    stock = snownlp_sentiment.Sentiment()
    stock.load(str(name))  # snownlp reads name + ".3"
    model = models.load_sentiment_model(name)
    raw = [r for _, r in model.probabilities(PROBES)]
    assert raw == [stock.classify(t) for t in PROBES]
    # The calibrated probability is a monotonic map of the raw log-odds.
    assert model.calibration.method == "isotonic"


def test_model_files_and_names(trained: dict[str, Path], tmp_path: Path) -> None:
    name = trained["nblr"]
    assert Path(f"{name}.3").is_file() and Path(f"{name}.json").is_file()
    assert not name.exists()
    by_name = models.load_sentiment_model(name)
    by_file = models.load_sentiment_model(Path(f"{name}.3"))
    assert by_file is by_name
    digest = models.file_digest(Path(f"{name}.3"))
    assert by_name.model_id == f"nblr@{digest[:12]}"
    with pytest.raises(ConfigError, match="without .3"):
        train_sentiment([DATA], tmp_path / "m.3")


def test_metadata_round_trips(trained: dict[str, Path]) -> None:
    name = trained["nblr"]
    meta = json.loads(Path(f"{name}.json").read_text(encoding="utf-8"))
    assert models.read_model_metadata(name) == meta
    model = models.load_sentiment_model(name)
    assert model.metadata == meta
    assert model.calibration.to_dict() == meta["calibration"]
    (source,) = meta["inputs"]
    assert source["texts"] == 40 and source["positive"] == 20
    assert source["bytes"] == DATA.stat().st_size
    assert len(source["sha256"]) == 64
    assert meta["training_texts"] + meta["holdout_texts"] == 40
    assert meta["options"]["holdout"] == 0.25
    assert 0 <= meta["validation"]["accuracy"] <= 1
    assert "ece" in meta["validation"]


def test_trained_nblr_learns_the_test_set(trained: dict[str, Path]) -> None:
    model = models.load_sentiment_model(trained["nblr"])
    good, bad = model.positive_probabilities(["味道很好，服务热情", "质量很差，失望"])
    assert good > 0.5 > bad
    (score,) = model.score_many(["味道很好，服务热情"], 3)
    assert score.positive_probability == good
    assert score.raw_probability is not None and score.raw_probability != good


def test_a_replaced_model_file_is_refused(tmp_path: Path) -> None:
    name = _train(tmp_path / "m", "nblr")
    other = _train(tmp_path / "other", "naive_bayes")
    Path(f"{name}.3").write_bytes(Path(f"{other}.3").read_bytes())
    with pytest.raises(ConfigError, match="sha256 differs"):
        models.load_sentiment_model(name)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("text,lab\n好,1\n", "line 1: no 'label' column"),
        ("label\n1\n", "line 1: no 'text' column"),
        ("text,label\n好,1\n差,2\n", "line 3: label must be 0 or 1, got '2'"),
        ("text,label\n好,1\n   ,0\n", "line 3: the text is empty"),
        ('text,label\n"很\n好",1\n,0\n', "line 4: the text is empty"),
    ],
    ids=["no_label", "no_text", "label_2", "blank_text", "after_multiline"],
)
def test_bad_csv_names_file_and_line(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TrainingDataError) as caught:
        read_training_csv(path)
    assert str(caught.value).startswith(f"{path} ")
    assert problem in str(caught.value)
    shown = CliRunner().invoke(
        cli, ["train", "sentiment", str(path), "--out", str(tmp_path / "m")], obj={}
    )
    assert shown.exit_code != 0
    assert problem in shown.output
    assert not (tmp_path / "m.3").exists()


def test_cli_writes_the_model_and_prints_json(tmp_path: Path) -> None:
    shown = CliRunner().invoke(
        cli,
        ["train", "sentiment", str(DATA), "--out", str(tmp_path / "m"), "--json"],
        obj={},
    )
    assert shown.exit_code == 0, shown.output
    meta = json.loads(shown.output)
    assert meta == json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "nblr"


def test_a_retrained_model_gets_a_new_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _train(tmp_path / "m", "nblr")
    first = models.load_sentiment_model(name)
    train_sentiment([DATA], name, holdout=0.5)  # replaced on disk
    # A restart is a new process: nothing cached.
    monkeypatch.setattr(models, "_trained_by_path", {})
    again = models.load_sentiment_model(name)
    assert again.model_id != first.model_id
    assert again.metadata["options"]["holdout"] == 0.5
