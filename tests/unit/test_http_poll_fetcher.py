"""http_poll pure parts: mapping, state, cursor order, URL filling, options."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.records import Post
from monitor.sources.base import Rejected
from monitor.sources.config import HttpPollSource
from monitor.sources.http import FetchError, safe_url
from monitor.sources.http_poll import (
    MAX_STATE_BYTES,
    MAX_VENDOR_CURSOR_CHARS,
    RECENT_IDS,
    HttpPollOptions,
    PollState,
    cursor_goes_back,
    decode_state,
    encode_state,
    fill_url,
    id_key,
    map_item,
    options_from_config,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OPTIONS = HttpPollOptions(
    name="reviews",
    url="http://x/r?since={cursor}",
    items="data.items",
    cursor="data.next",
    map={
        "id": "review_id",
        "text": "content",
        "published_at": "created_at",
        "author": "user.nick",
        "url": "link",
    },
    constants={"topic": "空调"},
)


def _item(**extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "review_id": 17,
        "content": "太吵了",
        "created_at": "2026-02-01T08:00:00+08:00",
        "user": {"nick": "ann"},
        "link": "https://r.example/17",
    }
    item.update(extra)
    return item


def test_item_mapped_by_paths_and_constants() -> None:
    post = map_item(_item(), 0, OPTIONS, now=NOW)
    assert isinstance(post, Post)
    assert post.id == "reviews:17"
    assert post.text == "太吵了"
    assert post.published_at == datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    assert (post.author, post.url, post.topic) == (
        "ann",
        "https://r.example/17",
        "空调",
    )
    assert post.source == "reviews"


@pytest.mark.parametrize(
    ("vendor_id", "post_id"), [(0, "reviews:0"), ("a b", "reviews:a b")]
)
def test_any_integer_or_text_id_is_prefixed(vendor_id: Any, post_id: str) -> None:
    post = map_item(_item(review_id=vendor_id), 0, OPTIONS, now=NOW)
    assert isinstance(post, Post) and post.id == post_id


def test_source_constant_overrides_default_and_optional_fields_may_miss() -> None:
    options = HttpPollOptions(
        name="r",
        url="http://x",
        map={**OPTIONS.map},
        constants={"source": "dianping"},
    )
    item = _item()
    del item["user"], item["link"]
    post = map_item(item, 0, options, now=NOW)
    assert isinstance(post, Post)
    assert post.source == "dianping" and post.author is None and post.url is None


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        (1_767_225_600, datetime(2026, 1, 1, tzinfo=UTC)),
        (1_767_225_600_000, datetime(2026, 1, 1, tzinfo=UTC)),
        (1_767_225_600.5, datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)),
    ],
)
def test_epoch_numbers_read_as_seconds_or_milliseconds(
    created_at: float, expected: datetime
) -> None:
    post = map_item(_item(created_at=created_at), 0, OPTIONS, now=NOW)
    assert isinstance(post, Post) and post.published_at == expected


@pytest.mark.parametrize(
    ("item", "reason", "detail"),
    [
        ("just text", "mapping", "not an object"),
        (_item(content=None), "mapping", "text: nothing at 'content'"),
        ({"content": "x", "created_at": "2026-01-01T00:00:00Z"}, "mapping", "id:"),
        (_item(review_id={"a": 1}), "mapping", "id: an object"),
        (_item(review_id=True), "mapping", "id: a bool"),
        (_item(review_id="  "), "mapping", "id: empty"),
        (_item(review_id=1.5), "mapping", "id: empty or not"),
        (_item(created_at="2026-02-01 08:00"), "invalid", "published_at"),
        (_item(created_at=1e300), "invalid", "not a time"),
        (_item(link="javascript:alert(1)"), "invalid", "url"),
        (_item(content="x" * 100_001), "invalid", "text is longer"),
    ],
)
def test_unfit_items_are_rejected_with_the_raw_item(
    item: Any, reason: str, detail: str
) -> None:
    result = map_item(item, 3, OPTIONS, now=NOW)
    assert isinstance(result, Rejected)
    assert (result.index, result.reason) == (3, reason)
    assert detail in result.detail
    assert orjson.loads(result.raw) == item


def test_future_items_refused_when_asked() -> None:
    options = HttpPollOptions(**{**OPTIONS.__dict__, "max_future_seconds": 60.0})
    late = _item(created_at="2026-03-01T12:05:00+00:00")
    result = map_item(late, 0, options, now=NOW)
    assert isinstance(result, Rejected) and result.reason == "invalid"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["review_id", "content", "created_at", "user", "nick", "x"]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@given(_json)
def test_mapping_never_raises(item: Any) -> None:
    result = map_item(item, 0, OPTIONS, now=NOW)
    assert isinstance(result, Post | Rejected)
    if isinstance(result, Post):
        assert result.id.startswith("reviews:")


_states = st.builds(
    PollState,
    vendor=st.none() | st.text(max_size=MAX_VENDOR_CURSOR_CHARS),
    page=st.none() | st.integers(min_value=0, max_value=10**9 - 1),
    etag=st.none() | st.text(min_size=1, max_size=100),
    last_modified=st.none() | st.text(min_size=1, max_size=40),
    validated=st.none() | st.just("0123456789abcdef"),
    seen=st.lists(st.text(max_size=30).map(id_key), max_size=50).map(tuple),
)


@given(_states)
def test_state_round_trips(state: PollState) -> None:
    encoded = encode_state(state)
    assert len(encoded.encode()) <= MAX_STATE_BYTES
    assert decode_state(encoded) == state


def test_state_stays_bounded_with_many_ids_and_long_values() -> None:
    state = PollState(
        vendor="c" * 10_000,
        etag="e" * 5_000,
        last_modified="m" * 5_000,
        seen=tuple(id_key(str(n)) for n in range(10_000)),
    )
    encoded = encode_state(state)
    assert len(encoded.encode()) <= MAX_STATE_BYTES
    decoded = decode_state(encoded)
    assert decoded.seen == state.seen[-len(decoded.seen) :]
    assert len(decoded.seen) == RECENT_IDS
    assert decoded.vendor == "c" * MAX_VENDOR_CURSOR_CHARS


@pytest.mark.parametrize(
    ("stored", "pagination", "expected"),
    [
        (None, "cursor", PollState()),
        ("", "cursor", PollState()),
        ("abc123", "cursor", PollState(vendor="abc123")),
        ("1767225600", "cursor", PollState(vendor="1767225600")),
        ('{"next": "x"}', "cursor", PollState(vendor='{"next": "x"}')),
        (
            '{"v": 99, "cursor": "x"}',
            "cursor",
            PollState(vendor='{"v": 99, "cursor": "x"}'),
        ),
        ("[1, 2", "cursor", PollState(vendor="[1, 2")),
        ("x" * (MAX_VENDOR_CURSOR_CHARS + 1), "cursor", PollState()),
        ("y" * (MAX_STATE_BYTES + 1), "cursor", PollState()),
        ("7", "page", PollState(page=7)),
        ("seven", "page", PollState()),
        (
            '{"v": 1, "cursor": 5, "page": "2", "seen": ["zz", 3, "0123456789abcdef"]}',
            "cursor",
            PollState(seen=("0123456789abcdef",)),
        ),
    ],
)
def test_unknown_stored_state_never_crashes(
    stored: str | None, pagination: Any, expected: PollState
) -> None:
    assert decode_state(stored, pagination=pagination) == expected


@given(
    st.text(max_size=300)
    | st.builds(json.dumps, _json)
    | st.builds(
        lambda extra: json.dumps({"v": 1, **extra}),
        st.dictionaries(
            st.sampled_from(["cursor", "page", "etag", "modified", "for", "seen"]),
            _json,
        ),
    ),
    st.sampled_from(["cursor", "page"]),
)
def test_decode_state_never_raises(stored: str, pagination: Any) -> None:
    state = decode_state(stored, pagination=pagination)
    assert len(encode_state(state).encode()) <= MAX_STATE_BYTES
    assert state.page is None or 0 <= state.page < 10**9


@pytest.mark.parametrize(
    ("current", "new", "back"),
    [
        (None, "5", False),
        ("", "5", False),
        ("10", "9", True),
        ("10", "11", False),
        ("1.5", "1.25", True),
        ("2026-02-01T00:00:00Z", "2026-01-31T23:59:59Z", True),
        ("2026-02-01T08:00:00+08:00", "2026-02-01T00:00:00Z", False),
        ("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", False),
        ("2026-02-01", "2026-01-01", True),
        ("abc", "abb", False),
        ("10", "abc", False),
        ("10", "2026-01-01T00:00:00Z", False),
        ("nan", "5", False),
    ],
)
def test_cursor_goes_back_only_for_comparable_values(
    current: str | None, new: str, back: bool
) -> None:
    assert cursor_goes_back(current, new) is back


def test_fill_url_encodes_values() -> None:
    template = "http://x/r?since={cursor}&p={page}"
    assert fill_url(template, cursor="", page=1) == "http://x/r?since=&p=1"
    assert (
        fill_url(template, cursor="a b&c=/d", page=2)
        == "http://x/r?since=a%20b%26c%3D%2Fd&p=2"
    )


def test_fetch_error_hides_query_and_user_info() -> None:
    url = "https://user:pw@api.example:8443/v1/items?api_key=s3cret&since=1#f"
    assert safe_url(url) == "https://api.example:8443/v1/items?…"
    error = FetchError("reviews", url, "HTTP 500", status=500)
    assert "s3cret" not in str(error) and "pw" not in str(error)
    assert (
        str(error)
        == "source 'reviews': GET https://api.example:8443/v1/items?…: HTTP 500"
    )


def _source(**extra: Any) -> HttpPollSource:
    data: dict[str, Any] = {
        "name": "reviews",
        "kind": "http_poll",
        "url": "http://127.0.0.1:8081/reviews?since={cursor}",
        "interval": "30s",
        "items": "data.items",
        "cursor": "data.next_cursor",
        "map": {
            "id": "review_id",
            "text": "content",
            "published_at": "created_at",
            "topic": {"const": "空调"},
        },
        "headers": {"Authorization": "Bearer ${SOURCE_TOKEN}"},
        **extra,
    }
    return HttpPollSource.model_validate(data, context={"env": {"SOURCE_TOKEN": "t0k"}})


def test_options_from_config_splits_map_and_resolves_secrets() -> None:
    options = options_from_config(_source(rate={"per_second": 2, "burst": 3}))
    assert options.map == {
        "id": "review_id",
        "text": "content",
        "published_at": "created_at",
    }
    assert options.constants == {"topic": "空调"}
    assert options.headers == {"Authorization": "Bearer t0k"}
    assert "t0k" not in repr(options)
    assert (options.interval_seconds, options.timeout_seconds) == (30.0, 30.0)
    assert (options.rate_per_second, options.rate_burst) == (2, 3)
    assert options.pagination == "cursor" and options.cursor == "data.next_cursor"


def test_options_from_config_pages_when_url_has_page_and_no_cursor() -> None:
    options = options_from_config(
        _source(url="http://127.0.0.1:8081/r?page={page}", cursor=None),
        max_future_seconds=300,
    )
    assert options.pagination == "page" and options.max_future_seconds == 300
    assert options.rate_per_second == 5.0


def test_an_entrys_body_limit_reaches_the_fetcher_options() -> None:
    from monitor.sources.config import HttpPollSource, RssSource
    from monitor.sources.rss import rss_options_from_config

    common = {"interval": "30s", "max_body_bytes": 4096}
    poll = HttpPollSource(
        name="reviews",
        kind="http_poll",
        url="http://127.0.0.1:1/r?since={cursor}",
        items="data.items",
        map={"id": "id", "text": "text", "published_at": "at"},
        **common,
    )
    feed = RssSource(
        name="feed", kind="rss", url="http://127.0.0.1:1/feed.xml", **common
    )
    assert options_from_config(poll).max_body_bytes == 4096
    assert rss_options_from_config(feed).max_body_bytes == 4096
    assert options_from_config(poll, max_body_bytes=10).max_body_bytes == 10
