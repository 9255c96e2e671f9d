"""Replaying posts from files: JSON Lines, or CSV with a header row.

Knows nothing of Kafka: it yields validated posts, or the line number and the
reason a line was rejected.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from monitor.errors import InvalidRecordError
from monitor.records import POST_METRICS, Post, parse_post


@dataclass(frozen=True)
class FileLine:
    """One line (record) of a replay file.

    Attributes:
        line: 1-based line number in the file (for CSV, of the record's first line).
        post: The post, if the line is valid.
        error: Why the line was rejected, otherwise.

    """

    line: int
    post: Post | None = None
    error: str | None = None


def read_posts(path: Path) -> Iterator[FileLine]:
    """Yield every record of a ``.csv`` or JSON Lines file, valid or not.

    Blank lines are skipped. CSV columns are mapped by header: the post
    format's field names, plus ``likes``, ``reposts`` and ``followers`` for
    the metrics; other columns go to ``meta``; empty cells count as absent.
    """
    if path.suffix.lower() in (".csv", ".tsv"):
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        try:
            yield from _read_csv(path, delimiter=delimiter)
        except UnicodeDecodeError as exc:
            raise InvalidRecordError(
                f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8 "
                "(Excel: 'CSV UTF-8')"
            ) from None
    else:
        yield from _read_jsonl(path)


def _read_jsonl(path: Path) -> Iterator[FileLine]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark, as editors on Windows write
            if not raw.strip():
                continue
            try:
                yield FileLine(number, post=parse_post(raw))
            except InvalidRecordError as exc:
                yield FileLine(number, error=exc.reason)


def _read_csv(path: Path, *, delimiter: str) -> Iterator[FileLine]:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if not header or "id" not in header:
            raise InvalidRecordError(
                f"{path}: the CSV header must name the columns "
                "(id, text, published_at, ...)"
            )
        while True:
            # csv.reader yields [] for a blank line, so line_num + 1 is always
            # the first line of the next record, even before a multi-line one.
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield FileLine(start, error=f"malformed CSV: {exc}")
                continue
            if not any(cell.strip() for cell in cells):
                continue
            try:
                if len(cells) > len(header):
                    raise InvalidRecordError("the row has more cells than the header")
                row = dict(zip(header, cells, strict=False))
                yield FileLine(start, post=parse_post(_csv_row_to_post(row)))
            except InvalidRecordError as exc:
                yield FileLine(start, error=exc.reason)


def _csv_row_to_post(row: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    for column, cell in row.items():
        if cell is None or cell == "":
            continue
        if column in POST_METRICS:
            try:
                metrics[column] = int(cell)
            except ValueError:
                raise InvalidRecordError(
                    f"{column} must be an integer, got {cell!r}"
                ) from None
        elif column == "metrics":
            try:
                document["metrics"] = orjson.loads(cell)
            except orjson.JSONDecodeError:
                raise InvalidRecordError("metrics cell is not a JSON object") from None
        else:
            document[column] = cell
    if metrics:
        document.setdefault("metrics", {}).update(metrics)
    return document


def count_lines(path: Path) -> int:
    """Count the lines of a file quickly (an upper bound for progress bars)."""
    count = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


__all__ = ["FileLine", "count_lines", "read_posts"]
