"""``monitor demo``: the whole pipeline on one machine, with the sample feed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from monitor.errors import MonitorError
from monitor.local.embedded import EmbeddedServers, free_port
from monitor.local.receivers import LocalReceivers, Received
from monitor.settings import Settings
from monitor.sinks.elasticsearch.posts import posts_index_pattern
from monitor.sources.replay import replay_file


def run_demo(
    settings: Settings,
    feed: Path,
    *,
    rate: float,
    exit_when_done: bool,
    console: Console,
) -> None:
    """Start servers and a worker, replay ``feed``, report, then wait for Ctrl-C.

    ``console`` prints ticket and post data (escaped with
    :func:`monitor.cli.output.safe_text`); make it with ``emoji=False`` (as
    :data:`monitor.cli.output.out` is) so that ``:codes:`` in posts stay text.
    """
    servers = EmbeddedServers(settings.data_dir) if settings.embedded else None
    worker: subprocess.Popen[bytes] | None = None
    receivers = LocalReceivers(on_delivery=lambda item: _print_delivery(console, item))
    token = secrets.token_urlsafe(18)
    try:
        receivers.start()
        settings = settings.model_copy(
            update={
                "api_tokens": "demo:admin:" + hashlib.sha256(token.encode()).hexdigest()
            }
        )
        if servers is not None:
            addresses = servers.start()
            settings = settings.model_copy(
                update={"kafka_url": addresses.kafka_url, "es_url": addresses.es_url}
            )
        port = (
            settings.web_port
            if _port_free(settings.web_host, settings.web_port)
            else (free_port(settings.web_host))
        )
        settings = settings.model_copy(
            update={
                "web_port": port,
                "console_url": settings.console_url
                or f"http://{settings.web_host}:{port}",
            }
        )
        metrics_url = f"http://{settings.web_host}:{port}/metrics"
        console.print(f"[bold]Kafka[/]          {settings.kafka_url}")
        console.print(
            f"[bold]Elasticsearch[/]  {settings.es_url}  "
            f"(index {posts_index_pattern(settings.index_prefix)})",
            soft_wrap=True,  # never break an address or the token
        )
        console.print(f"[bold]Metrics[/]        {metrics_url}")
        console.print(
            f"[bold]Ticket API[/]     http://{settings.web_host}:{port}/api/tickets"
            f"  (Authorization: Bearer {token})",
            soft_wrap=True,  # never break an address or the token
        )
        console.print(
            f"[bold]Console[/]        http://{settings.web_host}:{port}/console/"
            f"  (sign in with {token})",
            soft_wrap=True,  # never break an address or the token
        )
        console.print(
            f"[bold]Channels[/]       local stand-ins on :{receivers.http_port} (HTTP)"
            f" and :{receivers.smtp_port} (SMTP)"
        )
        worker = _start_worker(settings, receivers.env())
        _wait_for_url(metrics_url, worker, timeout=60)
        console.print(
            f"worker up (pid {worker.pid}); replaying {feed} at {rate:.0f} posts/s"
        )
        summary = asyncio.run(replay_file(settings, feed, rate=rate, progress=True))
        console.print(f"sent {summary.sent} posts, rejected {len(summary.rejected)}")
        asyncio.run(_report(settings, summary.sent, console))
        asyncio.run(_report_tickets(settings, console))
        console.print(
            f"\nLook: curl '{settings.es_url}/"
            f"{posts_index_pattern(settings.index_prefix)}"
            f"/_search?q=label:negative&size=3'   ·   curl {metrics_url}"
        )
        if not exit_when_done:
            console.print("Running; press Ctrl-C to stop.")
            while worker.poll() is None:
                time.sleep(1)
            raise MonitorError(f"the worker exited with status {worker.returncode}")
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if servers is not None:
            servers.stop()
        receivers.stop()


def _print_delivery(console: Console, item: Received) -> None:
    body = item.body if isinstance(item.body, dict) else {}
    ticket = body.get("ticket") or {}
    what = (
        f"{body.get('kind')} {ticket.get('ticket_id')} {ticket.get('priority')} "
        f"{ticket.get('topic')}/{ticket.get('rule')}"
        if ticket
        else (body.get("subject") or body.get("msgtype") or body.get("msg_type") or "")
    )
    from monitor.cli.output import safe_text

    console.print(f"  [cyan]→ {safe_text(item.channel):<8}[/] {safe_text(what)}")


async def _report_tickets(settings: Settings, console: Console) -> None:
    """Wait for the feed's last windows to be evaluated, then list the tickets."""
    es = AsyncElasticsearch(str(settings.es_url))
    index = f"{settings.index_prefix}-tickets"
    try:
        await asyncio.sleep(settings.idle_close_seconds + 5)
        if not await es.indices.exists(index=index):
            console.print("no tickets")
            return
        await es.indices.refresh(index=index)
        hits = (
            await es.search(
                index=index,
                size=50,
                sort=[{"priority": "asc"}],
                query={"match_all": {}},
            )
        )["hits"]["hits"]
        from monitor.cli.output import safe_text

        console.print(
            f"\n[bold]{len(hits)} incident tickets[/] (monitor tickets list):"
        )
        for hit in hits:
            t = hit["_source"]
            signals = [
                f"{s['rule']}({s['keyword']})" if s.get("keyword") else s["rule"]
                for s in t.get("signals") or []
            ] or [t["rule"]]
            console.print(
                safe_text(
                    f"  {t['ticket_id']}  {t['priority']}  {t['status']:<12} "
                    f"{t['topic']}  owner {t.get('owner') or '-'}  "
                    f"×{t['occurrences']}  signals: {', '.join(signals)}"
                )
            )
            console.print(safe_text(f"      {t['priority_reason'][:100]}"))
    finally:
        await es.close()


