"""The ticket service: the pure policy, applied to tickets kept in Elasticsearch.

:class:`TicketService` reads what a decision needs from the
:class:`~monitor.sinks.elasticsearch.tickets.TicketStore`, lets
:class:`~monitor.analysis.tickets.TicketPolicy` decide, and writes the result
with optimistic concurrency. Elasticsearch is the single source of truth, so
any number of worker processes may run the service (and the API) at once: a
write that lost a race re-reads the ticket and decides again
(:func:`update_with_retry`, the one loop every change goes through).

Notices are never sent from here: every change that people should hear of
queues a notice in the ticket's outbox, in the same conditional write as the
change (:mod:`monitor.analysis.tickets.outbox`). One
:class:`~monitor.services.notices.NoticeSender` (on the worker that owns the
``triggers`` partition) delivers them and records each channel's outcome on
the ticket, so a crash between the change and its notice loses nothing.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Generic, Protocol, TypeVar

from monitor.analysis.tickets.lifecycle import ACTION_PARAMS as LIFECYCLE_PARAMS
from monitor.analysis.tickets.lifecycle import ACTIONS, stamp_event
from monitor.analysis.tickets.model import (
    SYSTEM_ACTOR,
    InvalidPolicyError,
    NoticeKind,
    Ticket,
    TicketAction,
    TicketEvent,
    Trigger,
    incident_fingerprint,
)
from monitor.analysis.tickets.outbox import queue_notice, repeat_due
from monitor.analysis.tickets.policy import Outcome, TicketDecision, TicketPolicy
from monitor.analysis.tickets.silences import Silence, SilenceClock
from monitor.config.rules import RuleSet, personal_channel
from monitor.errors import MonitorError
from monitor.sinks.elasticsearch.tickets import ConcurrentUpdate, TicketStore, Version
from monitor.sinks.retry import until_written

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Notification kind sent for each person's action that people should hear of.
ACTION_NOTICES = {
    TicketAction.ACKNOWLEDGE: NoticeKind.ACKNOWLEDGED,
    TicketAction.RESOLVE: NoticeKind.RESOLVED,
    TicketAction.REOPEN: NoticeKind.REOPENED,
    TicketAction.ESCALATE: NoticeKind.ESCALATED,
}
#: Actions that tell only the new assignee, personally (``assigned`` notice).
PERSONAL_ACTIONS = {
    TicketAction.ASSIGN: "assigned",
    TicketAction.TRANSFER: "transferred",
}
#: The ``personal: on:`` occasion of each notice kind the channels get.
_OCCASIONS = {
    NoticeKind.OPENED: "opened",
    NoticeKind.REOPENED: "reopened",
    NoticeKind.ESCALATED: "escalated",
}
#: Parameters each action accepts besides the note.
ACTION_PARAMS: dict[str, frozenset[str]] = {
    str(action): params for action, params in LIFECYCLE_PARAMS.items()
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
        """``sent``, ``failed``, ``skipped``."""
        ...

    @property
    def error(self) -> str:
        """What went wrong, if anything."""
        ...

    @property
    def retryable(self) -> bool:
        """False if retrying cannot help."""
        ...

    @property
    def reached(self) -> tuple[str, ...]:
        """Digests of the recipients that took it though it failed."""
        ...


class Notifier(Protocol):
    """What the notice sender needs of :class:`monitor.sinks.notifiers.Notifier`."""

    def free(self, name: str) -> int:
        """Messages channel ``name`` may take now."""
        ...

    async def send(
        self,
        name: str,
        ticket: Ticket,
        kind: str,
        *,
        delivery_id: str,
        event: TicketEvent | None = None,
        folded: int = 0,
        reached: Collection[str] = (),
    ) -> Delivery:
        """Send one notice to one channel, skipping the recipients reached."""
        ...

    async def send_digest(
        self,
        name: str,
        items: Sequence[tuple[Ticket, str, int]],
        *,
        delivery_id: str,
    ) -> Delivery:
        """Send several notices as one message."""
        ...


def utc_now() -> datetime:
    """Return the current time, UTC, timezone-aware."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Change(Generic[R]):
    """What one attempt of :func:`update_with_retry` decided.

    Attributes:
        result: What the update returns once the change is saved.
        ticket: The ticket to write; ``None`` if there is nothing to write.
        events: The events that made it so (nothing is written without one).
        version: The version the ticket was read with; ``None`` for a ticket
            that must not exist yet.

    """

    result: R
    ticket: Ticket | None = None
    events: Sequence[TicketEvent] = ()
    version: Version | None = None


