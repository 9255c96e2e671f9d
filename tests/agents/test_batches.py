"""consume_batches: a failing batch is retried, bisected, dead-lettered or
abandoned, and never acknowledged before it is done."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
)
from faust.exceptions import ProducerSendError

import monitor.pipelines.batches as pipelines
from monitor.errors import BatchAbandoned, InvalidRecordError, SinkUnavailable
from tests.agents.test_stages import (
    POST,
    OneBatchStream,
    dead_letters,
    make_pipeline,
    value,
)
from tests.fakes import fake_event


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipelines, "BATCH_RETRY_INITIAL_SECONDS", 0.0)


def events(n: int, *, partition: int = 0) -> list:  # noqa: ANN001
    return [
        fake_event(
            json.dumps({**POST, "id": f"p{i}"}).encode(),
            partition=partition,
            offset=i,
        )
        for i in range(n)
    ]


async def consume(pipeline, batch, handle) -> OneBatchStream:  # noqa: ANN001
    stream = OneBatchStream(batch)
    await pipelines.consume_batches(
        stream,
        pipeline,
        name="stage",
        batch_size=100,
        batch_seconds=0.1,
        handle=handle,
    )
    return stream


async def test_a_poison_record_is_bisected_out_and_dead_lettered_alone() -> None:
    pipeline = make_pipeline()
    handled: list[str] = []

    async def handle(pipe, chunk) -> None:  # noqa: ANN001
        ids = [json.loads(e.value)["id"] for e in chunk]
        if "p5" in ids:
            raise ValueError("cannot digest p5")
        handled.extend(ids)

    stream = await consume(pipeline, events(11), handle)
    assert stream.acked
    # (a record may be handled twice: the systemic probe, then its half)
    assert sorted(set(handled), key=lambda i: int(i[1:])) == [
        f"p{i}" for i in range(11) if i != 5
    ]
    (letter,) = dead_letters(pipeline)
    assert letter.post_id == "p5" and letter.offset == 5 and letter.stage == "stage"
    assert "ValueError: cannot digest p5" in letter.reason
    assert "failed 3 times on its own" in letter.reason
    assert value(pipeline.metrics.batch_bisections, stage="stage") >= 3
    assert value(pipeline.metrics.stage_pending_records, stage="stage") == 0


async def test_records_are_handled_in_offset_order_when_bisecting() -> None:
    pipeline = make_pipeline()
    order: list[int] = []

    async def handle(pipe, chunk) -> None:  # noqa: ANN001
        if any(e.message.offset == 2 for e in chunk):
            raise ValueError("bad")
        order.extend(e.message.offset for e in chunk)

    await consume(pipeline, events(8), handle)
    assert list(dict.fromkeys(order)) == [0, 1, 3, 4, 5, 6, 7]


async def test_an_outage_is_waited_out_never_bisected_nor_dead_lettered() -> None:
    pipeline = make_pipeline()
    calls: list[int] = []

    async def handle(pipe, chunk) -> None:  # noqa: ANN001
        calls.append(len(chunk))
        if len(calls) <= 12:  # far more than batch_max_attempts
            raise SinkUnavailable("Elasticsearch down", retry_after=0.0)

    stream = await consume(pipeline, events(6), handle)
    assert calls == [6] * 13  # the whole batch every time
    assert stream.acked and dead_letters(pipeline) == []
    assert value(pipeline.metrics.batch_bisections, stage="stage") == 0
    assert value(pipeline.metrics.batch_retries, stage="stage") == 12


def _wrapped(error: Exception, cause: Exception) -> Exception:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (SinkUnavailable("down", retry_after=1.0), True),
        (KafkaTimeoutError(), True),
        (KafkaConnectionError("refused"), True),
        (NotLeaderForPartitionError(), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (MessageSizeTooLargeError(), False),
        (_wrapped(ProducerSendError("send failed"), KafkaTimeoutError()), True),
        (_wrapped(ProducerSendError("send failed"), MessageSizeTooLargeError()), False),
        (_wrapped(RuntimeError("while handling"), KafkaConnectionError()), True),
        (InvalidRecordError("bad"), False),
        (ValueError("bug"), False),
        (KeyError("x"), False),
    ],
)
def test_transient_failures_are_told_from_faults_of_the_batch(
    error: Exception, transient: bool
) -> None:
    assert pipelines.is_transient(error) is transient


async def test_a_failing_batch_is_abandoned_unacknowledged_when_stopping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits: list[tuple[int, bool]] = []

    class Exited(BaseException):
        pass

    def fake_exit(code: int) -> None:
        # Real Faust acks a batch in a finally when the agent moves on; the
        # process must be gone before that: was the batch acked by then?
        exits.append((code, stream.acked))
        raise Exited

    monkeypatch.setattr(pipelines.os, "_exit", fake_exit)
    monkeypatch.setattr(pipelines.logging, "shutdown", lambda: None)
    pipeline = make_pipeline()
    stream = OneBatchStream(events(3))

    async def handle(pipe, chunk) -> None:  # noqa: ANN001
        pipe.shutdown.begin()  # SIGTERM arrives while Elasticsearch is down
        raise BatchAbandoned("stopping while Elasticsearch down")

    with pytest.raises(Exited):
        await pipelines.consume_batches(
            stream,
            pipeline,
            name="stage",
            batch_size=10,
            batch_seconds=0.1,
            handle=handle,
        )
    assert exits == [(pipelines.EXIT_ABANDONED, False)]
    assert dead_letters(pipeline) == []


async def test_stopping_wakes_a_backoff_sleep_at_once() -> None:
    pipeline = make_pipeline()
    sleeper = asyncio.ensure_future(pipeline.shutdown.sleep(60))
    await asyncio.sleep(0.01)
    pipeline.shutdown.begin()
    await asyncio.wait_for(sleeper, timeout=1)


async def test_progress_is_exported_while_a_batch_waits() -> None:
    pipeline = make_pipeline()
    seen: list[float] = []

    async def handle(pipe, chunk) -> None:  # noqa: ANN001
        seen.append(value(pipe.metrics.stage_pending_records, stage="stage"))

    await consume(pipeline, events(4), handle)
    assert seen == [4.0]
    assert value(pipeline.metrics.stage_pending_records, stage="stage") == 0
    assert value(pipeline.metrics.stage_last_progress, stage="stage") > 1.7e9


async def test_a_failure_that_hits_every_record_is_held_not_dead_lettered() -> None:
    pipeline = make_pipeline()
    broken = {"on": True}
    calls: list[int] = []

    async def handle(pipe, chunk) -> None:  # noqa: ANN001
        calls.append(len(chunk))
        if broken["on"]:
            if len(calls) >= 8:
                broken["on"] = False  # the dependency is fixed
            raise PermissionError("credentials refused")

    stream = await consume(pipeline, events(20), handle)
    assert stream.acked and dead_letters(pipeline) == []
    assert value(pipeline.metrics.batch_systemic_failures, stage="stage") == 1
    assert value(pipeline.metrics.batch_bisections, stage="stage") == 0
    assert calls[-1] == 20  # the whole batch, once the cause was fixed


async def test_a_batch_handled_again_does_not_dead_letter_a_record_twice() -> None:
    pipeline = make_pipeline()
    attempts: list[int] = []

    async def handle(pipe, chunk) -> None:  # noqa: ANN001
        attempts.append(1)
        await pipe.dead_letter_event("stage", chunk[0], "undecodable")
        if len(attempts) < 3:
            raise ValueError("a later step failed")

    await consume(pipeline, events(2), handle)
    assert len(attempts) == 3
    assert [letter.offset for letter in dead_letters(pipeline)] == [0]
