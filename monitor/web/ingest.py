"""Webhook push: ``POST /ingest/{source}``, signed, answered once Kafka has the posts.

A sender signs each request with its source's secret: header
``X-Monitor-Timestamp`` (Unix seconds) and ``X-Monitor-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">``. The body is one post,
a JSON array of posts or JSON Lines (``application/x-ndjson``), each in the
public post format (:func:`monitor.records.parse_post`); the post id becomes
``<source>:<vendor id>`` and ``source`` defaults to the source's name.

The checks run cheapest first, so that a stranger costs little: the source
(404), the declared size (413), the media type (415) and the timestamp (401)
are checked before a byte of the body is read; the body is read up to its
limit only (413), then the signature is checked (401), the source's rate
(429), every post (422 if none is valid). The answer 202
``{"accepted": n, "rejected": [{"index": i, "reason": ...}], "duplicates": d}``
is sent only after Kafka acknowledged every accepted post; if it does not
within ``ack_timeout_s`` the answer is 503 and nothing is claimed accepted
(the sender sends again; the post id makes that harmless downstream).

Secrets never appear in logs or answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from monitor.errors import InvalidRecordError
from monitor.metrics import SourceLabels, SourceMetrics
from monitor.records import Post, parse_post
from monitor.sources.config import SourcesConfig
from monitor.sources.limits import RecentIds, TokenBucket
from monitor.sources.publisher import PostPublisher
from monitor.web.api import error_response

log = logging.getLogger(__name__)

#: Publishes posts and returns once Kafka acknowledged every one; raises if not.
Publish = Callable[[Sequence[Post]], Awaitable[None]]

TIMESTAMP_HEADER = "X-Monitor-Timestamp"
SIGNATURE_HEADER = "X-Monitor-Signature"
#: Largest difference between a request's timestamp and the server clock.
MAX_CLOCK_SKEW_SECONDS = 300
#: Media types read as one post or an array of posts.
JSON_TYPES = frozenset({"application/json"})
#: Media types read as JSON Lines, one post per line.
JSON_LINES_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/x-jsonlines"}
)
_TIMESTAMP = re.compile(r"\d{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """Return the ``X-Monitor-Signature`` value of a body sent at ``timestamp``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def check_timestamp(header: str | None, now_s: float) -> str | None:
    """Return why a ``X-Monitor-Timestamp`` value is refused, or None if fresh."""
    if header is None:
        return f"{TIMESTAMP_HEADER} is missing"
    if _TIMESTAMP.fullmatch(header.strip()) is None:
        return f"{TIMESTAMP_HEADER} must be Unix seconds"
    if abs(int(header) - now_s) > MAX_CLOCK_SKEW_SECONDS:
        return (
            f"{TIMESTAMP_HEADER} is more than {MAX_CLOCK_SKEW_SECONDS} s from the "
            "server clock (replayed, or a clock that is off)"
        )
    return None


def check_signature(
    secret: bytes, timestamp: str, header: str | None, body: bytes
) -> str | None:
    """Return why a ``X-Monitor-Signature`` value is refused, or None if valid."""
    if header is None:
        return f"{SIGNATURE_HEADER} is missing"
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        return f"{SIGNATURE_HEADER} must be sha256=<64 hex digits>"
    expected = sign(secret, timestamp.strip(), body).encode("ascii")
    given = b"sha256=" + match.group(1).lower().encode("ascii")
    if not hmac.compare_digest(expected, given):
        return "signature does not match"
    return None


@dataclass
class WebhookEndpoint:
    """One webhook source as the server keeps it (its secret is not repr'd)."""

    name: str
    secret: bytes = field(repr=False)
    max_body_bytes: int
    bucket: TokenBucket | None = None
    recent: RecentIds = field(default_factory=RecentIds)


def webhook_endpoints(
    config: SourcesConfig, default_max_body_bytes: int
) -> dict[str, WebhookEndpoint]:
    """Build the endpoints of a sources file's webhook sources."""
    return {
        name: WebhookEndpoint(
            name=name,
            secret=hook.secret.get_secret_value().encode("utf-8"),
            max_body_bytes=hook.max_body_bytes or default_max_body_bytes,
            bucket=(
                TokenBucket(hook.rate.per_second, hook.rate.burst)
                if hook.rate
                else None
            ),
        )
        for name, hook in config.webhooks.items()
    }


