"""One post id, one count, within a dedup horizon of event time.

The partition ledger remembers post-id hashes (``DedupMemory``), logs them in
the state log, and rebuilds the same memory on restore.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis import windows
from monitor.analysis.windows import (
    PartitionLedger,
    PostFacts,
    post_hash,
    window_start,
)
from monitor.analysis.windows.dedup import (
    CHUNK_IDS,
    DedupMemory,
    bucket_seconds_for,
    pack_ids,
    unpack_ids,
)

SIZE = 300
GRACE = 120
HOUR = 3600
DAY = 86_400
HORIZON = 7 * DAY
T0 = 1_800_000_000  # a window and hour boundary


def _post(post_id: str, published: float) -> PostFacts:
    return PostFacts(
        post_id=post_id,
        published=published,
        negative=False,
        topics=("t",),
        keywords=("k",),
        excerpt=f"text of {post_id}",
    )


def _ledger(**kwargs: Any) -> PartitionLedger:
    kwargs.setdefault("dedup_horizon", HORIZON)
    return PartitionLedger(5, SIZE, GRACE, **kwargs)


def _persist(log: dict[str, Any], writes: dict[str, Any]) -> None:
    """Apply writes as the compacted state log does: None deletes."""
    for key, value in writes.items():
        if value is None:
            log.pop(key, None)
        else:
            log[key] = json.loads(json.dumps(value))


def _restore(log: dict[str, Any], **kwargs: Any) -> PartitionLedger:
    kwargs.setdefault("dedup_horizon", HORIZON)
    return PartitionLedger.restore(5, SIZE, GRACE, list(log.items()), **kwargs)


def _counted(ledger: PartitionLedger) -> int:
    return sum(w.posts for w in ledger.windows.open.values())


# --- packing and buckets -------------------------------------------------------


@given(st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_packed_ids_round_trip(ids: list[int]) -> None:
    assert list(unpack_ids(pack_ids(ids))) == ids


def test_packed_ids_are_big_endian_uint64() -> None:
    assert pack_ids([1]) == "AAAAAAAAAAE="
    assert pack_ids([2**64 - 1, 0]) == "//////////8AAAAAAAAAAA=="


def test_a_full_chunk_entry_stays_far_below_half_a_mebibyte() -> None:
    assert len(pack_ids(range(CHUNK_IDS))) < 32 * 1024 < 512 * 1024


@pytest.mark.parametrize(
    ("window", "bucket"), [(60, 3600), (300, 3600), (420, 3780), (7200, 7200)]
)
def test_buckets_are_whole_windows_of_at_least_an_hour(
    window: int, bucket: int
) -> None:
    assert bucket_seconds_for(window) == bucket


@pytest.mark.parametrize(
    ("horizon", "max_ids", "bucket"), [(-1, 10, 60), (0, 0, 60), (0, 10, 0)]
)
def test_dedup_memory_rejects_bad_settings(
    horizon: int, max_ids: int, bucket: int
) -> None:
    with pytest.raises(ValueError):
        DedupMemory(horizon, max_ids, bucket)


# --- duplicates, redeliveries -------------------------------------------------------


def test_the_same_id_at_another_time_in_a_later_batch_counts_once() -> None:
    ledger = _ledger()
    first = ledger.apply([(0, _post("a", T0 + 10)), (1, _post("b", T0 + 20))])
    assert (first.counted, first.duplicate_offsets) == (2, [])
    # the same post fetched again, its published_at moved to another window
    again = ledger.apply([(2, _post("a", T0 + 400)), (3, _post("c", T0 + 410))])
    assert (again.counted, again.duplicates) == (1, 1)
    assert again.duplicate_offsets == [2]
    assert _counted(ledger) == 3


def test_without_a_horizon_only_the_open_window_recognises_a_copy() -> None:
    ledger = _ledger(dedup_horizon=0)
    ledger.apply([(0, _post("a", T0 + 10))])
    outcome = ledger.apply([(1, _post("a", T0 + 400)), (2, _post("a", T0 + 10))])
    assert outcome.counted == 1  # the copy in another window counts again
    assert outcome.duplicate_offsets == [2]  # the copy in the same window not
    assert ledger.remembered_ids == 0
    assert not any(":ids:" in key for key in outcome.writes)


def test_a_producer_retry_at_a_new_offset_is_a_duplicate() -> None:
    ledger = _ledger()
    outcome = ledger.apply([(0, _post("a", T0 + 10)), (1, _post("a", T0 + 10))])
    assert (outcome.counted, outcome.duplicates, outcome.duplicate_offsets) == (
        1,
        1,
        [1],
    )
    later = ledger.apply([(7, _post("a", T0 + 10))])
    assert later.duplicate_offsets == [7]


def test_a_redelivery_at_an_old_offset_is_skipped_not_a_duplicate() -> None:
    ledger = _ledger()
    ledger.apply([(0, _post("a", T0 + 10)), (1, _post("b", T0 + 20))])
    outcome = ledger.apply([(0, _post("a", T0 + 10)), (1, _post("b", T0 + 20))])
    assert (outcome.skipped, outcome.duplicates, outcome.duplicate_offsets) == (
        2,
        0,
        [],
    )


def test_a_late_post_is_remembered_so_a_later_copy_is_a_duplicate() -> None:
    ledger = _ledger()
    ledger.apply([(0, _post("a", T0 + 10)), (1, _post("b", T0 + 1000))])
    late = ledger.apply([(2, _post("old", T0 + 20))])  # window T0 closed
    assert (late.late, late.counted) == (1, 0)
    # its first version is the one indexed: a copy dated into an open window
    # is not counted either
    copy = ledger.apply([(3, _post("old", T0 + 1001))])
    assert copy.duplicate_offsets == [3] and copy.counted == 0


# --- the state log ---------------------------------------------------------------


def _memory(ledger: PartitionLedger) -> tuple[set[int], Any]:
    return set(ledger.dedup.ids), ledger.dedup.layout()


def test_restore_rebuilds_the_same_memory_and_still_catches_a_copy() -> None:
    ledger = _ledger()
    log: dict[str, Any] = {}
    offset = 0
    for hour in range(5):
        batch = []
        for n in range(7):
            batch.append((offset, _post(f"h{hour}-{n}", T0 + hour * HOUR + n * 400)))
            offset += 1
        _persist(log, ledger.apply(batch).writes)
    _persist(log, ledger.flush().writes)
    assert any(":ids:" in key for key in log)
    restored = _restore(log)
    assert _memory(restored) == _memory(ledger)
    assert restored.remembered_ids == ledger.remembered_ids == 35
    outcome = restored.apply([(offset, _post("h0-3", T0 + 4 * HOUR + 100))])
    assert outcome.duplicate_offsets == [offset] and outcome.counted == 0


def test_id_entries_go_first_and_are_bounded_per_batch() -> None:
    ledger = _ledger()
    posts = [(n, _post(f"p{n}", T0 + n / 2)) for n in range(5 * CHUNK_IDS // 2)]
    writes = ledger.apply(posts).writes
    keys = list(writes)
    ids_keys = [key for key in keys if ":ids:" in key]
    # one bucket: two full chunks and the one being filled
    assert ids_keys == [f"5:ids:{T0}:0", f"5:ids:{T0}:1", f"5:ids:{T0}:2"]
    assert keys[: len(ids_keys)] == ids_keys
    assert all(len(json.dumps(writes[key])) < 32 * 1024 for key in ids_keys)
    # the next batch rewrites only the chunk it added to
    more = ledger.apply([(10**6, _post("one-more", T0 + 5))]).writes
    assert [key for key in more if ":ids:" in key] == [f"5:ids:{T0}:2"]


def test_ids_beyond_the_horizon_are_forgotten_and_their_entries_deleted() -> None:
    ledger = _ledger()
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", T0 + 10))]).writes)
    assert f"5:ids:{T0}:0" in log
    # a week and a bit later (plus grace): the first hour is past the horizon
    still = T0 + HOUR + HORIZON + GRACE - 1
    _persist(log, ledger.apply([(1, _post("b", still))]).writes)
    assert post_hash("a") in ledger.dedup and f"5:ids:{T0}:0" in log
    outcome = ledger.apply([(2, _post("c", still + 1))])
    _persist(log, outcome.writes)
    assert post_hash("a") not in ledger.dedup
    assert outcome.writes[f"5:ids:{T0}:0"] is None
    assert list(outcome.writes)[-1] == f"5:ids:{T0}:0"  # deletions last
    assert f"5:ids:{T0}:0" not in log
    assert _memory(_restore(log)) == _memory(ledger)
    # forgotten: a copy of "a" now counts (it is beyond the horizon)
    copy = ledger.apply([(3, _post("a", still + 2))])
    assert (copy.counted, copy.duplicate_offsets) == (1, [])


def test_a_post_older_than_the_horizon_is_not_remembered() -> None:
    ledger = _ledger()
    ledger.apply([(0, _post("now", T0 + HORIZON + DAY))])
    ledger.apply([(1, _post("ancient", T0))])  # late, and past the horizon
    assert post_hash("ancient") not in ledger.dedup


def test_past_the_cap_the_oldest_ids_go_early_and_are_counted() -> None:
    ledger = _ledger(dedup_max_ids=1_600)  # chunks of 100 ids
    assert ledger.dedup.chunk_ids == 100
    log: dict[str, Any] = {}
    offset = 0
    forgotten = 0
    for hour in range(4):
        batch = [
            (offset + n, _post(f"h{hour}-{n}", T0 + hour * HOUR + n))
            for n in range(500)
        ]
        offset += 500
        outcome = ledger.apply(batch)
        forgotten += outcome.dedup_forgotten_early
        _persist(log, outcome.writes)
    # 2,000 ids seen, at most 1,600 held: the oldest whole chunks went
    assert ledger.remembered_ids == 1_600
    assert forgotten == 400
    assert post_hash("h0-0") not in ledger.dedup
    assert post_hash("h0-399") not in ledger.dedup
    assert post_hash("h0-400") in ledger.dedup
    assert ledger.dedup.layout()[T0][0] == 4  # its first chunk still held
    assert not any(key.startswith(f"5:ids:{T0}:3") for key in log)
    assert _memory(_restore(log, dedup_max_ids=1_600)) == _memory(ledger)


def test_restore_drops_ids_of_a_batch_whose_other_writes_did_not_land() -> None:
    ledger = _ledger()
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", T0 + 10))]).writes)
    before = _memory(ledger)
    writes = ledger.apply([(1, _post("b", T0 + 20)), (2, _post("c", T0 + 30))]).writes
    # only the id entries (written first) land, then the worker dies
    landed = {key: value for key, value in writes.items() if ":ids:" in key}
    assert landed and list(writes)[: len(landed)] == list(landed)
    _persist(log, landed)
    restored = _restore(log)
    assert restored.applied_offset == 0
    assert _memory(restored) == before
    # the batch handled again is counted, not taken for its own duplicates
    outcome = restored.apply([(1, _post("b", T0 + 20)), (2, _post("c", T0 + 30))])
    assert (outcome.counted, outcome.duplicates) == (2, 0)
    _persist(log, outcome.writes)
    assert _memory(_restore(log)) == _memory(restored)


def _batches() -> list[list[tuple[int, PostFacts]]]:
    return [
        [(0, _post("a", T0 + 10)), (1, _post("b", T0 + 320))],
        # closes windows T0 (a, x) and T0 + 300 (b, c), opens T0 + 900 (d)
        [
            (2, _post("x", T0 + 20)),
            (3, _post("c", T0 + 330)),
            (4, _post("d", T0 + 900)),
        ],
    ]


@pytest.mark.parametrize("landed", range(7))
def test_a_batch_whose_writes_landed_in_part_is_handled_again(landed: int) -> None:
    """Any prefix of a batch's writes: restored as before it, or as after it."""
    first, second = _batches()
    ledger = _ledger()
    log: dict[str, Any] = {}
    _persist(log, ledger.apply(first).writes)
    before = _memory(ledger)
    writes = list(ledger.apply(second).writes.items())
    after = _memory(ledger)
    keys = [key for key, _ in writes]
    assert len(keys) == 7
    meta = keys.index("5:meta")
    assert ":ids:" in keys[0]  # ids first
    assert [value for _, value in writes[meta + 1 :]] == [None, None]  # deletes last
    _persist(log, dict(writes[:landed]))
    restored = _restore(log)
    partials = list(restored.unsent)
    if landed <= meta:  # not applied: handled again, counted once
        assert restored.applied_offset == 1 and not partials
        assert _memory(restored) == before
        outcome = restored.apply(second)
        assert (outcome.counted, outcome.duplicates) == (3, 0)
    else:  # applied: nothing is counted twice
        assert restored.applied_offset == 4
        assert _memory(restored) == after
        outcome = restored.apply(second)
        assert outcome.skipped == 3
    partials += outcome.closed
    _persist(log, outcome.writes)
    partials += _restore(log).flush().closed
    posts: dict[int, int] = {}
    for partial in partials:  # a window closed again has the same counts
        assert posts.setdefault(partial.start, partial.posts) == partial.posts
    assert {start: n for start, n in posts.items() if n} == {
        T0: 2,
        T0 + 300: 2,
        T0 + 900: 1,
    }
    # whatever was left over is deleted or rewritten by the next batch
    assert _restore(log)._stale_keys == []


