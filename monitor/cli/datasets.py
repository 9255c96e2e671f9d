"""Labelled data sets read from files for ``monitor evaluate``.

``monitor.analysis.evaluation`` scores data it is given and does no file I/O;
this module is its loader:

* sentiment: ``text,label`` CSV files (label 1 positive, 0 negative; columns
  in any order, a UTF-8 BOM allowed), one :class:`LabelledTexts` per file;
* bursts: a folder in NAB format: ``*.csv`` series (header ``timestamp,value``,
  timestamps ``YYYY-MM-DD HH:MM:SS`` taken as UTC) and
  ``combined_windows.json`` mapping keys such as
  ``"realTweets/Twitter_volume_FB.csv"`` to ``[start, end]`` label windows.
  Files are matched to keys by basename; CSVs without a key are skipped.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

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


def read_nab_series(directory: Path) -> list[Series]:
    """Read every labelled series of a NAB folder.

    Args:
        directory: Folder with ``*.csv`` files and ``combined_windows.json``.

    Returns:
        The series that have an entry in the windows file, sorted by name,
        their label windows turned into rows.

    Raises:
        InvalidRecordError: If the windows file is missing or a CSV is
            malformed.

    """
    windows_path = directory / NAB_WINDOWS_FILE
    try:
        raw_windows = json.loads(windows_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRecordError(f"cannot read {windows_path}: {exc}") from exc
    by_name = {PurePosixPath(key).name: value for key, value in raw_windows.items()}
    series = []
    for path in sorted(directory.glob("*.csv")):
        if path.name not in by_name:
            continue
        timestamps: list[datetime] = []
        values: list[float] = []
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    timestamps.append(_parse_time(row["timestamp"]))
                    values.append(float(row["value"]))
        except (OSError, KeyError, ValueError) as exc:
            raise InvalidRecordError(f"cannot read {path}: {exc}") from exc
        limits = [(_parse_time(a), _parse_time(b)) for a, b in by_name[path.name]]
        series.append(
            Series(
                name=path.name,
                timestamps=timestamps,
                values=values,
                windows=nab.windows_to_rows(timestamps, limits),
            )
        )
    return series
