"""Backfill on real servers: history warms the detectors, the live part alerts.

The sample feed's morning (09:00-12:30) is backfilled; its afternoon is then
replayed live. The hot-word detector needs an hour of background before it
scores anything: on the afternoon alone its first hot word is at 13:35 (event
time); after the backfill the incident's hot word 空调 fires by 13:16, on the
backfilled background. Nothing of the backfilled morning opens a ticket, and
a second backfill of the same morning is refused: the workers have counted
past it.
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
        stack.worker().start()
        stack.monitor("replay", str(live))
        incident = incident_fingerprint("topic=空调异味")
        found = wait_until(
            lambda: [
                s
                for t in tickets(stack)
                if t["fingerprint"] == incident
                for s in t["signals"]
                if s["rule"] == "异常热词"
            ],
            timeout=180,
            what="the incident with a hot-word signal",
        )
        first = min(datetime.fromisoformat(s["first_window_start"]) for s in found)
        # A 10-minute span ending by 13:20: before the live part alone is warm.
        assert first < datetime(2026, 11, 20, 13, 10, tzinfo=CST), found
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