def test_turning_the_horizon_off_deletes_the_logged_ids() -> None:
    ledger = _ledger()
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", T0 + 10))]).writes)
    restored = _restore(log, dedup_horizon=0)
    assert restored.remembered_ids == 0
    _persist(log, restored.apply([(1, _post("b", T0 + 20))]).writes)
    assert not any(":ids:" in key for key in log)


# --- crash and replay with duplicates ------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_each_post_id_counts_once_across_crashes_with_partial_writes(
    data: st.DataObject,
) -> None:
    """Copies of ids at new offsets, crashes after a prefix of a batch's writes.

    The state log keeps a partition's writes in order, so a failed batch
    leaves a prefix of its writes. After each crash the ledger is restored
    and the stream redelivered from an offset at or before the first one not
    applied. Each id counts once (its first copy that is not late), whatever
    its copies' times; the windows hold exactly those posts; the restored
    memory equals the live one after every batch.
    """
    ids = data.draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=30))
    stream: list[tuple[int, PostFacts]] = []
    moment = float(T0)
    for offset, post_id in enumerate(ids):
        moment += data.draw(st.integers(-200, 900), label="step")
        stream.append((offset, _post(post_id, moment)))

    def restore() -> PartitionLedger:
        return PartitionLedger.restore(
            5, SIZE, GRACE, list(log.items()), dedup_horizon=HORIZON
        )

    log: dict[str, Any] = {}
    ledger = _ledger()
    position = 0
    effective: list[Any] = []  # (batch, outcome) of the batches applied
    partials: list[Any] = []  # every partial closed, sent or re-sent
    crashes = 0
    while position < len(stream):
        size = data.draw(st.integers(1, 6), label="batch size")
        batch = stream[position : position + size]
        outcome = ledger.apply(batch)
        writes = list(outcome.writes.items())
        if crashes < 3 and data.draw(st.booleans(), label="crash"):
            crashes += 1
            landed = data.draw(st.integers(0, len(writes)), label="writes landed")
            _persist(log, dict(writes[:landed]))
            ledger = restore()
            partials += ledger.unsent
            if ledger.applied_offset >= batch[-1][0]:
                effective.append((batch, outcome))  # its meta entry landed
            position = data.draw(
                st.integers(0, ledger.applied_offset + 1), label="replay from"
            )
            continue
        _persist(log, outcome.writes)
        partials += outcome.closed
        effective.append((batch, outcome))
        position += size
        restored = restore()
        assert _memory(restored) == _memory(ledger)
        assert restored.applied_offset == ledger.applied_offset
        assert restored.recent_duplicates == ledger.recent_duplicates
    partials += ledger.flush().closed

    # The reference: windows close at the end of each batch; an id is a
    # duplicate once seen (counted or late) at an earlier offset, and a
    # duplicate redelivered is reported again.
    seen: set[str] = set()
    copies: set[int] = set()
    expected: Counter[int] = Counter()
    applied, latest, closed = -1, -math.inf, -math.inf
    for batch, outcome in effective:
        duplicates = []
        for offset, post in batch:
            start = window_start(post.published, SIZE)
            if offset <= applied:
                if offset in copies:
                    duplicates.append(offset)
                continue
            if post.post_id in seen:
                duplicates.append(offset)
                copies.add(offset)
                continue
            seen.add(post.post_id)
            if start > closed:
                expected[start] += 1
                latest = max(latest, post.published)
        assert outcome.duplicate_offsets == duplicates
        applied = max(applied, batch[-1][0])
        if latest > -math.inf:
            closed = max(closed, window_start(latest - GRACE, SIZE) - SIZE)
    assert sum(o.counted for _, o in effective) == sum(expected.values())
    posts: dict[int, int] = {}
    for partial in partials:  # a window closed again has the same counts
        assert posts.setdefault(partial.start, partial.posts) == partial.posts
    assert {start: n for start, n in posts.items() if n} == dict(expected)


