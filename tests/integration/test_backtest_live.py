"""The backtest opens the incidents the live pipeline opens, on the same feed.

The sample feed replayed through a worker (two partitions, its own batches)
and backtested in one process (one partition, batches of 25) open the same
incidents with the same rules among their signals. Priorities and opening
times are compared loosely: how often a rule fires early inside a window
depends on batching (the occurrences that escalate), and the opening time
on which snapshot showed the crossing first (within a few buckets).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.local.receivers import LocalReceivers
from monitor.stages.backtest import backtest
from tests.integration.conftest import Stack
from tests.integration.test_alerting import tickets
from tests.support import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"


def test_backtest_and_live_replay_open_the_same_incidents(stack: Stack) -> None:
    result = backtest([FEED], RULES).to_json()
    expected = {
        incident["group"]: {
            "rules": {signal["rule"] for signal in incident["signals"]},
            "opened": datetime.fromisoformat(incident["opened_at"]),
        }
        for incident in result["incidents"]
    }
    receivers = LocalReceivers().start()
    try:
        stack.env.update(
            receivers.env(), MONITOR_RULES=str(RULES), MONITOR_IDLE_CLOSE_SECONDS="3"
        )
        worker = stack.worker().start()
        stack.monitor("replay", str(FEED))
        wait_until(
            lambda: worker.metric_sum("monitor_posts_scored_total") >= 5884,
            timeout=180,
            what="the feed scored",
        )

        def live() -> dict[str, dict]:
            found: dict[str, dict] = defaultdict(dict)
            for ticket in tickets(stack):
                found[ticket["group_key"]] = {
                    "rules": {signal["rule"] for signal in ticket["signals"]},
                    "opened": min(
                        datetime.fromisoformat(s["first_window_start"])
                        for s in ticket["signals"]
                    ),
                }
            return found

        got = wait_until(
            lambda: (seen := live())
            and set(seen) == set(expected)
            and all(seen[k]["rules"] >= expected[k]["rules"] for k in expected)
            and seen,
            timeout=120,
            what=f"the backtest's incidents live: {expected}",
        )
        assert set(got) == set(expected)
        for key, want in expected.items():
            assert got[key]["rules"] == want["rules"], key
            # The live signal's first window starts before its crossing post.
            assert got[key]["opened"] <= want["opened"] + timedelta(minutes=5), key
    finally:
        receivers.stop()