async def update_with_retry(
    attempt: Callable[[], Awaitable[Change[R]]],
    save: Callable[[Ticket, Sequence[TicketEvent], Version | None], Awaitable[None]],
    *,
    key: str,
    max_conflicts: int,
) -> R:
    """Read, decide and write one ticket with optimistic concurrency.

    Each attempt reads what it needs and returns its :class:`Change`; the
    change is then saved with the version it was read with. A
    :class:`ConcurrentUpdate` from the save, or from the attempt itself (it
    read something stale), starts a fresh attempt. Other exceptions
    propagate at once.

    Args:
        attempt: Reads the ticket and decides; called once per try.
        save: Writes ``(ticket, events, version)``, raising
            :class:`ConcurrentUpdate` if the ticket changed since it was read
            (:meth:`TicketStore.save`).
        key: What is being updated (a ticket id or a fingerprint), for the
            log and the error.
        max_conflicts: Attempts before giving up (>= 1).

    Returns:
        The result of the attempt whose change was saved (or that had
        nothing to write).

    Raises:
        ConcurrentUpdate: For ``key``, if all ``max_conflicts`` attempts
            conflicted.

    """
    for _ in range(max_conflicts):
        try:
            change = await attempt()
            if change.ticket is not None and change.events:
                await save(change.ticket, change.events, change.version)
        except ConcurrentUpdate:
            log.info("ticket %s changed meanwhile; trying again", key)
            continue
        return change.result
    raise ConcurrentUpdate(key)


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
        #: Called after a write that queued a notice (the sender wakes up).
        self.on_notice: Callable[[], None] | None = None

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
        """Channels to notify about a ticket.

        The current channels of every rule among its signals (its opening
        rule for a pre-incident ticket); the ticket's own for rules gone.
        """
        ruleset = self.rules()
        if ruleset is None:
            return ticket.channels
        rules = {(ticket.topic, ticket.rule)} | {
            (ticket.topic, signal.rule) for signal in ticket.signals
        }
        found: list[str] = []
        for topic, name in sorted(rules):
            try:
                found.extend(ruleset.rule(topic, name).channels)
            except KeyError:
                found.extend(ticket.channels)
        return tuple(dict.fromkeys(found))

    def personal_targets(self, ticket: Ticket, occasion: str) -> tuple[str, ...]:
        """Personal channels (``@<person>/email``, ``@<person>/sms``) to tell.

        The assignee (``ticket.owner``), and on ``escalated`` the escalation
        contact too, when the rules file's ``personal:`` section lists the
        occasion, names a channel for the way and the person's owners-book
        entry has the address (``email``) or the number (``mobile``). The
        address itself is read when the notice is sent.
        """
        ruleset = self.rules()
        personal = ruleset.personal if ruleset is not None else None
        if ruleset is None or personal is None or occasion not in personal.on:
            return ()
        people = [ticket.owner]
        if occasion == "escalated":
            people.append(ticket.escalation_contact)
        found: list[str] = []
        for person in dict.fromkeys(p for p in people if p):
            owner = ruleset.owners.get(person)
            if owner is None:
                continue
            for via, contact in (("email", "email"), ("sms", "mobile")):
                if personal.channel_for(via) and owner.contacts.get(contact):
                    found.append(personal_channel(person, via))
        return tuple(found)

    def _queue(
        self,
        ticket: Ticket,
        kind: NoticeKind,
        event: TicketEvent,
        policy: TicketPolicy,
        now: datetime,
        occasion: str | None = None,
    ) -> Ticket:
        """Queue a notice about ``ticket`` (saved with it in the same write).

        An ``assigned`` notice goes to the personal targets only; the others
        go to the ticket's channels and, when ``occasion`` is one
        ``personal: on:`` lists, to the assignee personally too.
        """
        occasion = occasion or _OCCASIONS.get(kind)
        personal = self.personal_targets(ticket, occasion) if occasion else ()
        channels = () if kind == NoticeKind.ASSIGNED else self.channels_for(ticket)
        return queue_notice(
            ticket,
            kind,
            now=now,
            channels=(*channels, *personal),
            settings=policy.settings,
            event_id=event.event_id,
        )

    def _with_personal(self, ticket: Ticket) -> Ticket:
        """Add the personal targets to the notices the policy queued just now.

        The policy (which knows no owners book) queues a trigger's
        ``opened``/``reopened``/``escalated`` notice to the rule's channels;
        this adds the assignee's personal channels to it, in the same write.
        """
        fresh = f"{ticket.ticket_id}#n{ticket.revision}"
        changed = False
        outbox = []
        for notice in ticket.outbox:
            occasion = _OCCASIONS.get(notice.kind)
            if notice.notice_id == fresh and occasion and notice.attempts == 0:
                targets = self.personal_targets(ticket, occasion)
                channels = tuple(dict.fromkeys((*notice.channels, *targets)))
                if channels != notice.channels:
                    notice = replace(notice, channels=channels)
                    changed = True
            outbox.append(notice)
        return replace(ticket, outbox=tuple(outbox)) if changed else ticket

    def _noticed(self, ticket: Ticket) -> None:
        if ticket.outbox and self.on_notice is not None:
            try:
                self.on_notice()
            except Exception:
                log.exception("on_notice callback failed")

    # -- triggers --------------------------------------------------------------

    async def handle_trigger(self, trigger: Trigger) -> TicketDecision:
        """Turn a fired rule into a new, folded, reopened or held ticket.

        The decision is saved before this returns, with the notices it asks
        for in the ticket's outbox (the sender delivers them). While Elasticsearch
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
            self._noticed(decision.ticket)
        return decision

    async def _decide_and_save(self, trigger: Trigger) -> TicketDecision:
        async def decide() -> Change[TicketDecision]:
            now = self.now()
            policy = await self.policy(now)
            rule = policy.rules.get((trigger.topic, trigger.rule))
            team = policy.routing.team_for(trigger.topic, rule).name
            group = incident_fingerprint(policy.group_key(trigger))
            related = await self.store.related(
                [group, trigger.fingerprint],
                team,
                posts=[item.post_id for item in trigger.evidence],
            )
            decision = policy.decide(trigger, related, now)
            if decision.event is None or decision.ticket is None:
                return Change(decision)
            ticket, event = self._with_personal(decision.ticket), decision.event
            if ticket is not decision.ticket:
                decision = replace(decision, ticket=ticket)
            version: Version | None = None
            if decision.outcome != Outcome.OPENED:
                found = await self.store.get(ticket.ticket_id)
                # The search may have shown an older revision than the document.
                if found is None or found[0].revision != ticket.revision - 1:
                    raise ConcurrentUpdate(ticket.ticket_id)
                version = found[1]
            return Change(decision, ticket, [event], version)

        decision = await update_with_retry(
            decide,
            self.store.save,
            key=trigger.fingerprint,
            max_conflicts=self.max_conflicts,
        )
        if decision.event is not None:
            log.info("%s: %s", decision.outcome, decision.reason)
        return decision

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

        async def apply() -> Change[tuple[Ticket, TicketEvent]]:
            found = await self.store.get(ticket_id)
            if found is None:
                raise TicketNotFound(ticket_id)
            ticket, version = found
            policy, now = self._base_policy(), self.now()
            new, event = policy.apply_action(ticket, action, actor, now, note, **params)
            if action in ACTION_NOTICES:
                kind = ACTION_NOTICES[TicketAction(action)]
                new = self._queue(new, kind, event, policy, now)
            elif action in PERSONAL_ACTIONS and new.owner != ticket.owner:
                occasion = PERSONAL_ACTIONS[TicketAction(action)]
                new = self._queue(
                    new, NoticeKind.ASSIGNED, event, policy, now, occasion
                )
            return Change((new, event), new, [event], version)

        new, event = await update_with_retry(
            apply, self.store.save, key=ticket_id, max_conflicts=self.max_conflicts
        )
        self._emitted(new, [event])
        self._noticed(new)
        return new, event

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
            if repeat_due(listed, now, policy.settings):
                await self._repeat(listed.ticket_id, policy, now)
            if not policy.enforce_sla(listed, now)[1]:
                continue

            try:
                done = await update_with_retry(
                    functools.partial(self._escalation, listed.ticket_id, policy, now),
                    self.store.save,
                    key=listed.ticket_id,
                    max_conflicts=self.max_conflicts,
                )
            except ConcurrentUpdate:
                log.warning("SLA: %s kept changing; next sweep", listed.ticket_id)
                continue
            if done is None or not done[1]:
                continue
            escalated, events = done
            self._emitted(escalated, events)
            self._noticed(escalated)
            saved.extend(events)
        return saved

    async def _escalation(
        self, ticket_id: str, policy: TicketPolicy, now: datetime
    ) -> Change[tuple[Ticket, list[TicketEvent]] | None]:
        found = await self.store.get(ticket_id)
        if found is None:
            return Change(None)
        ticket, version = found
        escalated, events = policy.enforce_sla(ticket, now)
        if events:
            escalated = self._queue(
                escalated, NoticeKind.ESCALATED, events[-1], policy, now
            )
        return Change((escalated, events), escalated, events, version)

    async def _repeat(
        self, ticket_id: str, policy: TicketPolicy, now: datetime
    ) -> None:
        """Queue a ``repeat`` notice on an open ticket nobody acknowledged."""

        async def attempt() -> Change[Ticket | None]:
            found = await self.store.get(ticket_id)
            if found is None or not repeat_due(found[0], now, policy.settings):
                return Change(None)
            ticket, version = found
            since = ticket.last_notice_at or ticket.opened_at
            ticket, event = stamp_event(
                ticket,
                ticket,
                action=TicketAction.COMMENT,
                actor=SYSTEM_ACTOR,
                at=now,
                note=f"still open and unacknowledged since {since.isoformat()}; "
                "telling the channels again",
                details={"notice": str(NoticeKind.REPEAT)},
            )
            ticket = self._queue(ticket, NoticeKind.REPEAT, event, policy, now)
            return Change(ticket, ticket, [event], version)

        try:
            repeated = await update_with_retry(
                attempt,
                self.store.save,
                key=ticket_id,
                max_conflicts=self.max_conflicts,
            )
        except ConcurrentUpdate:
            log.warning("repeat notice: %s kept changing; next sweep", ticket_id)
            return
        if repeated is not None:
            self._noticed(repeated)

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
        team: str | None = None,
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
            team=team,
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
        clock: str = "event",
    ) -> Silence:
        """Store a silence; triggers it matches are suppressed from then on.

        ``clock`` is ``event`` (triggers whose posts were published within
        it) or ``wall`` (triggers decided within it).

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
            clock=SilenceClock(clock),
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

    async def drain(self, timeout: float | None = None) -> None:
        """Kept for callers of the old background notices: nothing is in flight.

        Notices wait in the tickets' outboxes; the sender delivers them.
        """

    async def close(self) -> None:
        """Nothing to cancel (see :meth:`drain`)."""

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        return await until_written(
            call, initial=self.retry_initial, maximum=self.retry_max
        )


#: Kinds of notices the service queues, for notifier templates.
NOTICE_KINDS = tuple(str(kind) for kind in NoticeKind)
