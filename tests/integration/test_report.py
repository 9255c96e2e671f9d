"""The daily report on real servers: the sample feed's afternoon (11:00-15:00,
with the 空调异味 incident) replayed into a real worker on noida-db, its
ticket handled and reviewed, then ``monitor report`` run on it. The report's
figures are checked against what Elasticsearch holds (content, not pixels)
and the PDF is printed by the real headless Chromium.

One stack serves the module: a worker indexes the slice and opens the
incident, then stops, so the indices hold still while the report reads them.
The ticket is handled through the ticket service with a clock set from its
opening (acknowledged 4 minutes later, resolved after 50, closed after 70),
so the handling times are known exactly.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from monitor.analysis.tickets.model import incident_fingerprint
from monitor.cli.report import report
from monitor.config.rules import load_rules
from monitor.local.embedded import EmbeddedServers
from monitor.local.receivers import LocalReceivers
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.tickets import TicketStore
from tests.integration.conftest import Stack
from tests.support import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"
INCIDENT = incident_fingerprint("topic=空调异味")
#: The slice replayed: from two hours before the incident (the burst
#: detector's warm-up) to the feed's end.
SLICE_FROM = "2026-11-20T11:00"
PERIOD = ["--since", "2026-11-20T11:00", "--until", "2026-11-20T15:00"]
#: A hostile negative post from the biggest account: the top negative post.
HOSTILE = {
    "id": "wb-hostile",
    "text": "&lt;script&gt;alert(1)&lt;/script&gt;星河广场空调异味太臭了，**头晕** "
    "[投诉](javascript:alert(1))",
    "published_at": "2026-11-20T13:40:00+08:00",
    "source": "weibo",
    "author": "<img src=x onerror=alert(2)>",
    "metrics": {"likes": 10, "reposts": 10, "followers": 9_999_999},
}
REVIEW = {
    "root_cause": "B1 层空调机组滤网霉变",
    "resolution": "停机更换滤网，加大新风量",
    "lessons": "滤网按季度检查，异味投诉 10 分钟内到场",
}


@dataclass
class Handled:
    """The stack after the replay, and the incident's ticket once handled."""

    stack: Stack
    ticket_id: str
    posts: int


def _tickets(stack: Stack) -> list[dict[str, Any]]:
    index = f"{stack.index_prefix}-tickets"
    if not stack.es.indices.exists(index=index):
        return []
    stack.es.indices.refresh(index=index)
    hits = stack.es.search(index=index, size=100, query={"match_all": {}})
    return [hit["_source"] for hit in hits["hits"]["hits"]]


def _bursts(stack: Stack, key: str | None = None) -> list[dict[str, Any]]:
    """Bursts of topic series (``key``'s only, if given)."""
    index = f"{stack.index_prefix}-bursts"
    if not stack.es.indices.exists(index=index):
        return []
    stack.es.indices.refresh(index=index)
    filters: list[dict[str, Any]] = [{"terms": {"kind": ["topic", "negative"]}}]
    if key is not None:
        filters.append({"term": {"key": key}})
    hits = stack.es.search(index=index, size=100, query={"bool": {"filter": filters}})
    return [hit["_source"] for hit in hits["hits"]["hits"]]


def _handle(stack: Stack, ticket_id: str) -> None:
    """Acknowledge, resolve and close the ticket at known times after opening."""
    ruleset = load_rules(RULES)

    async def act() -> None:
        store = TicketStore.connect(stack.addresses.es_url, stack.index_prefix)
        try:
            found = await store.get(ticket_id)
            assert found is not None
            opened = found[0].opened_at
            clock = {"now": opened}
            service = TicketService(store, lambda: ruleset, now=lambda: clock["now"])
            steps: list[tuple[int, str, dict[str, str]]] = [
                (4, "acknowledge", {}),
                (50, "resolve", {}),
                (70, "close", REVIEW),
            ]
            for delay, action, params in steps:
                clock["now"] = opened + timedelta(minutes=delay)
                await service.act(ticket_id, action, "王工", "", **params)
        finally:
            await store.close()

    asyncio.run(act())


@pytest.fixture(scope="module")
def handled(
    noida: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Handled]:
    """The afternoon replayed, indexed, the incident opened and handled."""
    assert noida.addresses is not None
    stack = Stack(noida.addresses, tmp_path_factory.mktemp("report"))
    receivers = LocalReceivers().start()  # the rules' channels deliver here
    stack.env.update(
        receivers.env(),
        MONITOR_RULES=str(RULES),
        MONITOR_IDLE_CLOSE_SECONDS="3",
        MONITOR_INDEX_UTC_OFFSET="+08:00",
    )
    lines = [json.loads(line) for line in FEED.read_text("utf-8").splitlines()]
    posts = [p for p in lines if p["published_at"][:16] >= SLICE_FROM] + [HOSTILE]
    posts.sort(key=lambda p: p["published_at"])
    feed = stack.write_jsonl(posts)
    try:
        worker = stack.worker().start()
        stack.monitor("replay", str(feed))
        wait_until(
            lambda: stack.indexed_count() == len(posts),
            timeout=60,
            what=f"{len(posts)} posts indexed",
        )
        found = wait_until(
            lambda: [t for t in _tickets(stack) if t["fingerprint"] == INCIDENT],
            timeout=30,
            what="the incident's ticket",
        )
        wait_until(
            lambda: _bursts(stack, "空调异味"),
            timeout=30,
            what="the incident's burst",
        )
        # The indices hold still from here on. Killed rather than drained:
        # everything the report reads is written, and a drain costs seconds.
        worker.stop(signal.SIGKILL)
        _handle(stack, found[0]["ticket_id"])
        yield Handled(stack, found[0]["ticket_id"], len(posts))
    finally:
        stack.close()
        receivers.stop()


