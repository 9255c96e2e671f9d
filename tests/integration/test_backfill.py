"""Backfill on real servers: history warms the detectors, the live part alerts.

The sample feed's morning (09:00-12:30) is backfilled: its count documents
are in Elasticsearch before any worker runs, and the worker's merge starts
from the backfilled state (its detectors' series, its progress through the
morning's last bucket). Its afternoon is then replayed live: the incident
opens with its signals, nothing of the morning opens a ticket, and a second
backfill of the same morning is refused: the workers have counted past it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.analysis.tickets.model import incident_fingerprint
from monitor.local.receivers import LocalReceivers
from tests.integration.conftest import Stack
from tests.integration.test_alerting import tickets
from tests.support import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"
CST = timezone(timedelta(hours=8))
SPLIT = datetime(2026, 11, 20, 12, 30, tzinfo=CST)


def test_backfill_warms_the_detectors_and_opens_nothing(stack: Stack) -> None:
    lines = FEED.read_text("utf-8").splitlines()
    morning, afternoon = [], []
    for line in lines:
        published = datetime.fromisoformat(json.loads(line)["published_at"])
        (morning if published < SPLIT else afternoon).append(line)
    history = stack.tmp_path / "morning.jsonl"
    history.write_text("\n".join(morning) + "\n", "utf-8")
    live = stack.tmp_path / "afternoon.jsonl"
    live.write_text("\n".join(afternoon) + "\n", "utf-8")
    receivers = LocalReceivers().start()
    try:
        stack.env.update(
            receivers.env(), MONITOR_RULES=str(RULES), MONITOR_IDLE_CLOSE_SECONDS="3"
        )
        done = stack.monitor("backfill", str(history), "--index-posts")
        assert f"backfilled {len(morning)} posts" in done.stdout, done.stdout
        assert stack.indexed_count() == len(morning)
        counts = f"{stack.index_prefix}-counts-*"
        stack.es.indices.refresh(index=counts)
        nine = datetime(2026, 11, 20, 9, 0, tzinfo=CST).isoformat()
        hits = stack.es.search(
            index=counts,
            query={
                "bool": {
                    "filter": [
                        {"term": {"series": "topic:星河广场"}},
                        {"range": {"window_start": {"gte": nine, "lte": nine}}},
                    ]
                }
            },
        )["hits"]["hits"]
        assert hits and hits[0]["_source"]["posts"] > 0, "the morning's counts"
        worker = stack.worker().start()
        stack.monitor("replay", str(live))
        last = (
            int(
                datetime.fromisoformat(
                    json.loads(morning[-1])["published_at"]
                ).timestamp()
            )
            // 60
            * 60
        )
        restored = wait_until(
            lambda: [
                line
                for line in worker.log_tail(2000).splitlines()
                if "merge: restored" in line
            ],
            timeout=60,
            what="the merge restored",
        )
        assert f"emitted through {last}," in restored[0], restored[0]
        series = int(restored[0].split(" amendable, ")[1].split(" series")[0])
        assert series >= 10, restored[0]  # the morning's detectors
        incident = incident_fingerprint("topic=空调异味")
        wait_until(
            lambda: [
                t
                for t in tickets(stack)
                if t["fingerprint"] == incident and len(t["signals"]) >= 3
            ],
            timeout=180,
            what="the incident with its signals",
        )
        wait_until(
            lambda: stack.indexed_count() == len(lines),
            timeout=120,
            what="every post indexed",
        )
        # Nothing of the morning opened a ticket.
        opened = [
            datetime.fromisoformat(s["first_window_start"])
            for t in tickets(stack)
            for s in t["signals"]
        ]
        assert opened and min(opened) >= SPLIT - timedelta(hours=1), sorted(opened)
        assert all(
            datetime.fromisoformat(s["last_window_end"]) > SPLIT
            for t in tickets(stack)
            for s in t["signals"]
        )
        # The workers have counted past the morning now: a backfill refuses.
        again = stack.monitor("backfill", str(history), check=False)
        assert again.returncode != 0
        assert "past the feed's first post" in again.stderr
    finally:
        receivers.stop()