# --- duplicates redelivered ----------------------------------------------------------


def _copies() -> list[tuple[int, PostFacts]]:
    """A post, its copy dated a day later (another daily index), another post."""
    return [
        (0, _post("a", T0 + 10)),
        (1, _post("a", T0 + DAY + 10)),
        (2, _post("b", T0 + 20)),
    ]


def test_a_redelivered_copy_is_reported_as_a_duplicate_again() -> None:
    ledger = _ledger()
    assert ledger.apply(_copies()).duplicate_offsets == [1]
    # the index step failed after the count: the batch comes again (a retry) ...
    again = ledger.apply(_copies())
    # ... counted as skipped, so the duplicates metric counts each copy once
    assert (again.skipped, again.duplicates, again.duplicate_offsets) == (3, 0, [1])
    # ... or in halves (a bisection)
    assert ledger.apply(_copies()[1:]).duplicate_offsets == [1]
    assert ledger.apply(_copies()[:1]).duplicate_offsets == []


def test_a_copy_within_one_batch_is_reported_on_every_redelivery() -> None:
    ledger = _ledger()
    batch = [
        (0, _post("a", T0 + 10)),
        (1, _post("a", T0 + 10)),
        (2, _post("a", T0 + 500)),
    ]
    assert ledger.apply(batch).duplicate_offsets == [1, 2]
    assert ledger.apply(batch).duplicate_offsets == [1, 2]
    # a redelivery running on into new offsets
    outcome = ledger.apply(
        [*batch[1:], (3, _post("a", T0 + 20)), (4, _post("c", T0 + 30))]
    )
    assert outcome.duplicate_offsets == [1, 2, 3]
    assert (outcome.skipped, outcome.duplicates, outcome.counted) == (2, 1, 1)


