"""TextRank keywords alone: the batched numpy ranking against the previous one.

Run: ``python benchmarks/bench_keywords.py [--texts N] [--runs R] [--batch B ...]
[--stock]``. Prints one JSON object.

Texts are the first ``--texts`` distinct texts of ``samples/feed.jsonl``
(3,000), segmented once with snownlp's models and cut into the stop-word-free
sentences ``SnowNLP.keywords`` ranks; only the ranking is timed, at each
batch size of ``--batch`` (100, as ``score_batch_size``, and all texts in
one call), with ``limit=20`` (the score stage asks for twice its 10):

- ``previous``: the implementation this one replaced, kept below: Python
  sets built word by word, then the iterations in numpy;
- ``vectorised``: :func:`monitor.analysis.sentiment.keywords.rank_keywords`;
- with ``--stock``, ``stock``: ``KeywordTextRank(docs)`` per text (one run).

Each figure is the median of ``--runs`` runs (default 7), the two
implementations interleaved so that load from other processes hits both
alike; wall and CPU (``time.process_time``) time per text are both given.
``identical`` says whether both returned the same keywords in the same order.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from monitor.analysis.sentiment.keywords import rank_keywords, sentence_words
from monitor.config.models import load_scorer
from monitor.sources.files import read_posts

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 20

Graphs = Sequence[Sequence[Sequence[str]]]


def _previous_cooccurrence(docs: Sequence[Sequence[str]]) -> dict[str, set[str]]:
    words: dict[str, set[str]] = {}
    for doc in docs:
        que: list[str] = []
        for word in doc:
            if word not in words:
                words[word] = set()
            que.append(word)
            if len(que) > 5:
                del que[0]
            neighbours = words[word]
            for other in que:
                if other != word:
                    words[other].add(word)
                    neighbours.add(other)
    return words


def previous_rank_keywords(graphs: Graphs, limit: int) -> list[list[str]]:
    """The previous ``snowfast._rank_keywords``, unchanged."""
    names: list[str] = []
    graph_ids: list[int] = []
    degrees: list[int] = []
    neighbours: list[int] = []
    for g, docs in enumerate(graphs):
        words = _previous_cooccurrence(docs)
        base = len(names)
        local = {w: base + i for i, w in enumerate(words)}
        names += words
        graph_ids += [g] * len(words)
        for adjacent in words.values():
            degrees.append(len(adjacent))
            neighbours += [local[w] for w in adjacent]
    graph = np.array(graph_ids, dtype=np.int64)
    degree = np.array(degrees, dtype=np.int64)
    adjacency = np.array(neighbours, dtype=np.int64)
    ptr = np.cumsum(degree) - degree
    damping = 0.85
    score = np.ones(len(names))
    order = np.arange(len(names), dtype=np.int64)
    finished = []
    for _ in range(200):
        if not len(order):
            break
        ranked = order[degree[order] > 0]
        ranked = ranked[np.lexsort((score[ranked] / degree[ranked], graph[ranked]))]
        share = damping / degree[ranked] * score[ranked]
        counts = degree[ranked]
        first_edge = np.cumsum(counts) - counts
        edge = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(
            ptr[ranked] - first_edge, counts
        )
        reached = adjacency[edge]
        new = np.zeros(len(names))
        new[reached] = 1 - damping
        np.add.at(new, reached, np.repeat(share, counts))
        first = np.full(len(names), len(reached), dtype=np.int64)
        np.minimum.at(first, reached, np.arange(len(reached), dtype=np.int64))
        touched = np.flatnonzero(first < len(reached))
        next_order = touched[np.argsort(first[touched])]
        was = order[first[order] < len(reached)]
        max_diff = np.zeros(len(graphs))
        np.maximum.at(max_diff, graph[was], np.abs(new[was] - score[was]))
        score[touched] = new[touched]
        done = max_diff[graph[next_order]] <= 0.001
        finished.append(next_order[done])
        order = next_order[~done]
    finished.append(order)
    final = np.concatenate(finished)
    final = final[np.lexsort((-score[final], graph[final]))]
    ranking: list[list[str]] = [[] for _ in graphs]
    for v in final.tolist():
        ranking[graph_ids[v]].append(names[v])
    return [top[:limit] for top in ranking]


def stock_rank_keywords(graphs: Graphs, limit: int) -> list[list[str]]:
    """``KeywordTextRank(docs).top_index(limit)`` per text, as snownlp runs it."""
    from snownlp.summary.textrank import KeywordTextRank

    out = []
    for docs in graphs:
        rank = KeywordTextRank([list(doc) for doc in docs])
        rank.solve()
        out.append(rank.top_index(limit))
    return out


def feed_graphs(count: int) -> list[list[list[str]]]:
    """The first ``count`` distinct texts of the sample feed, ready to rank."""
    texts: dict[str, None] = {}
    for line in read_posts(ROOT / "samples" / "feed.jsonl"):
        if line.post and line.post.text:
            texts[line.post.text] = None
        if len(texts) == count:
            break
    fast = load_scorer()
    stop = fast.stopwords
    return [
        sentence_words(parts, run_words, stop)
        for parts, run_words in fast._tag_batches(list(texts))
    ]


def timed(rank: Callable[[Graphs, int], list[list[str]]], graphs: Graphs, batch: int):  # noqa: ANN201
    wall, cpu = time.perf_counter(), time.process_time()
    out: list[list[str]] = []
    for start in range(0, len(graphs), batch):
        out += rank(graphs[start : start + batch], LIMIT)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--batch", type=int, nargs="*", default=[100, 0])
    parser.add_argument("--stock", action="store_true")
    args = parser.parse_args()

    graphs = feed_graphs(args.texts)
    n = len(graphs)
    variants = {"previous": previous_rank_keywords, "vectorised": rank_keywords}
    result: dict[str, object] = {
        "benchmark": "keywords",
        "machine": f"{platform.machine()} {platform.python_version()}, shared "
        "2-core box: compare ratios, not absolute numbers",
        "texts": n,
        "limit": LIMIT,
        "runs": args.runs,
    }
    identical = True
    for batch in args.batch:
        size = batch or n
        walls: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            outs = {}
            for name, rank in variants.items():
                wall, cpu, outs[name] = timed(rank, graphs, size)
                walls[name].append(wall)
                cpus[name].append(cpu)
            identical &= outs["previous"] == outs["vectorised"]
        wall_us = {k: statistics.median(v) / n * 1e6 for k, v in walls.items()}
        cpu_us = {k: statistics.median(v) / n * 1e6 for k, v in cpus.items()}
        result[f"batch_{size}"] = {
            "wall_us_per_text": {k: round(v, 2) for k, v in wall_us.items()},
            "cpu_us_per_text": {k: round(v, 2) for k, v in cpu_us.items()},
            "wall_ms_all_texts": {k: round(v * n / 1e3, 1) for k, v in wall_us.items()},
            "speedup_wall": round(wall_us["previous"] / wall_us["vectorised"], 2),
            "speedup_cpu": round(cpu_us["previous"] / cpu_us["vectorised"], 2),
        }
    if args.stock:
        wall, cpu, out = timed(stock_rank_keywords, graphs, n)
        identical &= out == rank_keywords(graphs, LIMIT)
        result["stock_one_run"] = {
            "wall_us_per_text": round(wall / n * 1e6, 1),
            "cpu_us_per_text": round(cpu / n * 1e6, 1),
        }
    result["identical"] = identical
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
