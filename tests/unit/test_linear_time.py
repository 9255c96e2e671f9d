"""Every regex and parser applied to post text runs in linear time.

Post text comes from strangers, and a regex that backtracks holds the GIL: one
post of ``"<br" * 33333`` used to stop the whole worker for 2.4 s. Each case
below is a pattern or parser on the worst input known for it; the test times
it at a size ``n`` and at ``2n`` in the same test (each timing repeats the
call until the run at ``n`` takes about 40 ms), and requires
``time(2n) / time(n) < 3``: about 2 for linear work, 4 for quadratic. Timings
are the minimum of 3 interleaved runs, with the garbage collector off; on a
busy shared machine a ratio over the bound is measured again (up to twice
more) before the test fails, which a quadratic case fails every time.

Absolute times are not asserted here: ``benchmarks/bench_text_worst.py``
prints them (it imports :data:`WORST_CASES`).
"""

from __future__ import annotations

import gc
import html
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from monitor.analysis import text
from monitor.analysis.sentiment.model import filter_keywords
from monitor.analysis.topics import TopicMatcher, WatchedTopic
from monitor.config.models import default_scorer
from monitor.errors import InvalidRecordError
from monitor.records import parse_post

#: The bound on time(2n) / time(n).
MAX_RATIO = 3.0
#: Repeat calls until one timing at n takes at least this long (seconds).
TARGET_SECONDS = 0.04
REPEAT = 3


@dataclass(frozen=True)
class Case:
    """A pattern or parser and the worst input known for it.

    Attributes:
        name: Test id.
        build: Input of size about ``n`` (characters, or tokens).
        run: What is timed, called with the input.
        n: The smaller size timed.

    """

    name: str
    build: Callable[[int], Any]
    run: Callable[[Any], Any]
    n: int


def _random_cjk(n: int) -> str:
    rng = random.Random(n)
    return "".join(chr(0x4E00 + rng.randrange(20_902)) for _ in range(n))


def _parse_quietly(payload: bytes) -> None:
    try:
        parse_post(payload)
    except InvalidRecordError:
        pass  # refusing is fine; it must be quick


def _post_with_text(value: str) -> bytes:
    return orjson.dumps(
        {"id": "x", "text": value, "published_at": "2026-11-20T10:00:00Z"}
    )


def _post_with_meta_list(n: int) -> bytes:
    return orjson.dumps(
        {"id": "x", "text": "t", "published_at": "2026-11-20T10:00:00Z", "l": [0] * n}
    )


_MATCHER = TopicMatcher([WatchedTopic("t", ("a" * 40 + "b", "aaaaac"), ("aab",))])


def _scorer() -> Any:
    return default_scorer()


