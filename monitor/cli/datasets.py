"""Labelled data sets read from files for ``monitor evaluate``.

``monitor.analysis.evaluation`` scores data it is given and does no file I/O;
this module is its loader:

* sentiment: ``text,label`` CSV files (label 1 positive, 0 negative; columns
  in any order, a UTF-8 BOM allowed), one :class:`LabelledTexts` per file;
* bursts: a tree in NAB format: ``*.csv`` series (header ``timestamp,value``,
  timestamps ``YYYY-MM-DD HH:MM:SS`` taken as UTC), flat or in category
  folders, and ``combined_windows.json`` mapping keys such as
  ``"realTweets/Twitter_volume_FB.csv"`` to ``[start, end]`` label windows.
  Files are matched to keys by relative path, else by basename; CSVs
  without a key are skipped.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from monitor.analysis.evaluation import nab
from monitor.analysis.evaluation.bursts import Series
from monitor.analysis.evaluation.sentiment import LabelledTexts
from monitor.errors import InvalidRecordError

#: The label windows of a NAB folder.
NAB_WINDOWS_FILE = "combined_windows.json"


def read_labelled_csv(path: Path) -> LabelledTexts:
    """Read a ``text,label`` CSV (label 1 positive, 0 negative).

    Args:
        path: The file; the data set is named by its basename.

    Returns:
        Its texts and labels, in file order.

    Raises:
        InvalidRecordError: Naming the file and line of a bad row.

    """
    texts: list[str] = []
    labels: list[int] = []
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise InvalidRecordError(
                f"{path}: the header must have 'text' and 'label' columns"
            )
        for row in reader:
            label = (row.get("label") or "").strip()
            if label not in ("0", "1"):
                raise InvalidRecordError(
                    f"{path} line {reader.line_num}: "
                    f"label must be 0 or 1, got {label!r}"
                )
            texts.append(row.get("text") or "")
            labels.append(int(label))
    return LabelledTexts(path.name, texts, labels)


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def _match_key(relative: PurePosixPath, keys: Mapping[str, Any]) -> str | None:
    # NAB keys are "<category>/<file>": a tree laid out like NAB's data/
    # folder matches by relative path, a flat folder by basename.
    text = relative.as_posix()
    if text in keys:
        return text
    named = [key for key in keys if PurePosixPath(key).name == relative.name]
    return named[0] if len(named) == 1 else None


def read_nab_series(directory: Path) -> list[Series]:
    """Read every labelled series of a NAB-format tree.

    The tree is either flat (``*.csv`` beside ``combined_windows.json``) or
    nested like NAB's ``data/`` folder (``<category>/*.csv``), in any depth. A
    CSV is matched to a key of the windows file by its path relative to
    ``directory``, else by a basename that names exactly one key; CSVs
    without a key (``published_detector_scores.csv``) are skipped. A key with
    no window is kept: its detections are false positives.

    Values are read as floats, negative ones included; timestamps as UTC and
    kept as written (repeated or irregular ones too: see
    :func:`monitor.analysis.evaluation.bursts.feed_times` for how they reach
    the detector).

    Args:
        directory: Folder holding ``combined_windows.json`` and the CSVs.

    Returns:
        The series that have an entry in the windows file, sorted by their
        path relative to ``directory``, their label windows turned into rows
        and their category taken from the key's folder.

    Raises:
        InvalidRecordError: If the windows file is missing or a CSV is
            malformed (naming the file and line).

    """
    windows_path = directory / NAB_WINDOWS_FILE
    try:
        raw_windows = json.loads(windows_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRecordError(f"cannot read {windows_path}: {exc}") from exc
    if not isinstance(raw_windows, dict):
        raise InvalidRecordError(f"{windows_path}: expected an object of windows")
    series = []
    for path in sorted(directory.rglob("*.csv")):
        relative = PurePosixPath(path.relative_to(directory).as_posix())
        key = _match_key(relative, raw_windows)
        if key is None:
            continue
        timestamps, values = _read_nab_csv(path)
        try:
            limits = [(_parse_time(a), _parse_time(b)) for a, b in raw_windows[key]]
        except (TypeError, ValueError) as exc:
            raise InvalidRecordError(f"{windows_path}: {key}: {exc}") from exc
        folder = PurePosixPath(key).parent.as_posix()
        series.append(
            Series(
                name=relative.as_posix(),
                timestamps=timestamps,
                values=values,
                windows=nab.windows_to_rows(timestamps, limits),
                category="" if folder == "." else folder,
            )
        )
    return series


def _read_nab_csv(path: Path) -> tuple[list[datetime], list[float]]:
    timestamps: list[datetime] = []
    values: list[float] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                try:
                    moment = _parse_time(row["timestamp"])
                    value = float(row["value"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise InvalidRecordError(
                        f"cannot read {path} line {reader.line_num}: {exc}"
                    ) from exc
                if not math.isfinite(value):
                    raise InvalidRecordError(
                        f"cannot read {path} line {reader.line_num}: value"
                        f" {row['value']!r} is not finite"
                    )
                timestamps.append(moment)
                values.append(value)
    except OSError as exc:
        raise InvalidRecordError(f"cannot read {path}: {exc}") from exc
    return timestamps, values
