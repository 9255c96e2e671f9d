"""examples/sources.yaml works as written against the sample sources.

The sample review API and complaint feed (``monitor sources sample-server``)
serve the sample feed on the ports the example names; here on free ports,
the example's URLs pointed at them. Its pollers, run as ``monitor sources
run`` runs them, bring every review and every feed entry into ``posts``
once, mapped as the example says.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from monitor.local.embedded import EmbeddedServers
from monitor.local.sample_sources import FEED_ENTRIES, SampleSources
from monitor.settings import Settings
from monitor.sources.config import load_sources
from monitor.sources.runner import SourcePollers
from monitor.topics import bootstrap_servers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sources.yaml"
FEED = ROOT / "samples" / "feed.jsonl"
TOKEN = "reviews-token"


async def _posts(kafka_url: str, topic: str, want: int) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(kafka_url),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    posts: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(60):
            while len(posts) < want:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    posts.extend(json.loads(r.value) for r in records)
        await asyncio.sleep(0.5)  # anything sent twice would be here by now
        for records in (await consumer.getmany(timeout_ms=300)).values():
            posts.extend(json.loads(r.value) for r in records)
    finally:
        await consumer.stop()
    return posts


async def test_the_example_sources_file_polls_the_sample_sources(
    noida: EmbeddedServers, tmp_path: Path
) -> None:
    assert noida.addresses is not None
    with SampleSources(FEED, bearer=TOKEN) as sample:
        example = EXAMPLE.read_text(encoding="utf-8")
        assert "127.0.0.1:8081" in example and "127.0.0.1:8082" in example
        sources = tmp_path / "sources.yaml"
        sources.write_text(
            example.replace("127.0.0.1:8081", f"127.0.0.1:{sample.api_port}").replace(
                "127.0.0.1:8082", f"127.0.0.1:{sample.rss_port}"
            ),
            encoding="utf-8",
        )
        env = {"SOURCE_CRM_SECRET": "s" * 32, "SOURCE_REVIEWS_TOKEN": TOKEN}
        config = load_sources(sources, env)
        assert sorted(config.pollers) == ["complaints", "reviews"]
        name = "t" + uuid.uuid4().hex[:10]
        settings = Settings(
            kafka_url=noida.addresses.kafka_url,
            es_url=noida.addresses.es_url,
            app_id=name,
            data_dir=tmp_path / "data",
            topic_posts=f"{name}-posts",
            topic_dead_letters=f"{name}-dead-letters",
            topic_source_state=f"{name}-source-state",
            topic_source_leases=f"{name}-source-leases",
            sources=sources,
        )
        reviews = len(sample.items)
        pollers = SourcePollers(settings, config, leases=False)
        await pollers.start()
        try:
            posts = await _posts(
                noida.addresses.kafka_url, settings.topic_posts, reviews + FEED_ENTRIES
            )
        finally:
            await pollers.stop()
    ids = [str(p["id"]) for p in posts]
    assert len(ids) == len(set(ids)) == reviews + FEED_ENTRIES
    by_source: dict[str, list[dict[str, object]]] = {}
    for post in posts:
        by_source.setdefault(str(post["id"]).split(":", 1)[0], []).append(post)
    assert len(by_source["reviews"]) == reviews == 999
    assert len(by_source["complaints"]) == FEED_ENTRIES
    review = by_source["reviews"][0]
    assert review["topic"] == "点评"  # the example's constant
    assert review["source"] == "reviews"  # defaults to the source name
    assert str(review["id"]).startswith("reviews:dp-")
    complaint = by_source["complaints"][0]
    assert "<p>" not in str(complaint["text"])  # the entry's HTML normalised
