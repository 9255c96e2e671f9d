"""Every topic's record round-trips through its encode/decode pair, with its version."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.analysis.detection import BurstUpdate
from monitor.analysis.tickets import Evidence, Trigger
from monitor.analysis.windows import PostFacts, WindowAggregate
from monitor.errors import InvalidRecordError
from monitor.records import (
    SCHEMA_VERSION,
    Burst,
    PartitionReport,
    ReportKind,
    ScoredPost,
    TriggerEvent,
    bounded_dead_letter,
    decode_dead_letter,
    decode_scored_post,
    encode_scored_post,
    parse_post,
    post_to_payload,
)
from monitor.stages.state import (
    STATE_SCHEMA_VERSION,
    StateSchemaError,
    decode_state,
    encode_state,
)

T0 = datetime(2026, 11, 20, 5, 0, tzinfo=timezone.utc)
START = int(T0.timestamp())


def window(posts: int) -> WindowAggregate:
    aggregate = WindowAggregate(START, 300)
    for n in range(posts):
        aggregate.add(
            PostFacts(
                post_id=f"p{n}",
                published=START + n,
                negative=n % 2 == 0,
                topics=("空调异味",),
                keywords=("异味", "空调"),
                author=f"a{n % 3}",
                followers=n,
                reposts=1,
                excerpt="空调有股怪味",
            )
        )
    return aggregate


@pytest.mark.parametrize("posts", [0, 1, 7])
def test_a_partial_round_trips(posts: int) -> None:
    report = PartitionReport.partial(2, window(posts))
    again = PartitionReport.decode(report.encode())
    assert again == report
    assert report.key == f"{START}:2".encode()
    assert orjson.loads(report.encode())["schema"] == SCHEMA_VERSION


@pytest.mark.parametrize("posts", [1, 7])
def test_a_snapshot_round_trips_with_its_offset(posts: int) -> None:
    report = PartitionReport.snapshot(1, window(posts), offset=41)
    again = PartitionReport.decode(report.encode())
    assert again == report
    assert again.kind is ReportKind.SNAPSHOT and again.offset == 41
    # Its own key: never mistaken for the partial of the same bucket.
    assert report.key == f"snapshot:{START}:1".encode()
    with pytest.raises(InvalidRecordError, match="offset"):
        PartitionReport(1, ReportKind.SNAPSHOT, window=window(posts))


@given(st.integers(min_value=0, max_value=10_000), st.booleans())
def test_a_heartbeat_round_trips(partition: int, active: bool) -> None:
    report = PartitionReport.heartbeat(partition, active)
    assert PartitionReport.decode(report.encode()) == report
    assert report.kind is ReportKind.HEARTBEAT
    assert report.key == f"heartbeat:{partition}".encode()


def test_partition_reports_written_before_versions_still_decode() -> None:
    heartbeat = orjson.dumps({"partition": 1, "heartbeat": True, "active": False})
    assert PartitionReport.decode(heartbeat) == PartitionReport.heartbeat(1, False)
    partial = orjson.dumps({"partition": 0, "window": window(3).to_dict()})
    assert PartitionReport.decode(partial) == PartitionReport.partial(0, window(3))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "must be a JSON object"),
        (b'{"partition": "0", "kind": "heartbeat", "active": true}', "partition"),
        (b'{"partition": 0, "kind": "heartbeat"}', "active must be true/false"),
        (b'{"partition": 0, "kind": "closing"}', "unknown partition report kind"),
        (b'{"partition": 0, "kind": "snapshot", "window": {}}', "offset"),
        (b'{"partition": 0, "kind": "snapshot", "offset": -1}', "offset"),
        (b'{"partition": 0, "kind": "partial", "window": 3}', "window must be"),
        (b'{"partition": 0, "kind": "partial", "window": {}}', "not a window"),
        (b'{"schema": 2, "partition": 0, "kind": "heartbeat"}', "newer"),
        (b'{"schema": 0, "partition": 0}', "schema must be"),
        (b"{", "not valid JSON"),
    ],
)
def test_a_bad_partition_report_is_refused_with_the_reason(
    body: bytes, reason: str
) -> None:
    with pytest.raises(InvalidRecordError, match=reason):
        PartitionReport.decode(body)


def test_a_partial_without_a_window_cannot_be_built() -> None:
    with pytest.raises(InvalidRecordError):
        PartitionReport(0, ReportKind.PARTIAL)
    with pytest.raises(InvalidRecordError):
        PartitionReport(0, ReportKind.HEARTBEAT, window=window(1))


def burst_update(ended: bool) -> BurstUpdate:
    return BurstUpdate(
        burst_id=f"topic:空调异味@{START}",
        series="topic:空调异味",
        kind="topic",
        key="空调异味",
        phase="ended" if ended else "started",
        window_start=START + 600,
        window_seconds=300,
        observed=12.0,
        expected=1.5,
        score=7.25,
        started_at=START,
        peak_at=START + 300,
        ended_at=START + 600 if ended else None,
        peak_score=9.5,
        peak_observed=20.0,
        peak_expected=1.25,
        post_ids=("p1", "p2"),
    )


@pytest.mark.parametrize("ended", [False, True])
def test_a_burst_round_trips(ended: bool) -> None:
    burst = Burst.from_update(burst_update(ended), T0 + timedelta(seconds=1))
    assert Burst.decode(burst.encode()) == burst
    assert burst.message_key == "topic:空调异味".encode()
    body = orjson.loads(burst.encode())
    assert body.pop("schema") == SCHEMA_VERSION
    assert body == burst.body()
    assert body["started_at"] == T0.isoformat()


def test_a_burst_of_a_newer_schema_is_refused() -> None:
    burst = Burst.from_update(burst_update(False), T0)
    body = {"schema": SCHEMA_VERSION + 1, **burst.body()}
    with pytest.raises(InvalidRecordError, match="newer than this worker reads"):
        Burst.decode(orjson.dumps(body))


def trigger() -> Trigger:
    return Trigger(
        topic="空调异味",
        rule="负面声量",
        kind="negative_volume",
        keyword=None,
        window_start=T0,
        window_end=T0 + timedelta(minutes=5),
        observed_value=12.0,
        threshold=5.0,
        expected_value=1.5,
        burst_score=4.0,
        author_followers=1200,
        repeat_complaints=2,
        customer_tier="vip",
        evidence=(
            Evidence(
                post_id="p1",
                excerpt="空调有股怪味",
                followers=1200,
                reposts=3,
                published_at=T0 + timedelta(seconds=30),
                author="a",
                url="https://example.com/p1",
            ),
        ),
        keywords=("异味", "空调"),
    )


@pytest.mark.parametrize("closed_at", [None, T0 + timedelta(minutes=7)])
def test_a_trigger_event_round_trips(closed_at: datetime | None) -> None:
    event = TriggerEvent(trigger(), closed_at)
    assert TriggerEvent.decode(event.encode()) == event
    assert event.message_key == trigger().fingerprint.encode()


def test_a_trigger_event_written_before_versions_still_decodes() -> None:
    event = TriggerEvent(trigger(), T0)
    body = orjson.loads(event.encode())
    del body["schema"]
    assert TriggerEvent.decode(orjson.dumps(body)) == event


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'"x"', "must be a JSON object"),
        (b'{"trigger": {}}', "not a trigger"),
        (b'{"schema": 9, "trigger": {}}', "newer"),
    ],
)
def test_a_bad_trigger_event_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecordError, match=reason):
        TriggerEvent.decode(body)


def test_a_dead_letter_round_trips_with_its_version() -> None:
    letter = bounded_dead_letter(
        stage="score",
        reason="not valid JSON",
        payload=b"\xff{",
        topic="posts",
        failed_at=T0,
        partition=1,
        offset=9,
    )
    assert orjson.loads(letter.dumps())["schema"] == SCHEMA_VERSION
    assert decode_dead_letter(letter.dumps()) == letter
    newer = {**orjson.loads(letter.dumps()), "schema": SCHEMA_VERSION + 1}
    with pytest.raises(InvalidRecordError, match="newer"):
        decode_dead_letter(orjson.dumps(newer))


def test_a_scored_post_carries_its_version_and_newer_ones_are_refused() -> None:
    post = ScoredPost(
        post_id="weibo:1",
        source="weibo",
        text="好",
        original_text="好",
        positive_probability=0.9,
        label="positive",
        keywords=["好"],
        topics=[],
        published_at=T0,
        scored_at=T0,
    )
    data = decode_scored_post(encode_scored_post(post))
    assert data["schema"] == SCHEMA_VERSION
    with pytest.raises(InvalidRecordError, match="newer"):
        decode_scored_post(orjson.dumps({**data, "schema": SCHEMA_VERSION + 1}))


def test_a_post_of_a_newer_format_is_refused_and_ours_round_trips() -> None:
    post = parse_post({"id": "a", "text": "好", "published_at": T0.isoformat()})
    assert parse_post(post_to_payload(post)) == post
    with pytest.raises(InvalidRecordError, match="post schema 2 is newer"):
        parse_post({"schema": 2, "id": "a", "text": "好", "published_at": "x"})


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
)
def test_state_values_round_trip_through_their_envelope(value: object) -> None:
    assert decode_state("0:k", encode_state(value)) == value


def test_state_written_before_versions_is_read_and_newer_state_is_refused() -> None:
    assert decode_state("0:meta", orjson.dumps({"offset": 3})) == {"offset": 3}
    newer = orjson.dumps({"schema": STATE_SCHEMA_VERSION + 1, "state": {}})
    with pytest.raises(StateSchemaError, match="0:meta"):
        decode_state("0:meta", newer)
