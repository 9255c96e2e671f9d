"""Alert latency: from the close of a window that crosses a rule to the ticket
being indexed and its first notification delivered, through the local servers.

Starts its own noida-db, local channel receivers and one ``monitor worker``
with ``examples/rules.yaml``, replays the sample feed, and for every ticket
notification (opened / escalated / reopened) the webhook receiver gets,
measures ``received - closed_at``, where ``closed_at`` is when the merge stage
completed the window (read from the ``triggers`` topic). The ticket is saved
(refresh=true) before its notification is sent, so this bounds both. Repeats
``--runs`` times with fresh servers; prints one JSON object.
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
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from monitor.local.embedded import EmbeddedServers, free_port
from monitor.local.receivers import LocalReceivers
from monitor.records import TriggerEvent
from monitor.topics import bootstrap_servers

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def closed_times(kafka_url: str, topic: str) -> dict[tuple[str, float], float]:
    """(fingerprint, window start) -> wall time the window was completed."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(kafka_url),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found = {}
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        for messages in batches.values():
            for message in messages:
                event = TriggerEvent.decode(message.value)
                start = event.trigger.window_start.timestamp()
                key = (message.key.decode(), start)
                assert event.closed_at is not None
                found[key] = event.closed_at.timestamp()
    finally:
        await consumer.stop()
    return found


def one_run(rate: float) -> list[float]:
    received: list[tuple[float, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        receivers = LocalReceivers(
            on_delivery=lambda item: (
                received.append((time.time(), item.body))
                if item.channel == "webhook"
                else None
            )
        ).start()
        with EmbeddedServers(data / "servers") as addresses:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")},
                **receivers.env(),
                "MONITOR_KAFKA_URL": addresses.kafka_url,
                "MONITOR_ES_URL": addresses.es_url,
                "MONITOR_DATA_DIR": str(data / "worker"),
                "MONITOR_WEB_PORT": str(free_port()),
                "MONITOR_RULES": str(ROOT / "examples" / "rules.yaml"),
                "MONITOR_IDLE_CLOSE_SECONDS": "3",
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
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "monitor",
                        "replay",
                        str(ROOT / "samples" / "feed.jsonl"),
                        "--rate",
                        str(rate),
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                time.sleep(15)  # the last windows close on the idle timeout
                closed = asyncio.run(closed_times(addresses.kafka_url, "triggers"))
            finally:
                worker.terminate()
                worker.wait(60)
                log.close()
        receivers.stop()
    latencies = []
    seen = set()
    for at, body in received:
        ticket = body.get("ticket") or {}
        # The notification is about the window it last saw.
        history = ticket.get("history") or []
        if not history:
            continue
        window = datetime.fromisoformat(history[-1]["window_start"]).timestamp()
        key = (ticket["fingerprint"], window)
        if key in closed and (key, body["kind"]) not in seen:
            seen.add((key, body["kind"]))
            latencies.append(at - closed[key])
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300.0)
    args = parser.parse_args()
    runs = [one_run(args.rate) for _ in range(args.runs)]
    everything = [value for run in runs for value in run]
    print(
        json.dumps(
            {
                "benchmark": "alert_latency",
                "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                "rate_posts_per_s": args.rate,
                "notifications": len(everything),
                "p50_seconds": round(percentile(everything, 50), 3),
                "p99_seconds": round(percentile(everything, 99), 3),
                "max_seconds": round(max(everything), 3),
                "per_run_p50": [round(statistics.median(run), 3) for run in runs],
                "per_run_p99": [round(percentile(run, 99), 3) for run in runs],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
