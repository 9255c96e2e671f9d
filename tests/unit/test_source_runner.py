"""SourceRunner with fake fetchers: start/stop, cursor durability and order, limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from monitor.metrics import SourceMetrics
from monitor.records import DeadLetter, Post, parse_post
from monitor.sources.base import Page, Rejected, SourceHealth
from monitor.sources.config import HttpPollSource, RssSource, SourcesConfig
from monitor.sources.cursors import (
    MAX_CURSOR_BYTES,
    CursorTooLarge,
    SourceState,
)
from monitor.sources.runner import Poller, SourceRunner, dead_letters_of


def _post(n: int, source: str = "reviews") -> Post:
    return parse_post(
        {
            "id": f"{source}:{n}",
            "text": f"text {n}",
            "published_at": "2026-01-01T00:00:00+00:00",
            "source": source,
        }
    )


def _config(interval: float = 3600.0) -> SourcesConfig:
    return SourcesConfig(
        path=Path("sources.yaml"),
        webhooks={},
        pollers={
            "reviews": HttpPollSource.model_validate(
                {
                    "name": "reviews",
                    "kind": "http_poll",
                    "url": "http://127.0.0.1:1/r?since={cursor}",
                    "interval": f"{interval:g}s",
                    "items": "data.items",
                    "map": {"id": "id", "text": "text", "published_at": "at"},
                }
            ),
            "news": RssSource.model_validate(
                {
                    "name": "news",
                    "kind": "rss",
                    "url": "http://127.0.0.1:1/f",
                    "interval": f"{interval:g}s",
                }
            ),
        },
    )


class Journal:
    """Every durable step of the fakes, in order."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, object]] = []


class FakePublisher:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.queued: list[str] = []
        self.acked: list[str] = []

    async def publish(self, post: Post) -> None:
        self.queued.append(post.id)

    async def flush(self) -> None:
        await asyncio.sleep(0)
        self.acked.extend(self.queued)
        self.journal.steps.append(("posts", tuple(self.queued)))
        self.queued = []


class FakeState:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.records: dict[str, SourceState] = {}

    async def load_state(self, source: str) -> SourceState | None:
        return self.records.get(source)

    async def write(self, state: SourceState) -> None:
        state.encode()  # bounded like the real store
        self.records[state.source] = state
        self.journal.steps.append(("state", state.cursor))


class FakeDeadLetters:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.letters: list[DeadLetter] = []

    async def __call__(self, letters: Sequence[DeadLetter]) -> None:
        self.letters.extend(letters)
        self.journal.steps.append(("dead", len(letters)))


class Script:
    """A fetcher that plays pages, then blocks (or repeats ``more`` pages)."""

    def __init__(self, pages: list[Page], *, endless_more: bool = False) -> None:
        self.pages = pages
        self.endless_more = endless_more
        self.seen: list[str | None] = []
        self.closed = False
        self.gate: asyncio.Event | None = None
        self.in_fetch = asyncio.Event()

    async def fetch(self, cursor: str | None) -> Page:
        self.seen.append(cursor)
        self.in_fetch.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.pages:
            return self.pages.pop(0)
        if self.endless_more:
            n = len(self.seen)
            return Page(posts=(_post(n),), cursor=f"c{n}", more=True)
        return Page(cursor=cursor)

    async def close(self) -> None:
        self.closed = True


def _runner(
    journal: Journal,
    fetchers: dict[str, Script],
    *,
    max_pages: int | None = None,
    metrics: SourceMetrics | None = None,
    stop_grace: float = 5.0,
) -> tuple[SourceRunner, FakePublisher, FakeState, FakeDeadLetters]:
    publisher = FakePublisher(journal)
    state = FakeState(journal)
    dead = FakeDeadLetters(journal)
    runner = SourceRunner(
        _config(),
        publisher,
        state,
        dead,
        metrics=metrics,
        poller_factory=lambda source: Poller(fetchers[source.name], max_pages),
        stop_grace=stop_grace,
    )
    return runner, publisher, state, dead


async def _until(predicate: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)