def _run_report(handled: Handled, *args: str) -> str:
    """Run ``monitor report`` (the click command) with the stack's settings."""
    result = CliRunner().invoke(report, [*PERIOD, *args], env=handled.stack.env)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _count(stack: Stack, *filters: dict[str, Any]) -> int:
    query = {
        "bool": {
            "filter": [
                {
                    "range": {
                        "published_at": {
                            "gte": "2026-11-20T11:00:00+08:00",
                            "lt": "2026-11-20T15:00:00+08:00",
                        }
                    }
                },
                *filters,
            ]
        }
    }
    pattern = f"{stack.index_prefix}-posts-*"
    return int(stack.es.count(index=pattern, query=query)["count"])


def _row(page: str, name: str) -> list[str]:
    """The cells after ``name`` in its table row (tags stripped)."""
    match = re.search(rf"<tr><td>{re.escape(name)}</td>(.*?)</tr>", page)
    assert match, f"no row for {name}"
    return re.findall(r"<td[^>]*>(.*?)</td>", match[1])


def test_the_report_shows_what_elasticsearch_holds_and_prints_to_pdf(
    handled: Handled, tmp_path: Path
) -> None:
    stack = handled.stack
    html, pdf = tmp_path / "report.html", tmp_path / "report.pdf"
    output = _run_report(handled, "--out", str(html), "--pdf", str(pdf))
    assert f"{handled.posts:,} posts" in output
    page = html.read_text("utf-8")

    # Totals and every topic's counts match Elasticsearch.
    assert "舆情日报" in page and "2026-11-20 11:00 – 2026-11-20 15:00" in page
    assert f'<div class="value">{handled.posts:,}</div>' in page
    negative = {"term": {"label": "negative"}}
    assert f'<div class="value">{_count(stack, negative):,}</div>' in page
    topics = stack.es.search(
        index=f"{stack.index_prefix}-posts-*",
        size=0,
        aggs={"t": {"terms": {"field": "topics", "size": 50}}},
    )["aggregations"]["t"]["buckets"]
    assert "空调异味" in {b["key"] for b in topics}
    for bucket in topics:
        topic = {"term": {"topics": bucket["key"]}}
        cells = _row(page, bucket["key"])
        assert cells[0] == f"{_count(stack, topic):,}"
        assert re.sub("<[^>]+>", "", cells[3]) == f"{_count(stack, topic, negative):,}"
    weibo = {"term": {"source": "weibo"}}
    assert _row(page, "微博")[0] == f"{_count(stack, weibo):,}"

    # The incident, its handling times, their statistics and its review.
    assert handled.ticket_id in page
    incident = _row(page, handled.ticket_id)
    assert "空调异味" in incident and "已结案" in incident
    assert incident[-2:] == ["4m 00s", "50m 00s"]
    assert _row(page, "受理用时") == ["1", "4m 00s", "4m 00s", "4m 00s"]
    assert _row(page, "解决用时") == ["1", "50m 00s", "50m 00s", "50m 00s"]
    for text in REVIEW.values():
        assert text in page

    # Bursts of the topic series are those Elasticsearch holds.
    bursts = _bursts(stack)
    assert bursts
    section = page[page.index("<h2>声量突增</h2>") :]
    for burst in bursts:
        assert f"<tr><td>{burst['key']}</td>" in section
    assert "最强的声量突增：「" in page

    # The hostile post leads the negative posts, escaped; nothing can run.
    posts = page.index("重点负面帖子")
    assert page.index("&lt;script&gt;alert(1)&lt;/script&gt;", posts) > posts
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "**头晕** [投诉](javascript:alert(1))" in page
    assert not re.search(r"<(script|img)\b", page, re.I)
    assert 'href="javascript' not in page

    # The PDF is a real PDF with pages, printed by Chromium.
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(data) > 50_000
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 2
    # Chinese is set in the CJK font the set-up installs (fonts-noto-cjk),
    # not in boxes of a Latin fallback.
    assert re.search(rb"/FontName\s*/[A-Z]{6}\+NotoSansCJK", data), "no CJK font"


def test_the_report_in_english_for_one_topic(handled: Handled, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    _run_report(handled, "--topic", "空调异味", "--lang", "en", "--out", str(html))
    page = html.read_text("utf-8")
    assert "Public-opinion daily report" in page and "Topics: 空调异味" in page
    stack = handled.stack
    topic = {"term": {"topics": "空调异味"}}
    assert _row(page, "空调异味")[0] == f"{_count(stack, topic):,}"
    assert "<tr><td>停车</td>" not in page  # other topics are left out
    assert handled.ticket_id in page and "Closed" in page
