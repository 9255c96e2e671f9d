"""End-to-end throughput, latency and memory through the local servers.

For each worker count (``--workers 1 2``) it starts its own noida-db, creates
the topics (``--partitions``, at least the workers) and runs that many
``monitor worker`` processes (each its own instance id and web port), then,
``--runs`` times:

1. latency: posts at a steady rate (each of ``--rates``) with ``published_at``
   = send time; p50/p99 of ``indexed_at - published_at`` read back from
   Elasticsearch;
2. throughput: ``--burst`` posts sent as fast as the producer goes; posts/s
   from the first send until the last is indexed, and the CPU each post
   cost the workers (their process trees) and noida-db;
3. latency at ``--capacity-fraction`` (0.8) of the posts/s just measured.

Texts are distinct (two posts of the sample feed joined), so the score cache
does not flatter the figures. Each run's posts are deleted after it, so every
run starts on an empty index (noida-db slows as an index grows). With
``--memory-posts N`` it then sends N posts in ten chunks and samples the
workers' RSS after each chunk is indexed (deleting the indexed posts between
chunks, see :func:`memory_run`).

Prints one JSON object: medians over the runs, every run, and the machine.
Usage: python benchmarks/bench_pipeline.py [--workers 1 2] [--runs 3] ...
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from monitor.local.embedded import EmbeddedServers, free_port
from monitor.settings import Settings
from monitor.sources.publisher import PostPublisher, RateLimiter
from monitor.topics import prepare_topics

ROOT = Path(__file__).resolve().parents[1]
FEED = ROOT / "samples" / "feed.jsonl"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def distinct_texts(count: int) -> Iterator[str]:
    """Yield ``count`` distinct texts: pairs of sample-feed texts joined."""
    texts = sorted({json.loads(line)["text"] for line in FEED.open(encoding="utf-8")})
    n = len(texts)
    for number in range(count):
        first, second = divmod(number, n)
        yield f"{texts[first % n]}，{texts[(first + second + 1) % n]}"


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (so far)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime and stime are fields 14 and 15 of stat(5); [0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Stack:
    """noida-db plus N workers, isolated in a temporary directory."""

    workers: int
    partitions: int
    tmp: Path
    #: settings for the workers (``--worker-env``), e.g. to compare two values
    worker_env: dict[str, str] = field(default_factory=dict)
    settings: Settings = field(init=False)
    env: dict[str, str] = field(init=False)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    es: Elasticsearch = field(init=False)
    texts: Iterator[str] = field(init=False)
    sent: int = 0
    server_pid: int = 0

    def start(self, addr: Any) -> None:
        """Create topics and start the workers; wait until posts flow."""
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        self.env.update(
            MONITOR_KAFKA_URL=addr.kafka_url,
            MONITOR_ES_URL=addr.es_url,
            MONITOR_DATA_DIR=str(self.tmp / "data"),
            MONITOR_LOG_LEVEL="warning",
            MONITOR_TOPIC_PARTITIONS=str(self.partitions),
        )
        self.env.update(self.worker_env)
        self.settings = Settings.load(env=self.env)
        asyncio.run(prepare_topics(self.settings))
        self.es = Elasticsearch(addr.es_url, request_timeout=120)
        self.texts = distinct_texts(10_000_000)
        for number in range(self.workers):
            port = free_port()
            env = dict(
                self.env,
                MONITOR_WEB_PORT=str(port),
                MONITOR_INSTANCE_ID=f"bench-worker-{number}",
            )
            with (self.tmp / f"worker-{number}.log").open("ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "monitor", "worker"],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            self.ports.append(port)
        for process, port in zip(self.processes, self.ports, strict=True):
            self._wait_for_web(process, port)
        # Every worker has its partitions once a warm-up batch comes through.
        self.send(200, "warmup", rate=None)
        self.wait_indexed("warmup", 200, timeout=300)

    def _wait_for_web(self, process: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)
                return
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(
                        f"worker did not start; see {self.tmp}/worker-*.log"
                    ) from None
                time.sleep(0.3)

    def stop(self) -> None:
        """Stop the workers (SIGTERM, then wait)."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.es.close()

    def send(self, count: int, prefix: str, rate: float | None) -> float:
        """Send ``count`` posts (ids ``<prefix>-<n>``); return the start time."""
        payloads = [next(self.texts) for _ in range(count)]
        self.sent += count
        return asyncio.run(self._send(payloads, prefix, rate))

    async def _send(self, texts: list[str], prefix: str, rate: float | None) -> float:
        publisher = PostPublisher(
            str(self.settings.kafka_url), self.settings.topic_posts
        )
        await publisher.start()
        limiter = RateLimiter(rate)
        started = time.perf_counter()
        try:
            for number, text in enumerate(texts):
                await limiter.wait()
                post_id = f"{prefix}-{number}"
                await publisher.publish_raw(
                    orjson.dumps(
                        {
                            "id": post_id,
                            "text": text,
                            "source": "bench",
                            "published_at": datetime.now(UTC).isoformat(),
                        }
                    ),
                    key=post_id.encode(),
                )
                if number % 2000 == 1999:
                    await publisher.flush()
        finally:
            await publisher.close()
        return started

    def indexed(self, prefix: str | None) -> int:
        """Posts of a run (all posts if None) that are searchable.

        No explicit refresh (the index template refreshes every second): a
        refresh per poll made noida-db slower and slower as the index grew.
        """
        query = {"prefix": {"post_id": f"{prefix}-"}} if prefix else None
        return int(
            self.es.count(
                index=f"{self.settings.index_prefix}-posts-*",
                query=query,
                allow_no_indices=True,
            )["count"]
        )

    def wait_indexed(
        self, prefix: str | None, count: int, timeout: float, every: float = 0.5
    ) -> None:
        """Block until ``count`` posts of a run (all posts if None) are indexed."""
        deadline = time.monotonic() + timeout
        while self.indexed(prefix) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"{prefix}: not all {count} indexed in {timeout} s")
            time.sleep(every)

    def latencies(self, prefix: str, count: int) -> list[float]:
        """published -> indexed seconds of every post of a run."""
        hits = self.es.search(
            index=f"{self.settings.index_prefix}-posts-*",
            size=count,
            query={"prefix": {"post_id": f"{prefix}-"}},
            source=["published_at", "indexed_at"],
        )["hits"]["hits"]
        return [
            (
                datetime.fromisoformat(h["_source"]["indexed_at"])
                - datetime.fromisoformat(h["_source"]["published_at"])
            ).total_seconds()
            for h in hits
        ]

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by the workers (together) and by noida-db."""
        return {
            "workers": sum(
                cpu_seconds(pid)
                for process in self.processes
                for pid in process_tree(process.pid)
            ),
            "noida-db": cpu_seconds(self.server_pid),
        }

    def rss(self) -> list[float]:
        """RSS of each worker (with any processes it started), MiB."""
        return [
            round(sum(rss_mb(pid) for pid in process_tree(p.pid)), 1)
            for p in self.processes
        ]


@contextmanager
def running_stack(
    workers: int, partitions: int, worker_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """A fresh noida-db with ``workers`` workers, stopped afterwards."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = EmbeddedServers(tmp / "noida", attach=False)
        addr = stack.enter_context(server)
        bench = Stack(workers, partitions, tmp, dict(worker_env or {}))
        assert server.process is not None
        bench.server_pid = server.process.pid
        try:
            bench.start(addr)
            yield bench
        finally:
            bench.stop()


