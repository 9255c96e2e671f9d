"""Replay files: JSON Lines and CSV/TSV with a header row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.errors import InvalidRecordError
from monitor.sources.files import FileLine, count_lines, read_posts

T = "2026-11-20T14:03:27+08:00"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _summary(lines: list[FileLine]) -> list[tuple[int, str | None, str | None]]:
    return [(fl.line, fl.post.id if fl.post else None, fl.error) for fl in lines]


# --- JSON Lines --------------------------------------------------------------


def test_jsonl_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.jsonl",
        f'{{"id": "1", "text": "好", "published_at": "{T}"}}\n'
        "\n"
        "   \n"
        "{bad\n"
        '{"id": "2", "text": "b", "published_at": "2026-11-20T14:03:27"}\n'
        f'{{"id": "3", "text": "c", "published_at": "{T}"}}\n'
        "[]\n"
        "\n"
        f'{{"id": "4", "text": "d", "published_at": "{T}"}}',  # no final newline
    )
    lines = list(read_posts(path))
    assert [(line.line, line.post.id if line.post else None) for line in lines] == [
        (1, "1"),
        (4, None),
        (5, None),
        (6, "3"),
        (7, None),
        (9, "4"),
    ]
    errors = {line.line: line.error for line in lines if line.error}
    assert errors[4].startswith("not valid JSON")
    assert errors[5].startswith("published_at has no UTC offset")
    assert errors[7] == "a post must be a JSON object, got list"
    assert all((line.post is None) != (line.error is None) for line in lines)


def test_jsonl_posts_are_fully_parsed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.ndjson",
        f'{{"id": 7, "text": "環境", "published_at": "{T}", "metrics": {{"likes": 2}},'
        ' "region": "北京"}\n',
    )
    (line,) = read_posts(path)
    assert line.line == 1
    assert line.post is not None
    assert line.post.id == "7"
    assert line.post.text == "環境"
    assert line.post.metrics == {"likes": 2}
    assert line.post.meta == {"region": "北京"}
    assert line.post.published_at == datetime(
        2026, 11, 20, 14, 3, 27, tzinfo=timezone(timedelta(hours=8))
    )


def test_jsonl_with_crlf_line_endings(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.jsonl",
        f'{{"id": "1", "text": "a", "published_at": "{T}"}}\r\n\r\n'
        f'{{"id": "2", "text": "b", "published_at": "{T}"}}\r\n',
    )
    assert _summary(list(read_posts(path))) == [(1, "1", None), (3, "2", None)]


# --- CSV ---------------------------------------------------------------------


def test_csv_maps_columns_by_header(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.csv",
        "text,id,published_at,likes,reposts,followers,author,region,source\n"
        f"服务很好,1,{T},3,0,1200,小王,北京,dianping\n",
    )
    (line,) = read_posts(path)
    assert line.line == 2
    post = line.post
    assert post is not None
    assert post.id == "1"
    assert post.text == "服务很好"
    assert post.metrics == {"likes": 3, "reposts": 0, "followers": 1200}
    assert post.author == "小王"
    assert post.source == "dianping"
    assert post.meta == {"region": "北京"}


def test_csv_empty_cells_are_absent(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.csv",
        f"id,text,published_at,likes,reposts,author,region\n1,好,{T},,5,,\n",
    )
    (line,) = read_posts(path)
    assert line.post is not None
    assert line.post.metrics == {"reposts": 5}
    assert line.post.author is None
    assert line.post.meta == {}


def test_csv_short_row_leaves_missing_cells_absent(tmp_path: Path) -> None:
    path = _write(tmp_path, "posts.csv", f"id,text,published_at,author\n1,好,{T}\n")
    (line,) = read_posts(path)
    assert line.post is not None
    assert line.post.author is None


def test_csv_multi_line_text_keeps_first_line_number(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.csv",
        "id,text,published_at\n"
        f'1,"第一行\n第二行\n第三行",{T}\n'
        f"2,下一条,{T}\n"
        f'3,"又是\n两行",not-a-date\n'
        f"4,最后,{T}\n",
    )
    lines = list(read_posts(path))
    assert _summary(lines)[0] == (2, "1", None)
    assert lines[0].post is not None
    assert lines[0].post.text == "第一行\n第二行\n第三行"
    assert [line.line for line in lines] == [2, 5, 6, 8]
    assert lines[2].error == "published_at is not ISO 8601: 'not-a-date'"


def test_csv_rejects_bad_rows_with_reasons(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.csv",
        "id,text,published_at,likes\n"
        f"1,好,{T},3\n"
        f"2,好,{T},三\n"
        f"3,好,{T},1,extra\n"
        f"4,好,{T},-2\n"
        f"5,,{T},1\n"
        f",好,{T},1\n",
    )
    assert _summary(list(read_posts(path))) == [
        (2, "1", None),
        (3, None, "likes must be an integer, got '三'"),
        (4, None, "the row has more cells than the header"),
        (5, None, "metrics.likes must be a non-negative integer, got -2"),
        (6, None, "text is required"),
        (7, None, "id is required and must be a non-empty string"),
    ]


def test_csv_metrics_json_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.csv",
        "id,text,published_at,metrics,likes\n"
        f'1,好,{T},"{{""reposts"": 2, ""likes"": 9}}",4\n'
        f"2,好,{T},not json,\n",
    )
    lines = list(read_posts(path))
    assert lines[0].post is not None
    assert lines[0].post.metrics == {"reposts": 2, "likes": 4}  # the column wins
    assert (lines[1].line, lines[1].error) == (3, "metrics cell is not a JSON object")


def test_csv_row_of_empty_cells_is_skipped(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.csv",
        f"id,text,published_at\n1,a,{T}\n,,\n3,c,{T}\n",
    )
    assert _summary(list(read_posts(path))) == [(2, "1", None), (4, "3", None)]


def test_csv_blank_line_does_not_shift_line_numbers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.csv",
        f"id,text,published_at\n1,a,{T}\n\n3,c,{T}\n4,d,bad\n",
    )
    # Line 3 is blank; the records are on lines 2, 4 and 5.
    assert [
        (line.line, line.post.id if line.post else None) for line in read_posts(path)
    ] == [
        (2, "1"),
        (4, "3"),
        (5, None),
    ]


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    path = _write(tmp_path, "posts.csv", f"\ufeffid,text,published_at\n1,好,{T}\n")
    assert _summary(list(read_posts(path))) == [(2, "1", None)]


def test_csv_without_id_column_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "posts.csv", f"text,published_at\n好,{T}\n")
    with pytest.raises(InvalidRecordError, match="header must name the columns"):
        list(read_posts(path))


def test_empty_csv_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "posts.csv", "")
    with pytest.raises(InvalidRecordError, match="header"):
        list(read_posts(path))


def test_upper_case_suffix_is_csv(tmp_path: Path) -> None:
    path = _write(tmp_path, "POSTS.CSV", f"id,text,published_at\n1,a,{T}\n")
    assert _summary(list(read_posts(path))) == [(2, "1", None)]


def test_tsv_is_split_on_tabs(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "posts.tsv",
        "id\ttext\tpublished_at\tlikes\tcity\n"
        f"1\t好, 很好\t{T}\t4\t上海\n"
        f"2\tx\t{T}\tmany\t\n",
    )
    lines = list(read_posts(path))
    assert lines[0].line == 2
    assert lines[0].post is not None
    assert lines[0].post.text == "好, 很好"
    assert lines[0].post.metrics == {"likes": 4}
    assert lines[0].post.meta == {"city": "上海"}
    assert (lines[1].line, lines[1].error) == (
        3,
        "likes must be an integer, got 'many'",
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", 0),
        (b"a", 0),
        (b"a\n", 1),
        (b"a\n\nb\n", 3),
        (b"\n" * 3_000_000, 3_000_000),
    ],
)
def test_count_lines(tmp_path: Path, content: bytes, expected: int) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    assert count_lines(path) == expected
