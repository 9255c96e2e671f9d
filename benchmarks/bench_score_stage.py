"""Score-stage throughput beside plain ``SnowNLP(text).sentiments`` in the same run.

Prints one JSON object. Texts are the distinct texts of the bundled sample feed.
Usage: python benchmarks/bench_score_stage.py [--posts N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from snownlp import SnowNLP

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.sentiment.model import SentimentModel
from monitor.analysis.text import normalise_text
from monitor.config.watchlist import load_watchlist
from monitor.sources.files import read_posts
from monitor.stages.score import PostScorer

ROOT = Path(__file__).resolve().parents[1]


def timed(function, items) -> float:  # noqa: ANN001
    started = time.perf_counter()
    for item in items:
        function(item)
    return len(items) / (time.perf_counter() - started)


def timed_batches(function, items, size: int) -> float:  # noqa: ANN001
    started = time.perf_counter()
    for start in range(0, len(items), size):
        function(items[start : start + size])
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="as score_batch_size")
    args = parser.parse_args()

    seen: set[str] = set()
    posts = []
    for line in read_posts(ROOT / "samples" / "feed.jsonl"):
        if line.post and normalise_text(line.post.text) and line.post.text not in seen:
            seen.add(line.post.text)
            posts.append(line.post)
        if len(posts) == args.posts:
            break
    texts = [post.text for post in posts]
    model = SentimentModel()
    scorer = PostScorer(
        load_watchlist(ROOT / "samples" / "topics.yaml"), LabelThresholds()
    )

    batch = args.batch
    results: dict[str, list[float]] = {
        "stock_snownlp_sentiments": [],
        "stock_snownlp_sentiments_and_keywords": [],
        "sentiment_only_batched": [],
        "score_stage_batched": [],
    }
    model.positive_probabilities(texts[:10])  # load the models outside the timing
    for _ in range(args.runs):
        results["stock_snownlp_sentiments"].append(
            timed(lambda text: SnowNLP(text).sentiments, texts)
        )
        results["stock_snownlp_sentiments_and_keywords"].append(
            timed(
                lambda text: (SnowNLP(text).sentiments, SnowNLP(text).keywords(10)),
                texts,
            )
        )
        results["sentiment_only_batched"].append(
            timed_batches(
                lambda chunk: model.positive_probabilities(
                    [normalise_text(t) for t in chunk]
                ),
                texts,
                batch,
            )
        )
        results["score_stage_batched"].append(
            timed_batches(scorer.score_many, posts, batch)
        )
    medians = {name: statistics.median(values) for name, values in results.items()}
    baseline = medians["stock_snownlp_sentiments"]
    print(
        json.dumps(
            {
                "benchmark": "score_stage",
                "machine": f"{platform.machine()} {platform.python_version()}, "
                "shared 2-core box: "
                "compare ratios, not absolute numbers",
                "texts": len(texts),
                "mean_text_chars": round(statistics.mean(len(t) for t in texts), 1),
                "runs": args.runs,
                "posts_per_second_median": {k: round(v, 1) for k, v in medians.items()},
                "posts_per_second_runs": {
                    k: [round(x, 1) for x in v] for k, v in results.items()
                },
                "ratio_to_stock": {
                    k: round(v / baseline, 3) for k, v in medians.items()
                },
                "note": "score_stage = normalise, sentiment, label, keywords, topics "
                "in batches of --batch posts, as the score agent runs it",
                "batch": batch,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
