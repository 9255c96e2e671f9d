"""Index templates: the mapping of every index the product writes, and its names.

One builder, :func:`index_template`, makes the template of every index:
posts, window counts, bursts, tickets, ticket events and silences. Every
mapping is explicit and strict, so a field the code did not mean to send is
refused instead of guessed, and every keyword field sets ``ignore_above``
(a unit test checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from monitor.records import MAX_ID_BYTES, MAX_URL_CHARS

#: Keyword values longer than this many characters are kept in ``_source`` but
#: not indexed (``ignore_above``): Lucene refuses a term over 32,766 bytes,
#: which would refuse the whole document. Every keyword field of every
#: template sets it (a unit test checks); fields with a longer documented
#: bound (ids, URLs) set that bound instead.
KEYWORD_IGNORE_ABOVE = 256


def keyword_field(
    ignore_above: int = KEYWORD_IGNORE_ABOVE, **options: Any
) -> dict[str, Any]:
    """Return the mapping of a ``keyword`` field with ``ignore_above`` set.

    Args:
        ignore_above: Longest value indexed, in characters.
        **options: Further mapping parameters (``index=False``, ...).

    """
    return {"type": "keyword", "ignore_above": ignore_above, **options}


KEYWORD = keyword_field()
DATE: dict[str, Any] = {"type": "date"}
LONG: dict[str, Any] = {"type": "long"}
INTEGER: dict[str, Any] = {"type": "integer"}
DOUBLE: dict[str, Any] = {"type": "double"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
TEXT: dict[str, Any] = {"type": "text"}
#: The codec's schema version of a stored value (``analysis.tickets.codec``).
SCHEMA: dict[str, Any] = {"type": "integer"}
#: Stored in ``_source`` only: neither indexed nor mapped field by field.
OPAQUE: dict[str, Any] = {"type": "object", "enabled": False}


def index_template(
    pattern: str,
    mapping: Mapping[str, Any],
    description: str,
    *,
    refresh_interval: str | None = "1s",
) -> dict[str, Any]:
    """Body of an index template (for ``indices.put_index_template``).

    Args:
        pattern: The index pattern the template applies to.
        mapping: The indices' mapping.
        description: What the indices hold (``_meta.description``).
        refresh_interval: How soon a write becomes searchable; ``None``
            leaves Elasticsearch's default (writes that refresh themselves).

    """
    settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0}
    if refresh_interval is not None:
        settings["refresh_interval"] = refresh_interval
    return {
        "index_patterns": [pattern],
        "priority": 200,
        "template": {"settings": settings, "mappings": mapping},
        "_meta": {"managed_by": "monitor", "description": description},
    }


# --- posts --------------------------------------------------------------------

#: Mapping of ``<prefix>-posts-*`` (one document per post, id = post id).
POST_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "post_id": keyword_field(MAX_ID_BYTES),
        "source": keyword_field(),
        "author": keyword_field(),
        "url": keyword_field(MAX_URL_CHARS, index=False),
        "text": TEXT,
        "original_text": {"type": "text", "index": False},
        "sentiment": {"type": "float"},
        "sentiment_raw": {"type": "float"},
        "sentiment_model": keyword_field(),
        "label": keyword_field(),
        "keywords": keyword_field(),
        "topics": keyword_field(),
        "published_at": DATE,
        "scored_at": DATE,
        "indexed_at": DATE,
        "likes": LONG,
        "reposts": LONG,
        "followers": LONG,
        "simhash": LONG,  # signed 64-bit SimHash of text (analysis.simhash)
        "meta": OPAQUE,
    },
}


def post_index_template(prefix: str) -> dict[str, Any]:
    """Index template of the daily posts indices."""
    return index_template(f"{prefix}-posts*", POST_MAPPING, "posts scored by monitor")


# --- window counts and bursts ---------------------------------------------------

#: Mapping of ``<prefix>-counts-*`` (one document per series and window).
COUNT_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "series": keyword_field(),
        "kind": keyword_field(),
        "key": keyword_field(),
        "window_start": DATE,
        "window_end": DATE,
        "window_seconds": INTEGER,
        "observed": DOUBLE,
        "expected": DOUBLE,
        "score": DOUBLE,
        "anomalous": BOOLEAN,
        "posts": LONG,
        "negative": LONG,
        "negative_share": DOUBLE,
        "negative_influence": DOUBLE,
        "complete": BOOLEAN,
    },
}

#: Mapping of ``<prefix>-bursts`` (one document per burst, id = burst id).
BURST_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "burst_id": keyword_field(),
        "series": keyword_field(),
        "kind": keyword_field(),
        "key": keyword_field(),
        "phase": keyword_field(),
        "window_start": DATE,
        "window_seconds": INTEGER,
        "observed": DOUBLE,
        "expected": DOUBLE,
        "score": DOUBLE,
        "started_at": DATE,
        "peak_at": DATE,
        "ended_at": DATE,
        "peak_score": DOUBLE,
        "peak_observed": DOUBLE,
        "peak_expected": DOUBLE,
        "post_ids": keyword_field(MAX_ID_BYTES),
        "updated_at": DATE,
    },
}


def count_index_template(prefix: str) -> dict[str, Any]:
    """Index template of the daily window-count indices."""
    return index_template(
        f"{prefix}-counts*", COUNT_MAPPING, "window counts per series"
    )


def burst_index_template(prefix: str) -> dict[str, Any]:
    """Index template of the bursts index."""
    return index_template(f"{prefix}-bursts*", BURST_MAPPING, "bursts per series")


# --- tickets, their events and silences -----------------------------------------

#: Mapping of ``<prefix>-tickets``: the fields of ``ticket_to_dict`` (a unit
#: test checks they match, ``schema`` included) and ``recent_events``.
TICKET_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "ticket_id": KEYWORD,
        "fingerprint": KEYWORD,
        "sequence": LONG,
        "status": KEYWORD,
        "priority": KEYWORD,
        "priority_reason": TEXT,
        "topic": KEYWORD,
        "rule": KEYWORD,
        "kind": KEYWORD,
        "keyword": KEYWORD,
        "team": KEYWORD,
        "owner": KEYWORD,
        "occurrences": LONG,
        "escalation_level": LONG,
        "escalation_contact": KEYWORD,
        "reopen_count": LONG,
        "flapping": BOOLEAN,
        "revision": LONG,
        "first_seen": DATE,
        "last_seen": DATE,
        "opened_at": DATE,
        "ack_due": DATE,
        "resolve_due": DATE,
        "acknowledged_at": DATE,
        "started_at": DATE,
        "resolved_at": DATE,
        "closed_at": DATE,
        "threshold": DOUBLE,
        "opening_value": DOUBLE,
        "growth_reference": DOUBLE,
        "peak_value": DOUBLE,
        "expected_value": DOUBLE,
        "evidence": {
            "properties": {
                "post_id": keyword_field(MAX_ID_BYTES),
                "excerpt": TEXT,
                "followers": LONG,
                "reposts": LONG,
                "published_at": DATE,
                "author": KEYWORD,
                "url": keyword_field(MAX_URL_CHARS, index=False),
            }
        },
        "keywords": KEYWORD,
        "history": {
            "properties": {
                "window_start": DATE,
                "window_end": DATE,
                "observed_value": DOUBLE,
                "expected_value": DOUBLE,
            }
        },
        "opened_times": DATE,
        "sla_breaches": KEYWORD,
        "delivery": OPAQUE,
        "channels": KEYWORD,
        "schema": SCHEMA,
        # Schema 2: incidents and the outbox.
        "group_key": KEYWORD,
        "signals": {
            "properties": {
                "rule": KEYWORD,
                "kind": KEYWORD,
                "keyword": KEYWORD,
                "first_fired": DATE,
                "first_window_start": DATE,
                "last_window_end": DATE,
                "last_value": DOUBLE,
                "peak_value": DOUBLE,
                "threshold": DOUBLE,
                "baseline": DOUBLE,
                "priority": KEYWORD,
                "occurrences": LONG,
                "signal_id": KEYWORD,
                "provisional": BOOLEAN,
                "retracted": BOOLEAN,
                "growth_reference": DOUBLE,
            }
        },
        "seen_signals": KEYWORD,
        "linked": KEYWORD,
        "outbox": OPAQUE,
        "last_notice_at": DATE,
        "notices": LONG,
        # The notice clock (event time of the last notice; changes held).
        "notice_event_time": DATE,
        "held_updates": LONG,
        "review": {
            "properties": {
                "root_cause": TEXT,
                "resolution": TEXT,
                "lessons": TEXT,
                "author": KEYWORD,
                "at": DATE,
            }
        },
        # Store-only: the events of the ticket's latest write, committed with
        # it, and the earliest due time of its outbox, which the notice sender
        # searches on (see monitor.sinks.elasticsearch.tickets).
        "recent_events": OPAQUE,
        "outbox_due_at": DATE,
    },
}

#: Mapping of ``<prefix>-ticket-events-*`` (one document per audit event).
EVENT_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "ticket_id": KEYWORD,
        "event_id": KEYWORD,
        "revision": LONG,
        "at": DATE,
        "actor": KEYWORD,
        "action": KEYWORD,
        "from_status": KEYWORD,
        "to_status": KEYWORD,
        "note": TEXT,
        "details": OPAQUE,
        "schema": SCHEMA,
    },
}

#: Mapping of ``<prefix>-silences`` (one document per silence made in the API).
SILENCE_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "silence_id": KEYWORD,
        "starts_at": DATE,
        "expires_at": DATE,
        "author": KEYWORD,
        "reason": TEXT,
        "topic": KEYWORD,
        "keyword": KEYWORD,
        "rule": KEYWORD,
        "clock": KEYWORD,
        "schema": SCHEMA,
    },
}

#: Ticket fields the free-text ``text`` filter of ticket searches looks in.
TEXT_FIELDS = (
    "ticket_id",
    "topic",
    "rule",
    "keyword",
    "keywords",
    "owner",
    "priority_reason",
    "evidence.excerpt",
)


def tickets_index(prefix: str) -> str:
    """Return the one tickets index, e.g. ``monitor-tickets``."""
    return f"{prefix}-tickets"


def silences_index(prefix: str) -> str:
    """Return the silences index, e.g. ``monitor-silences``."""
    return f"{prefix}-silences"


def events_index(prefix: str, at: datetime) -> str:
    """Return the monthly events index of a moment (``...-ticket-events-2026.11``)."""
    return f"{prefix}-ticket-events-{at.astimezone(timezone.utc):%Y.%m}"


def events_index_pattern(prefix: str) -> str:
    """Pattern of every events index."""
    return f"{prefix}-ticket-events-*"


def ticket_index_templates(prefix: str) -> dict[str, dict[str, Any]]:
    """Index templates (name -> body) of the three ticket indices.

    They leave ``refresh_interval`` at Elasticsearch's default: every ticket
    store write refreshes (``refresh=True``) so the next search sees it.
    """
    return {
        f"{prefix}-tickets": index_template(
            tickets_index(prefix),
            TICKET_MAPPING,
            "alert tickets, one doc each",
            refresh_interval=None,
        ),
        f"{prefix}-ticket-events": index_template(
            events_index_pattern(prefix),
            EVENT_MAPPING,
            "ticket audit trail",
            refresh_interval=None,
        ),
        f"{prefix}-silences": index_template(
            silences_index(prefix),
            SILENCE_MAPPING,
            "silences made in the API",
            refresh_interval=None,
        ),
    }
