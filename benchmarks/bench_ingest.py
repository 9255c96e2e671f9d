"""Webhook push: posts/s one ``/ingest/{source}`` endpoint accepts into Kafka.

Starts its own noida-db and an aiohttp server with one webhook source (as the
worker mounts it), then sends signed requests of ``--batch`` posts one after
another over one keep-alive connection; each 202 comes after Kafka's
acknowledgement. The baseline, in the same process, is the unsigned
:class:`PostPublisher` alone sending the same batches (publish + flush per
batch): the cost of the Kafka round trip the webhook cannot avoid. Median of
``--runs`` runs; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from monitor.local.embedded import EmbeddedServers, free_port
from monitor.records import parse_post
from monitor.sources.publisher import PostPublisher
from monitor.web.ingest import KafkaPublish, WebhookEndpoint, ingest_app, sign

SECRET = b"bench-secret"


def make_batches(batch: int, posts: int, prefix: str) -> list[list[dict[str, Any]]]:
    documents = [
        {
            "id": f"{prefix}-{n}",
            "text": f"商场空调坏了，热得不行 {n}",
            "published_at": "2026-11-20T09:00:00+08:00",
            "author": f"user{n % 300}",
        }
        for n in range(posts)
    ]
    return [documents[i : i + batch] for i in range(0, posts, batch)]


async def webhook_run(kafka_url: str, batch: int, posts: int) -> float:
    publish = KafkaPublish(kafka_url, f"bench-{uuid.uuid4().hex[:8]}")
    root = web.Application()
    endpoint = WebhookEndpoint("bench", SECRET, 8 * 1024 * 1024)
    root.add_subapp("/ingest", ingest_app({"bench": endpoint}, publish))
    runner = web.AppRunner(root)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    bodies = [
        json.dumps(b, ensure_ascii=False).encode()
        for b in make_batches(batch, posts, uuid.uuid4().hex[:6])
    ]
    url = f"http://127.0.0.1:{port}/ingest/bench"
    try:
        await publish.connect()
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            for body in bodies:
                stamp = int(time.time())
                headers = {
                    "Content-Type": "application/json",
                    "X-Monitor-Timestamp": str(stamp),
                    "X-Monitor-Signature": sign(SECRET, stamp, body),
                }
                async with session.post(url, data=body, headers=headers) as response:
                    if response.status != 202:
                        raise RuntimeError(await response.text())
                    await response.read()
            elapsed = time.perf_counter() - started
    finally:
        await runner.cleanup()
        await publish.close()
    return posts / elapsed


async def publisher_run(kafka_url: str, batch: int, posts: int) -> float:
    publisher = PostPublisher(kafka_url, f"bench-{uuid.uuid4().hex[:8]}", linger_ms=0)
    await publisher.start()
    batches = [
        [parse_post(d) for d in b]
        for b in make_batches(batch, posts, uuid.uuid4().hex[:6])
    ]
    try:
        started = time.perf_counter()
        for group in batches:
            for post in group:
                await publisher.publish(post)
            await publisher.flush()
        elapsed = time.perf_counter() - started
    finally:
        await publisher.close()
    return posts / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--posts", type=int, default=2000, help="posts per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "posts_per_run": args.posts,
        "runs": args.runs,
    }
    with tempfile.TemporaryDirectory() as tmp:
        with EmbeddedServers(Path(tmp), attach=False) as addresses:
            for batch in args.batches:
                posts = args.posts if batch > 1 else max(200, args.posts // 4)
                hook, base = [], []
                for _ in range(args.runs):
                    hook.append(
                        asyncio.run(webhook_run(addresses.kafka_url, batch, posts))
                    )
                    base.append(
                        asyncio.run(publisher_run(addresses.kafka_url, batch, posts))
                    )
                webhook_median = statistics.median(hook)
                baseline_median = statistics.median(base)
                results[f"batch_{batch}"] = {
                    "posts": posts,
                    "webhook_posts_per_s": round(webhook_median, 1),
                    "publisher_posts_per_s": round(baseline_median, 1),
                    "ratio": round(webhook_median / baseline_median, 3),
                }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
