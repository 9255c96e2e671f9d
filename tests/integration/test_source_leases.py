"""Source leases on a real consumer group (noida-db's Kafka protocol): with two
workers each source is polled by exactly one, and when one worker leaves, the
other takes its sources after their pollers stopped."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from monitor.local.embedded import EmbeddedServers
from monitor.sources.leases import SourceLeases
from monitor.topics import bootstrap_servers, ensure_topics

pytestmark = pytest.mark.integration

SOURCES = ["complaints", "crm-poll", "forum", "news", "reviews"]
SLOTS = 4


async def settled(members: list[SourceLeases], timeout: float = 60) -> None:
    """Wait until the members' sources cover every source exactly once."""
    async with asyncio.timeout(timeout):
        while True:
            running = [name for member in members for name in member.running]
            if sorted(running) == SOURCES:
                return
            await asyncio.sleep(0.2)


async def test_each_source_runs_in_exactly_one_worker(noida: EmbeddedServers) -> None:
    assert noida.addresses is not None
    topic = "source-leases-" + uuid.uuid4().hex[:8]
    await ensure_topics(noida.addresses.kafka_url, {topic: SLOTS})
    log: list[tuple[str, str, str]] = []  # (worker, start|stop, source)
    live: dict[str, str] = {}  # source -> worker polling it now

    def member(worker: str) -> SourceLeases:
        async def start(name: str) -> None:
            assert name not in live, f"{name} already polled by {live.get(name)}"
            live[name] = worker
            log.append((worker, "start", name))

        async def stop(name: str) -> None:
            await asyncio.sleep(0.05)  # a page finishing, the cursor written
            assert live.pop(name) == worker
            log.append((worker, "stop", name))

        return SourceLeases(
            SOURCES,
            start,
            stop,
            bootstrap=bootstrap_servers(noida.addresses.kafka_url),
            topic=topic,
            group_id=topic,
            slots=SLOTS,
        )

    first, second = member("first"), member("second")
    await first.start()
    try:
        await settled([first])
        assert first.running == set(SOURCES)
        await second.start()
        try:
            # The group rebalances: the second worker takes some slots, and
            # only after the first stopped those sources.
            async with asyncio.timeout(60):
                while not second.running or len(live) != len(SOURCES):
                    await asyncio.sleep(0.2)
            await settled([first, second])
            assert first.running and second.running
            assert not first.running & second.running
            for name in second.running:
                stops = [i for i, e in enumerate(log) if e[1:] == ("stop", name)]
                starts = [i for i, e in enumerate(log) if e[1:] == ("start", name)]
                assert log[stops[-1]][0] == "first" and log[starts[-1]][0] == "second"
                assert stops and starts and stops[-1] < starts[-1], log
        finally:
            await second.stop()
        # The second worker left: its sources come back to the first.
        await settled([first])
        assert first.running == set(SOURCES)
        assert set(live) == set(SOURCES) and set(live.values()) == {"first"}
    finally:
        await first.stop()
    assert live == {}, "every poller was stopped"
