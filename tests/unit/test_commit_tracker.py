"""The hot path's commits: only ever up to the first record not done."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.stages.offsets import CommitTracker, InFlight

P0 = ("posts", 0)
P1 = ("posts", 1)


def records(tp: tuple[str, int], offsets: range | list[int]) -> list[InFlight]:
    return [InFlight(tp, offset, b"{}") for offset in offsets]


def test_a_record_is_shaped_like_a_faust_event_and_its_message() -> None:
    record = InFlight(P1, 7, b"x", key=b"k", timestamp=1.5)
    assert record.message is record
    assert (record.message.topic, record.message.partition) == P1
    assert record.message.tp == P1
    assert (record.message.offset, record.value, record.key) == (7, b"x", b"k")
    assert record.message.timestamp == 1.5


def test_a_record_is_done_once_every_reference_is_let_go() -> None:
    record = InFlight(P0, 0, None)
    record.incref()  # held by the backlog
    assert not record.ack()  # the batch lets go
    assert not record.done
    assert record.ack()  # the backlog wrote it
    assert record.done
    assert not record.ack()  # a second ack changes nothing
    assert record.refs == 0


def test_commits_stop_at_the_first_record_still_held() -> None:
    tracker: CommitTracker[tuple[str, int]] = CommitTracker()
    batch = records(P0, range(10, 15))
    tracker.handed(batch)
    assert tracker.committable() == {}  # nothing done yet
    batch[2].incref()  # offset 12 held (its effects in the backlog)
    for record in batch:
        record.ack()
    assert tracker.committable() == {P0: 12}  # 10 and 11: the next to read is 12
    assert tracker.held(P0) == 3
    assert tracker.committable() == {}  # an offset is returned once
    batch[2].ack()
    assert tracker.committable() == {P0: 15}
    assert tracker.held(P0) == 0


def test_partitions_commit_on_their_own() -> None:
    tracker: CommitTracker[tuple[str, int]] = CommitTracker()
    zero, one = records(P0, [3, 4]), records(P1, [8])
    tracker.handed(zero + one)
    one[0].ack()
    assert tracker.committable() == {P1: 9}
    zero[1].ack()  # a later record done first does not move the commit
    assert tracker.committable() == {}
    zero[0].ack()
    assert tracker.committable() == {P0: 5}


def test_a_record_read_again_replaces_it_and_everything_after_it() -> None:
    tracker: CommitTracker[tuple[str, int]] = CommitTracker()
    early, late = records(P0, [5, 6]), records(P0, [7, 8])
    tracker.handed(early + late)
    for record in early:
        record.ack()
    late[0].ack()
    # the consumer went back to 7 while 8 was still held: both read again
    again = records(P0, [7, 8])
    tracker.handed(again)
    assert tracker.held(P0) == 4  # 5 and 6 (done, not yet returned), 7, 8
    assert tracker.committable() == {P0: 7}
    again[0].ack()
    assert tracker.committable() == {P0: 8}  # the new copy of 8 is not done
    again[1].ack()
    assert tracker.committable() == {P0: 9}


def test_a_commit_never_goes_backwards() -> None:
    tracker: CommitTracker[tuple[str, int]] = CommitTracker()
    batch = records(P0, [0, 1, 2])
    tracker.handed(batch)
    for record in batch:
        record.ack()
    assert tracker.committable() == {P0: 3}
    again = records(P0, [1])  # read again below the commit
    tracker.handed(again)
    again[0].ack()
    assert tracker.committable() == {}
    assert tracker.held(P0) == 0


def test_forgetting_a_partition_lets_it_be_read_again_from_anywhere() -> None:
    tracker: CommitTracker[tuple[str, int]] = CommitTracker()
    tracker.handed(records(P0, [5, 6]))
    tracker.forget([P0])  # revoked, or assigned anew: read from the commit
    assert tracker.held(P0) == 0
    again = records(P0, [5, 6])
    tracker.handed(again)
    for record in again:
        record.ack()
    assert tracker.committable() == {P0: 7}


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(min_value=1, max_value=3)),
        min_size=1,
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_the_commit_never_passes_a_record_that_is_not_done(
    plan: list[tuple[bool, int]], rnd: object
) -> None:
    """Whatever order references go in, every offset below a commit is done."""
    tracker: CommitTracker[tuple[str, int]] = CommitTracker()
    handed: list[InFlight] = []
    offset = 0
    for held, gap in plan:
        offset += gap  # compacted or dead-lettered gaps between offsets
        record = InFlight(P0, offset, None)
        if held:
            record.incref()
        handed.append(record)
    tracker.handed(handed)
    references = [r for r in handed for _ in range(r.refs)]
    rnd.shuffle(references)  # type: ignore[attr-defined]
    committed = None
    for record in references:
        record.ack()
        moved = tracker.committable().get(P0)
        if moved is not None:
            assert committed is None or moved > committed
            committed = moved
            assert all(r.done for r in handed if r.offset < committed)
            assert any(r.offset == committed - 1 for r in handed)
    assert committed == handed[-1].offset + 1