@pytest.mark.parametrize("horizon", [0, HORIZON])
def test_a_redelivered_copy_is_reported_again_after_a_restore(horizon: int) -> None:
    """A crash or shutdown between counting and indexing, or a rebalance."""
    ledger = _ledger(dedup_horizon=horizon)
    log: dict[str, Any] = {}
    batch = [
        (0, _post("a", T0 + 10)),
        (1, _post("b", T0 + 20)),
        (2, _post("a", T0 + 10)),
    ]
    outcome = ledger.apply(batch)
    assert outcome.duplicate_offsets == [2]
    _persist(log, outcome.writes)
    # later batches and an idle flush rewrite the meta entry: it keeps them
    _persist(log, ledger.apply([(3, _post("c", T0 + 30))]).writes)
    _persist(log, ledger.flush().writes)
    restored = _restore(log, dedup_horizon=horizon)
    assert restored.recent_duplicates == [2]
    again = restored.apply(batch)
    assert (again.skipped, again.duplicate_offsets) == (3, [2])


def test_a_batch_logs_its_duplicates_in_an_entry_of_its_own() -> None:
    ledger = _ledger()
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", T0 + 10))]).writes)
    assert not any(":dups:" in key for key in log)  # nothing while there are none
    writes = ledger.apply(
        [(1, _post("a", T0 + 10)), (2, _post("b", T0 + 20)), (3, _post("a", T0 + DAY))]
    ).writes
    assert writes["5:dups:3"] == {"offsets": [1, 3]}
    keys = list(writes)
    assert keys.index("5:dups:3") < keys.index("5:meta")  # trusted once meta landed
    assert set(writes["5:meta"]) == {"offset", "closed_through", "max_published"}
    _persist(log, writes)
    # written once: a batch without duplicates leaves it be
    later = ledger.apply([(4, _post("c", T0 + DAY + 30))]).writes
    assert not any(":dups:" in key for key in later)
    _persist(log, later)
    assert _restore(log).recent_duplicates == [1, 3]


