"""The bounds and patterns the OpenAPI document states and the API enforces."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openapi_spec_validator import validate

from monitor.analysis.tickets.lifecycle import ACTIONS
from monitor.analysis.tickets.model import STATUSES
from monitor.config.durations import parse_duration
from monitor.sinks.elasticsearch.tickets import (
    MAX_PAGE_SIZE,
    MAX_RESULT_WINDOW,
    TicketStore,
)
from monitor.web.openapi import (
    MAX_SILENCE,
    NOTE_ACTIONS,
    SILENCE_DURATION,
    choice_list_pattern,
    openapi_document,
)

DURATION = re.compile(SILENCE_DURATION)


@pytest.mark.parametrize(
    "text",
    ["90d", "2160h", "129600m", "7776000s", "89d23h59m59s", "1h30m", "2d12h", "1s"],
)
def test_durations_up_to_90_days_match(text: str) -> None:
    assert DURATION.fullmatch(text)


@pytest.mark.parametrize(
    "text",
    [
        "91d",
        "90d1s",
        "2161h",
        "129601m",
        "7776001s",
        "525531871929662s",
        "1d1500m85955007876816d047080h99d",
        "0s",
        "01h",
        "1h0m",
        "1h1h",
        "30m1h",
        "1d24h",
        "1H",
        "٣h",  # a digit, but not an ASCII one
        " 1h",
        "",
    ],
)
def test_longer_or_odd_durations_do_not_match(text: str) -> None:
    assert not DURATION.fullmatch(text)


@given(st.from_regex(DURATION, fullmatch=True))
def test_every_matching_duration_is_positive_and_at_most_90_days(text: str) -> None:
    assert timedelta(0) < parse_duration(text) <= MAX_SILENCE


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("open", True),
        ("open,closed,open", True),
        ("open,", False),
        (",open", False),
        ("open,,closed", False),
        ("open, closed", False),
        (" open", False),
        ("lost", False),
    ],
)
def test_choice_lists_are_exact(text: str, matches: bool) -> None:
    assert bool(re.fullmatch(choice_list_pattern(STATUSES), text)) is matches


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi_document())


def test_each_action_has_exactly_one_body_schema() -> None:
    schemas = openapi_document()["components"]["schemas"]
    branches = [
        schemas[ref["$ref"].rsplit("/", 1)[1]]
        for ref in schemas["ActionRequest"]["oneOf"]
    ]
    listed = [action for b in branches for action in b["properties"]["action"]["enum"]]
    assert sorted(listed) == sorted(ACTIONS)
    noted = next(b for b in branches if "note" in b["required"])
    assert noted["properties"]["action"]["enum"] == list(NOTE_ACTIONS)


def test_the_ticket_page_bounds_are_the_ticket_stores() -> None:
    document = openapi_document()
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in document["paths"]["/tickets"]["get"]["parameters"]
    }

    assert parameters["limit"]["maximum"] == MAX_PAGE_SIZE
    assert parameters["offset"]["maximum"] == MAX_RESULT_WINDOW - 1


@pytest.mark.parametrize(
    ("limit", "offset"),
    [(MAX_PAGE_SIZE + 1, 0), (0, 0), (MAX_PAGE_SIZE, MAX_RESULT_WINDOW)],
)
def test_the_ticket_store_refuses_pages_past_its_bounds(
    limit: int, offset: int
) -> None:
    client: Any = None  # refused before any request
    store = TicketStore(client, "monitor")

    with pytest.raises(ValueError, match="limit must be|offset must be"):
        asyncio.run(store.search(limit=limit, offset=offset))