def _start_worker(
    settings: Settings, extra_env: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(extra_env)
    env.update(
        MONITOR_KAFKA_URL=str(settings.kafka_url),
        MONITOR_ES_URL=str(settings.es_url),
        MONITOR_WEB_PORT=str(settings.web_port),
        MONITOR_DATA_DIR=str(settings.data_dir),
    )
    if settings.topics_file is not None:
        env["MONITOR_TOPICS_FILE"] = str(settings.topics_file)
    # Everything else the demo was configured with (--config, MONITOR_*):
    for name, value in settings.model_dump(exclude_none=True).items():
        env.setdefault(f"MONITOR_{name.upper()}", str(value))
    log = (Path(settings.data_dir) / "worker.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


async def _report(settings: Settings, sent: int, console: Console) -> None:
    """Wait until the feed is indexed (or a minute passes) and summarise it."""
    es = AsyncElasticsearch(str(settings.es_url))
    index = posts_index_pattern(settings.index_prefix)
    try:
        deadline = time.monotonic() + 120
        count = 0
        with Progress(
            TextColumn("indexed"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("indexed", total=sent)
            while time.monotonic() < deadline:
                await es.indices.refresh(index=index, allow_no_indices=True)
                count = (await es.count(index=index, allow_no_indices=True))["count"]
                progress.update(task, completed=count)
                if count >= sent:
                    break
                await asyncio.sleep(1)
        console.print(f"{count} posts indexed")
        response = await es.search(
            index=index,
            size=0,
            aggs={
                "labels": {"terms": {"field": "label"}},
                "topics": {"terms": {"field": "topics", "size": 10}},
                "negative": {
                    "filter": {"term": {"label": "negative"}},
                    "aggs": {"keywords": {"terms": {"field": "keywords", "size": 10}}},
                },
            },
        )
        aggs: Any = response["aggregations"]
        console.print("labels:   " + _buckets(aggs["labels"]))
        console.print("topics:   " + _buckets(aggs["topics"]))
        console.print("negative keywords: " + _buckets(aggs["negative"]["keywords"]))
    finally:
        await es.close()


def _buckets(agg: Any) -> str:
    # Keys are labels, topics and keywords from posts: shown, never parsed.
    from monitor.cli.output import safe_text

    return ", ".join(f"{safe_text(b['key'])} {b['doc_count']}" for b in agg["buckets"])


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def _wait_for_url(
    url: str, process: subprocess.Popen[bytes], *, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MonitorError(
                f"the worker exited with status {process.returncode}; "
                "see worker.log in the data dir"
            )
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.3)
    raise MonitorError(f"the worker did not answer on {url} within {timeout:.0f} s")
