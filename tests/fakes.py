"""In-memory twins for agent-wiring tests. Never a stand-in for a real server
in integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from monitor.errors import SinkUnavailable
from monitor.sinks.base import Document, Rejected, WriteResult
from monitor.sinks.statelog import StateLog


@dataclass
class FakeTopic:
    """Records what was sent to it."""

    name: str
    sent: list[tuple[bytes | None, bytes]] = field(default_factory=list)

    fail_next: int = 0
    error: Exception | None = None

    async def send(
        self,
        *,
        key: bytes | None = None,
        value: bytes | None,
        partition: int | None = None,
    ) -> Any:
        """Queue like Faust: return a future that the 'broker' resolves."""
        future = asyncio.get_running_loop().create_future()
        if self.fail_next > 0:
            self.fail_next -= 1
            error = self.error or RuntimeError("broker refused the record")
            future.set_exception(error)
        else:
            self.sent.append((key, value))
            future.set_result(None)
        return future


@dataclass
class FakeDocumentSink:
    """A DocumentSink in memory: fails ``unavailable_times`` times, then writes;
    refuses documents whose id is in ``refuse``."""

    unavailable_times: int = 0
    refuse: set[str] = field(default_factory=set)
    documents: dict[tuple[str, str], Any] = field(default_factory=dict)
    attempts: int = 0

    async def write(self, docs: Sequence[Document]) -> WriteResult:
        self.attempts += 1
        if self.attempts <= self.unavailable_times:
            raise SinkUnavailable("fake outage", retry_after=0.0)
        result = WriteResult()
        for doc in docs:
            if doc.doc_id in self.refuse:
                result.rejected.append(
                    Rejected(doc.doc_id, "refused by fake", doc.body)
                )
            else:
                self.documents[(doc.index, doc.doc_id)] = doc.body
                result.written.append(doc.doc_id)
        return result

    async def close(self) -> None:
        return None


@dataclass
class FakeMessage:
    """Where a fake event came from, with Faust's reference count: the stream
    holds one reference; the record may be committed once ``acked``."""

    topic: str
    partition: int
    offset: int
    refcount: int = 1
    acked: bool = False

    @property
    def tp(self) -> tuple[str, int]:
        """Faust's ``TP``: a named ``(topic, partition)`` tuple."""
        return (self.topic, self.partition)

    def incref(self) -> None:
        self.refcount += 1

    def ack(self) -> bool:
        if self.acked:
            return False
        self.refcount = max(self.refcount - 1, 0)
        self.acked = self.refcount == 0
        return self.acked


def fake_event(
    value: bytes, *, topic: str = "posts", partition: int = 0, offset: int = 0
) -> Any:
    """An object shaped like a Faust event: ``.value``, ``.message``, ``.ack()``."""
    message = FakeMessage(topic=topic, partition=partition, offset=offset)
    return SimpleNamespace(value=value, key=None, message=message, ack=message.ack)


@dataclass
class FakeStateLog(StateLog):
    """The state log in memory: a dict per partition; ``None`` deletes.

    ``fail_next`` makes that many ``write`` calls fail after they were asked
    for (the broker refused them), writing nothing. ``calls`` records the
    keys of each ``write`` call, in order.
    """

    partitions: dict[int, dict[str, Any]] = field(default_factory=dict)
    fail_next: int = 0
    restores: int = 0
    calls: list[list[str]] = field(default_factory=list)

    async def entries(self, partition: int) -> list[tuple[str, Any]]:
        self.restores += 1
        return list(self.partitions.get(partition, {}).items())

    async def write(self, partition: int, writes: dict[str, Any]) -> list[Any]:
        self.calls.append(list(writes))
        future = asyncio.get_running_loop().create_future()
        if self.fail_next > 0:
            self.fail_next -= 1
            future.set_exception(RuntimeError("state log write refused"))
            return [future]
        log = self.partitions.setdefault(partition, {})
        for key, value in writes.items():
            if value is None:
                log.pop(key, None)
            else:
                log[key] = value
        future.set_result(None)
        return [future]
