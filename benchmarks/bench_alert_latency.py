"""Alert latency: from the post that crosses a rule to its first notice.

Starts its own noida-db, the local channel receivers and one ``monitor
worker``, sends a steady background of posts (``published_at`` = now) at
``--rate`` posts/s and, spread over the run, ``--incidents`` short incidents,
each on a topic of its own with a ``negative_volume`` rule of ``--threshold``
posts (:mod:`monitor.local.liveload`). For each incident it measures the
seconds from the moment its crossing post was sent to ``posts`` (the record's
timestamp) to the moment the local webhook received the incident's first
notice (the receiver answers 2xx). Repeats ``--runs`` times with fresh
servers; prints one JSON object. The issue's target: p99 <= 3 s at 200
posts/s with one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from monitor.local.embedded import EmbeddedServers, free_port
from monitor.local.liveload import drive, rules_yaml
from monitor.local.receivers import LocalReceivers


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def wait_ready(port: int, timeout: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the worker did not start")


def one_run(args: argparse.Namespace) -> dict:
    first: dict[str, float] = {}

    def delivered(item) -> None:  # noqa: ANN001 - the receivers' record
        if item.channel != "webhook":
            return
        ticket = (item.body or {}).get("ticket") or {}
        topic = ticket.get("topic")
        if topic and topic not in first:
            first[topic] = time.time()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        rules = data / "rules.yaml"
        rules.write_text(rules_yaml(args.incidents, args.threshold), "utf-8")
        receivers = LocalReceivers(on_delivery=delivered).start()
        with EmbeddedServers(data / "servers") as addresses:
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")},
                **receivers.env(),
                "MONITOR_KAFKA_URL": addresses.kafka_url,
                "MONITOR_ES_URL": addresses.es_url,
                "MONITOR_DATA_DIR": str(data / "worker"),
                "MONITOR_WEB_PORT": str(port),
                "MONITOR_RULES": str(rules),
                "MONITOR_API_TOKENS": "b:viewer:" + hashlib.sha256(b"b").hexdigest(),
            }
            log = (data / "worker.log").open("wb")
            worker = subprocess.Popen(
                [sys.executable, "-m", "monitor", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_ready(port)
                time.sleep(3)  # partitions assigned, state restored
                load = asyncio.run(
                    drive(
                        addresses.kafka_url,
                        "posts",
                        rate=args.rate,
                        seconds=args.seconds,
                        incidents=args.incidents,
                        threshold=args.threshold,
                    )
                )
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and len(first) < len(load.crossed_at):
                    time.sleep(0.2)
            finally:
                worker.terminate()
                worker.wait(60)
                log.close()
        receivers.stop()
    latencies = [
        first[topic] - crossed
        for topic, crossed in load.crossed_at.items()
        if topic in first
    ]
    return {
        "latencies": latencies,
        "missed": sorted(set(load.crossed_at) - set(first)),
        "rate": load.rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--incidents", type=int, default=20)
    parser.add_argument("--threshold", type=int, default=5)
    args = parser.parse_args()
    runs = [one_run(args) for _ in range(args.runs)]
    everything = [value for run in runs for value in run["latencies"]]
    print(
        json.dumps(
            {
                "benchmark": "alert_latency",
                "measures": "crossing post sent to posts -> first notice received",
                "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                "rate_posts_per_s": args.rate,
                "rate_reached": [round(run["rate"], 1) for run in runs],
                "incidents": args.incidents * args.runs,
                "notified": len(everything),
                "missed": [run["missed"] for run in runs],
                "p50_seconds": round(percentile(everything, 50), 3),
                "p99_seconds": round(percentile(everything, 99), 3),
                "max_seconds": round(max(everything), 3),
                "per_run_p50": [
                    round(statistics.median(run["latencies"]), 3) for run in runs
                ],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