def test_entries_a_failed_batch_left_stay_ignored_once_the_offset_passes_them() -> None:
    """Its meta entry did not land; the next one did, its deletes did not."""
    ledger = _ledger()
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", T0 + 10))]).writes)
    failed = ledger.apply([(1, _post("a", T0 + 10)), (2, _post("b", T0 + 20))])
    _persist(log, {k: v for k, v in failed.writes.items() if k != "5:meta"})
    restored = _restore(log)
    assert (restored.applied_offset, restored.recent_duplicates) == (0, [])
    left = {"5:dups:2", f"5:d:{T0}:2"}
    assert set(restored._stale_keys) == left
    # handled again, cut otherwise: the same copy is found and logged anew
    outcome = restored.apply(
        [(1, _post("a", T0 + 10)), (2, _post("b", T0 + 20)), (3, _post("c", T0 + 30))]
    )
    assert outcome.duplicate_offsets == [1]
    assert outcome.writes["5:dups:3"] == {"offsets": [1]}
    assert set(outcome.writes["5:meta"]["stale"]) == left
    assert all(outcome.writes[key] is None for key in left)
    # ... and its deletes do not land: what they were to delete stays ignored
    _persist(log, {k: v for k, v in outcome.writes.items() if v is not None})
    again = _restore(log)
    assert again.applied_offset == 3 and set(again._stale_keys) == left
    assert again.recent_duplicates == [1]
    assert _counted(again) == 3  # a, b and c, once each
    # once a batch's writes all landed, the next meta entry names none
    _persist(log, again.apply([(4, _post("d", T0 + 40))]).writes)
    assert not left & set(log)
    tail = again.apply([(5, _post("e", T0 + 50))]).writes
    assert "stale" not in tail["5:meta"]


