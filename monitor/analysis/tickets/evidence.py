"""Which posts a ticket keeps as evidence when new ones arrive."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.analysis.tickets.model import Evidence


def merge_evidence(
    current: Sequence[Evidence], new: Iterable[Evidence], limit: int
) -> tuple[Evidence, ...]:
    """Return the ``limit`` most representative posts of both, without repeats.

    Most followers first, then most reposts, then earliest; a post id seen
    before keeps its first entry.
    """
    seen: dict[str, Evidence] = {}
    for item in (*current, *new):
        seen.setdefault(item.post_id, item)

    def rank(item: Evidence) -> tuple[int, int, float, str]:
        # Undated posts sort last among equals: they cannot be placed in time.
        published = item.published_at.timestamp() if item.published_at else float("inf")
        return (-item.followers, -item.reposts, published, item.post_id)

    return tuple(sorted(seen.values(), key=rank)[:limit])
