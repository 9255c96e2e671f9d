"""The one bulk helper: item sorting, in-place 429 retries, and the ticket
store's event writes going through it (scripted client; the real server is in
tests/integration)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from monitor.analysis.tickets.model import TicketEvent
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.bulk import (
    BULK_FILTER_PATH,
    BulkResult,
    bulk_write,
    sort_item,
)
from monitor.sinks.elasticsearch.tickets import (
    TicketStore,
    TicketStoreError,
    TicketStoreUnavailable,
)
from tests.unit.test_es_sink import FakeBulkClient

DOC = Document("i", "d1", {"text": "x"})
MAPPING_ERROR = {"type": "mapper_parsing_exception", "reason": "bad field"}


@pytest.mark.parametrize(
    ("op_type", "status", "outcome"),
    [
        ("index", 201, "written"),
        ("index", 200, "written"),
        ("create", 201, "written"),
        ("create", 409, "existing"),
        ("index", 409, "rejected"),
        ("index", 400, "rejected"),
        ("index", 429, "retry"),
        ("index", 503, "retry"),
    ],
)
def test_sort_item(op_type: str, status: int, outcome: str) -> None:
    result = BulkResult()
    item = {op_type: {"_id": "d1", "status": status, "error": MAPPING_ERROR}}
    sort_item(DOC, op_type, item, result)
    found = {
        "written": result.written == ["d1"] and not result.existing,
        "existing": result.written == result.existing == ["d1"],
        "rejected": [r.doc_id for r in result.rejected] == ["d1"],
        "retry": result.retry == ["d1"],
    }
    assert [name for name, hit in found.items() if hit] == [outcome]
    if outcome == "rejected":
        assert result.rejected[0].reason.startswith("mapper_parsing_exception: ")


class BusyClient(FakeBulkClient):
    """Answers 429 for every item ``busy`` times, then takes them."""

    def __init__(self, busy: int, status: int = 429) -> None:
        self.busy, self.status = busy, status
        self.requests: list[list[str]] = []
        self.params: list[dict[str, Any]] = []

    async def bulk(self, *, operations: list[Any], **params: Any) -> Any:
        self.params.append(params)
        return await super().bulk(operations=operations)

    def answer(self, actions: list[tuple[str, dict[str, Any], Any]]) -> dict[str, Any]:
        self.requests.append([meta["_id"] for _, meta, _ in actions])
        status = self.status if len(self.requests) <= self.busy else 201
        items = [
            {op: {"_id": meta["_id"], "status": status, "error": MAPPING_ERROR}}
            for op, meta, _ in actions
        ]
        return {"errors": status >= 300, "items": items}


async def test_items_answered_429_are_sent_again_in_place() -> None:
    client = BusyClient(busy=2)
    docs = [Document("i", f"d{n}", {"n": n}) for n in range(3)]
    result = await bulk_write(client, docs, backoff=0.0)  # type: ignore[arg-type]
    assert sorted(result.written) == ["d0", "d1", "d2"] and not result.retry
    assert len(client.requests) == 3


async def test_only_the_items_answered_429_go_again_and_results_match_by_position() -> (
    None
):
    class HalfBusy(BusyClient):
        def answer(self, actions):  # noqa: ANN001, ANN202
            self.requests.append([meta["_id"] for _, meta, _ in actions])
            first = len(self.requests) == 1
            return {
                "items": [
                    # the first request: odd documents are refused for good,
                    # even ones are busy
                    {
                        op: {
                            "_id": meta["_id"],
                            "status": ((429 if n % 2 == 0 else 400) if first else 201),
                            "error": MAPPING_ERROR,
                        }
                    }
                    for n, (op, meta, _) in enumerate(actions)
                ]
            }

    client = HalfBusy(busy=0)
    docs = [Document("i", f"d{n}", {"n": n}) for n in range(5)]
    result = await bulk_write(client, docs, backoff=0.0)  # type: ignore[arg-type]
    assert client.requests == [["d0", "d1", "d2", "d3", "d4"], ["d0", "d2", "d4"]]
    assert sorted(result.written) == ["d0", "d2", "d4"]
    assert sorted(r.doc_id for r in result.rejected) == ["d1", "d3"]
    assert client.params[0]["filter_path"] == BULK_FILTER_PATH


async def test_items_still_429_after_the_retries_are_left_to_retry() -> None:
    client = BusyClient(busy=10)
    result = await bulk_write(  # type: ignore[arg-type]
        client, [DOC], max_retries=2, backoff=0.0
    )
    assert result.retry == ["d1"] and not result.written
    assert len(client.requests) == 3


EVENT = TicketEvent(
    ticket_id="T-1",
    event_id="T-1#1",
    at=datetime(2026, 11, 20, tzinfo=timezone.utc),
    actor="monitor",
    action="open",
    from_status=None,
    to_status="open",
)


def _store(client: FakeBulkClient) -> TicketStore:
    store = TicketStore(client, "acme")  # type: ignore[arg-type]
    store._ready = True  # templates are the integration tests' business
    return store


async def test_ticket_events_go_through_the_bulk_helper() -> None:
    client = BusyClient(busy=1)
    await _store(client).write_events([EVENT])
    assert client.requests == [["T-1#1"], ["T-1#1"]]  # a 429, then taken
    assert [params["refresh"] for params in client.params] == [True, True]


async def test_ticket_events_refused_for_good_raise_with_the_reason() -> None:
    with pytest.raises(TicketStoreError, match="T-1#1: mapper_parsing_exception"):
        await _store(BusyClient(busy=1, status=400)).write_events([EVENT])


async def test_ticket_events_the_cluster_cannot_take_raise_unavailable() -> None:
    with pytest.raises(TicketStoreUnavailable):
        await _store(BusyClient(busy=1, status=503)).write_events([EVENT])