def test_only_the_duplicates_of_the_last_offsets_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(windows.partition, "DUPLICATE_OFFSETS_SPAN", 100)
    ledger = _ledger()
    log: dict[str, Any] = {}
    batch = [(n, _post("a", T0 + n)) for n in range(6)]  # 1 to 5 are copies
    _persist(log, ledger.apply(batch).writes)
    _persist(log, ledger.apply([(50, _post("a", T0 + 50))]).writes)
    assert ledger.recent_duplicates == [1, 2, 3, 4, 5, 50]
    _persist(log, ledger.apply([(104, _post("b", T0 + 60))]).writes)
    assert ledger.recent_duplicates == [1, 2, 3, 4, 5, 50]  # 5 is within 100
    # at 105 the first entry is beyond the span: forgotten and deleted
    outcome = ledger.apply([(105, _post("c", T0 + 70))])
    assert outcome.writes["5:dups:5"] is None
    assert ledger.recent_duplicates == [50]
    # a restore forgets it too, even if its delete did not land
    _persist(log, {k: v for k, v in outcome.writes.items() if v is not None})
    restored = _restore(log)
    assert restored.recent_duplicates == [50] and "5:dups:5" in restored._stale_keys
    # a redelivery from beyond the span reports no copy (op_type=create is the
    # last guard: only a copy dated another day is indexed again)
    assert ledger.apply(batch).duplicate_offsets == []


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_each_post_id_is_indexed_from_one_offset_across_redeliveries(
    data: st.DataObject,
) -> None:
    """What the index stage indexes: each batch handed on, less its duplicates.

    A batch may fail after its count landed (the index step fails and the
    same ledger handles it again, or the worker stops or crashes and the
    ledger is restored) or while the count's writes land (a prefix of them;
    restored). The stream then comes again from any offset at or before the
    first one not indexed yet (the committed offset), cut into other batches.
    Within the horizon, every id is indexed from exactly one offset: its first.
    """
    ids = data.draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=30))
    stream = [
        (offset, _post(post_id, T0 + data.draw(st.integers(0, 3 * DAY), label="t")))
        for offset, post_id in enumerate(ids)
    ]
    log: dict[str, Any] = {}
    ledger = _ledger()
    indexed: set[int] = set()
    committed = position = failures = 0
    while committed < len(stream):
        size = data.draw(st.integers(1, 6), label="batch size")
        batch = stream[position : position + size]
        outcome = ledger.apply(batch)
        fate = "indexed"
        if failures < 6:
            fate = data.draw(
                st.sampled_from(["indexed", "index failed", "stopped", "count failed"])
            )
        writes = list(outcome.writes.items())
        if fate == "count failed":
            landed = data.draw(st.integers(0, len(writes)), label="writes landed")
            writes = writes[:landed]
        _persist(log, dict(writes))
        if fate == "indexed":
            reported = set(outcome.duplicate_offsets)
            indexed |= {offset for offset, _ in batch if offset not in reported}
            committed = position = batch[-1][0] + 1
            continue
        if fate != "index failed":
            ledger = _restore(log)
        failures += 1
        position = data.draw(st.integers(0, committed), label="redelivered from")
    first: dict[str, int] = {}
    for offset, post in stream:
        first.setdefault(post.post_id, offset)
    assert indexed == set(first.values())


