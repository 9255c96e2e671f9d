"""The alert stage: triggers -> tickets, and the tickets' outboxes -> channels.

``triggers`` has one partition, so one worker at a time applies the ticket
policy and a trigger never races another for the same incident. The service
keeps tickets in Elasticsearch with optimistic concurrency, so the API of
every worker may act on them meanwhile.

The same worker runs the one :class:`~monitor.services.notices.NoticeSender`:
it starts when the ``triggers`` partition is assigned here and stops when it
is revoked, so after a crash or a rebalance the next owner sends whatever
the outboxes still hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

import faust

from monitor.analysis.tickets.model import Trigger
from monitor.analysis.tickets.policy import TicketDecision
from monitor.pipelines import partitions
from monitor.pipelines.batches import Pipeline, register_batch_agent
from monitor.records import TriggerEvent, utc_now
from monitor.services.notices import NoticeSender
from monitor.services.ticketing import TicketService

log = logging.getLogger(__name__)

STAGE = "alert"


class TriggerHandler(Protocol):
    """What the alert stage needs of the ticket service."""

    async def handle_trigger(self, trigger: Trigger) -> TicketDecision:
        """Apply the policy to one trigger and save the outcome."""
        ...


class AlertStage:
    """Hands triggers to the ticket service, one at a time, in order."""

    def __init__(self, service: TriggerHandler) -> None:
        """Use ``service`` for every trigger."""
        self.service = service

    async def handle(self, pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
        """Decide every trigger of a batch (a failure retries the batch)."""
        metrics = pipeline.metrics
        for event in events:
            try:
                record = TriggerEvent.decode(event.value)
            except Exception as exc:  # noqa: BLE001 - any undecodable record
                await pipeline.dead_letter_event(STAGE, event, f"not a trigger: {exc}")
                continue
            trigger, closed_at = record.trigger, record.closed_at
            started = time.perf_counter()
            decision = await self.service.handle_trigger(trigger)
            metrics.tickets.labels(outcome=decision.outcome).inc()
            if closed_at is not None and decision.ticket is not None:
                metrics.alert_seconds.observe(
                    max((utc_now() - closed_at).total_seconds(), 0.0)
                )
            log.info(
                "trigger %s/%s (%s) -> %s %s in %.0f ms: %s",
                trigger.topic,
                trigger.rule,
                trigger.window_start.isoformat(),
                decision.outcome,
                decision.ticket.ticket_id if decision.ticket else "-",
                (time.perf_counter() - started) * 1000,
                decision.reason,
            )


def register(app: faust.App, pipeline: Pipeline, service: TriggerHandler) -> AlertStage:
    """Add the ``raise_tickets`` agent, and the notice sender, to ``app``."""
    stage = AlertStage(service)
    if isinstance(service, TicketService):
        register_sender(app, pipeline, service)
    register_batch_agent(
        app,
        pipeline,
        topic=pipeline.topics.triggers,
        name="raise_tickets",
        batch_size=50,
        batch_seconds=0.05,
        handle=stage.handle,
    )
    return stage


def register_sender(
    app: faust.App, pipeline: Pipeline, service: TicketService
) -> NoticeSender:
    """Run the notice sender while this worker owns the ``triggers`` partition."""
    metrics = pipeline.metrics
    topic = pipeline.settings.topic_triggers

    def pending(waiting: int, oldest_seconds: float) -> None:
        metrics.notices_waiting.set(waiting)
        metrics.notice_oldest_seconds.set(oldest_seconds)

    sender = NoticeSender(
        service,
        on_delivery=lambda channel, status: metrics.notifications.labels(
            channel=channel, status=status
        ).inc(),
        on_first_accept=metrics.alert_notice_seconds.observe,
        on_pending=pending,
    )

    partitions.run_while_owned(app, topic, sender)

    @app.service
    class NoticeSending(faust.Service):
        async def on_stop(self) -> None:
            await sender.stop()

    return sender