def test_start_polls_and_stop_writes_cursor_and_closes() -> None:
    async def scenario() -> None:
        journal = Journal()
        fetcher = Script(
            [
                Page(posts=(_post(1), _post(2)), cursor="c1", more=True),
                Page(posts=(_post(3),), cursor="c2"),
            ]
        )
        runner, publisher, state, _ = _runner(journal, {"reviews": fetcher})
        await runner.start("reviews")
        await runner.start("reviews")  # already running: no second poller
        assert runner.running == {"reviews"}
        await _until(
            lambda: len(fetcher.seen) >= 2 and publisher.acked[-1:] == ["reviews:3"]
        )
        await _until(
            lambda: (
                state.records.get("reviews", None) is not None
                and state.records["reviews"].cursor == "c2"
            )
        )
        await runner.stop("reviews")
        assert runner.running == frozenset()
        assert fetcher.closed
        assert fetcher.seen[:2] == [None, "c1"]
        record = state.records["reviews"]
        assert record.cursor == "c2" and record.kind == "http_poll"
        assert record.accepted == 3 and record.fetched == 2
        assert record.last_success_epoch_s is not None
        await runner.stop("reviews")  # not running: no-op

    asyncio.run(scenario())


def test_stop_finishes_the_page_in_flight_and_writes_its_cursor() -> None:
    async def scenario() -> None:
        journal = Journal()
        fetcher = Script([Page(posts=(_post(7),), cursor="after-7")])
        fetcher.gate = asyncio.Event()
        runner, publisher, state, _ = _runner(journal, {"reviews": fetcher})
        await runner.start("reviews")
        await _until(fetcher.in_fetch.is_set)
        stopping = asyncio.create_task(runner.stop("reviews"))
        await asyncio.sleep(0.05)
        assert not stopping.done(), "stop waits for the page in flight"
        fetcher.gate.set()
        await stopping
        assert publisher.acked == ["reviews:7"]
        assert state.records["reviews"].cursor == "after-7"
        assert len(fetcher.seen) == 1, "no page is fetched after stop"

    asyncio.run(scenario())


def test_a_stuck_page_is_cancelled_after_the_grace_and_keeps_the_old_cursor() -> None:
    async def scenario() -> None:
        journal = Journal()
        fetcher = Script([Page(posts=(_post(1),), cursor="new")])
        fetcher.gate = asyncio.Event()  # never set: the vendor hangs
        runner, publisher, state, _ = _runner(
            journal, {"reviews": fetcher}, stop_grace=0.2
        )
        state.records["reviews"] = SourceState(
            "reviews", "http_poll", "old", 3600.0, 0.0, fetched=4
        )
        await runner.start("reviews")
        await _until(fetcher.in_fetch.is_set)
        async with asyncio.timeout(3):
            await runner.stop("reviews")
        assert publisher.acked == []
        assert state.records["reviews"].cursor == "old"
        assert state.records["reviews"].fetched == 4  # restored, written back
        assert fetcher.closed

    asyncio.run(scenario())


def test_a_cancelled_stop_leaves_no_poller_behind() -> None:
    async def scenario() -> None:
        journal = Journal()
        fetcher = Script([Page(posts=(_post(1),), cursor="new")])
        fetcher.gate = asyncio.Event()  # the vendor hangs
        runner, _, _, _ = _runner(journal, {"reviews": fetcher}, stop_grace=30)
        await runner.start("reviews")
        await _until(fetcher.in_fetch.is_set)
        poll_task = runner._running["reviews"].task
        assert poll_task is not None
        stopping = asyncio.create_task(runner.stop("reviews"))
        await asyncio.sleep(0.05)
        stopping.cancel()  # whoever stopped it gave up (a rebalance timing out)
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        assert poll_task.done(), "the poll task outlived its stop"
        assert runner.running == frozenset()
        await runner.start("reviews")  # taken again: one poller, not two
        assert runner.running == {"reviews"}
        fetcher.gate.set()
        await runner.stop_all()

    asyncio.run(scenario())


