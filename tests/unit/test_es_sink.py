"""ElasticsearchSink's request shaping and error mapping, with a scripted client
(the real server is exercised in tests/integration)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elastic_transport import ConnectionError as TransportConnectionError
from elasticsearch import ApiError
from elasticsearch.serializer import JsonSerializer

from monitor.errors import SinkUnavailable
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.bulk import BULK_MAX_RETRIES, ElasticsearchSink


def api_error(status: int) -> ApiError:
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "localhost", 9200),
    )
    return ApiError(f"status {status}", meta=meta, body={})


class FakeBulkClient:
    """What the bulk helper uses of ``AsyncElasticsearch``.

    ``options()``, the JSON serializer and ``bulk()``, which gets the request
    as the client would send it (pre-encoded ndjson lines); subclasses answer
    the decoded ``(op_type, meta, source)`` actions in :meth:`answer`.
    """

    transport = SimpleNamespace(
        serializers=SimpleNamespace(get_serializer=lambda mimetype: JsonSerializer())
    )

    def options(self, **_: Any) -> FakeBulkClient:
        return self

    async def bulk(self, *, operations: list[Any], **params: Any) -> SimpleNamespace:
        lines = [
            orjson.loads(line) if isinstance(line, bytes | str) else line
            for line in operations
        ]
        actions = [
            (*next(iter(action.items())), source)
            for action, source in zip(lines[::2], lines[1::2], strict=True)
        ]
        return SimpleNamespace(body=self.answer(actions))

    def answer(self, actions: list[tuple[str, dict[str, Any], Any]]) -> dict[str, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class ScriptedClient(FakeBulkClient):
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

    def answer(self, actions: list[tuple[str, dict[str, Any], Any]]) -> dict[str, Any]:
        docs = len(actions)
        self.requests.append(docs)
        if self.fail_with is not None:
            raise self.fail_with
        if docs > self.limit:
            raise api_error(self.status)
        return {
            "items": [
                {op_type: {"_id": meta["_id"], "status": 201}}
                for op_type, meta, _ in actions
            ]
        }


TOO_MANY = api_error(429)


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
        TOO_MANY,
        api_error(503),
        api_error(401),
        TransportConnectionError("refused"),
    ],
)
async def test_other_failures_hold_the_batch_for_a_retry(error: BaseException) -> None:
    client = ScriptedClient(fail_with=error)
    sink = ElasticsearchSink(client, bulk_backoff=0.0)  # type: ignore[arg-type]
    with pytest.raises(SinkUnavailable):
        await sink.write(docs(3))
    # Only a 429 is tried again in place (async_streaming_bulk's max_retries).
    assert len(client.requests) == (1 + BULK_MAX_RETRIES if error is TOO_MANY else 1)


class StoringClient(FakeBulkClient):
    """Answers bulk requests as Elasticsearch does for ``index`` and ``create``."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], Any] = {}
        self.actions: list[str] = []

    def answer(self, actions: list[tuple[str, dict[str, Any], Any]]) -> dict[str, Any]:
        items = []
        for op_type, meta, body in actions:
            self.actions.append(op_type)
            key = (meta["_index"], meta["_id"])
            if op_type == "create" and key in self.stored:
                error = {
                    "type": "version_conflict_engine_exception",
                    "reason": f"[{meta['_id']}]: version conflict, "
                    "document already exists (current version [1])",
                }
                items.append(
                    {op_type: {"_id": meta["_id"], "status": 409, "error": error}}
                )
                continue
            status = 200 if key in self.stored else 201
            self.stored[key] = body
            items.append({op_type: {"_id": meta["_id"], "status": status}})
        return {
            "errors": any(i[next(iter(i))]["status"] >= 300 for i in items),
            "items": items,
        }


async def test_create_keeps_the_first_version_and_reports_both_written() -> None:
    client = StoringClient()
    sink = ElasticsearchSink(client, op_type="create")  # type: ignore[arg-type]
    first = await sink.write([Document("posts", "p1", {"text": "first"})])
    again = await sink.write(
        [
            Document("posts", "p1", {"text": "second"}),
            Document("posts", "p2", {"text": "new"}),
        ]
    )
    assert client.stored[("posts", "p1")] == {"text": "first"}
    assert client.stored[("posts", "p2")] == {"text": "new"}
    assert (first.written, first.existing, first.rejected) == (["p1"], [], [])
    assert (again.written, again.existing, again.rejected) == (["p1", "p2"], ["p1"], [])
    assert client.actions == ["create"] * 3


async def test_index_replaces_and_a_409_under_index_is_rejected() -> None:
    client = StoringClient()
    sink = ElasticsearchSink(client)  # type: ignore[arg-type]
    await sink.write([Document("counts", "w1", {"posts": 1})])
    result = await sink.write([Document("counts", "w1", {"posts": 2})])
    assert client.stored[("counts", "w1")] == {"posts": 2}
    assert (result.written, result.existing) == (["w1"], [])
    assert client.actions == ["index", "index"]

    class Conflicting(StoringClient):
        def answer(
            self, actions: list[tuple[str, dict[str, Any], Any]]
        ) -> dict[str, Any]:
            error = {"type": "version_conflict_engine_exception", "reason": "x"}
            return {"items": [{"index": {"_id": "w1", "status": 409, "error": error}}]}

    refused = await ElasticsearchSink(Conflicting()).write(  # type: ignore[arg-type]
        [Document("counts", "w1", {"posts": 3})]
    )
    assert refused.written == [] and [r.doc_id for r in refused.rejected] == ["w1"]


async def test_with_op_type_shares_the_client_and_the_templates_to_put() -> None:
    class Templated(StoringClient):
        def __init__(self) -> None:
            super().__init__()
            self.put: list[str] = []
            self.indices = self

        async def put_index_template(self, name: str, **body: Any) -> None:
            self.put.append(name)

    client = Templated()
    windows = ElasticsearchSink(client, templates={"t": {}})  # type: ignore[arg-type]
    posts = windows.with_op_type("create")
    assert (posts.client, posts.op_type, windows.op_type) == (client, "create", "index")
    await posts.write([Document("posts", "p1", {})])
    await windows.write([Document("counts", "w1", {})])
    assert client.put == ["t"]  # put once, by whichever wrote first
    assert client.actions == ["create", "index"]


def test_an_unknown_op_type_is_refused() -> None:
    with pytest.raises(ValueError, match="op_type"):
        ElasticsearchSink(StoringClient(), op_type="update")  # type: ignore[arg-type]


def test_fast_serializers_encode_as_the_client_does() -> None:
    from datetime import datetime, timezone

    from elasticsearch.serializer import (
        CompatibilityModeJsonSerializer,
        CompatibilityModeNdjsonSerializer,
        JsonSerializer,
        NdjsonSerializer,
    )

    from monitor.sinks.elasticsearch.bulk import fast_serializers

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
