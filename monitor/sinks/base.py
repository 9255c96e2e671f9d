"""The small interfaces sinks implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Rejected:
    """A document the sink refused for good (retrying will not help).

    Attributes:
        doc_id: The document's id.
        reason: The sink's own explanation.
        document: The document as it was sent.

    """

    doc_id: str
    reason: str
    document: Mapping[str, Any]


@dataclass
class WriteResult:
    """Outcome of one batch write.

    Attributes:
        written: Ids written (created or replaced), or already there when the
            sink keeps the first version of a document.
        rejected: Documents refused for good.
        existing: Ids of ``written`` that were already there and kept as they
            were (a sink that keeps first versions; empty otherwise).

    """

    written: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    """A document for an index, with its idempotent id.

    Attributes:
        index: Target index name.
        doc_id: Document id; writing the same id again replaces it (or
            leaves it, with a sink that keeps first versions).
        body: The JSON-able source.

    """

    index: str
    doc_id: str
    body: Mapping[str, Any]


class DocumentSink(Protocol):
    """Somewhere documents are written by id."""

    async def write(self, docs: Sequence[Document]) -> WriteResult:
        """Write all docs or raise ``SinkUnavailable`` to have them retried."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
