"""The notice sender: moves the tickets' outboxes to the channels.

Exactly one sender runs at a time: the one on the worker that owns the
``triggers`` partition (:mod:`monitor.pipelines.alert` starts it when the
partition is assigned and stops it when revoked). A round
(:meth:`NoticeSender.run_once`):

1. reads the tickets whose outbox has a notice due (one search), and hands
   the notifier the current owners book and ``personal:`` section (personal
   notices, ``@<person>/<via>``, are addressed when sent);
2. per channel, fits the due notices into what the channel may take now
   (:func:`~monitor.analysis.tickets.outbox.plan_channel`: the most urgent
   singly, P1 first, the rest as one digest, nothing dropped) and sends them
   with stable delivery ids (``<notice_id>@<channel>``);
3. per ticket, re-reads it and records every outcome with one conditional
   write (:func:`~monitor.services.ticketing.update_with_retry`): accepted
   channels leave the notice, failed ones are retried with backoff, and the
   ticket's ``delivery`` shows each channel's latest status. The write also
   moves the events pending in the ticket document to ``ticket-events``.

A crash before step 3 sends the same notices again with the same delivery
ids (at least once; receivers drop repeats by id); a crash before step 2
sends them once. While Elasticsearch is down nothing is read, so notices wait
in the documents and none is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.analysis.tickets.lifecycle import stamp_event
from monitor.analysis.tickets.model import (
    SYSTEM_ACTOR,
    Notice,
    Ticket,
    TicketAction,
    TicketEvent,
)
from monitor.analysis.tickets.outbox import (
    PendingSend,
    due_deliveries,
    plan_channel,
    record_outcome,
)
from monitor.analysis.tickets.policy import TicketSettings
from monitor.errors import SinkUnavailable
from monitor.services.ticketing import (
    Change,
    Delivery,
    Notifier,
    TicketService,
    update_with_retry,
)
from monitor.sinks.elasticsearch.tickets import ConcurrentUpdate, TicketStoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """One (notice, channel) outcome to record on its ticket.

    Attributes:
        notice_id: The notice.
        channel: The channel.
        accepted: True if the channel accepted it.
        error: What went wrong, if not.
        give_up: True if retrying cannot help.
        digest: True if it went out inside a digest.
        reached: Recipients reached though it failed (digests).

    """

    notice_id: str
    channel: str
    accepted: bool
    error: str = ""
    give_up: bool = False
    digest: bool = False
    reached: tuple[str, ...] = ()


class NoticeSender:
    """Delivers due notices from the tickets' outboxes; see the module docstring.

    Args:
        service: The ticket service (its store, clock, rules and notifier).
        poll_seconds: Longest wait between rounds when nothing wakes it.
        p1_reserve: Per-minute slots of each channel kept for P1 notices.
        on_delivery: Called with ``(channel, status)`` per recorded outcome
            (the ``monitor_notifications_total`` counter).
        on_first_accept: Called with seconds from the crossing post's
            ``posts`` timestamp to the first channel accepting its notice
            (the ``monitor_alert_notice_seconds`` histogram).
        on_pending: Called after each round with the number of due
            ``(notice, channel)`` pairs left and the age (seconds) of the
            oldest pending notice (gauges).

    """

    def __init__(
        self,
        service: TicketService,
        *,
        poll_seconds: float = 1.0,
        p1_reserve: int = 2,
        on_delivery: Callable[[str, str], None] | None = None,
        on_first_accept: Callable[[float], None] | None = None,
        on_pending: Callable[[int, float], None] | None = None,
    ) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self.p1_reserve = p1_reserve
        self.on_delivery = on_delivery
        self.on_first_accept = on_first_accept
        self.on_pending = on_pending
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- running ---------------------------------------------------------------

    def wake(self) -> None:
        """Start the next round now (a change just queued a notice)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        """True while the sending loop runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the sending loop (idempotent); it wakes on :meth:`wake`."""
        if self.running:
            return
        self.service.on_notice = self.wake
        self._task = asyncio.get_running_loop().create_task(
            self.run(), name="notice sender"
        )

    async def stop(self) -> None:
        """Stop the loop; a round in flight is cancelled (its notices stay)."""
        if self.service.on_notice == self.wake:
            self.service.on_notice = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        """Send rounds until cancelled; failures are logged and retried."""
        wait = 0.0
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.run_once()
                wait = self.poll_seconds
            except asyncio.CancelledError:
                raise
            except SinkUnavailable as exc:
                log.warning("notices wait: %s", exc)
                wait = max(self.poll_seconds, exc.retry_after or 0.0)
            except Exception:
                log.exception("notice round failed; trying again")
                wait = self.poll_seconds

    # -- one round -------------------------------------------------------------

    def _settings(self) -> TicketSettings:
        ruleset = self.service.rules()
        return ruleset.settings if ruleset is not None else TicketSettings()

    async def run_once(self) -> int:
        """Send what is due now and record the outcomes.

        Returns:
            Outcomes recorded (accepted or failed ``(notice, channel)``
            pairs).

        Raises:
            SinkUnavailable: If Elasticsearch cannot serve the round; the
                notices stay pending.

        """
        notifier = self.service.notifier
        now = self.service.now()
        tickets = await self.service.store.due(now)
        if notifier is None or not tickets:
            self._report(tickets, now, 0)
            return 0
        sender = notifier
        ruleset = self.service.rules()
        use_directory = getattr(notifier, "use_directory", None)
        if ruleset is not None and use_directory is not None:
            # Personal notices (``@person/via``) are sent to the contacts of
            # the rules file as it is now.
            use_directory(ruleset.owners, ruleset.personal)
        by_id = {ticket.ticket_id: ticket for ticket in tickets}
        per_channel: dict[str, list[PendingSend]] = defaultdict(list)
        for ticket in tickets:
            for notice, channel in due_deliveries(ticket, now):
                per_channel[channel].append(
                    PendingSend(ticket.ticket_id, notice, channel)
                )
        results = await asyncio.gather(
            *(
                self._send_channel(sender, channel, items, by_id)
                for channel, items in sorted(per_channel.items())
            )
        )
        outcomes: dict[str, list[Outcome]] = defaultdict(list)
        waiting = 0
        for sent, left in results:
            waiting += left
            for ticket_id, outcome in sent:
                outcomes[ticket_id].append(outcome)
        for ticket_id, recorded in outcomes.items():
            await self._record(ticket_id, recorded)
        self._report(tickets, now, waiting)
        return sum(len(recorded) for recorded in outcomes.values())

    async def _send_channel(
        self,
        sender: Notifier,
        channel: str,
        items: Sequence[PendingSend],
        tickets: dict[str, Ticket],
    ) -> tuple[list[tuple[str, Outcome]], int]:
        """Send one channel's due notices in plan order (P1 first)."""
        plan = plan_channel(items, sender.free(channel), self.p1_reserve)
        done: list[tuple[str, Outcome]] = []
        for item in plan.singles:
            ticket = tickets[item.ticket_id]
            delivery = await sender.send(
                channel,
                ticket,
                str(item.notice.kind),
                delivery_id=item.notice.delivery_id(channel),
                folded=item.notice.folded,
                reached=item.notice.reached,
            )
            done.append((item.ticket_id, _outcome(item.notice, delivery)))
        if plan.digest:
            ids = sorted(item.notice.delivery_id(channel) for item in plan.digest)
            digest_id = (
                "digest-" + hashlib.sha1("\n".join(ids).encode()).hexdigest()[:20]
            )
            delivery = await sender.send_digest(
                channel,
                [
                    (tickets[i.ticket_id], str(i.notice.kind), i.notice.folded)
                    for i in plan.digest
                ],
                delivery_id=digest_id,
            )
            log.info(
                "channel %s: %d notices over its limit sent as digest %s: %s",
                channel,
                len(plan.digest),
                digest_id,
                delivery.status,
            )
            for item in plan.digest:
                outcome = _outcome(item.notice, delivery, digest=True)
                done.append((item.ticket_id, outcome))
        if plan.waiting:
            log.info(
                "channel %s: at its per-minute limit; %d notice(s) wait",
                channel,
                len(plan.waiting),
            )
        return done, len(plan.waiting)

    async def _record(self, ticket_id: str, outcomes: Sequence[Outcome]) -> None:
        """Record a ticket's outcomes with one conditional write."""
        settings = self._settings()
        latencies: list[float] = []

        async def attempt() -> Change[Ticket | None]:
            latencies.clear()
            found = await self.service.store.get(ticket_id)
            if found is None:
                return Change(None)
            ticket, version = found
            now = self.service.now()
            events: list[TicketEvent] = []
            for outcome in outcomes:
                notice = next(
                    (n for n in ticket.outbox if n.notice_id == outcome.notice_id),
                    None,
                )
                ticket_after, first = record_outcome(
                    ticket,
                    outcome.notice_id,
                    outcome.channel,
                    accepted=outcome.accepted,
                    now=now,
                    settings=settings,
                    error=outcome.error,
                    give_up=outcome.give_up,
                    reached=outcome.reached,
                )
                if ticket_after is ticket:
                    continue  # recorded already (a second sender, a repeat)
                status = "sent" if outcome.accepted else "failed"
                ticket, event = stamp_event(
                    ticket,
                    ticket_after,
                    action=TicketAction.DELIVERY,
                    actor=SYSTEM_ACTOR,
                    at=now,
                    note=outcome.error,
                    details={
                        "channel": outcome.channel,
                        "status": status,
                        "notice_id": outcome.notice_id,
                        "digest": outcome.digest,
                    },
                )
                events.append(event)
                if (
                    first
                    and notice is not None
                    and notice.crossing_received_at is not None
                ):
                    latencies.append(
                        max(0.0, (now - notice.crossing_received_at).total_seconds())
                    )
            if not events:
                return Change(None)
            return Change(ticket, ticket, events, version)

        try:
            saved = await update_with_retry(
                attempt,
                self.service.store.save,
                key=ticket_id,
                max_conflicts=self.service.max_conflicts,
            )
        except ConcurrentUpdate:
            log.warning("notices of %s: it kept changing; next round", ticket_id)
            return
        except TicketStoreError:
            log.exception("could not record the notices of %s", ticket_id)
            return
        if saved is None:
            return
        for outcome in outcomes:
            if self.on_delivery is not None:
                status = "sent" if outcome.accepted else "failed"
                self.on_delivery(outcome.channel, status)
        if self.on_first_accept is not None:
            for seconds in latencies:
                self.on_first_accept(seconds)

    def _report(self, due: Sequence[Ticket], now: datetime, waiting: int) -> None:
        if self.on_pending is None:
            return
        oldest = min(
            (n.created_at for t in due for n in t.outbox if n.channels), default=now
        )
        self.on_pending(waiting, max(0.0, (now - oldest).total_seconds()))


def _outcome(notice: Notice, delivery: Delivery, digest: bool = False) -> Outcome:
    accepted = delivery.status == "sent"
    give_up = not accepted and (delivery.status == "skipped" or not delivery.retryable)
    return Outcome(
        notice.notice_id,
        delivery.channel,
        accepted,
        "" if accepted else delivery.error,
        give_up,
        digest,
        tuple(delivery.reached),
    )
