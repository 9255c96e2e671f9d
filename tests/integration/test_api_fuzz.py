"""The ticket API fuzzed from its own OpenAPI document (schemathesis).

Schemathesis generates requests from ``openapi_document()`` (valid ones and
invalid ones: its examples, coverage and fuzzing phases), sends them with the
admin token to the real API on a real Elasticsearch (noida-db) holding
tickets and silences, and checks each answer: no server error, a status the
document lists, a body (and headers) that match the document, no valid
request refused, and 405 with ``Allow`` for a method a path does not take.
Half the ticket and silence ids drawn are seeded ones, so actions and
deletions reach real documents.

Schemathesis' stateful phase (chains through the document's links) is left
to ``st run``: its scenarios depend on the server's answers, which Hypothesis
reports as flaky data generation when run as a plain test.

The API runs in a thread of its own, with its own event loop, because
schemathesis' client blocks the thread that calls it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from monitor.analysis.tickets.model import default_ticket_id, incident_fingerprint
from monitor.analysis.tickets.silences import Silence
from monitor.config.durations import parse_duration
from monitor.config.rules import load_rules
from monitor.local.embedded import EmbeddedServers
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.tickets import TicketStore
from monitor.web.api import api_app
from monitor.web.auth import Authenticator
from monitor.web.openapi import API_BASE, MAX_SILENCE, openapi_document
from tests.integration.test_tickets_api import ADMIN, RULES, T0, TOKENS, serve, trigger

pytestmark = pytest.mark.integration

#: The API's clock (fixed, so that what the document's time rules allow is known).
NOW = T0 + timedelta(hours=1)
HEADERS = {"Authorization": f"Bearer {ADMIN}"}

#: The seeded tickets (see :func:`seed`); ids follow from their fingerprints.
#: One incident per topic (triggers fold into incidents by topic).
TOPICS = ("空调异味", "停车", "客服")
TICKET_IDS = [
    default_ticket_id(incident_fingerprint(f"topic={topic}"), 1) for topic in TOPICS
]

#: The seeded silences: one stored through the API's store, one in RULES.
SILENCE_IDS = ["S-fuzz-1", "S-file"]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261120,
        "cache": {"enabled": False},  # nothing written into the working tree
        "generation": {"mode": "all", "max-examples": 25, "database": "none"},
        "dictionaries": {
            "tickets": {"values": TICKET_IDS},
            "silences": {"values": SILENCE_IDS},
        },
        "parameters": {
            "path.ticket_id": {"dictionary": "tickets", "probability": 0.5},
            "path.silence_id": {"dictionary": "silences", "probability": 0.5},
        },
    }
)
# GET /stream never ends (server-sent events): a fuzzer's request would only
# time out. tests/integration/test_console_api.py reads it as a console does.
SCHEMA = schemathesis.openapi.from_dict(
    openapi_document(API_BASE), config=CONFIG
).exclude(operation_id="streamTickets")


def clock_refuses(case: schemathesis.Case) -> bool:
    """True if the SilenceRequest rules on times (stated in words) refuse ``case``.

    These are the only rules the document cannot state as a schema: a
    silence starts at most 90 days from now, and ends after now, after its
    start and at most 90 days after it.
    """
    if case.operation.label != "POST /silences" or not isinstance(case.body, dict):
        return False
    body = case.body
    try:
        start = (
            datetime.fromisoformat(body["starts_at"]) if "starts_at" in body else NOW
        )
        if "expires_at" in body:
            end = datetime.fromisoformat(body["expires_at"])
        else:
            end = start + parse_duration(body["duration"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return False  # not a valid request: the other checks judge it
    allowed = start - NOW <= MAX_SILENCE and NOW < end and start < end
    return not (allowed and end - start <= MAX_SILENCE)


def accepts_valid_requests(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """``positive_data_acceptance``; what the clock refuses is refused with 422.

    (Unless the token is refused first: some cases go without it.)
    """
    if clock_refuses(case):
        if response.status_code not in (401, 403):
            assert response.status_code == 422, (case.body, response.text)
        return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    accepts_valid_requests,
    # Also: JSON everywhere, the documented headers (WWW-Authenticate,
    # Retry-After), and 405 with Allow for a method a path does not take.
    content_type_conformance,
    response_headers_conformance,
    unsupported_method,
]


async def seed(service: TicketService) -> None:
    """Tickets in several statuses, and a stored silence, for the fuzzer to find."""
    statuses = (["acknowledge"], ["resolve"], ["resolve", "close"])
    for topic, ticket_id, actions in zip(TOPICS, TICKET_IDS, statuses, strict=True):
        ticket = (await service.handle_trigger(replace(trigger(), topic=topic))).ticket
        assert ticket is not None and ticket.ticket_id == ticket_id
        for action in actions:
            await service.act(ticket_id, action, "王工")
    # Stored directly, for an id known in advance (the API makes random ones).
    await service.store.put_silence(
        Silence(
            silence_id=SILENCE_IDS[0],
            starts_at=NOW - timedelta(hours=1),
            expires_at=NOW + timedelta(days=1),
            author="root",
            reason="已知问题",
            topic="空调异味",
        )
    )


@contextmanager
def api_in_a_thread(es_url: str, rules_path: Path) -> Iterator[str]:
    """Serve the API (mounted at /api) from a thread; yield its base URL."""
    rules = load_rules(rules_path)
    started: queue.Queue[str | BaseException] = queue.Queue()
    control: dict[str, Any] = {}

    async def run() -> None:
        control["loop"] = asyncio.get_running_loop()
        control["stop"] = stop = asyncio.Event()
        store = TicketStore.connect(es_url, "tf" + uuid.uuid4().hex[:10])
        service = TicketService(store, lambda: rules, now=lambda: NOW)
        runner = None
        try:
            await seed(service)
            runner, base = await serve(
                api_app(service, Authenticator.from_spec(TOKENS))
            )
            started.put(base)
            await stop.wait()
        except BaseException as exc:  # handed to the test's thread
            started.put(exc)
        finally:
            if runner is not None:
                await runner.cleanup()
            await service.close()
            await store.close()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="ticket-api")
    thread.start()
    outcome = started.get(timeout=60)
    try:
        if isinstance(outcome, BaseException):
            raise outcome
        yield outcome
    finally:
        if "stop" in control:
            control["loop"].call_soon_threadsafe(control["stop"].set)
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def api_base(
    noida: EmbeddedServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    assert noida.addresses is not None
    rules_path = tmp_path_factory.mktemp("fuzz") / "rules.yaml"
    rules_path.write_text(RULES, encoding="utf-8")
    with api_in_a_thread(noida.addresses.es_url, rules_path) as base:
        yield base


@SCHEMA.parametrize()
def test_every_operation_keeps_to_the_document(
    case: schemathesis.Case, api_base: str
) -> None:
    case.call_and_validate(base_url=api_base, headers=HEADERS, checks=CHECKS)
