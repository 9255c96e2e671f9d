"""update_with_retry: the one optimistic-concurrency loop of the ticket service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import pytest

from monitor.analysis.tickets.model import Ticket, TicketEvent, Trigger
from monitor.analysis.tickets.policy import TicketPolicy
from monitor.services.ticketing import Change, update_with_retry
from monitor.sinks.elasticsearch.tickets import ConcurrentUpdate, Version

MOMENT = datetime(2026, 11, 20, 5, 0, tzinfo=timezone.utc)


def _opened() -> tuple[Ticket, TicketEvent]:
    trigger = Trigger("t", "r", "burst", None, MOMENT, MOMENT, 5.0, 4.0)
    decision = TicketPolicy().decide(trigger, [], MOMENT)
    assert decision.ticket is not None and decision.event is not None
    return decision.ticket, decision.event


class FlakyStore:
    """Saves after ``conflicts`` refusals; records what it was asked to save."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.saves: list[tuple[Ticket, list[TicketEvent], Version | None]] = []

    async def save(
        self, ticket: Ticket, events: Sequence[TicketEvent], version: Version | None
    ) -> None:
        self.saves.append((ticket, list(events), version))
        if len(self.saves) <= self.conflicts:
            raise ConcurrentUpdate(ticket.ticket_id)


class Reader:
    """An attempt that reads version ``n`` on its n-th call."""

    def __init__(self, ticket: Ticket, event: TicketEvent) -> None:
        self.ticket = ticket
        self.event = event
        self.calls = 0

    async def __call__(self) -> Change[int]:
        self.calls += 1
        version = Version(seq_no=self.calls, primary_term=1)
        return Change(self.calls, self.ticket, [self.event], version)


async def test_a_conflict_reads_again_and_saves_with_the_new_version() -> None:
    ticket, event = _opened()
    store, attempt = FlakyStore(conflicts=1), Reader(ticket, event)
    result = await update_with_retry(
        attempt, store.save, key=ticket.ticket_id, max_conflicts=3
    )
    assert result == 2
    assert attempt.calls == 2
    assert [version.seq_no for _, _, version in store.saves if version] == [1, 2]
    assert store.saves[-1][:2] == (ticket, [event])


async def test_conflicts_exhausted_raise_for_the_key_after_max_attempts() -> None:
    ticket, event = _opened()
    store, attempt = FlakyStore(conflicts=10), Reader(ticket, event)
    with pytest.raises(ConcurrentUpdate) as caught:
        await update_with_retry(attempt, store.save, key="fp-abc", max_conflicts=4)
    assert caught.value.ticket_id == "fp-abc"
    assert attempt.calls == len(store.saves) == 4


async def test_the_last_allowed_attempt_may_still_succeed() -> None:
    ticket, event = _opened()
    store, attempt = FlakyStore(conflicts=3), Reader(ticket, event)
    assert await update_with_retry(attempt, store.save, key="k", max_conflicts=4) == 4


async def test_a_stale_read_counts_as_a_conflict() -> None:
    ticket, event = _opened()
    store = FlakyStore(conflicts=0)
    calls = 0

    async def attempt() -> Change[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConcurrentUpdate(ticket.ticket_id)
        return Change("saved", ticket, [event], None)

    assert await update_with_retry(attempt, store.save, key="k", max_conflicts=2) == (
        "saved"
    )
    assert calls == 2 and len(store.saves) == 1


async def test_reads_that_stay_stale_give_up_without_saving() -> None:
    store = FlakyStore(conflicts=0)
    calls = 0

    async def attempt() -> Change[str]:
        nonlocal calls
        calls += 1
        raise ConcurrentUpdate("T-1")

    with pytest.raises(ConcurrentUpdate, match="T-9"):
        await update_with_retry(attempt, store.save, key="T-9", max_conflicts=3)
    assert calls == 3 and store.saves == []


@pytest.mark.parametrize(
    "change",
    [Change("nothing"), Change("no events", ticket=_opened()[0], events=())],
    ids=["no-ticket", "no-events"],
)
async def test_a_change_with_nothing_to_write_returns_without_saving(
    change: Change[str],
) -> None:
    store = FlakyStore(conflicts=0)

    async def attempt() -> Change[str]:
        return change

    assert await update_with_retry(attempt, store.save, key="k", max_conflicts=1) == (
        change.result
    )
    assert store.saves == []


async def test_other_errors_propagate_at_once() -> None:
    ticket, _ = _opened()
    store = FlakyStore(conflicts=0)
    calls = 0

    async def attempt() -> Change[None]:
        nonlocal calls
        calls += 1
        raise KeyError(ticket.ticket_id)

    with pytest.raises(KeyError):
        await update_with_retry(attempt, store.save, key="k", max_conflicts=5)
    assert calls == 1


async def test_a_new_ticket_is_saved_without_a_version() -> None:
    ticket, event = _opened()
    store = FlakyStore(conflicts=0)

    async def attempt() -> Change[Ticket]:
        return Change(ticket, ticket, [event], None)

    saved = await update_with_retry(attempt, store.save, key="k", max_conflicts=1)
    assert saved == ticket
    assert store.saves == [(ticket, [event], None)]
