"""Time every regex and parser on post text at its worst known input.

Run: ``python benchmarks/bench_text_worst.py [--runs R] [--with-old]``.
Prints one JSON object: per case (the table ``WORST_CASES`` of
``tests/unit/test_linear_time.py``, which asserts only the ratio), the
median milliseconds of one call at ``n`` and at ``2n`` over ``--runs`` runs
(interleaved), and their ratio (about 2 for linear work, 4 for quadratic).
``--with-old`` adds the normaliser's former tag patterns on the same inputs
(the break-tag one is quadratic: ``"<br" * 33333`` took 2.4 s), for
comparison. Medians on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.test_linear_time import WORST_CASES, Case  # noqa: E402

_OLD_BREAK_TAG = re.compile(r"<\s*(br|/p|/div|/li)\b[^>]*>", re.IGNORECASE)
_OLD_TAG = re.compile(r"<[^>]{0,2000}>")
OLD_CASES = [
    Case(
        "old-break-tag-unclosed",
        lambda n: "<br" * n,
        lambda s: _OLD_BREAK_TAG.sub(" ", s),
        33_333,
    ),
    Case("old-tag-unclosed", lambda n: "<a" * n, lambda s: _OLD_TAG.sub("", s), 50_000),
]


def one_call_ms(run: Callable[[Any], Any], arg: Any) -> float:
    """Milliseconds of one call, garbage collector off."""
    gc.disable()
    try:
        started = time.perf_counter()
        run(arg)
        return (time.perf_counter() - started) * 1000
    finally:
        gc.enable()


def measure(case: Case, runs: int) -> dict[str, Any]:
    """Median ms at n and 2n over ``runs`` interleaved runs, and the ratio."""
    small, large = case.build(case.n), case.build(2 * case.n)
    at_n, at_2n = [], []
    for _ in range(runs):
        at_n.append(one_call_ms(case.run, small))
        at_2n.append(one_call_ms(case.run, large))
    median_n, median_2n = statistics.median(at_n), statistics.median(at_2n)
    return {
        "n": case.n,
        "ms_at_n": round(median_n, 3),
        "ms_at_2n": round(median_2n, 3),
        "ratio": round(median_2n / median_n, 2) if median_n else None,
    }


def main() -> None:
    """Print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--with-old", action="store_true")
    args = parser.parse_args()
    from monitor.config.models import default_scorer

    default_scorer()  # load the models before any timing
    cases = WORST_CASES + (OLD_CASES if args.with_old else [])
    report = {
        "runs": args.runs,
        "cases": {case.name: measure(case, args.runs) for case in cases},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
