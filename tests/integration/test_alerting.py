"""Alert tickets end to end on real servers: the sample incident opens exactly
one ticket with its evidence, a second replay opens none, the on-call channels
get signed deliveries, and the worker's API lets a responder act on it; a
worker killed with a notice pending delivers it after a restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from monitor.analysis.tickets.model import Evidence, Trigger, incident_fingerprint
from monitor.local.receivers import DEMO_SECRET, LocalReceivers
from monitor.records import TriggerEvent
from monitor.topics import bootstrap_servers
from tests.integration.conftest import Stack
from tests.support import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"
TOKEN = "responder-token-for-tests"


def tickets(stack: Stack) -> list[dict]:
    index = f"{stack.index_prefix}-tickets"
    if not stack.es.indices.exists(index=index):
        return []
    stack.es.indices.refresh(index=index)
    hits = stack.es.search(index=index, size=1000, query={"match_all": {}})
    return [hit["_source"] for hit in hits["hits"]["hits"]]


def api(stack: Stack, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.web_port}/api{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
        },
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_incident_opens_one_ticket_notifies_and_can_be_worked(stack: Stack) -> None:
    receivers = LocalReceivers().start()
    try:
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        stack.env.update(
            receivers.env(),
            MONITOR_RULES=str(RULES),
            MONITOR_IDLE_CLOSE_SECONDS="3",
            MONITOR_API_TOKENS=f"duty:responder:{digest}",
        )
        worker = stack.worker().start()
        stack.monitor("replay", str(FEED))
        incident = incident_fingerprint("topic=空调异味")
        # Any of the topic's rules may open the incident (the burst rule has
        # no floor); once the volume rule's signal is on it, its floor holds.
        found = wait_until(
            lambda: [
                t
                for t in tickets(stack)
                if t["fingerprint"] == incident
                and any(s["rule"] == "负面声量" for s in t["signals"])
            ],
            timeout=180,
            what="the incident's ticket with the volume rule's signal",
        )
        assert len(found) == 1, found
        ticket = found[0]
        assert ticket["status"] == "open"
        assert ticket["priority"] in ("P1", "P2", "P3")  # the rule's floor is P3
        assert ticket["priority_reason"]
        assert ticket["team"] == "facilities"
        assert ticket["owner"] in ("王工", "李工")
        assert ticket["evidence"], "a ticket carries its representative posts"
        assert all(item["excerpt"] for item in ticket["evidence"])
        posts = stack.indexed_docs()
        assert all(item["post_id"] in posts for item in ticket["evidence"])
        # Rules firing on open buckets fold in first; the burst rule's signal
        # comes when its window closes, so wait for both, not for an order.
        folded = wait_until(
            lambda: [
                t
                for t in tickets(stack)
                if t["fingerprint"] == incident
                and t["occurrences"] >= 5
                and len(t["signals"]) >= 3
            ],
            timeout=120,
            what="the incident's later windows and rules folded into its ticket",
        )
        assert len(folded) == 1, "one incident, one ticket"
        assert len([t for t in tickets(stack) if t["fingerprint"] == incident]) == 1
        # The 会员日 promotion (positive posts) opens nothing.
        assert not [t for t in tickets(stack) if t["topic"] == "会员活动"]

        # Every channel the incident's rules use got a delivery; the webhook
        # is signed the documented way.
        wait_until(
            lambda: (
                {"webhook", "dingtalk", "wecom", "feishu", "email"}
                <= set(receivers.by_channel())
            ),
            timeout=120,
            what=f"deliveries on five channels (got {set(receivers.by_channel())})",
        )
        hook = receivers.by_channel()["webhook"][0]
        stamp = hook.headers["X-Monitor-Timestamp"]
        signed = f"{stamp}.".encode() + hook.raw
        expected = hmac.new(DEMO_SECRET.encode(), signed, hashlib.sha256).hexdigest()
        assert hook.headers["X-Monitor-Signature"] == f"sha256={expected}"
        assert hook.body["ticket"]["ticket_id"]

        # The API shows it and a responder can acknowledge it.
        listed = api(stack, "/tickets?topic=" + urllib.parse.quote("空调异味"))
        assert ticket["ticket_id"] in json.dumps(listed, ensure_ascii=False)
        api(stack, f"/tickets/{ticket['ticket_id']}/actions", {"action": "acknowledge"})
        shown = api(stack, f"/tickets/{ticket['ticket_id']}")
        assert "acknowledge" in json.dumps(shown, ensure_ascii=False)

        scored = worker.metric_sum("monitor_posts_scored_total")
        before = {t["ticket_id"] for t in tickets(stack)}
        stack.monitor("replay", str(FEED))
        wait_until(
            lambda: worker.metric_sum("monitor_posts_scored_total") >= 2 * scored,
            timeout=180,
            what="the second replay scored",
        )
        after = [t for t in tickets(stack) if t["fingerprint"] == incident]
        assert len(after) == 1, "replaying the feed again opens no second ticket"
        # The replay opened nothing anywhere. (Signals of one group hours
        # apart in event time are separate incidents: the feed's 客服 repeat
        # complaints at 09:50 and 12:25 open two.)
        assert {t["ticket_id"] for t in tickets(stack)} == before
    finally:
        receivers.stop()


KILL_RULES = """\
topics:
  空调异味:
    keywords: [空调]
    rules:
      - {name: 紧急, kind: negative_volume, threshold: 6, window: 5m,
         min_priority: P1, channels: [hook]}
