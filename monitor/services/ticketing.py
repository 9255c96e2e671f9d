"""The ticket service: the pure policy, applied to tickets kept in Elasticsearch.

:class:`TicketService` reads what a decision needs from the
:class:`~monitor.sinks.elasticsearch.tickets.TicketStore`, lets
:class:`~monitor.analysis.tickets.TicketPolicy` decide, and writes the result
with optimistic concurrency. Elasticsearch is the single source of truth, so
any number of worker processes may run the service (and the API) at once: a
write that lost a race re-reads the ticket and decides again.

Notifications never hold a ticket back: the ticket is saved first, then the
notifier runs in a background task, and each channel's outcome is recorded on
the ticket (``delivery`` events) when it is known.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from monitor.analysis.tickets import (
    ACTIONS,
    FOLDED,
    OPENED,
    REOPENED,
    InvalidPolicyError,
    Silence,
    Ticket,
    TicketDecision,
    TicketEvent,
    TicketPolicy,
    Trigger,
    record_delivery,
)
from monitor.config.rules import RuleSet
from monitor.errors import MonitorError
from monitor.sinks.elasticsearch.tickets import ConcurrentUpdate, TicketStore, Version
from monitor.sinks.retry import until_written

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Notification kind sent for each person's action that people should hear of.
ACTION_NOTICES = {
    "acknowledge": "acknowledged",
    "resolve": "resolved",
    "reopen": "reopened",
    "escalate": "escalated",
}
#: Parameters each action accepts besides the note.
ACTION_PARAMS: dict[str, frozenset[str]] = {
    action: frozenset({"owner", "team"} if action in {"assign", "transfer"} else ())
    for action in ACTIONS
}


class TicketNotFound(MonitorError):
    """No ticket has this id.

    Attributes:
        ticket_id: The id asked for.

    """

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"no ticket {ticket_id!r}")


class SilenceNotFound(MonitorError):
    """No stored silence has this id.

    Attributes:
        silence_id: The id asked for.

    """

    def __init__(self, silence_id: str) -> None:
        self.silence_id = silence_id
        super().__init__(f"no silence {silence_id!r}")


class InvalidActionError(MonitorError, ValueError):
    """An action request is malformed: unknown action, or a bad parameter.

    Attributes:
        field: The offending field (``action``, ``owner``, ...).
        reason: What is wrong with it.

    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Delivery(Protocol):
    """One channel's outcome, as the notifier reports it."""

    @property
    def channel(self) -> str:
        """Channel name."""
        ...

    @property
    def status(self) -> str:
        """``sent``, ``failed``, ``rate_limited``, ``skipped``..."""
        ...

    @property
    def error(self) -> str | None:
        """What went wrong, if anything."""
        ...


class Notifier(Protocol):
    """What the service needs of ``monitor.sinks.notifiers``."""

    async def notify(
        self,
        ticket: Ticket,
        kind: str,
        channel_names: Sequence[str],
        event: TicketEvent | None = None,
    ) -> Sequence[Delivery]:
        """Deliver a notice about ``ticket`` to the named channels."""
        ...


def utc_now() -> datetime:
    """Return the current time, UTC, timezone-aware."""
    return datetime.now(timezone.utc)


