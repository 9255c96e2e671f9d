"""DeliveryWatch: partitions whose consumer read past what their agent got."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from aiokafka.errors import KafkaError
from hypothesis import given
from hypothesis import strategies as st

from monitor.pipelines.partitions import _faust_consumer, coordination_error
from monitor.stages.delivery import DeliveryWatch

P0 = ("posts", 0)
P1 = ("posts", 1)
OTHER = ("window-partials", 0)
STALL = 30.0


def _watch() -> DeliveryWatch[tuple[str, int]]:
    watch: DeliveryWatch[tuple[str, int]] = DeliveryWatch(STALL)
    watch.waiting(["posts"], now=0.0)
    return watch


def test_a_position_past_what_the_agent_got_is_sought_back_after_the_stall() -> None:
    # the seen case: nothing delivered since the rebalance, committed 303,
    # the consumer's position at the end of the log
    watch = _watch()
    positions = {P0: 2067, P1: 500}
    committed = {P0: 303, P1: 500}
    assert watch.check(2, positions, committed, now=5.0) == {}
    assert watch.check(2, positions, committed, now=20.0) == {}
    assert watch.check(2, positions, committed, now=35.0) == {P0: 303}
    # once per offset: the same state is not reported again
    assert watch.check(2, positions, committed, now=80.0) == {}


def test_the_last_offset_taken_in_this_generation_wins_over_committed() -> None:
    watch = _watch()
    watch.taken(3, {P0: 99})
    watch.waiting(["posts"], now=1.0)
    committed = {P0: 50}
    assert watch.check(3, {P0: 100}, committed, now=2.0) == {}  # all delivered
    assert watch.check(3, {P0: 180}, committed, now=2.0) == {}
    assert watch.check(3, {P0: 180}, committed, now=40.0) == {P0: 100}


def test_what_was_taken_in_an_earlier_generation_does_not_count() -> None:
    watch = _watch()
    watch.taken(1, {P0: 9})
    watch.waiting(["posts"], now=1.0)
    # after a rebalance the committed offset is where reading starts again
    assert watch.check(2, {P0: 40}, {P0: 40}, now=2.0) == {}
    assert watch.check(2, {P0: 40}, {P0: 40}, now=60.0) == {}
    assert watch.check(2, {P0: 41}, {P0: 40}, now=61.0) == {}
    assert watch.check(2, {P0: 41}, {P0: 40}, now=92.0) == {P0: 40}


def test_a_busy_agent_is_never_rewound() -> None:
    # Elasticsearch down, the agent stuck in its batch: records wait in
    # Faust's buffers, position ahead of what the agent took, for minutes
    watch = _watch()
    watch.taken(1, {P0: 10})
    for now in (0.0, 31.0, 62.0, 300.0):
        assert watch.check(1, {P0: 900}, {P0: 0}, now=now) == {}


def test_an_agent_that_took_a_batch_during_the_suspicion_starts_it_again() -> None:
    watch = _watch()
    assert watch.check(1, {P0: 50}, {P0: 10}, now=1.0) == {}
    watch.taken(1, {P1: 7})  # same topic, other partition: the agent was busy
    watch.waiting(["posts"], now=20.0)
    assert watch.check(1, {P0: 50}, {P0: 10}, now=40.0) == {}
    assert watch.check(1, {P0: 50}, {P0: 10}, now=49.0) == {}
    assert watch.check(1, {P0: 50}, {P0: 10}, now=50.0) == {P0: 10}


def test_a_moving_position_restarts_the_clock() -> None:
    watch = _watch()
    assert watch.check(1, {P0: 50}, {P0: 10}, now=1.0) == {}
    assert watch.check(1, {P0: 60}, {P0: 10}, now=31.0) == {}
    assert watch.check(1, {P0: 60}, {P0: 10}, now=61.0) == {P0: 10}


def test_unknown_positions_offsets_and_unwatched_topics_are_left_alone() -> None:
    watch = _watch()
    for now in (0.0, 100.0):
        assert watch.check(1, {P0: None, P1: 9, OTHER: 70}, {OTHER: 3}, now) == {}


def test_a_new_offset_on_the_same_partition_is_reported_again() -> None:
    watch = _watch()
    assert watch.check(1, {P0: 50}, {P0: 10}, now=0.0) == {}
    assert watch.check(1, {P0: 50}, {P0: 10}, now=30.0) == {P0: 10}
    watch.taken(1, {P0: 49})
    watch.waiting(["posts"], now=31.0)
    assert watch.check(1, {P0: 90}, {P0: 10}, now=32.0) == {}
    assert watch.check(1, {P0: 90}, {P0: 10}, now=62.0) == {P0: 50}


def test_the_stall_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stall_seconds"):
        DeliveryWatch(0)


@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 10_000), st.floats(0, 5)),
        max_size=40,
    )
)
def test_a_consumer_never_ahead_of_its_agent_is_never_rewound(
    steps: list[tuple[int, int, float]],
) -> None:
    # Healthy delivery: whenever the timer looks, each position is one past
    # the last offset the agent took (or the committed offset before any).
    watch = _watch()
    last = {P0: -1, P1: -1}
    now = 0.0
    for partition, advance, pause in steps:
        tp = (P0, P1)[partition]
        last[tp] += advance
        now += pause
        if advance:
            watch.taken(1, {tp: last[tp]})
            watch.waiting(["posts"], now)
        now += 31.0
        positions = {p: offset + 1 for p, offset in last.items()}
        assert watch.check(1, positions, {P0: 0, P1: 0}, now) == {}


# --- a consumer whose group coordination died -------------------------------


class _Holder:
    """Stands in for the Faust app -> consumer -> thread -> aiokafka chain."""

    def __init__(self, **attributes: object) -> None:
        self.__dict__.update(attributes)


def _consumer_with(task: object) -> object:
    return _Holder(_coordinator=_Holder(_coordination_task=task))


def _app_with(consumer: object) -> object:
    return _Holder(consumer=_Holder(_thread=_Holder(_consumer=consumer)))


def test_a_coordination_task_that_died_is_found_and_one_running_or_stopped_is_not() -> (
    None
):
    loop = asyncio.new_event_loop()
    try:
        died = loop.create_future()
        died.set_exception(KafkaError("Unexpected error during coordination"))
        running = loop.create_future()
        stopped = loop.create_future()
        stopped.set_result(None)
        cancelled = loop.create_future()
        cancelled.cancel()
        error = coordination_error(_consumer_with(died))
        assert isinstance(error, KafkaError)
        for task in (running, stopped, cancelled, None):
            assert coordination_error(_consumer_with(task)) is None
        assert coordination_error(None) is None  # not started yet
        # Faust's consumer, found under its thread
        found = _faust_consumer(_app_with(_consumer_with(died)))  # type: ignore[arg-type]
        assert isinstance(coordination_error(found), KafkaError)
        assert _faust_consumer(_Holder(consumer=None)) is None  # type: ignore[arg-type]
    finally:
        loop.close()


def test_the_attributes_the_coordination_check_reads_exist_in_these_versions() -> None:
    # coordination_error walks private attributes: an upgrade that renames
    # them must fail here, not leave the check silently blind.
    from aiokafka.consumer import consumer, group_coordinator
    from faust.transport.drivers import aiokafka as faust_aiokafka

    assert "self._coordination_task = " in inspect.getsource(
        group_coordinator.GroupCoordinator
    )
    assert "self._coordinator = GroupCoordinator(" in inspect.getsource(
        consumer.AIOKafkaConsumer
    )
    assert "self._consumer = " in inspect.getsource(
        faust_aiokafka.AIOKafkaConsumerThread
    )
    assert "self._thread = " in inspect.getsource(faust_aiokafka.Consumer.__mro__[1])


def test_an_agent_is_waiting_only_between_batches() -> None:
    watch: DeliveryWatch[tuple[str, int]] = DeliveryWatch(STALL)
    assert not watch.is_waiting("posts")  # its agent has not started
    watch.waiting(["posts"], now=0.0)
    assert watch.is_waiting("posts")
    watch.taken(1, {P0: 3})
    assert not watch.is_waiting("posts")
    assert not watch.is_waiting("window-partials")
    watch.waiting(["posts"], now=1.0)
    assert watch.is_waiting("posts")