teams:
  facilities: {members: [王工]}
channels:
  hook: {kind: webhook, url: "http://127.0.0.1:%d/webhook"}
routing:
  default_team: facilities
"""


def send_trigger(stack: Stack, trigger: Trigger) -> None:
    record = TriggerEvent(trigger, closed_at=None)

    async def send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(stack.addresses.kafka_url), acks="all"
        )
        await producer.start()
        try:
            await producer.send_and_wait(
                stack.env["MONITOR_TOPIC_TRIGGERS"],
                record.encode(),
                key=record.message_key,
            )
        finally:
            await producer.stop()

    asyncio.run(send())


def test_a_worker_killed_with_a_notice_pending_delivers_it_once_after_restart(
    stack: Stack,
) -> None:
    receivers = LocalReceivers()  # its port is known; it does not listen yet
    rules = stack.tmp_path / "rules.yaml"
    rules.write_text(KILL_RULES % receivers.http_port, encoding="utf-8")
    stack.env.update(MONITOR_RULES=str(rules))
    worker = stack.worker().start()
    now = datetime.now(timezone.utc)
    send_trigger(
        stack,
        Trigger(
            "空调异味",
            "紧急",
            "negative_volume",
            None,
            now - timedelta(minutes=1),
            now + timedelta(minutes=4),
            9.0,
            6.0,
            evidence=(Evidence("kill-1", "空调有怪味"),),
            signal_id="紧急@空调异味@kill",
            crossing_received_at=now,
        ),
    )
    # The change is saved with its notice; the channel is down, so the notice
    # stays in the outbox (its failed attempt is recorded on the ticket).
    pending = wait_until(
        lambda: [
            t
            for t in tickets(stack)
            if t["outbox"] and t["delivery"].get("hook") == "failed"
        ],
        timeout=60,
        what="the ticket with its notice pending after a failed attempt",
    )
    assert len(pending) == 1
    worker.stop(signal.SIGKILL)
    receivers.start()
    try:
        # The next owner of the triggers partition. Kafka hands the dead
        # member's partitions on only after its session times out (60 s), so
        # the new worker joins a fresh consumer group: it also reads the
        # trigger again, which must change nothing (same signal id).
        restarted = stack.worker(MONITOR_APP_ID=stack.name + "b").start()
        hooks = wait_until(
            lambda: receivers.by_channel().get("webhook"),
            timeout=60,
            what="the notice delivered by the restarted worker",
        )
        time.sleep(3)  # any second copy would come within a round or two
        hooks = receivers.by_channel()["webhook"]
        assert len(hooks) == 1, "exactly once: the kill came before any send"
        ticket_id = pending[0]["ticket_id"]
        assert hooks[0].headers["X-Monitor-Delivery"] == f"{ticket_id}#n1@hook"
        done = wait_until(
            lambda: [
                t
                for t in tickets(stack)
                if t["ticket_id"] == ticket_id and not t["outbox"]
            ],
            timeout=30,
            what="the outbox cleared",
        )
        assert done[0]["delivery"] == {"hook": "sent"}
        assert restarted.metric_sum("monitor_alert_notice_seconds_count") == 1
        wait_until(
            lambda: (
                restarted.metric_sum(
                    "monitor_ticket_decisions_total", outcome="duplicate"
                )
                == 1
            ),
            timeout=30,
            what="the re-read trigger decided as a duplicate",
        )
        assert len(receivers.by_channel()["webhook"]) == 1
    finally:
        receivers.stop()