class TicketService:
    """Opens, folds, escalates and moves alert tickets kept in Elasticsearch.

    Args:
        store: Where tickets, events and silences live.
        rules: Returns the current rule set (called on every use, so a
            reloaded rules file takes effect at once); ``None`` means no
            rules file: default policy, no channels.
        notifier: Delivers notices; ``None`` sends none.
        now: Clock, returning timezone-aware UTC times.
        on_event: Called with ``(ticket, event)`` after each saved event
            (metrics); its exceptions are logged, never raised.
        retry_initial: First wait (seconds) after Elasticsearch failed a
            trigger or a delivery record; doubles up to ``retry_max``.
        retry_max: Longest wait between attempts (seconds).
        max_conflicts: Times one call re-reads after a concurrent write
            before it gives up with :class:`ConcurrentUpdate`.

    """

    def __init__(
        self,
        store: TicketStore,
        rules: Callable[[], RuleSet | None],
        *,
        notifier: Notifier | None = None,
        now: Callable[[], datetime] = utc_now,
        on_event: Callable[[Ticket, TicketEvent], None] | None = None,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        max_conflicts: int = 10,
    ) -> None:
        self.store = store
        self.rules = rules
        self.notifier = notifier
        self.now = now
        self.on_event = on_event
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.max_conflicts = max_conflicts
        self._tasks: set[asyncio.Task[None]] = set()

    # -- policy ----------------------------------------------------------------

    def _base_policy(self) -> TicketPolicy:
        ruleset = self.rules()
        return ruleset.policy() if ruleset is not None else TicketPolicy()

    async def policy(self, now: datetime | None = None) -> TicketPolicy:
        """Return the policy of the current rules plus the silences stored via the API.

        Args:
            now: Silences expired before this are left out (default: now).

        """
        policy = self._base_policy()
        stored = await self.store.silences(active_at=now or self.now())
        return replace(policy, silences=(*policy.silences, *stored))

    def channels_for(self, ticket: Ticket) -> tuple[str, ...]:
        """Channels to notify about a ticket: its rule's now, else its own."""
        ruleset = self.rules()
        if ruleset is not None:
            try:
                return ruleset.rule(ticket.topic, ticket.rule).channels
            except KeyError:
                pass
        return ticket.channels

    # -- triggers --------------------------------------------------------------

    async def handle_trigger(self, trigger: Trigger) -> TicketDecision:
        """Turn a fired rule into a new, folded, reopened or held ticket.

        The decision is saved before this returns; notifications (when the
        decision asks for them) go out in the background. While Elasticsearch
        is unavailable this waits and tries again (the trigger is never
        dropped); a concurrent write to the same ticket makes it decide again.

        Returns:
            The decision that was saved (or that nothing changed:
            ``suppressed`` or ``duplicate``).

        Raises:
            ConcurrentUpdate: If the ticket kept changing ``max_conflicts``
                times in a row.

        """
        decision = await self._retrying(lambda: self._decide_and_save(trigger))
        if decision.event is not None and decision.ticket is not None:
            self._emitted(decision.ticket, [decision.event])
            if decision.notify:
                kind = "escalated" if decision.outcome == FOLDED else decision.outcome
                self._notify_later(decision.ticket, kind, decision.event)
        return decision

    async def _decide_and_save(self, trigger: Trigger) -> TicketDecision:
        for _ in range(self.max_conflicts):
            now = self.now()
            policy = await self.policy(now)
            rule = policy.rules.get((trigger.topic, trigger.rule))
            team = policy.routing.team_for(trigger.topic, rule).name
            related = await self.store.related(trigger.fingerprint, team)
            decision = policy.decide(trigger, related, now)
            if decision.event is None or decision.ticket is None:
                return decision
            version: Version | None = None
            if decision.outcome != OPENED:
                found = await self.store.get(decision.ticket.ticket_id)
                # The search may have shown an older revision than the document.
                if found is None or found[0].revision != decision.ticket.revision - 1:
                    continue
                version = found[1]
            try:
                await self.store.save(decision.ticket, [decision.event], version)
            except ConcurrentUpdate:
                log.info("ticket %s changed meanwhile; deciding again", trigger)
                continue
            log.info("%s: %s", decision.outcome, decision.reason)
            return decision
        raise ConcurrentUpdate(trigger.fingerprint)

    # -- people's actions ------------------------------------------------------

    async def act(
        self, ticket_id: str, action: str, actor: str, note: str = "", **params: Any
    ) -> tuple[Ticket, TicketEvent]:
        """Apply a person's action to a ticket and save it.

        Args:
            ticket_id: The ticket.
            action: One of :data:`~monitor.analysis.tickets.ACTIONS`.
            actor: Who (recorded on the event).
            note: Why; ``reopen`` and ``comment`` need one.
            **params: ``owner`` and/or ``team`` (text) for ``assign`` and
                ``transfer``; no other action takes any.

        Returns:
            The saved ticket and the event that records the action.

        Raises:
            InvalidActionError: Unknown action, or a parameter the action
                does not take or of the wrong type.
            TicketNotFound: No such ticket.
            InvalidTransitionError: Not allowed in the ticket's status.
            ConcurrentUpdate: The ticket kept changing meanwhile.
            TicketStoreUnavailable: Elasticsearch cannot serve it now.

        """
        if action not in ACTIONS:
            raise InvalidActionError(
                "action",
                f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}",
            )
        if not isinstance(note, str):
            raise InvalidActionError("note", "must be text")
        for name, value in params.items():
            if name not in ACTION_PARAMS[action]:
                raise InvalidActionError(name, f"{action} does not take {name}")
            if not isinstance(value, str) or not value.strip():
                raise InvalidActionError(name, "must be non-empty text")
        for _ in range(self.max_conflicts):
            found = await self.store.get(ticket_id)
            if found is None:
                raise TicketNotFound(ticket_id)
            ticket, version = found
            new, event = self._base_policy().apply_action(
                ticket, action, actor, self.now(), note, **params
            )
            try:
                await self.store.save(new, [event], version)
            except ConcurrentUpdate:
                log.info(
                    "ticket %s changed meanwhile; applying %s again", ticket_id, action
                )
                continue
            self._emitted(new, [event])
            if action in ACTION_NOTICES:
                self._notify_later(new, ACTION_NOTICES[action], event)
            return new, event
        raise ConcurrentUpdate(ticket_id)

    # -- SLA -------------------------------------------------------------------

    async def sweep_sla(
        self, now: datetime | None = None
    ) -> builtins.list[TicketEvent]:
        """Escalate every active ticket past a deadline, once per deadline.

        Args:
            now: Check time (default: the clock).

        Returns:
            The ``sla_breach`` events saved.

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot serve the sweep.

        """
        now = now or self.now()
        policy = self._base_policy()
        saved: list[TicketEvent] = []
        for listed in await self.store.active():
            if not policy.enforce_sla(listed, now)[1]:
                continue
            for _ in range(self.max_conflicts):
                found = await self.store.get(listed.ticket_id)
                if found is None:
                    break
                ticket, version = found
                escalated, events = policy.enforce_sla(ticket, now)
                if not events:
                    break
                try:
                    await self.store.save(escalated, events, version)
                except ConcurrentUpdate:
                    continue
                self._emitted(escalated, events)
                self._notify_later(escalated, "escalated", events[-1])
                saved.extend(events)
                break
            else:
                log.warning("SLA: %s kept changing; next sweep", listed.ticket_id)
        return saved

    async def run_sla_loop(self, interval: float) -> None:
        """Sweep every ``interval`` seconds until cancelled; errors are logged."""
        while True:
            try:
                events = await self.sweep_sla()
                if events:
                    log.info("SLA sweep escalated %d deadline(s)", len(events))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SLA sweep failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)

    # -- reading ---------------------------------------------------------------

    async def get(self, ticket_id: str) -> tuple[Ticket, list[TicketEvent]]:
        """Return a ticket and its audit trail (oldest first).

        Raises:
            TicketNotFound: No such ticket.

        """
        found = await self.store.get(ticket_id)
        if found is None:
            raise TicketNotFound(ticket_id)
        return found[0], await self.store.events(ticket_id)

    async def list(
        self,
        status: str | Sequence[str] | None = None,
        topic: str | None = None,
        priority: str | Sequence[str] | None = None,
        owner: str | None = None,
        text: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Ticket], int]:
        """Find tickets; see :meth:`TicketStore.search`."""
        return await self.store.search(
            status=status,
            topic=topic,
            priority=priority,
            owner=owner,
            text=text,
            limit=limit,
            offset=offset,
        )

    # -- silences --------------------------------------------------------------

    async def add_silence(
        self,
        *,
        author: str,
        reason: str,
        expires_at: datetime,
        starts_at: datetime | None = None,
        topic: str | None = None,
        keyword: str | None = None,
        rule: str | None = None,
    ) -> Silence:
        """Store a silence; triggers it matches are suppressed from then on.

        Raises:
            InvalidPolicyError: No matcher, naive times, or expiry before
                the start (or before now).

        """
        now = self.now()
        if not reason.strip():
            raise InvalidPolicyError("a silence needs a reason")
        if expires_at <= now:
            raise InvalidPolicyError("a silence must expire in the future")
        silence = Silence(
            silence_id=f"S-{uuid.uuid4().hex[:12]}",
            starts_at=starts_at or now,
            expires_at=expires_at,
            author=author,
            reason=reason.strip(),
            topic=topic,
            keyword=keyword,
            rule=rule,
        )
        await self.store.add_silence(silence)
        log.info("silence %s added by %s: %s", silence.silence_id, author, reason)
        return silence

    async def silences(self, include_expired: bool = False) -> builtins.list[Silence]:
        """Return stored silences: unexpired ones, or all if ``include_expired``."""
        return await self.store.silences(None if include_expired else self.now())

    def configured_silences(self) -> tuple[Silence, ...]:
        """Silences of the rules file (read-only here)."""
        ruleset = self.rules()
        return ruleset.silences if ruleset is not None else ()

    async def expire_silence(self, silence_id: str, actor: str) -> Silence:
        """End a stored silence now (one not started yet is deleted).

        Returns:
            The silence as it was ended.

        Raises:
            SilenceNotFound: No stored silence has this id.

        """
        silence = await self.store.get_silence(silence_id)
        if silence is None:
            raise SilenceNotFound(silence_id)
        now = self.now()
        if silence.starts_at < now < silence.expires_at:
            silence = replace(silence, expires_at=now)
            await self.store.put_silence(silence)
        elif silence.starts_at >= now:
            await self.store.delete_silence(silence_id)
        log.info("silence %s expired by %s", silence_id, actor)
        return silence

    # -- notifications ---------------------------------------------------------

    def _emitted(self, ticket: Ticket, events: Sequence[TicketEvent]) -> None:
        if self.on_event is None:
            return
        for event in events:
            try:
                self.on_event(ticket, event)
            except Exception:
                log.exception("on_event callback failed for %s", event.event_id)

    def _notify_later(self, ticket: Ticket, kind: str, event: TicketEvent) -> None:
        if self.notifier is None:
            return
        channels = self.channels_for(ticket)
        if not channels:
            return
        task = asyncio.get_running_loop().create_task(
            self._notify(ticket, kind, channels, event),
            name=f"notify {ticket.ticket_id} {kind}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(
        self,
        ticket: Ticket,
        kind: str,
        channels: tuple[str, ...],
        event: TicketEvent,
    ) -> None:
        assert self.notifier is not None
        try:
            deliveries = [
                (d.channel, d.status, d.error or "")
                for d in await self.notifier.notify(ticket, kind, channels, event=event)
            ]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("notifier failed for %s (%s)", ticket.ticket_id, kind)
            deliveries = [
                (name, "failed", f"notifier error: {exc}") for name in channels
            ]
        if deliveries:
            await self._retrying(lambda: self._record(ticket.ticket_id, deliveries))

    async def _record(
        self, ticket_id: str, deliveries: Sequence[tuple[str, str, str]]
    ) -> None:
        for _ in range(self.max_conflicts):
            found = await self.store.get(ticket_id)
            if found is None:
                return
            ticket, version = found
            events = []
            for channel, status, error in deliveries:
                ticket, event = record_delivery(
                    ticket, channel, status, self.now(), error
                )
                events.append(event)
            try:
                await self.store.save(ticket, events, version)
            except ConcurrentUpdate:
                continue
            self._emitted(ticket, events)
            return
        log.warning("could not record deliveries on %s: it kept changing", ticket_id)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the notifications in flight (e.g. before shutting down)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def close(self) -> None:
        """Cancel notifications still in flight."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        return await until_written(
            call, initial=self.retry_initial, maximum=self.retry_max
        )


#: Kinds of notices the service sends, for notifier templates.
NOTICE_KINDS = (OPENED, REOPENED, "escalated", "acknowledged", "resolved")
