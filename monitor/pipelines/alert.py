"""The alert stage: triggers -> tickets (the ticket service decides and saves).

``triggers`` has one partition, so one worker at a time applies the ticket
policy and a trigger never races another for the same fingerprint. The
service keeps tickets in Elasticsearch with optimistic concurrency, so the
API of every worker may act on them meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

import faust

from monitor.analysis.tickets.model import Trigger
from monitor.analysis.tickets.policy import TicketDecision
from monitor.pipelines.batches import Pipeline, register_batch_agent
from monitor.records import TriggerEvent, utc_now

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
    """Add the ``raise_tickets`` agent to ``app``."""
    stage = AlertStage(service)
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
