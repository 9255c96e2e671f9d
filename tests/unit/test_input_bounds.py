"""Inputs that used to crash later stages are refused up front with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import ConfigError, InvalidRecordError
from monitor.records import MAX_TEXT_CHARS, parse_post
from monitor.sources.files import read_posts
from monitor.yamlfile import load_yaml

BASE = {"id": "a", "text": "好", "published_at": "2026-11-20T10:00:00+08:00"}


def test_text_longer_than_the_limit_is_refused() -> None:
    parse_post({**BASE, "text": "好" * MAX_TEXT_CHARS})
    with pytest.raises(InvalidRecordError, match="text is longer than 100,000"):
        parse_post({**BASE, "text": "好" * (MAX_TEXT_CHARS + 1)})


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "1969-12-31T23:59:59Z"],
)
def test_timestamps_that_cannot_date_an_index_are_refused(stamp: str) -> None:
    with pytest.raises(InvalidRecordError, match="outside the years 1970-2100"):
        parse_post({**BASE, "published_at": stamp})


def test_gbk_csv_is_refused_with_a_clear_reason(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes(
        "id,text,published_at\n1,空调有异味,2026-11-20T10:00:00Z\n".encode("gbk")
    )
    with pytest.raises(InvalidRecordError, match="not UTF-8"):
        list(read_posts(path))


def test_jsonl_with_a_byte_order_mark_reads_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + b'{"id": "1", "text": "x", '
        b'"published_at": "2026-11-20T10:00:00Z"}\n'
    )
    (line,) = list(read_posts(path))
    assert line.post is not None and line.post.id == "1"


def test_non_utf8_yaml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_bytes("topics:\n  空调:\n    keywords: [空调]\n".encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml(path)
