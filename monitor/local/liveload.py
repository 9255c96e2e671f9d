"""Live traffic with incidents in it: what the alert-latency benchmark and test drive.

A background of ordinary posts at a steady rate (``published_at`` = now),
and, every so often, a short incident on a topic of its own: ``threshold``
clearly negative posts mentioning the topic's keyword, the last of which is
the post that crosses the topic's ``negative_volume`` rule. Each incident is
on its own topic, so each opens its own incident ticket, and its first
notice measures the path from the crossing post to the channel.

:func:`rules_yaml` writes the matching rules file (one webhook channel,
``${ALERT_WEBHOOK_URL}``/``${ALERT_WEBHOOK_SECRET}``, as the local receivers
provide). :func:`drive` sends the posts and returns, per incident topic, the
wall time its crossing post was handed to Kafka (the record's timestamp).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson
from aiokafka import AIOKafkaProducer

from monitor.topics import bootstrap_servers

#: Ordinary posts (snownlp scores them positive or neutral).
BACKGROUND = (
    "周末和朋友来吃饭，味道还行。",
    "今天天气不错，随便逛逛。",
    "新开的书店挺安静，适合看书。",
    "电影院的座位很舒服，推荐。",
)
#: A clearly negative complaint (snownlp: below 0.001).
COMPLAINT = "{keyword} 太差了，服务态度恶劣，非常失望，再也不来了"


def topic_name(index: int) -> str:
    """Return the name of the ``index``-th incident topic."""
    return f"现场事件{index:02d}"


def keyword(index: int) -> str:
    """Return the keyword the ``index``-th incident's posts carry."""
    return f"故障Q{index:02d}"


def rules_yaml(incidents: int, threshold: int, window: str = "5m") -> str:
    """Return a rules file: one ``negative_volume`` rule per incident topic."""
    lines = ["topics:"]
    for index in range(incidents):
        lines += [
            f"  {topic_name(index)}:",
            f"    keywords: [{keyword(index)}]",
            "    rules:",
            "      - name: 负面声量",
            "        kind: negative_volume",
            f"        threshold: {threshold}",
            f"        window: {window}",
            "        channels: [ops-webhook]",
            "        min_priority: P2",
        ]
    lines += [
        "owners:",
        "  值班员: {email: duty@example.com}",
        "teams:",
        "  on-call:",
        "    members: [值班员]",
        "routing:",
        "  default_team: on-call",
        "channels:",
        "  ops-webhook:",
        "    kind: webhook",
        "    url: ${ALERT_WEBHOOK_URL}",
        "    secret: ${ALERT_WEBHOOK_SECRET}",
        "    timeout: 10s",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class LoadResult:
    """What :func:`drive` sent.

    Attributes:
        posts: Posts sent in all.
        crossed_at: Incident topic -> wall time (epoch seconds) its crossing
            post was sent.
        rate: Posts per second actually reached.

    """

    posts: int = 0
    crossed_at: dict[str, float] = field(default_factory=dict)
    rate: float = 0.0


def _post(post_id: str, text: str) -> bytes:
    return orjson.dumps(
        {
            "id": post_id,
            "text": text,
            "published_at": datetime.now(timezone.utc).isoformat(),
            "source": "loadgen",
            "author": f"user{post_id[-3:]}",
        }
    )


async def drive(
    kafka_url: str,
    topic: str,
    *,
    rate: float,
    seconds: float,
    incidents: int,
    threshold: int,
    first_incident_after: float = 5.0,
) -> LoadResult:
    """Send background posts at ``rate`` for ``seconds``, with incidents spread in.

    Incident ``i`` starts at ``first_incident_after + i * spacing`` and sends
    its ``threshold`` complaints 0.2 s apart (one author each, so only the
    volume rule is crossed); the last one crosses the rule.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(kafka_url), acks="all", linger_ms=5
    )
    await producer.start()
    result = LoadResult()
    spacing = max(1.0, (seconds - first_incident_after - 2) / max(incidents, 1))
    plan = [
        (first_incident_after + i * spacing + k * 0.2, i, k)
        for i in range(incidents)
        for k in range(threshold)
    ]
    plan.sort()
    tick = 0.05
    begun = time.monotonic()
    sent_background = 0
    try:
        while (elapsed := time.monotonic() - begun) < seconds:
            due = int(elapsed * rate) - sent_background
            for _ in range(max(0, due)):
                text = BACKGROUND[sent_background % len(BACKGROUND)]
                await producer.send(topic, _post(f"bg-{sent_background:07d}", text))
                sent_background += 1
            while plan and plan[0][0] <= elapsed:
                _, index, k = plan.pop(0)
                post_id = f"inc-{index:02d}-{k:03d}"
                text = COMPLAINT.format(keyword=keyword(index))
                if k == threshold - 1:
                    # The record's timestamp is taken as it is sent.
                    result.crossed_at[topic_name(index)] = time.time()
                    await producer.send_and_wait(topic, _post(post_id, text))
                else:
                    await producer.send(topic, _post(post_id, text))
                result.posts += 1
            await asyncio.sleep(tick)
        await producer.flush()
    finally:
        await producer.stop()
    result.posts += sent_background
    result.rate = sent_background / max(time.monotonic() - begun, 1e-9)
    return result
