"""Rules on their own windows, and alerts within seconds, on real servers.

A ``window: 1h`` rule fires on the hour's sum (a 5-minute rule with the same
threshold on the same posts does not), and a live incident under background
traffic reaches the channel within the issue's 3-second target, measured from
the crossing post's send to the webhook's receipt.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from monitor.local.liveload import drive, rules_yaml, topic_name
from monitor.local.receivers import LocalReceivers
from tests.integration.conftest import Stack
from tests.integration.test_alerting import tickets
from tests.support import wait_until

pytestmark = pytest.mark.integration

CST = timezone(timedelta(hours=8))
HOURLY_RULES = """
topics:
  噪音:
    keywords: [噪音]
    rules:
      - name: 一小时负面
        kind: negative_volume
        threshold: 8
        window: 1h
        channels: [ops-webhook]
      - name: 五分钟负面
        kind: negative_volume
        threshold: 8
        window: 5m
        channels: [ops-webhook]
owners:
  值班员: {email: duty@example.com}
teams:
  on-call: {members: [值班员]}
routing:
  default_team: on-call
channels:
  ops-webhook:
    kind: webhook
    url: ${ALERT_WEBHOOK_URL}
    secret: ${ALERT_WEBHOOK_SECRET}
"""


def test_an_hourly_rule_fires_on_the_hours_sum_and_a_5_minute_one_does_not(
    stack: Stack,
) -> None:
    receivers = LocalReceivers().start()
    try:
        rules = stack.tmp_path / "rules.yaml"
        rules.write_text(HOURLY_RULES, "utf-8")
        stack.env.update(
            receivers.env(), MONITOR_RULES=str(rules), MONITOR_IDLE_CLOSE_SECONDS="3"
        )
        # One complaint every 5 minutes: never more than 1 in a 5-minute
        # window, 8 within the hour from the 8th one on (10:35).
        start = datetime(2026, 11, 20, 10, 0, tzinfo=CST)
        posts = [
            {
                "id": f"noise-{i:02d}",
                "text": "楼上装修噪音太差了，吵得头疼，非常失望，投诉没人管",
                "published_at": (start + timedelta(minutes=5 * i)).isoformat(),
                "source": "weibo",
                "author": f"住户{i:02d}",
            }
            for i in range(12)
        ]
        stack.worker().start()
        stack.monitor("replay", str(stack.write_jsonl(posts)))
        found = wait_until(
            lambda: [t for t in tickets(stack) if t["topic"] == "噪音"],
            timeout=120,
            what="the hourly rule's ticket",
        )
        assert len(found) == 1, found
        signals = found[0]["signals"]
        assert [s["rule"] for s in signals] == ["一小时负面"], signals
        (signal,) = signals
        first = datetime.fromisoformat(signal["first_window_start"])
        last = datetime.fromisoformat(signal["last_window_end"])
        assert last - first == timedelta(hours=1)
        # It fired on a window whose posts reach 8: from the one the 8th
        # complaint (10:35) ends, to the one holding them all. (Which one
        # depends on how the posts reach the merge: a partition's snapshot
        # may show the last hour's complaints before the other's partials.)
        assert start + timedelta(minutes=36) <= last <= start + timedelta(minutes=56)
        assert 8 <= signal["last_value"] <= 12
        time.sleep(5)  # the last buckets close on the idle timeout
        again = [t for t in tickets(stack) if t["topic"] == "噪音"]
        assert [s["rule"] for s in again[0]["signals"]] == ["一小时负面"]
    finally:
        receivers.stop()


def test_a_live_incident_is_notified_within_three_seconds(stack: Stack) -> None:
    receivers_first: dict[str, float] = {}

    def delivered(item) -> None:  # noqa: ANN001 - the receivers' record
        topic = ((item.body or {}).get("ticket") or {}).get("topic")
        if item.channel == "webhook" and topic and topic not in receivers_first:
            receivers_first[topic] = time.time()

    receivers = LocalReceivers(on_delivery=delivered).start()
    try:
        rules = stack.tmp_path / "rules.yaml"
        rules.write_text(rules_yaml(incidents=3, threshold=5), "utf-8")
        stack.env.update(receivers.env(), MONITOR_RULES=str(rules))
        worker = stack.worker().start()
        time.sleep(3)  # partitions assigned and restored
        load = asyncio.run(
            drive(
                stack.addresses.kafka_url,
                stack.posts_topic,
                rate=50,
                seconds=20,
                incidents=3,
                threshold=5,
            )
        )
        wait_until(
            lambda: len(receivers_first) >= 3,
            timeout=30,
            what=f"three incidents notified (got {sorted(receivers_first)})",
        )
        latencies = {
            topic: receivers_first[topic] - crossed
            for topic, crossed in load.crossed_at.items()
        }
        assert set(latencies) == {topic_name(i) for i in range(3)}
        assert all(0 < value <= 3.0 for value in latencies.values()), latencies
        # The worker measures the same path: crossing post's record time to
        # the channel's 2xx.
        seconds = wait_until(
            lambda: worker.metric_sum("monitor_alert_notice_seconds_count") >= 3
            and worker.metric_sum("monitor_alert_notice_seconds_sum"),
            timeout=10,
            what="the alert latency histogram",
        )
        assert 0 < seconds <= 3 * 3.0
    finally:
        receivers.stop()
