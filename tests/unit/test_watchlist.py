"""Loading watched topics from YAML, with errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.analysis.topics import WatchedTopic
from monitor.config.watchlist import load_watchlist
from monitor.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_watchlist(path)
    return caught.value.problems


def test_loads_topics_in_file_order(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "topics:\n"
        "  空调异味:\n"
        "    keywords: [空调, 异味, 霉味]\n"
        "    exclude: [空调维修广告]\n"
        "  物流:\n"
        "    keywords:\n"
        "      - 快递\n"
        "      - 物流\n",
    )
    assert load_watchlist(path) == [
        WatchedTopic("空调异味", ("空调", "异味", "霉味"), ("空调维修广告",)),
        WatchedTopic("物流", ("快递", "物流"), ()),
    ]


def test_empty_topics_mapping_gives_no_topics(tmp_path: Path) -> None:
    assert load_watchlist(_write(tmp_path, "topics: {}\n")) == []


@pytest.mark.parametrize(
    "text",
    ["# nothing\n", "topic:\n  a:\n    keywords: [b]\n", "- topics\n"],
    ids=["empty", "misspelt-key", "list"],
)
def test_missing_topics_mapping_is_refused(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    (problem,) = _problems(path)
    assert problem.startswith(str(path))
    assert "expected a 'topics:' mapping" in problem


def test_topics_that_is_not_a_mapping_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "# watched\n\ntopics:\n  - 空调\n")
    (problem,) = _problems(path)
    assert problem == f"{path} line 3: expected a 'topics:' mapping"


def test_topic_without_keywords_names_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "topics:\n  物流:\n    keywords: [快递]\n  空调:\n    exclude: [广告]\n",
    )
    assert _problems(path) == [f"{path} line 4: topic '空调' has no keywords"]


def test_topic_with_empty_keyword_list_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "topics:\n  空调:\n    keywords: []\n")
    assert _problems(path) == [f"{path} line 2: topic '空调' has no keywords"]


def test_topic_that_is_not_a_mapping_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "topics:\n  空调: [空调, 异味]\n")
    assert _problems(path) == [
        f"{path} line 2: topic '空调' needs a mapping with 'keywords'"
    ]


def test_keywords_not_a_list_names_the_keywords_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "topics:\n  空调:\n\n    keywords: 空调\n")
    problems = _problems(path)
    assert (
        f"{path} line 4: keywords of '空调' must be a list of non-empty strings"
        in problems
    )


def test_exclude_not_a_list_names_the_exclude_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "topics:\n  空调:\n    keywords: [空调]\n    exclude: 广告\n"
    )
    assert _problems(path) == [
        f"{path} line 4: exclude of '空调' must be a list of non-empty strings"
    ]


@pytest.mark.parametrize("keyword", ["''", "'   '", "1", "null"])
def test_empty_or_non_string_keyword_names_the_line(
    tmp_path: Path, keyword: str
) -> None:
    path = _write(
        tmp_path, f"topics:\n  空调:\n    keywords:\n      - 空调\n      - {keyword}\n"
    )
    problems = _problems(path)
    assert (
        f"{path} line 3: keywords of '空调' must be a list of non-empty strings"
        in problems
    )


def test_unknown_key_names_the_line_and_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "topics:\n  物流:\n    keywords: [快递]\n  空调:\n    keyword: [空调]\n",
    )
    problems = _problems(path)
    assert f"{path} line 4: topic '空调' has unknown keys ['keyword']" in problems


def test_every_bad_topic_is_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "topics:\n  a:\n    keywords: []\n  b:\n    keywords: [x]\n  c: 1\n",
    )
    problems = _problems(path)
    assert [p.split(":")[0] for p in problems] == [f"{path} line 2", f"{path} line 6"]


def test_topic_with_a_numeric_name_is_blamed_on_its_own_line(tmp_path: Path) -> None:
    # YAML turns the key 2024 into an int; the error must still point at it.
    path = _write(
        tmp_path, "topics:\n  物流:\n    keywords: [快递]\n  2024:\n    keywords: []\n"
    )
    assert _problems(path) == [f"{path} line 4: topic name 2024 is not text; quote it"]


def test_keyword_that_normalises_to_nothing_is_refused(tmp_path: Path) -> None:
    # "&nbsp;" normalises to "", which would match every post.
    path = _write(tmp_path, "topics:\n  空调:\n    keywords: [空调, '&nbsp;']\n")
    assert _problems(path)[0] == (
        f"{path} line 3: keywords of '空调' must be a list of non-empty strings"
    )


def test_a_topic_name_over_the_cap_is_a_config_error_with_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "topics.yaml"
    path.write_text("topics:\n  " + "长" * 65 + ":\n    keywords: [a]\n", "utf-8")
    with pytest.raises(ConfigError, match=r"line 2: topic name must be at most 64"):
        load_watchlist(path)
