"""Labelled data sets: read from files in cli/, scored as data in analysis/."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence
from datetime import datetime, timezone

import pytest

from monitor.analysis.evaluation.sentiment import LabelledTexts, evaluate_sentiment
from monitor.cli.datasets import read_labelled_csv, read_nab_series
from monitor.errors import InvalidRecordError


@pytest.mark.parametrize(
    ("content", "texts", "labels"),
    [
        ("text,label\n好,1\n差,0\n", ["好", "差"], [1, 0]),
        ("label,text\n1,好\n0,差\n", ["好", "差"], [1, 0]),
        ("\ufefftext,label\n好, 1 \n", ["好"], [1]),
        ('text,label\n"a, b",0\n', ["a, b"], [0]),
    ],
)
def test_labelled_csv_is_read_by_header(
    tmp_path: pathlib.Path, content: str, texts: list[str], labels: list[int]
) -> None:
    path = tmp_path / "set.csv"
    path.write_text(content, encoding="utf-8")

    data = read_labelled_csv(path)

    assert data == LabelledTexts("set.csv", texts, labels)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,label\n好,1\n差,maybe\n", "line 3: label must be 0 or 1"),
        ("text,label\n好,\n", "line 2: label must be 0 or 1"),
        ("txt,lab\n好,1\n", "'text' and 'label' columns"),
        ("", "'text' and 'label' columns"),
    ],
)
def test_bad_labelled_csv_names_the_file_and_line(
    tmp_path: pathlib.Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(InvalidRecordError, match=message) as raised:
        read_labelled_csv(path)

    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("texts", "labels"), [(["a", "b"], [1]), (["a"], [2]), (["a"], [-1])]
)
def test_labelled_texts_need_one_binary_label_per_text(
    texts: list[str], labels: list[int]
) -> None:
    with pytest.raises(InvalidRecordError, match="set"):
        LabelledTexts("set", texts, labels)


class _Model:
    """Scores a text 0.9 if it holds 好, else 0.1; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def positive_probabilities(self, texts: Sequence[str]) -> list[float]:
        self.calls += 1
        return [0.9 if "好" in text else 0.1 for text in texts]


def test_sentiment_is_reported_per_data_set_and_overall() -> None:
    model = _Model()
    first = LabelledTexts("a.csv", ["很好", "太差", "好"], [1, 0, 1])
    second = LabelledTexts("b.csv", ["不好", "差"], [0, 0])

    report = evaluate_sentiment(
        [first, second],
        model=model,  # type: ignore[arg-type]
    )

    assert list(report["files"]) == ["a.csv", "b.csv"]
    assert report["files"]["a.csv"]["n"] == 3
    assert report["files"]["a.csv"]["accuracy"] == 1.0
    assert report["files"]["b.csv"]["accuracy"] == 0.5
    assert report["overall"]["n"] == 5
    assert report["overall"]["accuracy"] == pytest.approx(4 / 5)
    assert model.calls == 2


def test_nab_series_are_matched_by_basename_and_unlabelled_ones_skipped(
    tmp_path: pathlib.Path,
) -> None:
    rows = [f"2015-03-01 00:{minute:02d}:00,{minute}" for minute in range(0, 50, 5)]
    (tmp_path / "b.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    (tmp_path / "a.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    (tmp_path / "unlabelled.csv").write_text("timestamp,value\n")
    window = ["2015-03-01 00:10:00.000000", "2015-03-01 00:20:00.000000"]
    (tmp_path / "combined_windows.json").write_text(
        json.dumps({"realTweets/a.csv": [window], "other/b.csv": []})
    )

    series = read_nab_series(tmp_path)

    assert [item.name for item in series] == ["a.csv", "b.csv"]
    first = series[0]
    assert first.timestamps[0] == datetime(2015, 3, 1, tzinfo=timezone.utc)
    assert first.values == [float(minute) for minute in range(0, 50, 5)]
    assert first.windows == [(2, 4)]
    assert series[1].windows == []


def test_malformed_nab_series_names_the_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.csv").write_text("timestamp,value\nyesterday,3\n")
    (tmp_path / "combined_windows.json").write_text(json.dumps({"a.csv": []}))

    with pytest.raises(InvalidRecordError, match="a.csv"):
        read_nab_series(tmp_path)
