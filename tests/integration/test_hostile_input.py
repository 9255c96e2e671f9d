"""Hostile records on the posts topic, end to end on real servers: each invalid
one becomes exactly one dead letter that fits a Kafka message, the valid ones
(however odd) are indexed, the ordinary posts behind them are indexed within a
minute, and a post from the future does not make real-time posts late."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.records import MAX_MESSAGE_BYTES, DeadLetter
from monitor.topics import bootstrap_servers
from tests.integration.conftest import Stack
from tests.support import wait_until

pytestmark = pytest.mark.integration

UTC = timezone.utc
#: Posts a keyword may come from; longer tokens are dropped.
MAX_KEYWORD_CHARS = 32


def _post(post_id: str, **fields: object) -> dict[str, object]:
    return {
        "id": post_id,
        "text": "商场空调有异味",
        "published_at": datetime.now(UTC).isoformat(),
        "source": "hostile",
        **fields,
    }


def _emoji_post() -> bytes:
    """A 1,004,058-byte post of 251k emoji (its text is over the cap)."""
    head = b'{"id": "bad-emoji", "published_at": "2026-11-20T10:00:00Z", "text": "'
    count = (1_004_058 - len(head) - 2) // 4
    payload = head + "😀".encode() * count + b'"}'
    return payload + b" " * (1_004_058 - len(payload))


def invalid_records(now: datetime) -> dict[str, bytes]:
    """Prefix of each payload (how its dead letter is found) -> payload."""
    deep = b"[" * 300 + b"]" * 300
    records = [
        _emoji_post(),
        orjson.dumps(
            _post("bad-future", published_at=(now + timedelta(days=365)).isoformat())
        ),
        orjson.dumps(_post("bad-2100", published_at="2100-12-31T23:59:59-14:00")),
        orjson.dumps(_post("bad-deep"))[:-1] + b', "deep": ' + deep + b"}",
        orjson.dumps(_post("bad-big-int"))[:-1]
        + b', "metrics": {"likes": 18446744073709551616}}',
        orjson.dumps(_post("bad-url", url="javascript:alert(1)")),
        b'{"id": "bad-json", "text": "unterminated',
        orjson.dumps(_post("bad-surrogate"))[:-1] + b', "x": "\\ud800"}',
        orjson.dumps(_post("bad-meta-size", blob="x" * 70_000)),
        orjson.dumps(_post("bad-control", text="\x01" * 70_000)),
    ]
    return {payload[:20].decode(): payload for payload in records}


def valid_hostile_posts() -> list[dict[str, object]]:
    """Odd but valid posts: 40,000-character tokens, markup, a float meta."""
    posts: list[dict[str, object]] = []
    for n in range(6):
        pair = chr(97 + n) * 2
        posts.append(
            _post(f"odd-long-{n}", text=pair * 20_000 + " " + pair.upper() * 20_000)
        )
    posts.append(_post("odd-breaks", text="<br" * 33_333))
    posts.append(_post("odd-refs", text="&#" + "9" * 5_000 + ";差"))
    return posts


def read_raw(stack: Stack, topic: str) -> list[bytes]:
    """Every record value of ``topic``, as bytes."""

    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(stack.addresses.kafka_url),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=8 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        try:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not tps:
                return []
            consumer.assign(tps)
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            values: list[bytes] = []
            for tp in tps:
                consumer.seek(tp, starts[tp])
            pending = {tp for tp in tps if ends[tp] > starts[tp]}
            while pending:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    values += [
                        r.value
                        for r in records
                        if r.value is not None and r.offset < ends[tp]
                    ]
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
            return values
        finally:
            await consumer.stop()

    return asyncio.run(read())


def topic_posts(stack: Stack, topic: str) -> int:
    """Posts counted in the windows of ``topic`` so far (complete or not)."""
    pattern = f"{stack.index_prefix}-counts-*"
    stack.es.indices.refresh(index=pattern, allow_no_indices=True)
    hits = stack.es.search(
        index=pattern,
        size=10_000,
        query={
            "bool": {"filter": [{"term": {"kind": "topic"}}, {"term": {"key": topic}}]}
        },
        allow_no_indices=True,
    )["hits"]["hits"]
    return sum(int(hit["_source"]["posts"]) for hit in hits)


def test_hostile_records_are_dead_lettered_and_ordinary_posts_flow(
    stack: Stack,
) -> None:
    stack.env.update(MONITOR_IDLE_CLOSE_SECONDS="3", MONITOR_WINDOW_WAIT_SECONDS="10")
    worker = stack.worker().start()
    now = datetime.now(UTC)
    invalid = invalid_records(now)
    odd = valid_hostile_posts()
    topic = "实时" + stack.name
    ordinary = [_post(f"ok-{n}", topic=topic, author=f"user{n}") for n in range(40)]

    stack.publish_raw(list(invalid.values()))
    stack.publish_raw([orjson.dumps(post) for post in odd])
    sent = time.monotonic()
    stack.publish_raw([orjson.dumps(post) for post in ordinary])

    wanted = {str(post["id"]) for post in ordinary}
    wait_until(
        lambda: wanted <= set(stack.indexed_docs()),
        timeout=60,
        what="every ordinary post indexed",
    )
    indexed_after = time.monotonic() - sent
    print(f"ordinary posts indexed {indexed_after:.1f} s after they were sent")

    docs = wait_until(
        lambda: (
            found
            if {str(p["id"]) for p in odd} <= set(found := stack.indexed_docs())
            else None
        ),
        timeout=60,
        what="the odd but valid posts indexed",
    )
    for post in odd:
        assert all(
            len(k) <= MAX_KEYWORD_CHARS for k in docs[str(post["id"])]["keywords"]
        )

    letters = wait_until(
        lambda: (
            found
            if len(found := read_raw(stack, stack.dead_letters_topic)) >= len(invalid)
            else None
        ),
        timeout=60,
        what="a dead letter per invalid record",
    )
    assert len(letters) == len(invalid), [DeadLetter.loads(v).reason for v in letters]
    seen: dict[str, str] = {}
    for raw in letters:
        assert len(raw) <= MAX_MESSAGE_BYTES, len(raw)
        letter = DeadLetter.loads(raw)
        assert letter.stage == "score" and letter.reason
        (prefix,) = [p for p in invalid if letter.payload.startswith(p)]
        assert prefix not in seen, f"two dead letters for {prefix}"
        seen[prefix] = letter.reason
    assert set(seen) == set(invalid)
    by_id = {prefix.split('"')[3]: reason for prefix, reason in seen.items()}
    assert "from the future" in by_id["bad-future"]
    assert "outside the years" in by_id["bad-2100"]
    assert "text is longer than 100,000 characters" in by_id["bad-emoji"]
    assert "url must be an http(s) URL" in by_id["bad-url"]
    assert "nested more than 32 levels" in by_id["bad-deep"]
    emoji = DeadLetter.loads(next(raw for raw in letters if b'"bad-emoji' in raw[:400]))
    assert emoji.payload_truncated

    # The post from the future did not move the watermark: real-time posts
    # behind it are counted, in windows that close while the worker idles.
    wait_until(
        lambda: topic_posts(stack, topic) >= len(ordinary),
        timeout=120,
        what="the real-time posts counted",
    )
    assert topic_posts(stack, topic) == len(ordinary)
    assert worker.metric_sum("monitor_posts_dead_lettered_total", stage="score") == len(
        invalid
    )
    print(json.dumps({"indexed_after_seconds": round(indexed_after, 1)}))
