"""End-to-end throughput and published->indexed latency through the local servers.

Starts its own noida-db and one ``monitor worker`` process, then:
1. latency: sends N posts at a steady rate with ``published_at`` = send time and
   reads each document's ``indexed_at`` back (p50/p99 of indexed_at - published_at);
2. throughput: sends M posts at once and times until all are indexed.
Prints one JSON object. Usage: python benchmarks/bench_pipeline.py [--posts N] ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from elasticsearch import Elasticsearch

from monitor.embedded import EmbeddedServers, free_port
from monitor.kafka import prepare_topics
from monitor.publisher import PostPublisher, RateLimiter
from monitor.records import parse_post
from monitor.settings import Settings
from monitor.sources.files import read_posts

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def send(
    settings: Settings, texts: list[str], prefix: str, rate: float | None
) -> float:
    publisher = PostPublisher(str(settings.kafka_url), settings.topic_posts)
    await publisher.start()
    limiter = RateLimiter(rate)
    started = time.perf_counter()
    try:
        for number, text in enumerate(texts):
            await limiter.wait()
            await publisher.publish(
                parse_post(
                    {
                        "id": f"{prefix}-{number}",
                        "text": text,
                        "source": "bench",
                        "published_at": datetime.now(UTC).isoformat(),
                    }
                )
            )
    finally:
        await publisher.close()
    return started


def wait_indexed(es: Elasticsearch, pattern: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        es.indices.refresh(index=pattern, allow_no_indices=True)
        if es.count(index=pattern, allow_no_indices=True)["count"] >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"not all {count} posts indexed within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--posts", type=int, default=1000, help="posts for the latency run"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="posts/s for the latency run"
    )
    parser.add_argument(
        "--burst", type=int, default=5000, help="posts for the throughput run"
    )
    args = parser.parse_args()

    texts = [
        line.post.text
        for line in read_posts(ROOT / "samples" / "feed.jsonl")
        if line.post is not None
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedServers(Path(tmp), attach=False) as addr,
    ):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env.update(
            MONITOR_KAFKA_URL=addr.kafka_url,
            MONITOR_ES_URL=addr.es_url,
            MONITOR_DATA_DIR=str(Path(tmp) / "data"),
            MONITOR_WEB_PORT=str(port),
            MONITOR_LOG_LEVEL="warning",
        )
        settings = Settings.load(env=env)
        asyncio.run(prepare_topics(settings))
        with (Path(tmp) / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "monitor", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        es = Elasticsearch(addr.es_url, request_timeout=60)
        pattern = f"{settings.index_prefix}-posts-*"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/metrics", timeout=1
                    )
                    break
                except OSError:
                    if time.monotonic() > deadline or worker.poll() is not None:
                        raise SystemExit("worker did not start") from None
                    time.sleep(0.3)
            # 1. latency at a steady rate
            asyncio.run(send(settings, texts[: args.posts], "lat", args.rate))
            wait_indexed(es, pattern, args.posts, timeout=600)
            hits = es.search(
                index=pattern,
                size=args.posts,
                query={"prefix": {"post_id": "lat-"}},
                source=["published_at", "indexed_at"],
            )["hits"]["hits"]
            latencies = [
                (
                    datetime.fromisoformat(h["_source"]["indexed_at"])
                    - datetime.fromisoformat(h["_source"]["published_at"])
                ).total_seconds()
                for h in hits
            ]
            # 2. throughput of a burst
            burst = [texts[(args.posts + i) % len(texts)] for i in range(args.burst)]
            started = asyncio.run(send(settings, burst, "thr", None))
            wait_indexed(es, pattern, args.posts + len(burst), timeout=1800)
            elapsed = time.perf_counter() - started
        finally:
            worker.terminate()
            worker.wait(30)
            es.close()
    print(
        json.dumps(
            {
                "benchmark": "pipeline_end_to_end",
                "machine": f"{platform.machine()} {platform.python_version()}, "
                "shared 2-core box, "
                "servers, worker and load on the same cores",
                "workers": 1,
                "latency_run": {
                    "posts": len(latencies),
                    "rate_posts_per_second": args.rate,
                    "published_to_indexed_seconds": {
                        "p50": round(statistics.median(latencies), 3),
                        "p99": round(percentile(latencies, 99), 3),
                        "max": round(max(latencies), 3),
                    },
                },
                "throughput_run": {
                    "posts": len(burst),
                    "seconds": round(elapsed, 2),
                    "posts_per_second": round(len(burst) / elapsed, 1),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