def test_rejects_are_dead_lettered_after_the_posts_and_before_the_cursor() -> None:
    async def scenario() -> None:
        journal = Journal()
        fetcher = Script(
            [
                Page(
                    posts=(_post(1),),
                    rejected=(
                        Rejected(1, "mapping", "no 'text' at content", b'{"id":2}'),
                        Rejected(2, "invalid", "published_at: not a date", b"{}"),
                    ),
                    cursor="c1",
                )
            ]
        )
        runner, _, state, dead = _runner(journal, {"reviews": fetcher})
        await runner.start("reviews")
        await _until(lambda: ("state", "c1") in journal.steps)
        await runner.stop("reviews")
        order = [step for step in journal.steps if step != ("state", None)]
        assert order[:3] == [("posts", ("reviews:1",)), ("dead", 2), ("state", "c1")]
        first = dead.letters[0]
        assert first.stage == "source" and first.source == "reviews"
        assert first.reason == "mapping: no 'text' at content"
        assert first.payload == '{"id":2}'
        assert dict(state.records["reviews"].rejected) == {"mapping": 1, "invalid": 1}

    asyncio.run(scenario())


def test_failing_dead_letters_keep_the_cursor_where_it_was() -> None:
    async def scenario() -> None:
        journal = Journal()
        fetcher = Script(
            [Page(rejected=(Rejected(0, "invalid", "bad", b"x"),), cursor="c1")]
        )
        runner, _, state, _ = _runner(journal, {"reviews": fetcher})

        async def refuse(letters: Sequence[DeadLetter]) -> None:
            raise ConnectionError("dead-letters topic unavailable")

        runner.dead_letters = refuse
        runner.backoff_cap = 0.01
        await runner.start("reviews")
        await _until(lambda: len(fetcher.seen) >= 2)
        await runner.stop("reviews")
        assert all(cursor is None for cursor in fetcher.seen)
        record = state.records["reviews"]
        assert record.cursor is None and record.errors >= 1
        assert "dead-letters topic unavailable" in record.last_error

    asyncio.run(scenario())


def test_max_pages_per_poll_then_sleeps_the_interval() -> None:
    async def scenario() -> None:
        journal = Journal()
        fetcher = Script([], endless_more=True)
        runner, publisher, state, _ = _runner(
            journal, {"reviews": fetcher}, max_pages=3
        )
        await runner.start("reviews")
        await _until(lambda: len(publisher.acked) >= 3)
        await asyncio.sleep(0.1)  # the interval is an hour: nothing more comes
        assert len(fetcher.seen) == 3
        await runner.stop("reviews")
        assert state.records["reviews"].cursor == "c3"

    asyncio.run(scenario())


def test_resumes_from_the_stored_cursor_with_its_counters() -> None:
    async def scenario() -> None:
        journal = Journal()
        fetcher = Script([Page(posts=(_post(9),), cursor="c9")])
        runner, _, state, _ = _runner(journal, {"reviews": fetcher})
        state.records["reviews"] = SourceState(
            "reviews", "http_poll", "c8", 3600.0, 0.0, fetched=8, accepted=80
        )
        await runner.start("reviews")
        await _until(lambda: state.records["reviews"].cursor == "c9")
        await runner.stop("reviews")
        assert fetcher.seen[0] == "c8"
        assert state.records["reviews"].fetched == 9
        assert state.records["reviews"].accepted == 81

    asyncio.run(scenario())


