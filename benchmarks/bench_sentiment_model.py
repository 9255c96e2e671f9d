"""Texts per second: a trained sentiment model against snownlp's own (fast path).

Run: ``python benchmarks/bench_sentiment_model.py [--model MODEL] [--runs R]
[--texts FILE.jsonl|FILE.csv ...]``. Prints one JSON object.

Both go through :class:`~monitor.analysis.sentiment.model.SentimentModel`
as the score stage does, on the same distinct texts, in the same run,
interleaved (median of ``--runs``):

- ``stock``: snownlp's own model on the fast path (``FastSnowNLP``), the
  default of the worker today;
- ``trained``: the model ``--model`` names (default: one trained on
  tests/data/sentiment_train.csv into a temporary directory; a full-size
  model, ~295,000 features, is slower by the cache misses of its larger
  hash index: pass one to measure what the worker runs).

For each: ``positive_probabilities`` (sentiment only) and ``score_many``
(sentiment and 5 keywords, the worker's path). ``ratio`` is trained
texts/s over stock texts/s (>= 1: the trained model is as fast or faster).
Texts: ``samples/feed.jsonl`` by default (the demo feed's posts).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.analysis.sentiment.model import SentimentModel  # noqa: E402
from monitor.analysis.text import normalise_text  # noqa: E402
from monitor.config.models import load_sentiment_model  # noqa: E402


def read_texts(paths: Sequence[Path], limit: int) -> list[str]:
    texts: list[str] = []
    for path in paths:
        if path.suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as f:
                texts.extend(row["text"] for row in csv.DictReader(f))
        else:
            with path.open(encoding="utf-8") as f:
                texts.extend(json.loads(line)["text"] for line in f if line.strip())
    distinct = list(dict.fromkeys(t for t in map(normalise_text, texts) if t))
    return distinct[:limit]


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument(
        "--texts", type=Path, nargs="*", default=[ROOT / "samples" / "feed.jsonl"]
    )
    args = parser.parse_args()
    texts = read_texts(args.texts, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        name = args.model
        if name is None:
            from monitor.cli.train import train_sentiment

            name = Path(tmp) / "bench"
            train_sentiment([ROOT / "tests" / "data" / "sentiment_train.csv"], name)
        trained = load_sentiment_model(name)
        stock = SentimentModel()
        stock.positive_probabilities(texts[:50])  # warm both
        trained.positive_probabilities(texts[:50])
        calls = {
            "stock_sentiment": lambda: stock.positive_probabilities(texts),
            "trained_sentiment": lambda: trained.positive_probabilities(texts),
            "stock_score_many": lambda: stock.score_many(texts, 5),
            "trained_score_many": lambda: trained.score_many(texts, 5),
        }
        seconds: dict[str, list[float]] = {key: [] for key in calls}
        for _ in range(args.runs):
            for key, call in calls.items():
                seconds[key].append(timed(call))
        rate = {k: len(texts) / statistics.median(v) for k, v in seconds.items()}
        print(
            json.dumps(
                {
                    "texts": len(texts),
                    "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
                    "runs": args.runs,
                    "model": trained.model_id,
                    "features": getattr(
                        getattr(trained.classifier, "model", None),
                        "feature_count",
                        None,
                    ),
                    "texts_per_second": {k: round(v) for k, v in rate.items()},
                    "ratio_sentiment": round(
                        rate["trained_sentiment"] / rate["stock_sentiment"], 3
                    ),
                    "ratio_score_many": round(
                        rate["trained_score_many"] / rate["stock_score_many"], 3
                    ),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