def latency_run(
    bench: Stack, prefix: str, rate: float, seconds: float
) -> dict[str, Any]:
    """Posts at ``rate`` for ``seconds`` (at most 10,000); published -> indexed."""
    count = int(min(rate * seconds, 10_000))
    bench.send(count, prefix, rate)
    bench.wait_indexed(prefix, count, timeout=1800)
    values = bench.latencies(prefix, count)
    return {
        "rate": round(rate, 1),
        "posts": len(values),
        "p50": round(statistics.median(values), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }


def one_run(
    bench: Stack,
    run: int,
    rates: list[float],
    seconds: float,
    burst: int,
    capacity_fraction: float = 0.0,
) -> dict[str, Any]:
    """Latency at each rate, a burst, then latency at a fraction of its rate."""
    result: dict[str, Any] = {"latency": {}}
    for rate in rates:
        result["latency"][str(int(rate))] = latency_run(
            bench, f"lat{run}r{int(rate)}", rate, seconds
        )
    prefix = f"thr{run}"
    cpu_before = bench.cpu()
    started = bench.send(burst, prefix, None)
    sent = time.perf_counter() - started
    bench.wait_indexed(prefix, burst, timeout=3600)
    elapsed = time.perf_counter() - started
    cpu_after = bench.cpu()
    result["throughput"] = {
        "posts": burst,
        "send_seconds": round(sent, 2),
        "seconds": round(elapsed, 2),
        "posts_per_second": round(burst / elapsed, 1),
        # What one post costs each side: the capacity per core of a worker
        # whose servers run elsewhere, and of the local server.
        "cpu_us_per_post": {
            name: round((cpu_after[name] - cpu_before[name]) / burst * 1e6, 1)
            for name in cpu_before
        },
    }
    if capacity_fraction:
        # The load a deployment should plan for: a share of what this run
        # just measured the stack to take.
        result["latency"]["capacity"] = latency_run(
            bench, f"cap{run}", capacity_fraction * burst / elapsed, seconds
        )
    result["worker_rss_mb"] = bench.rss()
    # noida-db slows as its index grows (a third run found it several times
    # slower than the first): each run starts on an empty posts index.
    drop_indices(bench.es, f"{bench.settings.index_prefix}-posts-*")
    return result


def drop_indices(es: Elasticsearch, pattern: str) -> None:
    """Delete the indices ``pattern`` matches, by name (no wildcard deletes)."""
    for name in es.indices.get(index=pattern, allow_no_indices=True):
        es.indices.delete(index=name)


def memory_run(bench: Stack, posts: int) -> list[dict[str, Any]]:
    """Send ``posts`` in ten chunks; RSS of each worker after each chunk.

    noida-db slows as its index grows (about 310 posts/s past 400,000
    documents), which would make a long run measure the server. So once a
    chunk is all indexed, its posts' indices are deleted: the workers still
    score, count and index every post, the server stays as fast as at the
    start. Only this run does that; throughput and latency never do.
    """
    samples = [{"posts": bench.sent, "worker_rss_mb": bench.rss()}]
    chunk = posts // 10
    pattern = f"{bench.settings.index_prefix}-posts-*"
    # Each chunk is then alone in the index: counting all is cheap, a prefix
    # query over a large index is not.
    drop_indices(bench.es, pattern)
    for number in range(10):
        started = time.perf_counter()
        bench.send(chunk, f"mem{number}", None)
        bench.wait_indexed(None, chunk, timeout=7200, every=2.0)
        elapsed = time.perf_counter() - started
        drop_indices(bench.es, pattern)
        samples.append(
            {
                "posts": bench.sent,
                "posts_per_second": round(chunk / elapsed, 1),
                "worker_rss_mb": bench.rss(),
            }
        )
        print(json.dumps(samples[-1]), file=sys.stderr)
    return samples


def median_of(runs: list[dict[str, Any]], *path: str) -> float:
    """Median of one figure over the runs."""
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(value)
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--rates",
        type=float,
        nargs="*",
        default=[200.0, 2000.0],
        help="posts/s of the latency runs (none: throughput only)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=10.0,
        help="length of each latency run (at most 10,000 posts)",
    )
    parser.add_argument("--burst", type=int, default=20_000)
    parser.add_argument(
        "--capacity-fraction",
        type=float,
        default=0.8,
        help="after each burst, a latency run at this fraction of its posts/s "
        "(0: none)",
    )
    parser.add_argument(
        "--memory-posts",
        type=int,
        default=0,
        help="then send this many posts and sample RSS (with the last worker count)",
    )
    parser.add_argument(
        "--worker-env",
        nargs="*",
        default=[],
        metavar="MONITOR_X=VALUE",
        help="settings for the workers, e.g. MONITOR_PUBLISH_SCORED_POSTS=false",
    )
    args = parser.parse_args()
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    if any(not key.startswith("MONITOR_") for key in worker_env):
        parser.error("--worker-env takes MONITOR_* settings")
    if any(workers > args.partitions for workers in args.workers):
        parser.error("--partitions must be at least the number of workers")

    report: dict[str, Any] = {
        "benchmark": "pipeline_end_to_end",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; noida-db, the workers and the load "
        "generator share the cores",
        "partitions": args.partitions,
        "worker_env": worker_env,
        "texts": "distinct: two sample-feed posts joined (about 100 characters)",
        "workers": {},
    }
    for index, workers in enumerate(args.workers):
        with running_stack(workers, args.partitions, worker_env) as bench:
            runs = []
            for run in range(args.runs):
                runs.append(
                    one_run(
                        bench,
                        run,
                        args.rates,
                        args.latency_seconds,
                        args.burst,
                        args.capacity_fraction,
                    )
                )
                # Progress on stderr, so a cut-short run still has its figures.
                print(json.dumps({"workers": workers, **runs[-1]}), file=sys.stderr)
            summary: dict[str, Any] = {
                "throughput_posts_per_second": median_of(
                    runs, "throughput", "posts_per_second"
                ),
                "cpu_us_per_post": {
                    side: median_of(runs, "throughput", "cpu_us_per_post", side)
                    for side in runs[0]["throughput"]["cpu_us_per_post"]
                },
                "latency_seconds": {
                    rate: {
                        "rate": median_of(runs, "latency", rate, "rate"),
                        "p50": median_of(runs, "latency", rate, "p50"),
                        "p99": median_of(runs, "latency", rate, "p99"),
                    }
                    for rate in runs[0]["latency"]
                },
                "runs": runs,
            }
            if args.memory_posts and index == len(args.workers) - 1:
                summary["memory"] = memory_run(bench, args.memory_posts)
            report["workers"][str(workers)] = summary
    if len(args.workers) > 1:
        first, last = (str(w) for w in (args.workers[0], args.workers[-1]))
        report["throughput_ratio"] = round(
            report["workers"][last]["throughput_posts_per_second"]
            / report["workers"][first]["throughput_posts_per_second"],
            2,
        )
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
