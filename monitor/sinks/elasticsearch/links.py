"""The ledger of used action links, in Elasticsearch: one document per link.

An action link (:mod:`monitor.web.links`) works once, on any worker. Its
use is claimed by creating the document ``<prefix>-action-links/_doc/<link
id>`` with ``op_type=create``: Elasticsearch accepts exactly one create per
id, so of two workers (or two taps) redeeming the same link at once exactly
one wins, and the claim survives restarts. Nothing is written when a link
is issued; the token carries its own claims.

The document records the claim (ticket, action, intended actor, channel,
the revision the link was issued at, when it was claimed) and, once the
action is applied, its outcome and event id. Documents are small and never
rewritten after that; a link past its expiry is refused before the ledger is
asked, so old documents may be deleted freely (none are deleted here).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, ConflictError, NotFoundError

from monitor.errors import MonitorError, SinkUnavailable
from monitor.sinks.elasticsearch.bulk import TRANSIENT_STATUSES, es_client

log = logging.getLogger(__name__)

T = TypeVar("T")

_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_DATE = {"type": "date"}

#: Mapping of ``<prefix>-action-links`` (id = link id).
LINK_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "link_id": _KEYWORD,
        "ticket_id": _KEYWORD,
        "action": _KEYWORD,
        "actor": _KEYWORD,
        "channel": _KEYWORD,
        "key_id": _KEYWORD,
        "issued_revision": {"type": "long"},
        "expires_at": _DATE,
        "claimed_at": _DATE,
        "outcome": _KEYWORD,
        "event_id": _KEYWORD,
        "finished_at": _DATE,
    },
}


def links_index(prefix: str) -> str:
    """Return the ledger's index, e.g. ``monitor-action-links``."""
    return f"{prefix}-action-links"


class LedgerUnavailable(SinkUnavailable):
    """Elasticsearch cannot serve the ledger now; retrying later is safe."""


class LedgerError(MonitorError):
    """Elasticsearch refused a ledger request for good (400, 404 on the index...)."""


class LinkLedger:
    """Used action links, claimed once with ``op_type=create``.

    Args:
        client: An ``AsyncElasticsearch`` client (the ticket store's will do).
        prefix: Index prefix (``settings.index_prefix``).
        retry_after: Seconds suggested to wait after a transient failure.

    """

    def __init__(
        self, client: AsyncElasticsearch, prefix: str, *, retry_after: float = 1.0
    ) -> None:
        self.client = client
        self.index = links_index(prefix)
        self.retry_after = retry_after
        self._ready = False

    @classmethod
    def connect(
        cls,
        url: str,
        prefix: str,
        *,
        api_key: str | None = None,
        request_timeout: float = 30.0,
    ) -> LinkLedger:
        """Create a ledger with its own client."""
        return cls(
            es_client(url, api_key=api_key, request_timeout=request_timeout), prefix
        )

    async def close(self) -> None:
        """Close the client's connections (a ledger made by :meth:`connect`)."""
        await self.client.close()

    async def _call(self, request: Awaitable[T]) -> T:
        try:
            return await request
        except (ConflictError, NotFoundError):
            raise
        except ApiError as exc:
            status = exc.meta.status
            if status in TRANSIENT_STATUSES or status in (401, 403):
                raise LedgerUnavailable(
                    f"Elasticsearch is busy, failing or refusing our credentials "
                    f"({status})",
                    retry_after=self.retry_after,
                ) from exc
            raise LedgerError(
                f"Elasticsearch refused an action-link ledger request ({status})"
            ) from exc
        except TransportError as exc:
            raise LedgerUnavailable(
                f"Elasticsearch unreachable: {exc}", retry_after=self.retry_after
            ) from exc

    async def ensure_index(self) -> None:
        """Create the index with its strict mapping, if it is not there yet.

        Safe to call from several processes at once.
        """
        if self._ready:
            return
        if not await self._call(self.client.indices.exists(index=self.index)):
            try:
                await self._call(
                    self.client.indices.create(
                        index=self.index,
                        mappings=LINK_MAPPING,
                        settings={"number_of_shards": 1, "number_of_replicas": 0},
                    )
                )
            except LedgerError as exc:
                if "resource_already_exists" not in str(exc.__cause__):
                    raise
        self._ready = True

    async def claim(self, link_id: str, doc: Mapping[str, Any]) -> bool:
        """Record ``link_id`` as used, if nobody has.

        Args:
            link_id: The link's id (the document id).
            doc: What to record (fields of :data:`LINK_MAPPING`).

        Returns:
            True if this call claimed it; False if it was claimed before.

        Raises:
            LedgerUnavailable: If Elasticsearch cannot take it now (the
                claim may or may not have been written).

        """
        await self.ensure_index()
        try:
            await self._call(
                self.client.index(
                    index=self.index,
                    id=link_id,
                    document={**doc, "link_id": link_id},
                    op_type="create",
                    refresh=True,
                )
            )
        except ConflictError:
            return False
        return True

    async def get(self, link_id: str) -> dict[str, Any] | None:
        """Return the claim of ``link_id``, or ``None`` if it is unused."""
        await self.ensure_index()
        try:
            response = await self._call(self.client.get(index=self.index, id=link_id))
        except NotFoundError:
            return None
        return dict(response["_source"])

    async def finish(self, link_id: str, fields: Mapping[str, Any]) -> None:
        """Add the outcome to a claim (``outcome``, ``event_id``, ``finished_at``)."""
        await self.ensure_index()
        await self._call(
            self.client.update(
                index=self.index, id=link_id, doc=dict(fields), refresh=True
            )
        )

    async def release(self, link_id: str) -> None:
        """Drop a claim whose action could not be tried (Elasticsearch failed).

        The link may then be used again; an action that did get saved shows
        as a change to the ticket, so the link is refused as stale.
        """
        await self.ensure_index()
        try:
            await self._call(
                self.client.delete(index=self.index, id=link_id, refresh=True)
            )
        except NotFoundError:
            return
