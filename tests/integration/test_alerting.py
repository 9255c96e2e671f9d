"""Alert tickets end to end on real servers: the sample incident opens exactly
one ticket with its evidence, a second replay opens none, the on-call channels
get signed deliveries, and the worker's API lets a responder act on it."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from monitor.analysis.tickets.model import fingerprint
from monitor.local.receivers import DEMO_SECRET, LocalReceivers
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
        incident = fingerprint("空调异味", "负面声量", None)
        found = wait_until(
            lambda: [t for t in tickets(stack) if t["fingerprint"] == incident],
            timeout=180,
            what="the incident's ticket",
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
        folded = wait_until(
            lambda: [
                t
                for t in tickets(stack)
                if t["fingerprint"] == incident and t["occurrences"] >= 5
            ],
            timeout=120,
            what="the incident's later windows folded into its ticket",
        )
        assert len(folded) == 1, "one incident, one ticket"

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
        stack.monitor("replay", str(FEED))
        wait_until(
            lambda: worker.metric_sum("monitor_posts_scored_total") >= 2 * scored,
            timeout=180,
            what="the second replay scored",
        )
        after = [t for t in tickets(stack) if t["fingerprint"] == incident]
        assert len(after) == 1, "replaying the feed again opens no second ticket"
        # No incident got a second ticket: every ticket is its fingerprint's first.
        assert {t["sequence"] for t in tickets(stack)} == {1}
    finally:
        receivers.stop()
