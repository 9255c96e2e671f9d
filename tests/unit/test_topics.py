"""Matching normalised texts to watched topics."""

from __future__ import annotations

import pytest

from monitor.analysis.topics import TopicMatcher, WatchedTopic

WATCHED = [
    WatchedTopic("空调异味", ("空调", "异味", "霉味"), ("空调维修广告",)),
    WatchedTopic("物流", ("快递", "物流", "SF Express")),
    WatchedTopic("环境", ("環境",)),  # traditional keyword
    WatchedTopic("WiFi", ("wifi", "无线网")),
    WatchedTopic("售后", ("客服", "售后"), ("好评", "  ")),
]


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        pytest.param("房间空调有股味道", (), ["空调异味"], id="substring"),
        pytest.param("一股霉味", (), ["空调异味"], id="any-keyword"),
        pytest.param("今天天气不错", (), [], id="no-match"),
        pytest.param("", (), [], id="empty-text"),
        pytest.param("顺丰 sf express 很快", (), ["物流"], id="latin-case-insensitive"),
        pytest.param("WIFI 太慢", (), ["WiFi"], id="upper-case-text"),
        pytest.param(
            "环境很好", (), ["环境"], id="traditional-keyword-simplified-text"
        ),
        pytest.param("空调维修广告：空调异味上门处理", (), [], id="exclude-wins"),
        pytest.param("客服态度差", (), ["售后"], id="blank-exclude-ignored"),
        pytest.param("客服很好，给个好评", (), [], id="exclude-wins-other-topic"),
        pytest.param(
            "快递把空调送坏了，客服不理人，无线网也断了",
            (),
            ["WiFi", "售后", "物流", "空调异味"],
            id="several-topics-sorted",
        ),
        pytest.param(
            "今天天气不错", ("新品",), ["新品"], id="declared-always-included"
        ),
        pytest.param(
            "空调维修广告", ("空调异味",), ["空调异味"], id="declared-survives-exclude"
        ),
        pytest.param("快递", ("物流",), ["物流"], id="declared-and-matched-once"),
        pytest.param("快递", ("",), ["物流"], id="empty-declared-dropped"),
        pytest.param("天气", ("b", "a"), ["a", "b"], id="declared-sorted"),
    ],
)
def test_matcher(text: str, declared: tuple[str, ...], expected: list[str]) -> None:
    assert TopicMatcher(WATCHED).match(text, declared) == expected


@pytest.mark.parametrize("declared", [(), ("物流",)])
def test_no_watched_topics_match_only_declared(declared: tuple[str, ...]) -> None:
    assert TopicMatcher([]).match("快递很慢", declared) == list(declared)


def test_no_topics_and_nothing_declared_gives_empty_list() -> None:
    assert TopicMatcher([]).match("快递很慢") == []


def test_topic_with_only_blank_keywords_never_matches() -> None:
    matcher = TopicMatcher([WatchedTopic("blank", ("", "  "))])
    assert matcher.match("any text at all") == []
    assert matcher.match("  ") == []


def test_keywords_are_normalised_like_texts() -> None:
    matcher = TopicMatcher([WatchedTopic("服务", ("<b>服務</b>", " 態度 "))])
    assert matcher.match("服务一般") == ["服务"]
    assert matcher.match("态度差") == ["服务"]


def test_names_keep_configuration_order() -> None:
    assert TopicMatcher(WATCHED).names == ["空调异味", "物流", "环境", "WiFi", "售后"]


def test_matcher_accepts_any_iterable_once() -> None:
    matcher = TopicMatcher(topic for topic in WATCHED)
    assert matcher.match("快递") == ["物流"]
    assert matcher.match("快递") == ["物流"]  # not consumed by the first call


def test_keyword_that_normalises_to_nothing_matches_nothing() -> None:
    matcher = TopicMatcher([WatchedTopic("t", ("&nbsp;", "<br>"))])
    assert matcher.match("任何帖子") == []