@dataclass(frozen=True)
class Rejected:
    """An item of a request that is not a valid post."""

    index: int
    reason: str


def parse_items(
    body: bytes, json_lines: bool
) -> tuple[list[tuple[int, Any]], list[Rejected]]:
    """Split a body into its items (index, decoded value) and undecodable lines.

    Raises:
        InvalidRecordError: If the body as a whole is not a post or a list.

    """
    if json_lines:
        items: list[tuple[int, Any]] = []
        rejected: list[Rejected] = []
        index = 0
        for line in body.split(b"\n"):
            if not line.strip():
                continue
            try:
                items.append((index, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                rejected.append(Rejected(index, f"not valid JSON: {exc}"))
            index += 1
        return items, rejected
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecordError(f"not valid JSON: {exc}") from None
    if isinstance(document, dict):
        return [(0, document)], []
    if isinstance(document, list):
        return list(enumerate(document)), []
    raise InvalidRecordError("the body must be a post object or an array of posts")


def to_post(
    source: str, item: Any, *, now: datetime, max_future_seconds: float | None
) -> Post:
    """Validate one pushed item as a post of ``source`` (id ``<source>:<id>``).

    Raises:
        InvalidRecordError: With the reason, if it is not a valid post.

    """
    if not isinstance(item, dict):
        raise InvalidRecordError("a post must be a JSON object")
    document = dict(item)
    vendor_id = document.get("id")
    if isinstance(vendor_id, str | int) and not isinstance(vendor_id, bool):
        if str(vendor_id).strip():
            document["id"] = f"{source}:{vendor_id}"
    if document.get("source") in (None, ""):
        document["source"] = source
    return parse_post(document, now=now, max_future_seconds=max_future_seconds)


def ingest_app(
    endpoints: Mapping[str, WebhookEndpoint],
    publish: Publish,
    *,
    metrics: SourceMetrics | None = None,
    ack_timeout_s: float = 10.0,
    max_future_seconds: float | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the ``/ingest`` sub-application.

    Args:
        endpoints: The webhook sources, by name.
        publish: Sends posts and returns once Kafka acknowledged them all.
        metrics: Per-source counters (none counted if None).
        ack_timeout_s: Longest wait for Kafka's acknowledgement before a 503.
        max_future_seconds: Refuse posts published further ahead of the clock.
        clock: Unix seconds (for tests).

    """
    labels = SourceLabels()
    application = web.Application()

    def refuse(
        source: str,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        if metrics is not None:
            metrics.requests_refused.labels(labels(source), str(status)).inc()
        log.info("ingest %s: %d %s", source, status, message)
        return error_response(status, message, headers)

    async def receive(request: web.Request) -> web.StreamResponse:
        name = request.match_info["source"]
        endpoint = endpoints.get(name)
        if endpoint is None:
            return error_response(404, f"no webhook source {name[:64]!r}")
        limit = endpoint.max_body_bytes
        too_large = f"the body is larger than {limit} bytes"
        if request.content_length is not None and request.content_length > limit:
            response = refuse(name, 413, too_large)
            response.force_close()  # the rest of the body is never read
            return response
        media_type = request.content_type.lower()
        json_lines = media_type in JSON_LINES_TYPES
        if not json_lines and media_type not in JSON_TYPES:
            return refuse(
                name,
                415,
                "send application/json (a post or an array) or "
                "application/x-ndjson (JSON Lines)",
            )
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        stale = check_timestamp(timestamp, clock())
        if stale is not None or timestamp is None:
            return refuse(name, 401, stale or "")
        body = await _read_at_most(request, limit)
        if body is None:
            response = refuse(name, 413, too_large)
            response.force_close()
            return response
        bad = check_signature(
            endpoint.secret, timestamp, request.headers.get(SIGNATURE_HEADER), body
        )
        if bad is not None:
            return refuse(name, 401, bad)
        try:
            items, rejected = parse_items(body, json_lines)
        except InvalidRecordError as exc:
            return refuse(name, 422, exc.reason)
        if endpoint.bucket is not None:
            wait_s = endpoint.bucket.take(len(items) + len(rejected), clock())
            if wait_s > 0:
                return refuse(
                    name,
                    429,
                    "over this source's rate; send again later",
                    {"Retry-After": str(max(1, math.ceil(wait_s)))},
                )
        now = datetime.fromtimestamp(clock(), UTC)
        posts: list[Post] = []
        batch_ids: set[str] = set()
        duplicates = 0
        for index, item in items:
            try:
                post = to_post(
                    name, item, now=now, max_future_seconds=max_future_seconds
                )
            except InvalidRecordError as exc:
                rejected.append(Rejected(index, exc.reason))
                continue
            if post.id in endpoint.recent or post.id in batch_ids:
                duplicates += 1
                continue
            batch_ids.add(post.id)
            posts.append(post)
        rejected.sort(key=lambda r: r.index)
        if metrics is not None:
            label = labels(name)
            if rejected:
                metrics.posts_rejected.labels(label, "invalid").inc(len(rejected))
            if duplicates:
                metrics.posts_duplicate.labels(label).inc(duplicates)
        answer = {
            "accepted": len(posts),
            "rejected": [{"index": r.index, "reason": r.reason} for r in rejected],
            "duplicates": duplicates,
        }
        if not posts and not duplicates:
            return web.json_response(
                {
                    "error": {"status": 422, "message": "no valid post"},
                    **answer,
                },
                status=422,
                dumps=_dumps,
            )
        if posts:
            try:
                await asyncio.wait_for(publish(posts), ack_timeout_s)
            except Exception as exc:  # noqa: BLE001 - any failure: nothing accepted
                log.warning(
                    "ingest %s: Kafka did not acknowledge %d posts: %s",
                    name,
                    len(posts),
                    type(exc).__name__,
                )
                return refuse(
                    name,
                    503,
                    "Kafka did not acknowledge the posts; nothing was accepted, "
                    "send them again",
                    {"Retry-After": "5"},
                )
            endpoint.recent.add([post.id for post in posts])
            if metrics is not None:
                metrics.posts_accepted.labels(labels(name)).inc(len(posts))
        return web.json_response(answer, status=202, dumps=_dumps)

    application.router.add_post("/{source}", receive)
    return application


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """Read the body, or return None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(min(65_536, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


class KafkaPublish:
    """A :data:`Publish` through one :class:`PostPublisher`, connected on first use.

    Requests are sent one at a time: :meth:`PostPublisher.flush` waits for
    everything queued, so two requests flushing together could let one answer
    before the other's posts are acknowledged.
    """

    def __init__(self, kafka_url: str, topic: str) -> None:
        self.kafka_url, self.topic = kafka_url, topic
        self._publisher: PostPublisher | None = None
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    async def __call__(self, posts: Sequence[Post]) -> None:
        """Send ``posts`` and wait for every acknowledgement."""
        async with self._lock:
            publisher = await self._connected()
            try:
                for post in posts:
                    await publisher.publish(post)
                await publisher.flush()
            except BaseException:
                # A producer that failed or timed out mid-batch is replaced.
                self._publisher = None
                task = asyncio.get_running_loop().create_task(_close_quietly(publisher))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                raise

    async def connect(self) -> None:
        """Connect now rather than on the first request (logs a failure)."""
        async with self._lock:
            try:
                await asyncio.wait_for(self._connected(), 10)
            except Exception as exc:  # noqa: BLE001 - the first request tries again
                log.warning("ingest: cannot connect to Kafka yet: %s", exc)

    async def _connected(self) -> PostPublisher:
        if self._publisher is None:
            # Each request awaits its own acknowledgement: no lingering.
            publisher = PostPublisher(self.kafka_url, self.topic, linger_ms=0)
            try:
                await publisher.start()
            except BaseException:
                await _close_quietly(publisher)
                raise
            self._publisher = publisher
        return self._publisher

    async def close(self) -> None:
        """Flush and disconnect."""
        async with self._lock:
            if self._publisher is not None:
                publisher, self._publisher = self._publisher, None
                await publisher.close()


async def _close_quietly(publisher: PostPublisher) -> None:
    try:
        await asyncio.wait_for(publisher.close(), 5)
    except Exception:  # noqa: BLE001 - it is being thrown away
        log.debug("closing a failed publisher failed", exc_info=True)
