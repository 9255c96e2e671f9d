"""Alert tickets in Elasticsearch: the store of tickets, events and silences.

Three indices per prefix, each with a strict explicit mapping (their names,
mappings and templates live in :mod:`monitor.sinks.elasticsearch.templates`):

- ``<prefix>-tickets``: one index, one document per ticket (id = ticket id),
  rewritten in place as the ticket changes over days;
- ``<prefix>-ticket-events-YYYY.MM``: the audit trail, one document per event
  (id = event id), monthly by the event's UTC time;
- ``<prefix>-silences``: silences created through the API (id = silence id).

Each document is the value's JSON form from :mod:`monitor.analysis.tickets.codec`
(with its ``schema`` version), plus the store-only fields noted below.

Ticket writes use optimistic concurrency: a new ticket is created with
``op_type=create`` and a changed one is written with the ``if_seq_no`` /
``if_primary_term`` it was read with, so two processes acting on one ticket
never overwrite each other (the loser gets :class:`ConcurrentUpdate`, re-reads
and decides again). Every write uses ``refresh=True`` so the next search sees
it.

The ticket document also carries the events of its latest write
(``recent_events``). They are committed with the ticket itself, so a process
that dies between the ticket write and the event write loses no audit entry:
:meth:`TicketStore.events` merges them in, and the next write of the ticket
indexes them for good.

The ticket document also carries its outbox (notices not yet accepted by
every channel, see :mod:`monitor.analysis.tickets.outbox`) and, store-only,
``outbox_due_at``: the earliest due time in it, which
:meth:`TicketStore.due` searches on. The notice sender clears what it
delivered with the same conditional write, so a notice leaves the document
only after its channels took it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, ConflictError, NotFoundError

from monitor.analysis.tickets.codec import (
    event_from_dict,
    event_to_dict,
    silence_from_dict,
    silence_to_dict,
    ticket_from_dict,
    ticket_to_dict,
)
from monitor.analysis.tickets.model import (
    ACTIVE_STATUSES,
    PRIORITIES,
    Ticket,
    TicketEvent,
)
from monitor.analysis.tickets.outbox import next_due
from monitor.analysis.tickets.silences import Silence
from monitor.errors import MonitorError, SinkUnavailable
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.bulk import TRANSIENT_STATUSES, bulk_write, es_client
from monitor.sinks.elasticsearch.templates import (
    SILENCE_MAPPING,
    TEXT_FIELDS,
    TICKET_MAPPING,
    events_index,
    events_index_pattern,
    silences_index,
    ticket_index_templates,
    tickets_index,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How far into the results a search may page: ``offset + limit`` stays
#: within it (``index.max_result_window`` is 10,000).
MAX_RESULT_WINDOW = 10_000
#: Largest page (``limit``) a search returns.
MAX_PAGE_SIZE = 500
_SCAN_PAGE = 500
#: Evidence posts :meth:`TicketStore.copies` looks up at most.
MAX_COPIES_POSTS = 50


# --- errors -------------------------------------------------------------------


class TicketStoreUnavailable(SinkUnavailable):
    """Elasticsearch cannot serve the ticket store now (connection, 429, 5xx).

    Retrying the same call later is safe; ``retry_after`` is a hint in seconds.
    """


class TicketStoreError(MonitorError):
    """Elasticsearch refused a ticket-store request for good (400, 401, 403...).

    Attributes:
        status: The HTTP status, if there was one.

    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ConcurrentUpdate(MonitorError):
    """A ticket changed (or was created) since it was read.

    Attributes:
        ticket_id: The ticket that was written concurrently.

    """

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(
            f"ticket {ticket_id} was changed by someone else meanwhile; read it again"
        )


# --- event ids ----------------------------------------------------------------


def event_revision(event: TicketEvent) -> int:
    """Return the ticket revision an event created (the number after ``#``)."""
    _, _, number = event.event_id.rpartition("#")
    return int(number) if number.isdigit() else 0


