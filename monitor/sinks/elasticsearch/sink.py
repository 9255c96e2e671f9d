"""Elasticsearch: index templates, document mapping and an idempotent bulk sink."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, AsyncElasticsearch, TransportError
from elasticsearch.serializer import (
    CompatibilityModeJsonSerializer,
    CompatibilityModeNdjsonSerializer,
    JsonSerializer,
    NdjsonSerializer,
)

from monitor.errors import SinkUnavailable
from monitor.records import MAX_ID_BYTES, MAX_URL_CHARS, ScoredPost
from monitor.sinks.base import Document, Rejected, WriteResult

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Statuses that mean "try again later".
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Bulk requests stay under this many bytes (Elasticsearch refuses bodies over
#: http.max_content_length, 100 MB by default and 10 MB on small hosted plans).
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024

#: Keyword values longer than this many characters are kept in ``_source`` but
#: not indexed (``ignore_above``): Lucene refuses a term over 32,766 bytes,
#: which would refuse the whole document. Every keyword field of every
#: template sets it (a unit test checks); fields with a longer documented
#: bound (ids, URLs) set that bound instead.
KEYWORD_IGNORE_ABOVE = 256


def keyword_field(
    ignore_above: int = KEYWORD_IGNORE_ABOVE, **options: Any
) -> dict[str, Any]:
    """Return the mapping of a ``keyword`` field with ``ignore_above`` set.

    Args:
        ignore_above: Longest value indexed, in characters.
        **options: Further mapping parameters (``index=False``, ...).

    """
    return {"type": "keyword", "ignore_above": ignore_above, **options}


#: Mapping of ``<prefix>-posts-*``: explicit and strict, so a field the code
#: did not mean to send is refused instead of guessed.
POST_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "post_id": keyword_field(MAX_ID_BYTES),
        "source": keyword_field(),
        "author": keyword_field(),
        "url": keyword_field(MAX_URL_CHARS, index=False),
        "text": {"type": "text"},
        "original_text": {"type": "text", "index": False},
        "sentiment": {"type": "float"},
        "label": keyword_field(),
        "keywords": keyword_field(),
        "topics": keyword_field(),
        "published_at": {"type": "date"},
        "scored_at": {"type": "date"},
        "indexed_at": {"type": "date"},
        "likes": {"type": "long"},
        "reposts": {"type": "long"},
        "followers": {"type": "long"},
        "meta": {"type": "object", "enabled": False},
    },
}


def posts_index_pattern(prefix: str) -> str:
    """Pattern matching every daily posts index, e.g. ``monitor-posts-*``."""
    return f"{prefix}-posts-*"


def post_index_template(prefix: str) -> dict[str, Any]:
    """Body of the index template for the daily posts indices."""
    return {
        "index_patterns": [f"{prefix}-posts*"],
        "priority": 200,
        "template": {
            "settings": {
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "refresh_interval": "1s",
            },
            "mappings": POST_MAPPING,
        },
        "_meta": {"managed_by": "monitor", "description": "posts scored by monitor"},
    }


def daily_index(
    prefix: str, kind: str, at: datetime, utc_offset: str = "+00:00"
) -> str:
    """Name of the daily index for a timestamp, e.g. ``monitor-posts-2026.11.20``.

    Args:
        prefix: Index prefix from settings.
        kind: ``posts``, ``tickets``, ...
        at: A timezone-aware timestamp (the post's ``published_at``).
        utc_offset: ``+08:00`` dates indices by China Standard Time.

    """
    day = at.astimezone(_zone(utc_offset))
    return f"{prefix}-{kind}-{day.year:04d}.{day.month:02d}.{day.day:02d}"


@functools.lru_cache(maxsize=64)
def _zone(utc_offset: str) -> timezone:
    """Return the fixed zone of e.g. ``+08:00`` (cached: asked for every post)."""
    sign = -1 if utc_offset.startswith("-") else 1
    hours, minutes = utc_offset[1:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def to_es_document(
    post: ScoredPost | Mapping[str, Any],
    *,
    prefix: str,
    utc_offset: str,
    indexed_at: datetime,
) -> Document:
    """Map a scored post to its Elasticsearch document (id = post id).

    ``post`` is a :class:`ScoredPost` or its JSON as decoded by
    :func:`~monitor.records.decode_scored_post` (timestamps as ISO strings).
    """
    data = post.asdict() if isinstance(post, ScoredPost) else post
    published = wire = data["published_at"]
    if isinstance(published, str):
        published = datetime.fromisoformat(published)
    else:
        wire = published.isoformat()
    scored = data["scored_at"]
    body = {
        "post_id": data["post_id"],
        "source": data["source"],
        "author": data.get("author"),
        "url": data.get("url"),
        "text": data["text"],
        "original_text": data.get("original_text", data["text"]),
        "sentiment": data["positive_probability"],
        "label": data["label"],
        "keywords": list(data["keywords"]),
        "topics": list(data["topics"]),
        "published_at": wire,
        "scored_at": scored if isinstance(scored, str) else scored.isoformat(),
        "indexed_at": indexed_at.isoformat(),
        "likes": data.get("likes") or 0,
        "reposts": data.get("reposts") or 0,
        "followers": data.get("followers") or 0,
        "meta": data.get("meta") or {},
    }
    return Document(
        index=daily_index(prefix, "posts", published, utc_offset),
        doc_id=data["post_id"],
        body=body,
    )


#: Bulk actions the sink writes with: ``index`` replaces a document of the
#: same id, ``create`` keeps the one already there.
OP_TYPES = ("index", "create")


class ElasticsearchSink:
    """Writes documents with the bulk API, by id, so retries never duplicate.

    With ``op_type="index"`` (the default) a document replaces the one with
    its id: the latest version wins (window counts, tickets). With
    ``op_type="create"`` the first version wins (posts): an item answered 409
    (the id exists already) is written all the same, and also listed in
    :attr:`WriteResult.existing`.

    A document Elasticsearch refuses for good (a mapping error, say) comes
    back in :attr:`WriteResult.rejected` with Elasticsearch's reason. When the
    cluster cannot take the batch (connection refused, timeout, 429 or 5xx on
    the request or on any item) the whole batch raises
    :class:`SinkUnavailable`: writing it again is safe because ids are fixed.
    """

    def __init__(
        self,
        client: AsyncElasticsearch,
        *,
        templates: Mapping[str, Mapping[str, Any]] | None = None,
        retry_after: float = 1.0,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        op_type: str = "index",
    ) -> None:
        if op_type not in OP_TYPES:
            raise ValueError(f"op_type must be one of {OP_TYPES}, not {op_type!r}")
        self.client = client
        self.retry_after = retry_after
        self.max_request_bytes = max_request_bytes
        self.op_type = op_type
        self._templates = dict(templates or {})

    def with_op_type(self, op_type: str) -> ElasticsearchSink:
        """Return a sink writing with ``op_type`` over this one's client.

        The two share the client (closing either closes it) and the templates
        still to put (a template either one put is not put again).
        """
        sink = ElasticsearchSink(
            self.client,
            retry_after=self.retry_after,
            max_request_bytes=self.max_request_bytes,
            op_type=op_type,
        )
        sink._templates = self._templates
        return sink

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        templates: Mapping[str, Mapping[str, Any]] | None = None,
        api_key: str | None = None,
        request_timeout: float = 30.0,
        op_type: str = "index",
    ) -> ElasticsearchSink:
        """Create a sink with its own client; the sink does its own retries.

        Args:
            url: Elasticsearch URL.
            templates: Index templates (name -> body) put before the first write,
                so that no index is created without its mapping.
            api_key: Optional API key.
            request_timeout: Seconds per request.
            op_type: ``index`` (the latest version wins) or ``create`` (the
                first version wins).

        """
        client = es_client(url, api_key=api_key, request_timeout=request_timeout)
        return cls(client, templates=templates, op_type=op_type)

    async def ensure_templates(self) -> None:
        """Put the index templates not yet put by this sink.

        Raises:
            SinkUnavailable: If Elasticsearch cannot be reached.

        """
        while self._templates:
            name, body = next(iter(self._templates.items()))
            await self._call(self.client.indices.put_index_template(name=name, **body))
            # Two stages share the sink and may put the same template at once.
            self._templates.pop(name, None)

    async def write(self, docs: Sequence[Document]) -> WriteResult:
        """Index ``docs`` with as many bulk requests as the byte cap needs.

        Requests stay under ``max_request_bytes``; a request Elasticsearch
        still finds too large (413) is split in halves, and a single document
        too large on its own is rejected with that reason.

        Raises:
            SinkUnavailable: If any part of the batch should be retried.

        """
        result = WriteResult()
        if not docs:
            return result
        await self.ensure_templates()
        for chunk in _chunks_by_size(docs, self.max_request_bytes):
            await self._write_chunk(chunk, result)
        return result

    async def _write_chunk(self, docs: list[_Sized], result: WriteResult) -> None:
        operations: list[Mapping[str, Any]] = []
        for sized in docs:
            doc = sized.doc
            operations.append({self.op_type: {"_index": doc.index, "_id": doc.doc_id}})
            operations.append(doc.body)
        started = time.perf_counter()
        try:
            response = await self.client.bulk(operations=operations)
        except ApiError as exc:
            if exc.meta.status != 413:
                raise self._unavailable(exc) from exc
            if len(docs) == 1:
                doc = docs[0].doc
                result.rejected.append(
                    Rejected(
                        doc.doc_id,
                        f"document too large for Elasticsearch "
                        f"(413, {docs[0].size:,} bytes)",
                        doc.body,
                    )
                )
                return
            middle = len(docs) // 2
            await self._write_chunk(docs[:middle], result)
            await self._write_chunk(docs[middle:], result)
            return
        except TransportError as exc:
            raise self._unavailable(exc) from exc
        log.debug("bulk of %d in %.3f s", len(docs), time.perf_counter() - started)
        retryable = 0
        for sized, item in zip(docs, response["items"], strict=True):
            doc = sized.doc
            outcome = next(iter(item.values()))
            status = int(outcome.get("status", 500))
            if 200 <= status < 300:
                result.written.append(doc.doc_id)
            elif status == 409 and self.op_type == "create":
                # The id exists already: the first version stays, as wanted.
                result.written.append(doc.doc_id)
                result.existing.append(doc.doc_id)
            elif status == 429 or status >= 500:
                retryable += 1
            else:
                result.rejected.append(
                    Rejected(doc.doc_id, _error_reason(outcome.get("error")), doc.body)
                )
        if retryable:
            raise SinkUnavailable(
                f"Elasticsearch could not take {retryable} of {len(docs)} documents "
                "(429/5xx); retrying the batch",
                retry_after=self.retry_after,
            )

    async def _call(self, request: Awaitable[T]) -> T:
        """Await a client call; "try again later" failures become SinkUnavailable."""
        try:
            return await request
        except (ApiError, TransportError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: ApiError | TransportError) -> SinkUnavailable:
        """Return the SinkUnavailable that holds the batch for a client error."""
        if isinstance(exc, TransportConnectionError | ConnectionTimeout):
            return SinkUnavailable(
                f"Elasticsearch unreachable: {exc}", retry_after=self.retry_after
            )
        if isinstance(exc, ApiError):
            status = exc.meta.status
            if status not in TRANSIENT_STATUSES:
                # 400/401/403/404...: retrying alone will not fix it, but
                # dropping the batch would lose it. Keep it, and say so loudly.
                log.error(
                    "Elasticsearch refused the request with %s; fix the cause "
                    "(credentials, template, proxy); the batch is held: %s",
                    status,
                    exc,
                )
            return SinkUnavailable(
                f"Elasticsearch refused the request ({status}): {exc}",
                retry_after=self.retry_after,
            )
        return SinkUnavailable(
            f"Elasticsearch transport error: {exc}", retry_after=self.retry_after
        )

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.close()


def _error_reason(error: Any) -> str:
    if not isinstance(error, Mapping):
        return str(error)
    reason = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    caused = error.get("caused_by")
    if isinstance(caused, Mapping):
        reason += f" (caused by {caused.get('type')}: {caused.get('reason')})"
    return reason


@dataclass(frozen=True)
class _Sized:
    doc: Document
    size: int


def _with_orjson(base: type[JsonSerializer]) -> JsonSerializer:
    class Orjson(base):  # type: ignore[misc,valid-type]
        def json_dumps(self, data: Any) -> bytes:
            return orjson.dumps(data, default=self.default)

    return Orjson()


def es_client(
    url: str, *, api_key: str | None = None, request_timeout: float = 30.0
) -> AsyncElasticsearch:
    """Return an async client for the product's own writers.

    No client-side retries (each caller retries in its own way); request
    bodies are encoded with orjson (:func:`fast_serializers`).
    """
    return AsyncElasticsearch(
        url,
        api_key=api_key,
        request_timeout=request_timeout,
        max_retries=0,
        retry_on_timeout=False,
        serializers=fast_serializers(),
    )


def fast_serializers() -> dict[str, JsonSerializer]:
    """Request serializers for the client that encode with orjson.

    The client's own encode bulk bodies with the standard library's ``json``,
    a visible share of a busy worker's CPU. Same output (UTF-8, no spaces
    aside), ``default`` as the client's for datetimes and the like.
    """
    return {
        "application/json": _with_orjson(JsonSerializer),
        "application/x-ndjson": _with_orjson(NdjsonSerializer),
        "application/vnd.elasticsearch+json": _with_orjson(
            CompatibilityModeJsonSerializer
        ),
        "application/vnd.elasticsearch+x-ndjson": _with_orjson(
            CompatibilityModeNdjsonSerializer
        ),
    }


def _chunks_by_size(docs: Sequence[Document], max_bytes: int) -> list[list[_Sized]]:
    """Split docs into runs whose estimated bulk body stays under ``max_bytes``."""
    chunks: list[list[_Sized]] = []
    current: list[_Sized] = []
    total = 0
    for doc in docs:
        # Action line plus source line, encoded as the client sends it.
        size = len(orjson.dumps(doc.body, default=str)) + 128
        if current and total + size > max_bytes:
            chunks.append(current)
            current, total = [], 0
        current.append(_Sized(doc, size))
        total += size
    if current:
        chunks.append(current)
    return chunks