def test_metrics_count_this_process_and_gauges_leave_with_the_poller() -> None:
    async def scenario() -> tuple[CollectorRegistry, dict[str, float | None]]:
        registry = CollectorRegistry()
        metrics = SourceMetrics.create(registry)
        journal = Journal()
        fetcher = Script(
            [
                Page(
                    posts=(_post(1),),
                    rejected=(Rejected(0, "Weird Reason!", "", b""),),
                    duplicates=2,
                    cursor="c1",
                )
            ]
        )
        runner, _, state, _ = _runner(journal, {"news": fetcher}, metrics=metrics)
        state.records["news"] = SourceState("news", "rss", "c0", 60.0, 0.0, fetched=5)
        await runner.start("news")
        await _until(lambda: state.records["news"].cursor == "c1")

        def sample(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, {"source": "news", **labels})

        seen = {
            "pages": sample("monitor_source_pages_fetched_total"),
            "accepted": sample("monitor_source_posts_accepted_total"),
            "duplicates": sample("monitor_source_posts_duplicate_total"),
            "rejected": sample("monitor_source_posts_rejected_total", reason="other"),
            "last": sample("monitor_source_last_success_timestamp_seconds"),
            "interval": sample("monitor_source_interval_seconds"),
            "lag": sample("monitor_source_cursor_lag_seconds"),
        }
        await runner.stop("news")
        seen["interval_after"] = sample("monitor_source_interval_seconds")
        return registry, seen

    _, seen = asyncio.run(scenario())
    assert seen["pages"] == 1.0  # the 5 restored pages are not this process's
    assert seen["accepted"] == 1.0 and seen["duplicates"] == 2.0
    assert seen["rejected"] == 1.0  # a reason unfit for a label is "other"
    assert seen["last"] is not None and seen["last"] > 1.7e9
    assert seen["interval"] == 3600.0
    assert seen["lag"] is not None and seen["lag"] > 0  # the post is from 2026-01-01
    assert seen["interval_after"] is None


def test_dead_letters_of_are_bounded_and_name_the_source() -> None:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    letters = dead_letters_of(
        "reviews",
        "http_poll",
        [Rejected(3, "too_large", "x" * 10_000, b"y" * 2_000_000)],
        failed_at=at,
    )
    (letter,) = letters
    assert letter.topic == "http_poll:reviews" and letter.stage == "source"
    assert letter.payload_truncated
    assert len(letter.dumps()) <= 1_000_000


def test_state_refuses_a_cursor_over_the_limit() -> None:
    state = SourceState("r", "rss", "x" * (MAX_CURSOR_BYTES + 1), 60.0, 0.0)
    with pytest.raises(CursorTooLarge, match="over the"):
        state.encode()


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[]",
        b'{"schema": 1}',
        json.dumps({"schema": 2, "source": "r"}).encode(),
        b"[" * 100_000,
        b"{" + b" " * (200 * 1024) + b"}",
    ],
)
def test_state_decode_refuses_foreign_records(value: bytes) -> None:
    with pytest.raises(ValueError):
        SourceState.decode(value)


@given(
    cursor=st.none() | st.text(max_size=200),
    counts=st.lists(st.integers(min_value=0, max_value=2**40), min_size=4, max_size=4),
    reasons=st.dictionaries(
        st.text(min_size=1, max_size=50), st.integers(0, 10**6), max_size=30
    ),
    lag=st.none() | st.floats(min_value=0, max_value=1e9),
    error=st.text(max_size=300),
)
def test_state_round_trips(
    cursor: str | None,
    counts: list[int],
    reasons: dict[str, int],
    lag: float | None,
    error: str,
) -> None:
    from collections import Counter

    health = SourceHealth(
        fetched=counts[0],
        accepted=counts[1],
        rejected=Counter(reasons),
        duplicates=counts[2],
        errors=counts[3],
        last_success_epoch_s=1.7e9,
        cursor_lag_seconds=lag,
        last_error=error,
    )
    state = SourceState.of("r", "rss", cursor, 30.0, health, now_epoch_s=1.8e9)
    back = SourceState.decode(state.encode())
    assert back == state
    assert len(back.rejected) <= 20 and len(back.last_error) <= 200
    restored = SourceHealth()
    back.restore(restored)
    assert restored.accepted == counts[1] and restored.cursor_lag_seconds == lag


@pytest.mark.parametrize(
    ("last_success", "now", "stale"),
    [
        (None, 1000.0, True),  # never succeeded
        (1000.0, 1000.0 + 3 * 60, False),  # exactly 3 intervals: not yet
        (1000.0, 1000.0 + 3 * 60 + 1, True),
        (1000.0, 1010.0, False),
    ],
)
def test_stale_after_three_intervals(
    last_success: float | None, now: float, stale: bool
) -> None:
    state = SourceState("r", "rss", None, 60.0, 0.0, last_success_epoch_s=last_success)
    assert state.is_stale(now) is stale