# --- the store ----------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """Where a ticket document was when it was read, for the next write.

    Attributes:
        seq_no: ``_seq_no`` of the document as read.
        primary_term: ``_primary_term`` of the document as read.
        pending: Events carried by the document (its latest write's), indexed
            again on the next write in case that write's event write was lost.

    """

    seq_no: int
    primary_term: int
    pending: tuple[TicketEvent, ...] = ()


class TicketStore:
    """Tickets, their audit trail and silences in Elasticsearch.

    Args:
        client: An ``AsyncElasticsearch`` client (the store does not retry;
            its callers do, on :class:`TicketStoreUnavailable`).
        prefix: Index prefix (``settings.index_prefix``).
        retry_after: Seconds suggested to wait after a transient failure.
        related_limit: Tickets read per fingerprint and per team's history
            when deciding on a trigger.

    """

    def __init__(
        self,
        client: AsyncElasticsearch,
        prefix: str,
        *,
        retry_after: float = 1.0,
        related_limit: int = 20,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.retry_after = retry_after
        self.related_limit = related_limit
        self._tickets = tickets_index(prefix)
        self._silences = silences_index(prefix)
        self._events = events_index_pattern(prefix)
        self._ready = False

    @classmethod
    def connect(
        cls,
        url: str,
        prefix: str,
        *,
        api_key: str | None = None,
        request_timeout: float = 30.0,
    ) -> TicketStore:
        """Create a store with its own client (no client-side retries).

        Args:
            url: Elasticsearch URL.
            prefix: Index prefix.
            api_key: Optional API key.
            request_timeout: Seconds per request.

        """
        return cls(
            es_client(url, api_key=api_key, request_timeout=request_timeout), prefix
        )

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.close()

    async def ping(self) -> bool:
        """Return True if Elasticsearch answers."""
        try:
            return bool(await self.client.ping())
        except (ApiError, TransportError):
            return False

    # -- plumbing --------------------------------------------------------------

    async def _call(self, request: Awaitable[T]) -> T:
        """Await a client call, turning failures into the store's errors.

        ``ConflictError`` and ``NotFoundError`` pass through for the caller.
        """
        try:
            return await request
        except (ConflictError, NotFoundError):
            raise
        except ApiError as exc:
            status = exc.meta.status
            if status in TRANSIENT_STATUSES or status in (401, 403):
                # Credentials hit every request alike: hold the triggers
                # (retried until fixed) rather than dead-letter each one.
                raise TicketStoreUnavailable(
                    f"Elasticsearch is busy, failing or refusing our "
                    f"credentials ({status}): {exc}",
                    retry_after=self.retry_after,
                ) from exc
            raise TicketStoreError(
                f"Elasticsearch refused a ticket-store request ({status}): {exc}",
                status,
            ) from exc
        except TransportError as exc:
            raise TicketStoreUnavailable(
                f"Elasticsearch unreachable: {exc}", retry_after=self.retry_after
            ) from exc

    async def ensure_templates(self) -> None:
        """Put the index templates and create the tickets and silences indices.

        Safe to call again (and from several processes at once); later calls
        of the same store return at once.

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot be reached.

        """
        if self._ready:
            return
        for name, body in ticket_index_templates(self.prefix).items():
            await self._call(self.client.indices.put_index_template(name=name, **body))
        mappings = {self._tickets: TICKET_MAPPING, self._silences: SILENCE_MAPPING}
        for index, mapping in mappings.items():
            if await self._call(self.client.indices.exists(index=index)):
                # An index made by an older version lacks the newer fields;
                # adding fields to a mapping is allowed in place.
                await self._call(
                    self.client.indices.put_mapping(
                        index=index, properties=mapping["properties"]
                    )
                )
                continue
            try:
                await self._call(self.client.indices.create(index=index))
            except TicketStoreError as exc:
                # Another process created it between the check and the create.
                if "resource_already_exists" not in str(exc):
                    raise
        self._ready = True

    async def _search(self, index: str, **body: Any) -> dict[str, Any]:
        await self.ensure_templates()
        response = await self._call(
            self.client.search(
                index=index,
                ignore_unavailable=True,
                allow_no_indices=True,
                **body,
            )
        )
        return dict(response)

    async def _scan(
        self, index: str, query: Mapping[str, Any], sort: Sequence[Any]
    ) -> list[dict[str, Any]]:
        """Every hit of ``query``, paged with ``search_after`` on ``sort``."""
        hits: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while True:
            extra = {"search_after": after} if after is not None else {}
            page = (
                await self._search(
                    index, query=query, sort=list(sort), size=_SCAN_PAGE, **extra
                )
            )["hits"]["hits"]
            hits.extend(page)
            if len(page) < _SCAN_PAGE:
                return hits
            after = page[-1]["sort"]

    @staticmethod
    def _tickets_of(hits: Iterable[Mapping[str, Any]]) -> list[Ticket]:
        return [ticket_from_dict(hit["_source"]) for hit in hits]

    # -- tickets ---------------------------------------------------------------

    async def get(self, ticket_id: str) -> tuple[Ticket, Version] | None:
        """Read one ticket and the version to write it back with.

        Returns:
            ``(ticket, version)``, or ``None`` if there is no such ticket.

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        await self.ensure_templates()
        try:
            response = await self._call(
                self.client.get(index=self._tickets, id=ticket_id)
            )
        except NotFoundError:
            return None
        source = response["_source"]
        pending = tuple(
            event_from_dict(item) for item in source.get("recent_events") or ()
        )
        version = Version(
            int(response["_seq_no"]), int(response["_primary_term"]), pending
        )
        return ticket_from_dict(source), version

    async def save(
        self,
        ticket: Ticket,
        events: Sequence[TicketEvent],
        version: Version | None,
    ) -> None:
        """Write a ticket and its new events.

        Args:
            ticket: The ticket as it is now.
            events: The events that made it so (in order).
            version: The version it was read with, or ``None`` for a ticket
                that must not exist yet.

        Raises:
            ConcurrentUpdate: If the ticket exists (new one) or changed since
                ``version`` was read; nothing was written.
            TicketStoreUnavailable: If Elasticsearch cannot take it now. The
                ticket may or may not have been written; read it again.

        """
        await self.ensure_templates()
        document = ticket_to_dict(ticket)
        document["recent_events"] = [event_to_dict(event) for event in events]
        due = next_due(ticket)
        document["outbox_due_at"] = None if due is None else due.isoformat()
        occ: dict[str, Any] = (
            {"op_type": "create"}
            if version is None
            else {"if_seq_no": version.seq_no, "if_primary_term": version.primary_term}
        )
        try:
            await self._call(
                self.client.index(
                    index=self._tickets,
                    id=ticket.ticket_id,
                    document=document,
                    refresh=True,
                    **occ,
                )
            )
        except ConflictError:
            raise ConcurrentUpdate(ticket.ticket_id) from None
        pending = version.pending if version is not None else ()
        await self.write_events([*pending, *events])

    async def write_events(self, events: Sequence[TicketEvent]) -> None:
        """Index audit events by id (idempotent: writing one again changes nothing).

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot take them now.
            TicketStoreError: If it refused any of them for good.

        """
        if not events:
            return
        await self.ensure_templates()
        docs = [
            Document(
                events_index(self.prefix, event.at),
                event.event_id,
                {**event_to_dict(event), "revision": event_revision(event)},
            )
            for event in events
        ]
        result = await self._call(bulk_write(self.client, docs, refresh=True))
        if result.retry:
            raise TicketStoreUnavailable(
                "Elasticsearch could not take every ticket event; retry",
                retry_after=self.retry_after,
            )
        if result.rejected:
            reasons = "; ".join(
                f"{item.doc_id}: {item.reason}" for item in result.rejected
            )
            raise TicketStoreError(f"Elasticsearch refused ticket events: {reasons}")

    async def events(self, ticket_id: str) -> list[TicketEvent]:
        """Return a ticket's audit trail, oldest first.

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        hits = await self._scan(
            self._events,
            {"term": {"ticket_id": ticket_id}},
            [{"revision": "asc"}, {"event_id": "asc"}],
        )
        found = {
            hit["_source"]["event_id"]: event_from_dict(hit["_source"]) for hit in hits
        }
        current = await self.get(ticket_id)
        if current is not None:
            for event in current[1].pending:
                found.setdefault(event.event_id, event)
        return sorted(found.values(), key=event_revision)

    async def related(
        self,
        fingerprint: str | Sequence[str],
        team: str,
        posts: Sequence[str] = (),
    ) -> list[Ticket]:
        """Tickets a trigger's decision needs.

        Args:
            fingerprint: The trigger's fingerprints (its incident's and the
                legacy per-rule one), or one.
            team: The team that would take a new ticket.
            posts: The trigger's evidence post ids: active tickets showing
                any of them are returned too (for incident links).

        Returns:
            Each fingerprint's latest ``related_limit`` tickets (highest
            sequence first), then the team's active tickets and its latest
            ``related_limit`` opened ones (for owner routing), then the
            active tickets sharing posts, without repeats.

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        prints = [fingerprint] if isinstance(fingerprint, str) else list(fingerprint)
        owns = [
            await self._search(
                self._tickets,
                query={"term": {"fingerprint": one}},
                sort=[{"sequence": "desc"}],
                size=self.related_limit,
            )
            for one in prints
        ]
        sharing: list[dict[str, Any]] = []
        if posts:
            shared = await self._search(
                self._tickets,
                query={
                    "bool": {
                        "filter": [
                            {"terms": {"evidence.post_id": list(posts)}},
                            {"terms": {"status": sorted(ACTIVE_STATUSES)}},
                        ]
                    }
                },
                sort=[{"opened_at": "desc"}, {"ticket_id": "asc"}],
                size=self.related_limit,
            )
            sharing = shared["hits"]["hits"]
        busy = await self._scan(
            self._tickets,
            {
                "bool": {
                    "filter": [
                        {"term": {"team": team}},
                        {"terms": {"status": sorted(ACTIVE_STATUSES)}},
                    ]
                }
            },
            [{"ticket_id": "asc"}],
        )
        recent = await self._search(
            self._tickets,
            query={"term": {"team": team}},
            sort=[{"opened_at": "desc"}, {"ticket_id": "asc"}],
            size=self.related_limit,
        )
        tickets: dict[str, Ticket] = {}
        groups = [own["hits"]["hits"] for own in owns]
        for hits in (*groups, busy, recent["hits"]["hits"], sharing):
            for ticket in self._tickets_of(hits):
                tickets.setdefault(ticket.ticket_id, ticket)
        return list(tickets.values())

    async def search(
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
        """Find tickets, most recently opened first.

        Args:
            status: A status or several (any of them matches).
            topic: Exact watched topic.
            priority: A priority or several.
            owner: Exact owner.
            team: Exact team.
            text: Words that must all appear in one of :data:`TEXT_FIELDS`.
            limit: Page size, 1-:data:`MAX_PAGE_SIZE`.
            offset: Tickets to skip; ``offset + limit`` <=
                :data:`MAX_RESULT_WINDOW`.

        Returns:
            The page and the total number of matching tickets.

        Raises:
            ValueError: If ``limit`` or ``offset`` is out of range.
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1-{MAX_PAGE_SIZE}, got {limit}")
        if offset < 0 or offset + limit > MAX_RESULT_WINDOW:
            raise ValueError(
                f"offset must be >= 0 and offset + limit <= {MAX_RESULT_WINDOW}"
            )
        filters: list[dict[str, Any]] = []
        for name, value in (("status", status), ("priority", priority)):
            if value is not None:
                values = [value] if isinstance(value, str) else list(value)
                filters.append({"terms": {name: values}})
        for name, single in (("topic", topic), ("owner", owner), ("team", team)):
            if single is not None:
                filters.append({"term": {name: single}})
        must: list[dict[str, Any]] = []
        if text and text.strip():
            must.append(
                {
                    "multi_match": {
                        "query": text.strip(),
                        "fields": list(TEXT_FIELDS),
                        "operator": "and",
                    }
                }
            )
        response = await self._search(
            self._tickets,
            query={"bool": {"filter": filters, "must": must}},
            sort=[{"opened_at": "desc"}, {"ticket_id": "asc"}],
            size=limit,
            from_=offset,
            track_total_hits=True,
        )
        hits = response["hits"]
        return self._tickets_of(hits["hits"]), int(hits["total"]["value"])

    async def reviews(self, limit: int = 50) -> list[Ticket]:
        """Return closed tickets with a review (复盘), latest close first.

        Raises:
            ValueError: If ``limit`` is not 1-:data:`MAX_PAGE_SIZE`.
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1-{MAX_PAGE_SIZE}, got {limit}")
        response = await self._search(
            self._tickets,
            query={
                "bool": {
                    "filter": [
                        {"term": {"status": "closed"}},
                        {"exists": {"field": "review.root_cause"}},
                    ]
                }
            },
            sort=[{"closed_at": "desc"}, {"ticket_id": "asc"}],
            size=limit,
        )
        return self._tickets_of(response["hits"]["hits"])

    async def open_by_priority(self) -> dict[str, int]:
        """Return active (open, acknowledged, in progress) tickets per priority."""
        counts = {str(p): 0 for p in PRIORITIES}
        for ticket in await self.active():
            counts[str(ticket.priority)] = counts.get(str(ticket.priority), 0) + 1
        return counts

    async def topic_counts(self, since: datetime) -> list[dict[str, Any]]:
        """Return per-topic window counts (``<prefix>-counts-*``) from ``since`` on.

        Each is the count document's ``key`` (the topic), ``window_start``,
        ``window_seconds``, ``posts`` and ``negative``, oldest first.
        """
        query = {
            "bool": {
                "filter": [
                    {"term": {"kind": "topic"}},
                    {"range": {"window_start": {"gte": since.isoformat()}}},
                ]
            }
        }
        hits = await self._scan(
            f"{self.prefix}-counts-*",
            query,
            [{"window_start": "asc"}, {"series": "asc"}],
        )
        return [hit["_source"] for hit in hits]

    async def copies(
        self, post_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, int]:
        """Return, per post, how many posts share its text's SimHash in a period.

        Reposts (``转发微博``, ``//@…:`` chains) are fingerprinted on the text
        they pass on, so the count is how often that text went round between
        ``since`` and ``until`` (the post itself included). A post not in the
        posts index, or indexed before fingerprints were (``simhash`` 0), is
        left out. At most :data:`MAX_COPIES_POSTS` posts are looked up.
        """
        wanted = list(dict.fromkeys(post_ids))[:MAX_COPIES_POSTS]
        if not wanted:
            return {}
        index = f"{self.prefix}-posts-*"
        found = await self._search(
            index,
            query={"ids": {"values": wanted}},
            source=["simhash"],
            size=len(wanted),
        )
        fingerprints: dict[str, int] = {}
        for hit in found["hits"]["hits"]:
            value = (hit.get("_source") or {}).get("simhash")
            if isinstance(value, int) and value != 0:
                fingerprints.setdefault(str(hit["_id"]), value)
        if not fingerprints:
            return {}
        distinct = sorted(set(fingerprints.values()))
        counted = await self._search(
            index,
            query={
                "bool": {
                    "filter": [
                        {"terms": {"simhash": distinct}},
                        {
                            "range": {
                                "published_at": {
                                    "gte": since.isoformat(),
                                    "lte": until.isoformat(),
                                }
                            }
                        },
                    ]
                }
            },
            size=0,
            aggs={"by": {"terms": {"field": "simhash", "size": len(distinct)}}},
        )
        buckets = counted.get("aggregations", {}).get("by", {}).get("buckets", [])
        totals = {int(b["key"]): int(b["doc_count"]) for b in buckets}
        return {
            post_id: totals[value]
            for post_id, value in fingerprints.items()
            if value in totals
        }

    async def active(self) -> list[Ticket]:
        """Every open, acknowledged or in-progress ticket (for SLA sweeps).

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        hits = await self._scan(
            self._tickets,
            {"terms": {"status": sorted(ACTIVE_STATUSES)}},
            [{"ticket_id": "asc"}],
        )
        return self._tickets_of(hits)

    async def due(self, now: datetime, limit: int = 200) -> list[Ticket]:
        """Tickets with a notice due at ``now`` in their outbox, soonest first.

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        response = await self._search(
            self._tickets,
            query={"range": {"outbox_due_at": {"lte": now.isoformat()}}},
            sort=[{"outbox_due_at": "asc"}, {"ticket_id": "asc"}],
            size=limit,
        )
        return self._tickets_of(response["hits"]["hits"])

    async def next_due(self) -> datetime | None:
        """Return the earliest due time of any outbox (``None``: all empty).

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        response = await self._search(
            self._tickets,
            query={"exists": {"field": "outbox_due_at"}},
            sort=[{"outbox_due_at": "asc"}],
            size=1,
            source=["outbox_due_at"],
        )
        hits = response["hits"]["hits"]
        if not hits:
            return None
        return datetime.fromisoformat(hits[0]["_source"]["outbox_due_at"])

    async def pending_notices(self) -> list[Ticket]:
        """Every ticket with a notice in its outbox (for the pending gauge).

        Raises:
            TicketStoreUnavailable: If Elasticsearch cannot serve it now.

        """
        hits = await self._scan(
            self._tickets,
            {"exists": {"field": "outbox_due_at"}},
            [{"ticket_id": "asc"}],
        )
        return self._tickets_of(hits)

    # -- silences --------------------------------------------------------------

    async def add_silence(self, silence: Silence) -> None:
        """Store a new silence.

        Raises:
            ConcurrentUpdate: If a silence with its id exists already.
            TicketStoreUnavailable: If Elasticsearch cannot take it now.

        """
        await self.ensure_templates()
        try:
            await self._call(
                self.client.index(
                    index=self._silences,
                    id=silence.silence_id,
                    document=silence_to_dict(silence),
                    op_type="create",
                    refresh=True,
                )
            )
        except ConflictError:
            raise ConcurrentUpdate(silence.silence_id) from None

    async def put_silence(self, silence: Silence) -> None:
        """Store a silence, replacing the one with its id (e.g. to expire it)."""
        await self.ensure_templates()
        await self._call(
            self.client.index(
                index=self._silences,
                id=silence.silence_id,
                document=silence_to_dict(silence),
                refresh=True,
            )
        )

    async def get_silence(self, silence_id: str) -> Silence | None:
        """Return one stored silence, or ``None``."""
        await self.ensure_templates()
        try:
            response = await self._call(
                self.client.get(index=self._silences, id=silence_id)
            )
        except NotFoundError:
            return None
        return silence_from_dict(response["_source"])

    async def delete_silence(self, silence_id: str) -> bool:
        """Delete a stored silence; False if there was none."""
        await self.ensure_templates()
        try:
            await self._call(
                self.client.delete(index=self._silences, id=silence_id, refresh=True)
            )
        except NotFoundError:
            return False
        return True

    async def silences(self, active_at: datetime | None = None) -> list[Silence]:
        """Return the stored silences, soonest expiry first.

        Args:
            active_at: Only those not yet expired at this moment (including
                ones that start later); every one if ``None``.

        """
        query: dict[str, Any] = (
            {"range": {"expires_at": {"gt": active_at.isoformat()}}}
            if active_at is not None
            else {"match_all": {}}
        )
        hits = await self._scan(
            self._silences, query, [{"expires_at": "asc"}, {"silence_id": "asc"}]
        )
        return [silence_from_dict(hit["_source"]) for hit in hits]
