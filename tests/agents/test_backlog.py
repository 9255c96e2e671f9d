"""The hot path's backlog: counting goes on while Elasticsearch is slow or
down, the backlog stays within its bound, and no record is let go (so
committed) before its trailing effects are written."""

from __future__ import annotations

import asyncio
import json

import pytest

import monitor.pipelines.batches as pipelines
from monitor.pipelines.backlog import Backlog
from monitor.pipelines.score import handle_posts
from tests.agents.test_stages import POST, counter, dead_letters, make_pipeline, value
from tests.fakes import FakeDocumentSink, fake_event


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipelines, "BATCH_RETRY_INITIAL_SECONDS", 0.0)


def events(ids: list[str], *, first_offset: int = 0) -> list:  # noqa: ANN001
    return [
        fake_event(
            json.dumps({**POST, "id": post_id}).encode(),
            offset=first_offset + n,
        )
        for n, post_id in enumerate(ids)
    ]


def stream_ack(batch: list) -> None:  # noqa: ANN001
    """What Faust's take_events does when the agent moves on."""
    for event in batch:
        event.ack()


class Gate:
    """A trailing handler that waits to be opened, recording what it wrote."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.written: list[list[int]] = []

    async def __call__(self, pipeline, events) -> None:  # noqa: ANN001
        await self.open.wait()
        self.written.append([e.message.offset for e in events])


async def test_records_are_held_until_their_effects_are_written() -> None:
    pipeline = make_pipeline()
    backlog = Backlog(pipeline, name="index", limit=100)
    gate = Gate()
    batch = events(["a", "b"])
    await backlog.put(batch, gate)  # returns at once: the writer waits
    stream_ack(batch)
    await asyncio.sleep(0.01)
    assert [e.message.acked for e in batch] == [False, False]
    assert value(pipeline.metrics.stage_pending_records, stage="index") == 2
    gate.open.set()
    await backlog.join()
    assert [e.message.acked for e in batch] == [True, True]
    assert gate.written == [[0, 1]]
    assert value(pipeline.metrics.stage_pending_records, stage="index") == 0
    await backlog.close()


async def test_a_full_backlog_makes_the_next_batch_wait_and_keeps_order() -> None:
    pipeline = make_pipeline()
    backlog = Backlog(pipeline, name="index", limit=3)
    gate = Gate()
    first, second, third = (events([f"p{n}"] * 2, first_offset=2 * n) for n in range(3))
    await backlog.put(first, gate)
    put_second = asyncio.ensure_future(backlog.put(second, gate))
    await asyncio.sleep(0.01)
    assert not put_second.done()  # 2 + 2 > 3: it waits for room
    assert backlog.records == 2
    gate.open.set()
    await put_second
    await backlog.put(third, gate)
    await backlog.join()
    assert gate.written == [[0, 1], [2, 3], [4, 5]]
    await backlog.close()


async def test_a_batch_larger_than_the_bound_is_taken_into_an_empty_backlog() -> None:
    pipeline = make_pipeline()
    backlog = Backlog(pipeline, name="index", limit=1)
    gate = Gate()
    gate.open.set()
    await asyncio.wait_for(backlog.put(events(["a", "b", "c"]), gate), 1)
    await backlog.join()
    assert gate.written == [[0, 1, 2]]
    await backlog.close()


async def test_without_a_backlog_the_effects_are_written_before_put_returns() -> None:
    pipeline = make_pipeline()
    backlog = Backlog(pipeline, name="index", limit=0)
    gate = Gate()
    gate.open.set()
    batch = events(["a"])
    await backlog.put(batch, gate)
    assert gate.written == [[0]]
    assert batch[0].message.refcount == 1  # nothing extra held


async def test_counting_goes_on_while_elasticsearch_is_down() -> None:
    sink = FakeDocumentSink(unavailable_times=10**9)
    pipeline = make_pipeline(sink)
    stage = counter(pipeline)
    backlog = Backlog(pipeline, name="index", limit=4)
    first, second = events(["a", "b"]), events(["c", "d"], first_offset=2)
    await asyncio.wait_for(handle_posts(pipeline, stage, first, backlog), 2)
    await asyncio.wait_for(handle_posts(pipeline, stage, second, backlog), 2)
    stream_ack(first + second)
    ledger = await stage.ledger(0)
    assert sum(w.posts for w in ledger.windows.open.values()) == 4  # counted
    await asyncio.sleep(0.05)
    assert sink.documents == {} and sink.attempts > 1  # still retrying
    assert not any(e.message.acked for e in first + second)
    # The backlog is full: the next batch is counted only once there is room.
    third = asyncio.ensure_future(
        handle_posts(pipeline, stage, events(["e"], first_offset=4), backlog)
    )
    await asyncio.sleep(0.05)
    assert not third.done()
    sink.unavailable_times = 0  # Elasticsearch is back
    await asyncio.wait_for(third, 2)
    await asyncio.wait_for(backlog.join(), 2)
    assert {doc_id for _, doc_id in sink.documents} == {"a", "b", "c", "d", "e"}
    assert all(e.message.acked for e in first + second)
    assert dead_letters(pipeline) == []
    await backlog.close()


async def test_a_document_refused_for_good_is_dead_lettered_the_rest_written() -> None:
    sink = FakeDocumentSink(refuse={"b"})
    pipeline = make_pipeline(sink)
    stage = counter(pipeline)
    backlog = Backlog(pipeline, name="index", limit=100)
    batch = events(["a", "b", "c"])
    await handle_posts(pipeline, stage, batch, backlog)
    stream_ack(batch)
    await asyncio.wait_for(backlog.join(), 2)
    assert {doc_id for _, doc_id in sink.documents} == {"a", "c"}
    (letter,) = dead_letters(pipeline)
    assert letter.post_id == "b" and letter.stage == "index"
    assert all(e.message.acked for e in batch)
    await backlog.close()


async def test_a_record_whose_effects_keep_failing_is_bisected_out() -> None:
    pipeline = make_pipeline()
    backlog = Backlog(pipeline, name="index", limit=100)
    written: list[int] = []

    async def effects(pipe, chunk) -> None:  # noqa: ANN001
        if any(e.message.offset == 2 for e in chunk):
            raise ValueError("cannot map this one")
        written.extend(e.message.offset for e in chunk)

    batch = events([f"p{n}" for n in range(5)])
    await backlog.put(batch, effects)
    stream_ack(batch)
    await asyncio.wait_for(backlog.join(), 2)
    assert sorted(set(written)) == [0, 1, 3, 4]
    (letter,) = dead_letters(pipeline)
    assert letter.offset == 2 and letter.stage == "index"
    assert all(e.message.acked for e in batch)
    await backlog.close()


async def test_a_dead_writer_makes_put_fail_rather_than_hold_records() -> None:
    pipeline = make_pipeline()
    backlog = Backlog(pipeline, name="index", limit=1)
    gate = Gate()
    await backlog.put(events(["a"]), gate)
    waiting = asyncio.ensure_future(backlog.put(events(["b"], first_offset=1), gate))
    await asyncio.sleep(0.01)
    assert backlog._task is not None
    backlog._task.cancel()  # stands for a bug that kills the writer
    with pytest.raises(RuntimeError, match="backlog's writer stopped"):
        await asyncio.wait_for(waiting, 1)


async def test_a_dead_letter_is_not_acknowledged_ahead_of_held_records() -> None:
    # Faust commits past a one-offset gap, and past any gap while it knows no
    # committed offset: a dead letter acked ahead of held records would let a
    # crash lose them. settle() keeps each partition's acks in offset order.
    sink = FakeDocumentSink(unavailable_times=10**9)
    pipeline = make_pipeline(sink)
    backlog = Backlog(pipeline, name="index", limit=100)
    batch = events(["a", "b", "c"])
    batch[1].value = b"not json"  # dead-lettered at scoring
    await handle_posts(pipeline, counter(pipeline), batch, backlog)
    backlog.settle(batch)  # what consume_batches does after handle_batch
    stream_ack(batch)
    await asyncio.sleep(0.05)
    assert not any(e.message.acked for e in batch)
    sink.unavailable_times = 0
    await asyncio.wait_for(backlog.join(), 2)
    await asyncio.sleep(0.01)  # the settle entry follows the write
    assert all(e.message.acked for e in batch)
    assert {doc_id for _, doc_id in sink.documents} == {"a", "c"}
    await backlog.close()


async def test_a_batch_wholly_dead_lettered_still_waits_for_earlier_writes() -> None:
    pipeline = make_pipeline()
    backlog = Backlog(pipeline, name="index", limit=100)
    gate = Gate()
    first = events(["a"])
    await backlog.put(first, gate)
    backlog.settle(first)
    stream_ack(first)
    invalid = events(["x"], first_offset=1)
    backlog.settle(invalid)  # nothing to write for it
    stream_ack(invalid)
    await asyncio.sleep(0.01)
    assert not invalid[0].message.acked  # behind "a", still unwritten
    gate.open.set()
    await asyncio.wait_for(backlog.join(), 2)
    await asyncio.sleep(0.01)
    assert first[0].message.acked and invalid[0].message.acked
    await backlog.close()


async def test_the_backlog_is_bounded_in_bytes_too() -> None:
    pipeline = make_pipeline()
    backlog = Backlog(pipeline, name="index", limit=100, limit_bytes=1_000)
    gate = Gate()
    big = events(["a"])
    big[0].value = b"x" * 900
    await backlog.put(big, gate)
    second = events(["b"], first_offset=1)
    second[0].value = b"y" * 200  # 900 + 200 > 1,000 bytes
    waiting = asyncio.ensure_future(backlog.put(second, gate))
    await asyncio.sleep(0.01)
    assert not waiting.done() and backlog.bytes == 900
    gate.open.set()
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(backlog.join(), 1)
    assert backlog.bytes == 0 and gate.written == [[0], [1]]
    await backlog.close()