WORST_CASES: list[Case] = [
    # Normaliser: tags, entities, whitespace, OpenCC.
    Case(
        "break-tag-unclosed",
        lambda n: "<br" * n,
        lambda s: text._BREAK_TAG.sub(" ", s),
        50_000,
    ),
    Case(
        "break-tag-spaced",
        lambda n: "< br " * n,
        lambda s: text._BREAK_TAG.sub(" ", s),
        50_000,
    ),
    Case(
        "break-tag-close",
        lambda n: "</p" * n,
        lambda s: text._BREAK_TAG.sub(" ", s),
        50_000,
    ),
    Case("tag-unclosed", lambda n: "<a" * n, lambda s: text._TAG.sub("", s), 100_000),
    Case(
        "tag-long-no-gt",
        lambda n: "<" + "a" * n,
        lambda s: text._TAG.sub("", s),
        200_000,
    ),
    Case(
        "decimal-ref-long",
        lambda n: "&#" + "1" * n,
        lambda s: text._LONG_DECIMAL_REF.sub(text._shorten_decimal_ref, s),
        200_000,
    ),
    Case(
        "decimal-ref-many",
        lambda n: "&#1" * n,
        lambda s: text._LONG_DECIMAL_REF.sub(text._shorten_decimal_ref, s),
        100_000,
    ),
    Case("unescape-hashes", lambda n: "&#" * n, html.unescape, 100_000),
    Case(
        "unescape-names", lambda n: ("&" + "a" * 40) * (n // 41), html.unescape, 200_000
    ),
    Case("unescape-hex", lambda n: "&#x" + "f" * n + ";", html.unescape, 100_000),
    Case(
        "space", lambda n: " \t\u3000" * n, lambda s: text._SPACE.sub(" ", s), 100_000
    ),
    Case(
        "opencc",
        lambda n: "飛機藍天環境服務態度" * (n // 10),
        text._TO_SIMPLIFIED.convert,
        100_000,
    ),
    Case("normalise-breaks", lambda n: "<br" * n, text.normalise_text, 50_000),
    Case("normalise-refs", lambda n: "&#1" * n, text.normalise_text, 50_000),
    Case(
        "normalise-mixed",
        lambda n: "<b>環境</b>&amp;<br " * (n // 16),
        text.normalise_text,
        50_000,
    ),
    # Keyword and topic matching.
    Case("topic-match", lambda n: "a" * n, _MATCHER.match, 200_000),
    Case(
        "filter-keywords",
        lambda n: ["x" * 40_000] * n,
        lambda words: filter_keywords(words, 5),
        2_000,
    ),
    # snownlp's segmenter, sentiment and TextRank (FastSnowNLP).
    Case(
        "segment-one-run",
        lambda n: "好" * n,
        lambda s: _scorer().segment_many([s]),
        2_000,
    ),
    Case("analyse-cjk", _random_cjk, lambda s: _scorer().analyse_many([s], 10), 2_000),
    Case(
        "analyse-latin-words",
        lambda n: " ".join(f"w{i}" for i in range(n)),
        lambda s: _scorer().analyse_many([s], 10),
        2_000,
    ),
    Case(
        "analyse-sentences",
        lambda n: "好。\n" * n,
        lambda s: _scorer().analyse_many([s], 10),
        2_000,
    ),
    # The ingestion boundary.
    Case(
        "parse-control-text",
        lambda n: _post_with_text("\x01" * n),
        _parse_quietly,
        20_000,
    ),
    Case("parse-meta-list", _post_with_meta_list, _parse_quietly, 20_000),
]


def _seconds(run: Callable[[Any], Any], arg: Any, loops: int) -> float:
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(loops):
            run(arg)
        return time.perf_counter() - started
    finally:
        gc.enable()


def calibrated_loops(case: Case) -> int:
    """Return how many calls at n take about TARGET_SECONDS (at least one).

    Repeating calls, rather than growing n, keeps inputs small enough that
    cache and allocator effects of huge strings do not blur the ratio.
    """
    arg = case.build(case.n)
    loops = 1
    while loops < 4096 and _seconds(case.run, arg, loops) < TARGET_SECONDS:
        loops *= 2
    return loops


def timings(case: Case, loops: int) -> tuple[float, float]:
    """Return (min time at n, min time at 2n) over REPEAT interleaved runs."""
    small, large = case.build(case.n), case.build(2 * case.n)
    at_n, at_2n = [], []
    for _ in range(REPEAT):
        at_n.append(_seconds(case.run, small, loops))
        at_2n.append(_seconds(case.run, large, loops))
    return min(at_n), min(at_2n)


@pytest.mark.parametrize("case", WORST_CASES, ids=[case.name for case in WORST_CASES])
def test_worst_input_runs_in_linear_time(case: Case) -> None:
    _scorer()  # the models load once, outside any timing
    loops = calibrated_loops(case)
    ratios = []
    for _ in range(3):
        at_n, at_2n = timings(case, loops)
        ratios.append(at_2n / at_n)
        if ratios[-1] < MAX_RATIO:
            break
    assert ratios[-1] < MAX_RATIO, (
        f"{case.name}: time(2n)/time(n) = {ratios} at n={case.n:,} "
        f"({at_n * 1000 / loops:.2f} ms per call at n)"
    )
