"""The records exchanged between stages: the data contract of the pipeline.

Each Kafka topic carries exactly one record type (see :mod:`monitor.topics`),
encoded and decoded here and nowhere else:

=================  ======================  ====================================
topic              record                  encode / decode
=================  ======================  ====================================
posts              :class:`Post`           :func:`post_to_payload` /
                                           :func:`parse_post`
scored-posts       :class:`ScoredPost`     :func:`encode_scored_post` /
                                           :func:`decode_scored_post`
window-partials    :class:`PartitionReport`  ``encode`` / ``decode``
bursts             :class:`Burst`          ``encode`` / ``decode``
triggers           :class:`TriggerEvent`   ``encode`` / ``decode``
dead-letters       :class:`DeadLetter`     ``dumps`` / :func:`decode_dead_letter`
=================  ======================  ====================================

(``count-state`` and ``merge-state`` carry the stages' state, versioned by
:mod:`monitor.stages.state`; ``tickets`` is reserved for ticket events.)

Records are JSON on the wire without Faust's ``__faust`` metadata, so that
producers outside this code base (webhooks, other teams) can write them.
The three records other programs may write or read (posts, scored posts,
dead letters) are Faust records; the ones only the stages exchange are
frozen dataclasses around the pure analysis types they carry.

**Schema versions.** Every record carries ``schema`` (:data:`SCHEMA_VERSION`;
a record without one is version 1, what this code wrote before versions).
A reader refuses a record of a newer version than it knows with a reason
(:class:`~monitor.errors.InvalidRecordError`, so it becomes a dead letter
that can be replayed once every worker is upgraded); see the README's
"Upgrades".

The ``posts`` topic is the ingestion boundary: it carries posts in the public
post format documented in the README, and :func:`parse_post` is the one place
that validates them. Every other record carries the id of what it came from.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, cast

import faust
import orjson

from monitor.analysis.detection import BurstUpdate
from monitor.analysis.tickets.codec import trigger_from_dict, trigger_to_dict
from monitor.analysis.tickets.model import Trigger
from monitor.analysis.topics import MAX_TOPIC_CHARS
from monitor.analysis.windows import WindowAggregate
from monitor.errors import InvalidRecordError

#: The schema version of every record this code writes (see the module doc).
SCHEMA_VERSION = 1

#: Fields of the post format with a meaning; every other field goes to ``meta``.
POST_FIELDS = (
    "schema",
    "id",
    "text",
    "published_at",
    "source",
    "author",
    "url",
    "topic",
    "metrics",
)
#: Counters a post may carry under ``metrics``; all non-negative integers.
POST_METRICS = ("likes", "reposts", "followers")
#: Counts are stored as Elasticsearch ``long`` (signed 64-bit).
MAX_COUNT = 2**63 - 1
#: Kafka's default limit on a produced message (``max.request.size``), which
#: every record a stage writes must stay under.
MAX_MESSAGE_BYTES = 1_000_000
#: Longer texts are refused: a scored post carries the text twice and must
#: stay well under :data:`MAX_MESSAGE_BYTES`.
MAX_TEXT_CHARS = 100_000
#: ...and so are texts whose JSON encoding (UTF-8, quotes excluded) is longer
#: than this: 100,000 emoji are exactly this long, but control characters
#: take 6 bytes each (``\u0001``).
MAX_TEXT_JSON_BYTES = 400_000
#: Years outside this range (in UTC) are refused: they cannot date a daily
#: index.
MIN_YEAR, MAX_YEAR = 1970, 2100
#: Elasticsearch refuses document ids longer than 512 bytes.
MAX_ID_BYTES = 512
#: Longest ``url``, in characters (what browsers and proxies reliably keep).
MAX_URL_CHARS = 2048
#: Longest ``source`` and ``author``, in characters: both are Elasticsearch
#: keywords and count-state keys.
MAX_SOURCE_CHARS = 64
MAX_AUTHOR_CHARS = 256
#: ``meta`` may nest objects and arrays at most this deep...
MAX_META_DEPTH = 32
#: ...and take at most this many bytes once encoded as JSON.
MAX_META_BYTES = 64 * 1024
#: Integers in ``meta`` must fit in 64 bits (what orjson, and Elasticsearch,
#: can write back); JSON readers turn larger ones into floats anyway.
MIN_META_INT, MAX_META_INT = -(2**63), 2**64 - 1
#: A dead letter keeps at most this much of the payload, counted in bytes of
#: its JSON encoding (topic, partition and offset still locate the original).
MAX_DEAD_LETTER_PAYLOAD_BYTES = 256 * 1024
#: ...and at most this much of the reason.
MAX_DEAD_LETTER_REASON_BYTES = 4 * 1024
#: ...and of the other text fields (stage, topic, source, post id).
MAX_DEAD_LETTER_FIELD_BYTES = 1024

#: Characters that steer a terminal or change how text reads: C0 controls,
#: DEL, C1 controls (8-bit CSI and OSC) and the bidirectional marks,
#: embeddings, overrides and isolates (U+202E shows ``gnp.exe`` as
#: ``exe.png``). A URL must not hold one (:func:`check_http_url`) and the CLI
#: removes them from what it prints.
CONTROL_CHARACTERS = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_URL_FORBIDDEN = re.compile(rf"\s|{CONTROL_CHARACTERS.pattern}")
#: A host name once in ASCII (IDNA): labels of 1-63 letters, digits, ``-``
#: or ``_``, separated by dots, with an optional final dot. IPv4 addresses
#: match too.
_HOST_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?")
#: The containers JSON decodes to.
_JSON_CONTAINERS = (dict, list)
#: An http(s) URL's scheme and authority (what comes before the path).
_HTTP_URL = re.compile(r"(https?)://([^/?#]*)", re.IGNORECASE)
#: An authority without user-info: ``[IPv6]`` or a name, then ``:port``.
_AUTHORITY = re.compile(r"(?:\[([^\]]*)\]|([^:\[\]]*))(?::([0-9]*))?")


class Post(
    faust.Record,
    serializer="json",
    isodates=True,
    include_metadata=False,
):
    """One post, review or complaint as a source delivered it.

    Attributes:
        id: Unique id across all sources (prefix it with the source if needed).
        text: The text as received (may contain HTML or traditional characters).
        published_at: When the author published it; timezone-aware. This is the
            event time every window follows.
        source: Feed name such as ``weibo`` or ``dianping``.
        author: Author handle, if known.
        url: Link back to the original, if known.
        topic: A topic the source already assigned, if any.
        metrics: ``likes``, ``reposts`` and ``followers`` counts (>= 0).
        meta: Every field of the input the post format does not define.
        schema: Version of the post format (:data:`SCHEMA_VERSION`).

    """

    id: str
    text: str
    published_at: datetime
    source: str = "unknown"
    author: str | None = None
    url: str | None = None
    topic: str | None = None
    metrics: dict[str, int] | None = None
    meta: dict[str, Any] | None = None
    schema: int = SCHEMA_VERSION


class ScoredPost(
    faust.Record,
    serializer="json",
    isodates=True,
    include_metadata=False,
):
    """A post with its sentiment, keywords and watched topics.

    Attributes:
        post_id: Id of the :class:`Post` it came from.
        text: The normalised text that was scored (HTML stripped, whitespace
            collapsed, traditional characters simplified).
        original_text: The text as received.
        positive_probability: The probability that the text is positive,
            0.0-1.0 (0.5 for a text that is empty once normalised): exactly
            ``SnowNLP(text).sentiments`` with snownlp's own model, the
            calibrated probability with a trained one (``sentiment`` in
            Elasticsearch).
        raw_positive_probability: The model's uncalibrated probability
            (``sentiment_raw``); equal to ``positive_probability`` for a
            model without calibration; None from before the field.
        sentiment_model: Id of the model that scored it (``snownlp``, or a
            trained model's ``name@sha256-prefix``); None from before the field.
        label: ``negative``, ``neutral`` or ``positive`` from the configured
            thresholds.
        keywords: Up to the configured number of keywords, most important first.
        topics: Names of the watched topics the post matches, sorted.
        published_at: Event time of the post (timezone-aware).
        scored_at: When the score stage finished (UTC).
        simhash: 64-bit SimHash of ``text`` as a signed integer (an
            Elasticsearch ``long``), for near-duplicates; see
            :mod:`monitor.analysis.simhash`. 0 if empty or from before the field.
        likes: Likes count, 0 if unknown.
        reposts: Reposts count, 0 if unknown.
        followers: The author's followers count, 0 if unknown.
        meta: The post's ``meta``.
        received_at: When the post reached the ``posts`` topic (its record
            timestamp, UTC), if known: where alert latency is measured from.
        schema: Record version (:data:`SCHEMA_VERSION`).

    """

    post_id: str
    source: str
    text: str
    original_text: str
    positive_probability: float
    label: str
    keywords: list[str]
    topics: list[str]
    published_at: datetime
    scored_at: datetime
    author: str | None = None
    url: str | None = None
    likes: int = 0
    reposts: int = 0
    followers: int = 0
    meta: dict[str, Any] | None = None
    received_at: datetime | None = None
    simhash: int = 0
    raw_positive_probability: float | None = None
    sentiment_model: str | None = None
    schema: int = SCHEMA_VERSION


def _plain_template(record: type[faust.Record]) -> dict[str, Any] | None:
    """Every field's default, in ``__init__``'s order, if it stores values as given.

    None when a field coerces, is tagged, or the record validates or has a
    ``__post_init__``: then only its own ``__init__`` builds it faithfully.
    Required fields map to None.
    """
    options = record._options
    if (
        options.coerce
        or options.validation
        or hasattr(record, "__post_init__")
        or any(
            getattr(d, "coerce", True) or getattr(d, "tag", True)
            for d in options.descriptors.values()
        )
    ):
        return None
    return {name: options.defaults.get(name) for name in options.fieldpos.values()}


_SCORED_POST_TEMPLATE = _plain_template(ScoredPost)
_SCORED_POST_REQUIRED = frozenset(
    name for name in ScoredPost._options.fieldpos.values()
    if name not in ScoredPost._options.optionalset
)
# Optional fields whose default is not None: given None, they take it.
_SCORED_POST_NOT_NONE = tuple(
    (name, default)
    for name, default in (_SCORED_POST_TEMPLATE or {}).items()
    if name not in _SCORED_POST_REQUIRED and default is not None
)


def new_scored_post(**fields: Any) -> ScoredPost:
    """``ScoredPost(**fields)``, without the per-field descriptor calls.

    The score stage builds one per post; Faust's ``__init__`` calls each of
    the 21 fields' descriptor, which for these fields (no coercion, no tags,
    no validation) only stores the value: this stores the same values, in
    the same order, with the same defaults for fields left out or given as
    None, so the record equals, encodes and prints as one built by
    ``__init__`` (``tests/unit/test_score_fast_paths.py`` checks it). Should a field
    ever coerce or validate, ``__init__`` builds it.

    Raises:
        TypeError: If a required field is missing or a field is unknown, as
            ``ScoredPost(**fields)`` does.

    """
    template = _SCORED_POST_TEMPLATE
    if (
        template is None
        or not _SCORED_POST_REQUIRED <= fields.keys()
        or not fields.keys() <= template.keys()
    ):
        return ScoredPost(**fields)
    state: dict[str, Any] = {"__evaluated_fields__": set()}
    state.update(template)
    state.update(fields)
    for name, default in _SCORED_POST_NOT_NONE:
        if state[name] is None:
            state[name] = default
    post = object.__new__(ScoredPost)
    post.__dict__.update(state)
    return post


class DeadLetter(
    faust.Record,
    serializer="json",
    isodates=True,
    include_metadata=False,
):
    """A record a stage could not process, kept with the reason.

    Attributes:
        stage: The stage that gave up (``score``, ``index``, ...).
        reason: Why, in words an operator can act on.
        payload: The record as received: UTF-8 text, or base64 when the bytes
            were not valid UTF-8 (see ``payload_encoding``), cut to at most
            :data:`MAX_DEAD_LETTER_PAYLOAD_BYTES` bytes of JSON; or, if even
            that cannot fit, the sha256 of the record (hex).
        payload_encoding: ``utf-8``, ``base64`` or ``sha256``.
        topic: Topic the record was read from.
        partition: Partition it was read from, if known.
        offset: Offset it was read from, if known.
        source: Source of the post, ``unknown`` when it could not be read.
        post_id: Id of the post, if it could be read.
        failed_at: When the stage gave up (UTC).
        payload_truncated: True if ``payload`` is only the start of the record
            (or its sha256).
        schema: Record version (:data:`SCHEMA_VERSION`).

    """

    stage: str
    reason: str
    payload: str
    payload_encoding: str
    topic: str
    failed_at: datetime
    partition: int | None = None
    offset: int | None = None
    source: str = "unknown"
    post_id: str | None = None
    payload_truncated: bool = False
    schema: int = SCHEMA_VERSION


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def parse_timestamp(value: Any, field: str = "published_at") -> datetime:
    """Parse an ISO 8601 timestamp that carries a UTC offset.

    Args:
        value: A string such as ``2026-11-20T14:03:27+08:00`` or ``...Z``.
        field: Field name used in the error message.

    Returns:
        A timezone-aware datetime (the offset is kept).

    Raises:
        InvalidRecordError: If the value is not such a string, has no offset,
            or falls outside the years :data:`MIN_YEAR`-:data:`MAX_YEAR` in UTC.

    """
    if not isinstance(value, str):
        raise InvalidRecordError(
            f"{field} must be an ISO 8601 string, got {_kind(value)}"
        )
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRecordError(f"{field} is not ISO 8601: {value[:64]!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidRecordError(
            f"{field} has no UTC offset: {value[:64]!r} (write e.g. +08:00 or Z)"
        )
    # The local year first: within it, converting to UTC cannot overflow.
    if not (
        MIN_YEAR <= parsed.year <= MAX_YEAR
        and MIN_YEAR <= parsed.astimezone(timezone.utc).year <= MAX_YEAR
    ):
        raise InvalidRecordError(
            f"{field} is outside the years {MIN_YEAR}-{MAX_YEAR} (UTC): {value[:64]!r}"
        )
    return parsed


def parse_post(
    payload: bytes | str | Mapping[str, Any],
    *,
    now: datetime | None = None,
    max_future_seconds: float | None = None,
) -> Post:
    """Validate one post in the public post format and build a :class:`Post`.

    Pure: the clock is an argument. Every bound documented in the README's
    post format is checked here, so that what passes can be scored, encoded,
    indexed and counted without failing later.

    Args:
        payload: The JSON document (bytes or str) or an already decoded mapping.
        now: The worker's clock (timezone-aware); needed with
            ``max_future_seconds``.
        max_future_seconds: Refuse a post published more than this many
            seconds after ``now``; None skips the check (for tools that read
            history, such as replay).

    Returns:
        The post; unknown fields are kept under ``meta``.

    Raises:
        InvalidRecordError: With the reason, if the payload is not a valid post.
        ValueError: If ``max_future_seconds`` is given without ``now``.

    """
    if max_future_seconds is not None and (now is None or now.tzinfo is None):
        raise ValueError("max_future_seconds needs now, a timezone-aware datetime")
    if isinstance(payload, bytes | str):
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidRecordError(f"not valid JSON: {exc}") from None
        decoded_json = True
    else:
        data = payload
        decoded_json = False
    # orjson never yields a lone surrogate; a mapping built in Python may.
    check_utf8 = not decoded_json
    if not isinstance(data, Mapping):
        raise InvalidRecordError(f"a post must be a JSON object, got {_kind(data)}")
    check_schema(data, "post")

    post_id = data.get("id")
    if isinstance(post_id, int) and not isinstance(post_id, bool):
        post_id = _int_to_str(post_id, "id")
    if not isinstance(post_id, str) or not post_id.strip():
        raise InvalidRecordError("id is required and must be a non-empty string")
    if _utf8_length(post_id, "id") > MAX_ID_BYTES:
        raise InvalidRecordError(f"id is longer than {MAX_ID_BYTES} bytes")

    if "text" not in data:
        raise InvalidRecordError("text is required")
    text = data["text"]
    if not isinstance(text, str):
        raise InvalidRecordError(f"text must be a string, got {_kind(text)}")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidRecordError(
            f"text is longer than {MAX_TEXT_CHARS:,} characters ({len(text):,})"
        )
    if check_utf8:
        _utf8_length(text, "text")
    # Only a text this long can be over the byte cap (6 bytes per character).
    if len(text) * 6 > MAX_TEXT_JSON_BYTES:
        encoded = len(orjson.dumps(text)) - 2
        if encoded > MAX_TEXT_JSON_BYTES:
            raise InvalidRecordError(
                f"text is longer than {MAX_TEXT_JSON_BYTES:,} bytes once encoded "
                f"as JSON ({encoded:,})"
            )

    if "published_at" not in data:
        raise InvalidRecordError("published_at is required")
    published_at = parse_timestamp(data["published_at"])
    if max_future_seconds is not None:
        assert now is not None  # checked above
        ahead = (published_at - now).total_seconds()
        if ahead > max_future_seconds:
            raise InvalidRecordError(
                f"published_at is from the future: {data['published_at'][:64]!r} "
                f"is {_duration(ahead)} ahead of the worker clock "
                f"({now.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}); at most "
                f"{max_future_seconds:g} s is allowed"
            )

    source = _bounded_str(data, "source", MAX_SOURCE_CHARS, check_utf8) or "unknown"
    author = _bounded_str(data, "author", MAX_AUTHOR_CHARS, check_utf8)
    topic = _bounded_str(data, "topic", MAX_TOPIC_CHARS, check_utf8)
    url = _parse_url(_optional_str(data, "url"), check_utf8)
    metrics = _parse_metrics(data.get("metrics"))
    meta = {key: value for key, value in data.items() if key not in POST_FIELDS}
    if meta:
        check_meta(meta, decoded_json=decoded_json)
    return Post(
        id=post_id,
        text=text,
        published_at=published_at,
        source=source,
        author=author,
        url=url,
        topic=topic,
        metrics=metrics,
        meta=meta,
    )


def check_meta(meta: Mapping[Any, Any], *, decoded_json: bool = False) -> None:
    """Check that a post's ``meta`` can travel: bounded, and plain JSON.

    ``meta`` is copied onto the scored post and into Elasticsearch, so it
    must encode with orjson and stay small: containers nested at most
    :data:`MAX_META_DEPTH` deep (``meta`` itself is level 1), at most
    :data:`MAX_META_BYTES` bytes of JSON, object keys that are strings,
    integers within 64 bits, finite floats and text without lone surrogates.
    Time is linear in the size of ``meta`` and bounded: the walk stops after
    :data:`MAX_META_BYTES` // 2 values (each takes 2 bytes of JSON or more).

    Args:
        meta: The unknown fields of a post.
        decoded_json: True if ``meta`` comes straight from ``orjson.loads``,
            which only yields string keys, integers within 64 bits (larger
            ones become floats), finite floats and valid Unicode: then only
            the size (first, in one call to orjson) and the depth (a walk
            over the containers) are checked. False for a mapping built in
            Python (a CSV row, a test), which is checked value by value.

    Raises:
        InvalidRecordError: Naming the first problem found and where it is.

    """
    if decoded_json:
        try:
            _check_meta_size(len(orjson.dumps(meta)))
        except orjson.JSONEncodeError:  # orjson gives up past 254 levels
            _check_meta_depth(meta)
            raise InvalidRecordError("meta cannot be encoded as JSON") from None
        _check_meta_depth(meta)
        return
    budget = MAX_META_BYTES // 2
    stack: list[tuple[Any, int, str]] = [(meta, 1, "meta")]
    while stack:
        value, depth, where = stack.pop()
        budget -= 1
        if budget < 0:
            raise InvalidRecordError(
                f"meta is larger than {MAX_META_BYTES:,} bytes once encoded as JSON"
            )
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, str):
            _utf8_length(value, where)
            continue
        if isinstance(value, int):
            if not MIN_META_INT <= value <= MAX_META_INT:
                raise InvalidRecordError(
                    f"{where} is an integer beyond 64 bits; send it as a string"
                )
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidRecordError(f"{where} is {value!r}, not a JSON number")
            continue
        if not isinstance(value, Mapping | list | tuple):
            raise InvalidRecordError(
                f"{where} is not a JSON value (got {_kind(value)})"
            )
        if depth > MAX_META_DEPTH:
            raise _too_deep(where)
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidRecordError(
                        f"{where} has a key that is not a string ({_kind(key)})"
                    )
                inner = f"{where}.{_valid_text(key[:32])}" if depth < 4 else where
                _utf8_length(key, f"a key of {where}")
                stack.append((item, depth + 1, inner))
        else:
            inner = f"{where}[]" if depth < 4 else where
            stack.extend((item, depth + 1, inner) for item in value)
    try:
        size = len(orjson.dumps(meta))
    except orjson.JSONEncodeError as exc:  # not expected after the walk above
        raise InvalidRecordError(f"meta cannot be encoded as JSON: {exc}") from None
    _check_meta_size(size)


def _check_meta_depth(meta: Mapping[str, Any]) -> None:
    """Refuse decoded JSON nested deeper than MAX_META_DEPTH; visits containers only.

    Level by level, each container once; called once the size is known to be
    within MAX_META_BYTES, which bounds the walk. Where the nesting is too
    deep is worked out only for the error.
    """
    level: list[Any] = [meta]
    for _ in range(MAX_META_DEPTH):
        inner: list[Any] = []
        for container in level:
            for item in (
                container.values() if isinstance(container, dict) else container
            ):
                if isinstance(item, _JSON_CONTAINERS):
                    inner.append(item)
        if not inner:
            return
        level = inner
    raise _too_deep(_too_deep_where(meta))


def _too_deep_where(meta: Mapping[str, Any]) -> str:
    """Return where decoded JSON first nests deeper than MAX_META_DEPTH."""
    stack: list[tuple[Any, int, str]] = [(meta, 1, "meta")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_META_DEPTH:
            return where
        named = (
            ((f".{key[:32]}", item) for key, item in value.items())
            if isinstance(value, dict)
            else (("[]", item) for item in value)
        )
        for name, item in named:
            if isinstance(item, _JSON_CONTAINERS):
                stack.append((item, depth + 1, where + name if depth < 4 else where))
    return "meta"  # pragma: no cover - called only when there is such a place


def _check_meta_size(size: int) -> None:
    if size > MAX_META_BYTES:
        raise InvalidRecordError(
            f"meta is larger than {MAX_META_BYTES:,} bytes once encoded as JSON "
            f"({size:,})"
        )


def _too_deep(where: str) -> InvalidRecordError:
    return InvalidRecordError(
        f"meta is nested more than {MAX_META_DEPTH} levels deep (at {where})"
    )


def post_to_payload(post: Post) -> bytes:
    """Serialise a post in the public post format (the inverse of parse_post)."""
    document: dict[str, Any] = dict(post.meta or {})
    document.update(
        schema=post.schema,
        id=post.id,
        text=post.text,
        published_at=post.published_at.isoformat(),
        source=post.source,
    )
    for field in ("author", "url", "topic"):
        value = getattr(post, field)
        if value is not None:
            document[field] = value
    if post.metrics:
        document["metrics"] = post.metrics
    return orjson.dumps(document)


#: Fields every scored post carries, with the JSON types they must have.
SCORED_POST_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "post_id": str,
    "source": str,
    "text": str,
    "label": str,
    "positive_probability": (int, float),
    "keywords": list,
    "topics": list,
    "published_at": str,
    "scored_at": str,
}


class ScoredPostData(TypedDict):
    """A :class:`ScoredPost` as :func:`decode_scored_post` returns it: its JSON.

    The hot path's count and index steps, and readers of ``scored-posts``,
    work on this typed form rather than the record: building the Faust
    record (dates parsed, fields coerced) costs about four times the decode
    itself (22 µs against 5.6 µs for a 600-byte post), on every post's path.
    Fields as on the record; times are the ISO 8601 strings of the wire.
    """

    post_id: str
    source: str
    text: str
    positive_probability: float
    label: str
    keywords: list[str]
    topics: list[str]
    published_at: str
    scored_at: str
    original_text: NotRequired[str]
    author: NotRequired[str | None]
    url: NotRequired[str | None]
    likes: NotRequired[int]
    reposts: NotRequired[int]
    followers: NotRequired[int]
    meta: NotRequired[dict[str, Any] | None]
    received_at: NotRequired[str | None]
    simhash: NotRequired[int]
    raw_positive_probability: NotRequired[float | None]
    sentiment_model: NotRequired[str | None]
    schema: NotRequired[int]


def encode_scored_post(post: ScoredPost) -> bytes:
    """Return the JSON ``ScoredPost.dumps()`` writes, byte for byte, via orjson.

    Faust's own encoder is a tenth of the speed; this is on every post's path.
    """
    return orjson.dumps(post.asdict(), option=orjson.OPT_UTC_Z)


def decode_scored_post(payload: bytes | str) -> ScoredPostData:
    """Decode a ``scored-posts`` record, checking the fields stages use.

    Returns the record's JSON form (:class:`ScoredPostData`), not a
    :class:`ScoredPost`: building the record costs more than the rest of
    counting a post.

    Raises:
        InvalidRecordError: Not JSON, not an object, a required field missing
            or of the wrong type, or ``published_at`` without a UTC offset.

    """
    data = _json_object(payload, "scored post")
    for field, kind in SCORED_POST_REQUIRED.items():
        value = data.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidRecordError(
                f"{field} must be a {_kind_name(kind)}, got {_kind(value)}"
            )
    check_schema(data, "scored post")
    parse_timestamp(data["published_at"])
    return cast(ScoredPostData, data)


def decode_dead_letter(payload: bytes | str) -> DeadLetter:
    """Decode a ``dead-letters`` record.

    Raises:
        InvalidRecordError: Not a dead letter, or of a newer schema.

    """
    data = _json_object(payload, "dead letter")
    check_schema(data, "dead letter")
    try:
        letter = DeadLetter.from_data(data)
        letter.failed_at = _moment(data["failed_at"], "failed_at")
    except InvalidRecordError:
        raise
    except Exception as exc:  # noqa: BLE001 - Faust's field errors vary
        raise InvalidRecordError(f"not a dead letter: {exc}") from None
    return letter


def check_schema(data: Mapping[str, Any], record: str) -> int:
    """Return the record's schema version; refuse one this code cannot read.

    A record without ``schema`` is version 1 (written before versions).

    Raises:
        InvalidRecordError: ``schema`` is not a whole number >= 1, or is newer
            than :data:`SCHEMA_VERSION`.

    """
    version = data.get("schema", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidRecordError(
            f"{record} schema must be a whole number >= 1, got {_show(version)}"
        )
    if version > SCHEMA_VERSION:
        raise InvalidRecordError(
            f"{record} schema {version} is newer than this worker reads "
            f"({SCHEMA_VERSION}): upgrade every worker, then replay it "
            "(README, Upgrades)"
        )
    return version


class ReportKind(StrEnum):
    """What a :class:`PartitionReport` says."""

    #: One partition's counts of a window it closed.
    PARTIAL = "partial"
    #: Whether the partition still has windows open (``active``).
    HEARTBEAT = "heartbeat"
    #: One partition's running counts of a bucket it has not closed, as of
    #: ``offset``: cumulative, so the merge keeps the latest and never adds.
    SNAPSHOT = "snapshot"


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """A count-stage partition's message to the merge (``window-partials``).

    Partials and heartbeats share one topic with one partition because the
    merge relies on their order: a partition's "inactive" heartbeat arrives
    after every partial it covers. New kinds (open-window snapshots) join
    :class:`ReportKind` rather than a new topic.

    Attributes:
        partition: The ``posts`` partition it speaks for (>= 0).
        kind: A partial, a heartbeat or an open bucket's snapshot.
        window: The partial (its window's counts from this partition), or
            the snapshot (the open bucket's watched-topic counts so far; a
            large one is split over several reports by topic).
        active: For a heartbeat: True while the partition has windows open
            (or records on their way), so the merge waits for it.
        offset: For a snapshot: the last ``posts`` offset it counts.
        schema: Record version (:data:`SCHEMA_VERSION`).

    """

    partition: int
    kind: ReportKind
    window: WindowAggregate | None = None
    active: bool = False
    offset: int = -1
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        """Check that a partial or snapshot carries its window, a heartbeat none."""
        if (self.kind is ReportKind.HEARTBEAT) != (self.window is None):
            raise InvalidRecordError(
                f"a {self.kind} report must {'' if self.window is None else 'not '}"
                "carry a window"
            )
        if self.partition < 0:
            raise InvalidRecordError(f"partition must be >= 0, got {self.partition}")
        if self.kind is ReportKind.SNAPSHOT and self.offset < 0:
            raise InvalidRecordError(
                f"a snapshot needs an offset >= 0, got {self.offset}"
            )

    @classmethod
    def partial(cls, partition: int, window: WindowAggregate) -> PartitionReport:
        """Return the report of ``partition``'s share of a closed window."""
        return cls(partition, ReportKind.PARTIAL, window=window)

    @classmethod
    def heartbeat(cls, partition: int, active: bool) -> PartitionReport:
        """Return a heartbeat: whether ``partition`` still has windows open."""
        return cls(partition, ReportKind.HEARTBEAT, active=active)

    @classmethod
    def snapshot(
        cls, partition: int, window: WindowAggregate, offset: int
    ) -> PartitionReport:
        """Return ``partition``'s running counts of an open bucket at ``offset``."""
        return cls(partition, ReportKind.SNAPSHOT, window=window, offset=offset)

    @property
    def key(self) -> bytes:
        """Return the Kafka key: ``<start>:<p>``, ``heartbeat:<p>``, ``snapshot:…``."""
        if self.window is None:
            return f"heartbeat:{self.partition}".encode()
        prefix = "snapshot:" if self.kind is ReportKind.SNAPSHOT else ""
        return f"{prefix}{self.window.start}:{self.partition}".encode()

    def encode(self) -> bytes:
        """Return the JSON record (a partial's window bounded for the wire)."""
        body: dict[str, Any] = {
            "schema": self.schema,
            "kind": self.kind.value,
            "partition": self.partition,
        }
        if self.window is None:
            body["active"] = self.active
            # Workers before schema versions told heartbeats apart by this.
            body["heartbeat"] = True
        else:
            body["window"] = self.window.to_dict(bounded=True)
            if self.kind is ReportKind.SNAPSHOT:
                body["offset"] = self.offset
        return orjson.dumps(body)

    @classmethod
    def decode(cls, payload: bytes | str) -> PartitionReport:
        """Inverse of :meth:`encode`; also reads the records of version 1.

        Raises:
            InvalidRecordError: Not a partition report, or of a newer schema.

        """
        data = _json_object(payload, "partition report")
        check_schema(data, "partition report")
        partition = data.get("partition")
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise InvalidRecordError(
                f"partition must be a whole number, got {_kind(partition)}"
            )
        # Written before kinds: a heartbeat said so with "heartbeat": true.
        kind = data.get("kind") or (
            ReportKind.HEARTBEAT if data.get("heartbeat") else ReportKind.PARTIAL
        )
        if kind == ReportKind.HEARTBEAT:
            active = data.get("active")
            if not isinstance(active, bool):
                raise InvalidRecordError(
                    f"active must be true/false, got {_kind(active)}"
                )
            return cls.heartbeat(partition, active)
        if kind not in (ReportKind.PARTIAL, ReportKind.SNAPSHOT):
            raise InvalidRecordError(f"unknown partition report kind {_show(kind)}")
        offset = data.get("offset", -1)
        if kind == ReportKind.SNAPSHOT and (
            not isinstance(offset, int) or isinstance(offset, bool) or offset < 0
        ):
            raise InvalidRecordError(
                f"a snapshot's offset must be a whole number >= 0, got {_kind(offset)}"
            )
        window = data.get("window")
        if not isinstance(window, dict):
            raise InvalidRecordError(f"window must be an object, got {_kind(window)}")
        try:
            aggregate = WindowAggregate.from_dict(window)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidRecordError(f"not a window partial: {exc!r}") from None
        if kind == ReportKind.SNAPSHOT:
            return cls.snapshot(partition, aggregate, offset)
        return cls.partial(partition, aggregate)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def _moment(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        return value
    return parse_timestamp(value, field)


def _optional_moment(value: Any, field: str) -> datetime | None:
    return None if value is None else _moment(value, field)


@dataclass(frozen=True, slots=True)
class Burst:
    """A burst event that started, peaked or ended in a window (``bursts``).

    Attributes:
        burst_id: ``<series>@<start epoch>``: the same for the whole event.
        series: ``topic:<name>``, ``negative:<name>`` or ``keyword:<word>``.
        kind: Series kind (``topic``, ``negative``, ``keyword``).
        key: Topic name or keyword.
        phase: ``started``, ``peaked``, ``ended`` or ``emerging``.
        window_start: Start of the window that caused the update (UTC).
        window_seconds: Window length in seconds.
        observed: Count of that window.
        expected: The baseline's expectation for it.
        score: Its surprise, ``-log10`` of the tail probability.
        started_at: Start of the event (UTC).
        peak_at: Window of the highest score so far (UTC).
        ended_at: Last window of the event once it ended (UTC), else None.
        peak_score: Highest score in the event.
        peak_observed: Count at the peak.
        peak_expected: Baseline at the peak.
        post_ids: Ids of the most representative posts of the window.
        updated_at: When the merge stage published this update (UTC).
        schema: Record version (:data:`SCHEMA_VERSION`).

    """

    burst_id: str
    series: str
    kind: str
    key: str
    phase: str
    window_start: datetime
    window_seconds: int
    observed: float
    expected: float
    score: float
    started_at: datetime
    peak_at: datetime
    ended_at: datetime | None
    peak_score: float
    peak_observed: float
    peak_expected: float
    post_ids: tuple[str, ...]
    updated_at: datetime
    schema: int = SCHEMA_VERSION

    @classmethod
    def from_update(cls, update: BurstUpdate, updated_at: datetime) -> Burst:
        """Return the record of a detector's update, stamped ``updated_at``."""

        def moment(epoch: float) -> datetime:
            return datetime.fromtimestamp(epoch, tz=timezone.utc)

        return cls(
            burst_id=update.burst_id,
            series=update.series,
            kind=update.kind,
            key=update.key,
            phase=update.phase,
            window_start=moment(update.window_start),
            window_seconds=update.window_seconds,
            observed=update.observed,
            expected=update.expected,
            score=update.score,
            started_at=moment(update.started_at),
            peak_at=moment(update.peak_at),
            ended_at=None if update.ended_at is None else moment(update.ended_at),
            peak_score=update.peak_score,
            peak_observed=update.peak_observed,
            peak_expected=update.peak_expected,
            post_ids=tuple(update.post_ids),
            updated_at=updated_at,
        )

    @property
    def message_key(self) -> bytes:
        """The Kafka key: the series, so one series' updates stay in order."""
        return self.series.encode()

    def body(self) -> dict[str, Any]:
        """Return the fields as JSON-able values (times ISO 8601), no version.

        This is also the Elasticsearch document of the burst.
        """
        return {
            "burst_id": self.burst_id,
            "series": self.series,
            "kind": self.kind,
            "key": self.key,
            "phase": self.phase,
            "window_start": self.window_start.isoformat(),
            "window_seconds": self.window_seconds,
            "observed": self.observed,
            "expected": self.expected,
            "score": self.score,
            "started_at": self.started_at.isoformat(),
            "peak_at": self.peak_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "peak_score": self.peak_score,
            "peak_observed": self.peak_observed,
            "peak_expected": self.peak_expected,
            "post_ids": list(self.post_ids),
            "updated_at": self.updated_at.isoformat(),
        }

    def encode(self) -> bytes:
        """Return the JSON record."""
        return orjson.dumps({"schema": self.schema, **self.body()})

    @classmethod
    def decode(cls, payload: bytes | str) -> Burst:
        """Inverse of :meth:`encode`.

        Raises:
            InvalidRecordError: Not a burst, or of a newer schema.

        """
        data = _json_object(payload, "burst")
        try:
            return cls(
                burst_id=str(data["burst_id"]),
                series=str(data["series"]),
                kind=str(data["kind"]),
                key=str(data["key"]),
                phase=str(data["phase"]),
                window_start=_moment(data["window_start"], "window_start"),
                window_seconds=int(data["window_seconds"]),
                observed=float(data["observed"]),
                expected=float(data["expected"]),
                score=float(data["score"]),
                started_at=_moment(data["started_at"], "started_at"),
                peak_at=_moment(data["peak_at"], "peak_at"),
                ended_at=_optional_moment(data.get("ended_at"), "ended_at"),
                peak_score=float(data["peak_score"]),
                peak_observed=float(data["peak_observed"]),
                peak_expected=float(data["peak_expected"]),
                post_ids=tuple(str(item) for item in data.get("post_ids", ())),
                updated_at=_moment(data["updated_at"], "updated_at"),
                schema=check_schema(data, "burst"),
            )
        except InvalidRecordError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRecordError(f"not a burst: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """A rule that fired, on its way to the ticket policy (``triggers``).

    Attributes:
        trigger: What fired, with its window, values and evidence.
        closed_at: When the merge stage completed the window and emitted it
            (UTC): the start of the alert latency the alert stage measures.
        schema: Record version (:data:`SCHEMA_VERSION`).

    """

    trigger: Trigger
    closed_at: datetime | None
    schema: int = SCHEMA_VERSION

    @property
    def message_key(self) -> bytes:
        """The Kafka key: the trigger's fingerprint (its incident)."""
        return self.trigger.fingerprint.encode()

    def encode(self) -> bytes:
        """Return the JSON record."""
        return orjson.dumps(
            {
                "schema": self.schema,
                "trigger": trigger_to_dict(self.trigger),
                "closed_at": None
                if self.closed_at is None
                else self.closed_at.isoformat(),
            }
        )

    @classmethod
    def decode(cls, payload: bytes | str) -> TriggerEvent:
        """Inverse of :meth:`encode`.

        Raises:
            InvalidRecordError: Not a trigger, or of a newer schema.

        """
        data = _json_object(payload, "trigger")
        schema = check_schema(data, "trigger")
        try:
            trigger = trigger_from_dict(data["trigger"])
            closed_at = _optional_moment(data.get("closed_at"), "closed_at")
        except InvalidRecordError:
            raise
        except Exception as exc:  # noqa: BLE001 - the trigger's own checks vary
            raise InvalidRecordError(f"not a trigger: {exc!r}") from None
        return cls(trigger, closed_at, schema)


def _json_object(payload: bytes | str, record: str) -> dict[str, Any]:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecordError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRecordError(f"a {record} must be a JSON object, got {_kind(data)}")
    return data


def encode_payload(payload: bytes | str | None) -> tuple[str, str]:
    """Return ``(text, encoding)`` that keeps any payload losslessly in JSON."""
    if payload is None:
        return "", "utf-8"
    if isinstance(payload, str):
        try:
            payload.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: keep them as their bytes
            payload = payload.encode("utf-8", "surrogatepass")
        else:
            return payload, "utf-8"
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


def bounded_dead_letter(
    *,
    stage: str,
    reason: str,
    payload: bytes | str | None,
    topic: str,
    failed_at: datetime,
    partition: int | None = None,
    offset: int | None = None,
    source: str = "unknown",
    post_id: str | None = None,
) -> DeadLetter:
    """Build the dead letter of a record, small enough for any Kafka producer.

    The payload is kept as :func:`encode_payload` keeps it, cut on a
    character boundary to at most :data:`MAX_DEAD_LETTER_PAYLOAD_BYTES` bytes
    of UTF-8 (``payload_truncated`` says so; base64 is cut to whole 4-character
    groups, so the part kept still decodes); the reason to at most
    :data:`MAX_DEAD_LETTER_REASON_BYTES` and the other text fields to
    :data:`MAX_DEAD_LETTER_FIELD_BYTES`. Control characters take 6 bytes in
    JSON, so if the encoded letter is still over :data:`MAX_MESSAGE_BYTES`,
    the payload is cut to that many bytes of JSON instead; should even that
    not fit, it is replaced by its sha256 (``payload_encoding`` ``sha256``):
    topic, partition and offset still locate the record. Pure.

    Args:
        stage: The stage that gave up.
        reason: Why, in words an operator can act on.
        payload: The record as received.
        topic: Topic it was read from.
        failed_at: When the stage gave up (timezone-aware).
        partition: Partition it was read from, if known.
        offset: Offset it was read from, if known.
        source: Source of the post, if known.
        post_id: Id of the post, if known.

    Returns:
        The dead letter; ``len(letter.dumps()) <= MAX_MESSAGE_BYTES``.

    """
    text, encoding = encode_payload(payload)
    kept = cut_utf8(text, MAX_DEAD_LETTER_PAYLOAD_BYTES)
    if encoding == "base64":
        kept = kept[: len(kept) - len(kept) % 4]
    field = MAX_DEAD_LETTER_FIELD_BYTES
    letter = DeadLetter(
        stage=cut_utf8(_valid_text(stage), field),
        reason=cut_utf8(_valid_text(reason), MAX_DEAD_LETTER_REASON_BYTES),
        payload=kept,
        payload_encoding=encoding,
        payload_truncated=len(kept) < len(text),
        topic=cut_utf8(_valid_text(topic), field),
        partition=partition,
        offset=offset,
        source=cut_utf8(_valid_text(source), field),
        post_id=None if post_id is None else cut_utf8(_valid_text(post_id), field),
        failed_at=failed_at,
    )
    if len(letter.dumps()) <= MAX_MESSAGE_BYTES:
        return letter
    # Only escapes can get here (control characters are 6 bytes of JSON).
    letter.payload = _cut_json(kept, MAX_DEAD_LETTER_PAYLOAD_BYTES)
    letter.payload_truncated = True
    if len(letter.dumps()) > MAX_MESSAGE_BYTES:  # pragma: no cover - a last guard
        raw = (
            payload.encode("utf-8", "surrogatepass")
            if isinstance(payload, str)
            else payload or b""
        )
        letter.payload = hashlib.sha256(raw).hexdigest()
        letter.payload_encoding = "sha256"
    return letter


def cut_utf8(text: str, max_bytes: int, *, ellipsis: str = "") -> str:
    """Return ``text`` cut on a character boundary to at most ``max_bytes`` of UTF-8.

    Args:
        text: Valid Unicode (no lone surrogates).
        max_bytes: The cap, in bytes of UTF-8.
        ellipsis: Appended when ``text`` is cut (e.g. ``"…"``); the result,
            ellipsis included, stays within ``max_bytes``.

    Returns:
        ``text`` itself if it fits, else its longest prefix that fits with
        ``ellipsis`` after it.

    Raises:
        ValueError: If ``text`` must be cut and ``ellipsis`` alone is longer
            than ``max_bytes``.

    """
    if len(text) * 4 <= max_bytes:  # cannot be over: 4 bytes per character at most
        return text
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    room = max_bytes - len(ellipsis.encode("utf-8"))
    if room < 0:
        raise ValueError(f"{ellipsis!r} is longer than {max_bytes} bytes")
    # A cut inside a character leaves an incomplete sequence at the end only.
    return encoded[:room].decode("utf-8", "ignore") + ellipsis


def _cut_json(text: str, max_bytes: int) -> str:
    """Return the longest prefix of ``text`` whose JSON is <= ``max_bytes`` bytes.

    Counted without the quotes, as orjson writes it (UTF-8, control
    characters, quotes and backslashes escaped). Cut on a character boundary.
    """
    if len(text) * 6 <= max_bytes:  # cannot be over: 6 bytes per character at most
        return text
    if len(orjson.dumps(text)) - 2 <= max_bytes:
        return text
    text = cut_utf8(text, max_bytes)  # a prefix this long can only be shorter
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits once escaped
        middle = (low + high + 1) // 2
        if len(orjson.dumps(text[:middle])) - 2 <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _valid_text(text: str) -> str:
    """Return ``text`` with lone surrogates replaced, so that it encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _utf8_length(text: str, field: str) -> int:
    """Return the UTF-8 length of ``text``; refuse text with lone surrogates."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidRecordError(
            f"{field} is not valid Unicode (a lone surrogate at character {exc.start})"
        ) from None


def _int_to_str(value: int, field: str) -> str:
    """Return a 64-bit integer as a string; refuse larger ones (str() may fail)."""
    if not MIN_META_INT <= value <= MAX_META_INT:
        raise InvalidRecordError(f"{field} is an integer beyond 64 bits")
    return str(value)


def _bounded_str(
    data: Mapping[str, Any], field: str, max_chars: int, check_utf8: bool
) -> str | None:
    """Return an optional string field of at most ``max_chars`` characters."""
    value = _optional_str(data, field)
    if value is None:
        return None
    if len(value) > max_chars:
        raise InvalidRecordError(
            f"{field} is longer than {max_chars:,} characters ({len(value):,})"
        )
    if check_utf8:
        _utf8_length(value, field)
    return value


def _parse_url(url: str | None, check_utf8: bool) -> str | None:
    """Return the post's URL as given, if :func:`check_http_url` accepts it."""
    if url is None or not url.strip():
        return None  # an empty link is no link
    if len(url) > MAX_URL_CHARS:
        raise InvalidRecordError(
            f"url is longer than {MAX_URL_CHARS:,} characters ({len(url):,})"
        )
    if check_utf8:
        _utf8_length(url, "url")
    try:
        check_http_url(url)
    except ValueError as exc:
        raise InvalidRecordError(
            f"url must be an http(s) URL ({exc}), got {url[:64]!r}"
        ) from None
    return url


def check_http_url(url: str) -> str:
    """Check that ``url`` is an absolute http(s) URL fit to be a link target.

    The one URL rule: :func:`parse_post` refuses a post whose ``url`` breaks
    it, and :func:`monitor.sinks.notifiers.link_target` makes links only of
    URLs that keep it. The scheme is ``http`` or ``https`` (any case); the
    host is a host name (non-ASCII ones are IDNA-encoded), an IPv4 address
    or a bracketed IPv6 address; a port, if any, is 0-65535; there is no user
    name or password (``https://bank.example@evil.example``) and no white
    space or :data:`CONTROL_CHARACTERS` anywhere.

    Args:
        url: The URL as a post or the settings gave it.

    Returns:
        The URL with its scheme in lower case, its host in ASCII (lower
        case; IPv6 in brackets, compressed) and its port without leading
        zeros; path, query and fragment as they were.

    Raises:
        ValueError: Saying what is wrong, in a few words.

    """
    if _URL_FORBIDDEN.search(url):
        raise ValueError("it has white space or a control character")
    match = _HTTP_URL.match(url)
    if match is None:
        raise ValueError("the scheme is not http or https")
    scheme, authority = match[1].lower(), match[2]
    host = authority.lower()
    if _HOST_NAME.fullmatch(host):  # most URLs: an ASCII name, no port
        return f"{scheme}://{host}{url[match.end() :]}"
    if "@" in authority:
        raise ValueError("it has a user name before the host")
    parts = _AUTHORITY.fullmatch(authority)
    if parts is None:
        raise ValueError("its host or port is malformed")
    ipv6, name, port = parts[1], parts[2], parts[3]
    if ipv6 is not None:
        try:
            if "%" in ipv6:  # a zone id (fe80::1%eth0) names a local interface
                raise ValueError
            host = f"[{ipaddress.IPv6Address(ipv6)}]"
        except ValueError:
            raise ValueError("its IPv6 address is malformed") from None
    elif not name:
        raise ValueError("it has no host")
    else:
        host = name.lower()
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise ValueError("its host name is not valid") from None
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("its host name is not valid")
    if port:
        if len(port) > 5 or int(port) > 65_535:
            raise ValueError("its port is not 0-65535")
        host = f"{host}:{int(port)}"
    return f"{scheme}://{host}{url[match.end() :]}"


def _duration(seconds: float) -> str:
    """Return seconds in words: ``12 s``, ``16 min``, ``3.5 h``, ``365 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:,.0f} days"


def _show(value: Any) -> str:
    """Return a short repr for a reason; integers beyond 64 bits by their size."""
    if isinstance(value, int) and not MIN_META_INT <= value <= MAX_META_INT:
        return f"an integer of {value.bit_length()} bits"
    return repr(value)[:64]


def _parse_metrics(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRecordError(f"metrics must be an object, got {_kind(value)}")
    metrics: dict[str, int] = {}
    for name in POST_METRICS:
        count = value.get(name)
        if count is None:
            continue
        if isinstance(count, float) and count.is_integer() and count <= MAX_COUNT:
            count = int(count)
        if (
            not isinstance(count, int | float)
            or isinstance(count, bool)
            or count < 0
            or (isinstance(count, float) and not count.is_integer())
        ):
            raise InvalidRecordError(
                f"metrics.{name} must be a non-negative integer, got {_show(count)}"
            )
        if not isinstance(count, int) or count > MAX_COUNT:
            raise InvalidRecordError(
                f"metrics.{name} must be a whole number no larger than 2**63-1, "
                f"got {_show(count)}"
            )
        metrics[name] = count
    return metrics


def _optional_str(data: Mapping[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _int_to_str(value, field)
    if isinstance(value, float):
        return str(value)
    if not isinstance(value, str):
        raise InvalidRecordError(f"{field} must be a string, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "string", int: "number", float: "number", list: "list"}
    return "/".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))
