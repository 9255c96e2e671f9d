"""ElasticsearchSink's request shaping and error mapping, with a scripted client
(the real server is exercised in tests/integration)."""

from __future__ import annotations

from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import ApiError

from monitor.errors import SinkUnavailable
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch import ElasticsearchSink


def api_error(status: int) -> ApiError:
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "localhost", 9200),
    )
    return ApiError(f"status {status}", meta=meta, body={})


class ScriptedClient:
    """Answers bulk requests: refuses bodies over ``limit`` docs with ``status``."""

    def __init__(
        self,
        *,
        limit: int = 10**9,
        status: int = 413,
        fail_with: BaseException | None = None,
    ) -> None:
        self.limit, self.status, self.fail_with = limit, status, fail_with
        self.requests: list[int] = []

    async def bulk(self, operations: list[Any]) -> dict[str, Any]:
        docs = len(operations) // 2
        self.requests.append(docs)
        if self.fail_with is not None:
            raise self.fail_with
        if docs > self.limit:
            raise api_error(self.status)
        return {"items": [{"index": {"status": 201}} for _ in range(docs)]}

    async def close(self) -> None:
        return None


def docs(count: int, size: int = 10) -> list[Document]:
    return [Document("i", f"d{n}", {"text": "x" * size}) for n in range(count)]


async def test_requests_stay_under_the_byte_cap() -> None:
    client = ScriptedClient()
    sink = ElasticsearchSink(client, max_request_bytes=1_000)  # type: ignore[arg-type]
    result = await sink.write(docs(20, size=200))
    assert len(result.written) == 20 and not result.rejected
    assert len(client.requests) > 1 and sum(client.requests) == 20
    assert max(client.requests) <= 3  # ~330 bytes each, 1,000 per request


async def test_a_413_splits_the_request_until_it_fits() -> None:
    client = ScriptedClient(limit=3)
    sink = ElasticsearchSink(client)  # type: ignore[arg-type]
    result = await sink.write(docs(10))
    assert sorted(result.written) == sorted(d.doc_id for d in docs(10))
    assert client.requests[0] == 10 and max(client.requests[1:]) <= 10


async def test_a_single_document_too_large_is_rejected_not_retried() -> None:
    client = ScriptedClient(limit=0)
    sink = ElasticsearchSink(client)  # type: ignore[arg-type]
    result = await sink.write(docs(2))
    assert [r.doc_id for r in result.rejected] == ["d0", "d1"]
    assert all("too large" in r.reason for r in result.rejected)


@pytest.mark.parametrize(
    "error",
    [
        api_error(429),
        api_error(503),
        api_error(401),
        TransportConnectionError("refused"),
    ],
)
async def test_other_failures_hold_the_batch_for_a_retry(error: BaseException) -> None:
    sink = ElasticsearchSink(ScriptedClient(fail_with=error))  # type: ignore[arg-type]
    with pytest.raises(SinkUnavailable):
        await sink.write(docs(3))


def test_fast_serializers_encode_as_the_client_does() -> None:
    from datetime import datetime, timezone

    from elasticsearch.serializer import (
        CompatibilityModeJsonSerializer,
        CompatibilityModeNdjsonSerializer,
        JsonSerializer,
        NdjsonSerializer,
    )

    from monitor.sinks.elasticsearch import fast_serializers

    stock = {
        "application/json": JsonSerializer(),
        "application/x-ndjson": NdjsonSerializer(),
        "application/vnd.elasticsearch+json": CompatibilityModeJsonSerializer(),
        "application/vnd.elasticsearch+x-ndjson": CompatibilityModeNdjsonSerializer(),
    }
    body = {
        "text": '空调有股怪味 "引号" \\ 😀',
        "at": datetime(2026, 11, 20, 5, 1, 2, 345678, tzinfo=timezone.utc),
        "n": [1, 2.5, None, True],
        "meta": {"nested": {"k": "v"}},
    }
    fast = fast_serializers()
    assert set(fast) == set(stock)
    for mimetype, serializer in fast.items():
        data = [{"index": {"_id": "x"}}, body] if "ndjson" in mimetype else body
        assert serializer.dumps(data) == stock[mimetype].dumps(data), mimetype
