"""The records exchanged between stages: the data contract of the pipeline.

Each Kafka topic carries exactly one record type (see :mod:`monitor.topics`).
Records are JSON on the wire without Faust's ``__faust`` metadata, so that
producers outside this code base (webhooks, other teams) can write them.

The ``posts`` topic is the ingestion boundary: it carries posts in the public
post format documented in the README, and :func:`parse_post` is the one place
that validates them. Every other record carries the id of what it came from.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import faust
import orjson

from monitor.errors import InvalidRecordError

#: Fields of the post format with a meaning; every other field goes to ``meta``.
POST_FIELDS = (
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
#: Longer texts are refused: a scored post carries the text twice and must
#: stay well under Kafka's default 1 MB message size.
MAX_TEXT_CHARS = 100_000
#: Years outside this range are refused (they cannot date a daily index).
MIN_YEAR, MAX_YEAR = 1970, 2100
#: Elasticsearch refuses document ids longer than 512 bytes.
MAX_ID_BYTES = 512


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
        positive_probability: snownlp's probability that the text is
            positive, 0.0-1.0 (0.5 for a text that is empty once normalised).
        label: ``negative``, ``neutral`` or ``positive`` from the configured
            thresholds.
        keywords: Up to the configured number of keywords, most important first.
        topics: Names of the watched topics the post matches, sorted.
        published_at: Event time of the post (timezone-aware).
        scored_at: When the score stage finished (UTC).
        likes: Likes count, 0 if unknown.
        reposts: Reposts count, 0 if unknown.
        followers: The author's followers count, 0 if unknown.

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
            were not valid UTF-8 (see ``payload_encoding``).
        payload_encoding: ``utf-8`` or ``base64``.
        topic: Topic the record was read from.
        partition: Partition it was read from, if known.
        offset: Offset it was read from, if known.
        source: Source of the post, ``unknown`` when it could not be read.
        post_id: Id of the post, if it could be read.
        failed_at: When the stage gave up (UTC).

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
        InvalidRecordError: If the value is not such a string, or has no offset.

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
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise InvalidRecordError(
            f"{field} is outside the years {MIN_YEAR}-{MAX_YEAR}: {value[:64]!r}"
        )
    return parsed


def parse_post(payload: bytes | str | Mapping[str, Any]) -> Post:
    """Validate one post in the public post format and build a :class:`Post`.

    Args:
        payload: The JSON document (bytes or str) or an already decoded mapping.

    Returns:
        The post; unknown fields are kept under ``meta``.

    Raises:
        InvalidRecordError: With the reason, if the payload is not a valid post.

    """
    if isinstance(payload, bytes | str):
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidRecordError(f"not valid JSON: {exc}") from None
    else:
        data = payload
    if not isinstance(data, Mapping):
        raise InvalidRecordError(f"a post must be a JSON object, got {_kind(data)}")

    post_id = data.get("id")
    if isinstance(post_id, int) and not isinstance(post_id, bool):
        post_id = str(post_id)
    if not isinstance(post_id, str) or not post_id.strip():
        raise InvalidRecordError("id is required and must be a non-empty string")
    if len(post_id.encode("utf-8")) > MAX_ID_BYTES:
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

    if "published_at" not in data:
        raise InvalidRecordError("published_at is required")
    published_at = parse_timestamp(data["published_at"])

    source = _optional_str(data, "source") or "unknown"
    metrics = _parse_metrics(data.get("metrics"))
    meta = {key: value for key, value in data.items() if key not in POST_FIELDS}
    return Post(
        id=post_id,
        text=text,
        published_at=published_at,
        source=source,
        author=_optional_str(data, "author"),
        url=_optional_str(data, "url"),
        topic=_optional_str(data, "topic"),
        metrics=metrics,
        meta=meta,
    )


def post_to_payload(post: Post) -> bytes:
    """Serialise a post in the public post format (the inverse of parse_post)."""
    document: dict[str, Any] = dict(post.meta or {})
    document.update(
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


def encode_scored_post(post: ScoredPost) -> bytes:
    """Return the JSON ``ScoredPost.dumps()`` writes, byte for byte, via orjson.

    Faust's own encoder is a tenth of the speed; this is on every post's path.
    """
    return orjson.dumps(post.asdict(), option=orjson.OPT_UTC_Z)


def decode_scored_post(payload: bytes | str) -> dict[str, Any]:
    """Decode a ``scored-posts`` record to a dict, checking the fields stages use.

    The stages reading ``scored-posts`` work on this dict rather than a
    :class:`ScoredPost`: building the record costs more than the rest of
    counting a post.

    Raises:
        InvalidRecordError: Not JSON, not an object, a required field missing
            or of the wrong type, or ``published_at`` without a UTC offset.

    """
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecordError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRecordError(
            f"a scored post must be a JSON object, got {_kind(data)}"
        )
    for field, kind in SCORED_POST_REQUIRED.items():
        value = data.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidRecordError(
                f"{field} must be a {_kind_name(kind)}, got {_kind(value)}"
            )
    parse_timestamp(data["published_at"])
    return data


def encode_payload(payload: bytes | str | None) -> tuple[str, str]:
    """Return ``(text, encoding)`` that keeps any payload losslessly in JSON."""
    if payload is None:
        return "", "utf-8"
    if isinstance(payload, str):
        return payload, "utf-8"
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "base64"


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
                f"metrics.{name} must be a non-negative integer, got {count!r}"
            )
        if not isinstance(count, int) or count > MAX_COUNT:
            raise InvalidRecordError(
                f"metrics.{name} must be a whole number no larger than 2**63-1, "
                f"got {count!r}"
            )
        metrics[name] = count
    return metrics


def _optional_str(data: Mapping[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
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