# --- one record of the ids -----------------------------------------------------------


def test_with_a_horizon_ids_are_held_and_logged_once() -> None:
    ledger = _ledger()
    writes = ledger.apply([(0, _post("a", T0 + 10)), (1, _post("b", T0 + 310))]).writes
    assert ledger.windows.seen == {}  # only the memory holds them
    deltas = [value for key, value in writes.items() if ":d:" in key]
    assert len(deltas) == 2 and not any("ids" in value for value in deltas)
    assert ledger.remembered_ids == 2
    # a copy in the same open window is still recognised
    assert ledger.apply([(2, _post("a", T0 + 20))]).duplicate_offsets == [2]


def test_without_a_horizon_the_windows_hold_the_ids_and_deltas_list_them() -> None:
    ledger = _ledger(dedup_horizon=0)
    writes = ledger.apply([(0, _post("a", T0 + 10))]).writes
    assert ledger.windows.seen == {T0: {post_hash("a")}}
    assert writes[f"5:d:{T0}:0"]["ids"] == [post_hash("a")]


def test_ids_of_deltas_logged_without_a_horizon_restore_into_the_memory() -> None:
    log: dict[str, Any] = {}
    batch = [(0, _post("a", T0 + 10)), (1, _post("b", T0 + 400))]
    _persist(log, _ledger(dedup_horizon=0).apply(batch).writes)
    restored = _restore(log)
    assert restored.windows.seen == {}
    assert restored.dedup.ids == {post_hash("a"), post_hash("b")}
    outcome = restored.apply([(2, _post("a", T0 + 20)), (3, _post("c", T0 + 30))])
    assert outcome.duplicate_offsets == [2]
    # logged with that batch: a restore rebuilds the same memory
    _persist(log, outcome.writes)
    assert _memory(_restore(log)) == _memory(restored)


def test_ids_both_in_deltas_and_in_the_memory_restore_the_same_memory() -> None:
    """A log written with a horizon before deltas dropped their ids."""
    ledger = _ledger()
    log: dict[str, Any] = {}
    batch = [(0, _post("a", T0 + 10)), (1, _post("b", T0 + 400))]
    _persist(log, ledger.apply(batch).writes)
    log[f"5:d:{T0}:1"]["ids"] = [post_hash("a")]
    log[f"5:d:{T0 + SIZE}:1"]["ids"] = [post_hash("b")]
    restored = _restore(log)
    assert _memory(restored) == _memory(ledger)
    assert restored.dedup.writes(1) == ({}, [])  # nothing to log again
    assert restored.apply(batch).skipped == 2
