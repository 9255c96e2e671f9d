"""Cross-validate the burst detector's defaults over NAB-format trees.

Run: ``python benchmarks/cv_bursts.py GROUP=DIR [GROUP=DIR ...] [--grid NAME]``,
e.g. ``realTweets=../shared/data/nab_realTweets nab_other=../shared/data/nab_other``.

Each configuration of the grid runs once per series (detections cached in
memory); the leave-one-series-out folds are derived from those raw scores
(:mod:`monitor.analysis.evaluation.crossval`), choosing on the standard
profile and applying the same choices to the other two. Prints one JSON
object: the configurations, the chosen default, in-sample and
cross-validated scores per group and profile, and per-file and per-category
scores of the default.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from monitor.analysis.bursts import DetectorConfig
from monitor.analysis.evaluation import nab
from monitor.analysis.evaluation.bursts import (
    RULE_THRESHOLD,
    RawScore,
    Series,
    detect_rows,
    report_scores,
    score_file,
)
from monitor.analysis.evaluation.crossval import cross_validate, group_scores
from monitor.cli.datasets import read_nab_series

_DAY = 86400.0

#: Grids of DetectorConfig overrides; the first entry is today's default.
GRIDS: dict[str, dict[str, dict[str, Any]]] = {
    "calibration": {
        f"tf{tf}-mem{mem}-nov{nov}": {
            "tail_fraction": tf,
            "tail_memory": mem,
            "novelty_half_life_seconds": None if nov is None else nov * _DAY,
        }
        for tf in (0.05, 0.1, 0.2)
        for mem in (200.0, 1000.0)
        for nov in (3.0, 1.0, None)
    },
}


def _raw_table(
    series: list[Series], grid: dict[str, dict[str, Any]], threshold: float
) -> dict[str, dict[str, dict[str, RawScore]]]:
    """Per profile, per configuration, per series: the raw score."""
    table: dict[str, dict[str, dict[str, RawScore]]] = {p: {} for p in nab.PROFILES}
    for name, overrides in grid.items():
        started = time.perf_counter()
        config = DetectorConfig(**overrides)
        for profile in nab.PROFILES:
            table[profile][name] = {}
        for item in series:
            rows = detect_rows(item.timestamps, item.values, config, threshold)
            for profile, costs in nab.PROFILES.items():
                table[profile][name][item.name] = score_file(item, rows, costs)
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("groups", nargs="+", help="GROUP=DIR")
    parser.add_argument("--grid", default="calibration", choices=sorted(GRIDS))
    parser.add_argument("--threshold", type=float, default=RULE_THRESHOLD)
    args = parser.parse_args()
    series: list[Series] = []
    groups: dict[str, str] = {}
    for spec in args.groups:
        group, _, directory = spec.partition("=")
        for item in read_nab_series(Path(directory)):
            renamed = Series(
                f"{group}/{item.name}",
                item.timestamps,
                item.values,
                item.windows,
                item.category or group,
            )
            series.append(renamed)
            groups[renamed.name] = group
    grid = GRIDS[args.grid]
    table = _raw_table(series, grid, args.threshold)
    result = cross_validate(table["standard"], groups)
    names = sorted(groups)
    profiles: dict[str, Any] = {}
    for profile, by_config in table.items():
        held = {name: by_config[result.chosen[name]][name] for name in names}
        default = by_config[result.default]
        report = report_scores(series, default, profile)
        profiles[profile] = {
            "cross_validated": group_scores(held, groups, names),
            "in_sample": group_scores(default, groups, names),
            "files": report["files"],
            "categories": report["categories"],
        }
    print(
        json.dumps(
            {
                "threshold": args.threshold,
                "configurations": result.configurations,
                "grid": {k: {a: b for a, b in v.items()} for k, v in grid.items()},
                "default": result.default,
                "chosen_per_fold": result.chosen,
                "profiles": profiles,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
