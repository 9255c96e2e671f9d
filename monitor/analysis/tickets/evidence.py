"""Which posts a ticket keeps as evidence when new ones arrive."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.analysis.simhash import (
    DEFAULT_MAX_DISTANCE,
    fingerprint_text,
    group_near_duplicates,
    simhash,
)
from monitor.analysis.tickets.model import Evidence

#: Excerpts with fewer letters and digits than this are never grouped as
#: near-duplicates: too short for their fingerprints to say so.
MIN_GROUPED_CHARS = 6


def merge_evidence(
    current: Sequence[Evidence],
    new: Iterable[Evidence],
    limit: int,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> tuple[Evidence, ...]:
    """Return the ``limit`` most representative posts of both, without repeats.

    Most followers first, then most reposts, then earliest; a post id seen
    before keeps its first entry. Near-duplicate excerpts (SimHash within
    ``max_distance`` bits: reposts of one text, light edits) keep only their
    best-ranked post, so a repost storm shows one text, not ``limit`` copies.
    """
    seen: dict[str, Evidence] = {}
    for item in (*current, *new):
        seen.setdefault(item.post_id, item)

    def rank(item: Evidence) -> tuple[int, int, float, str]:
        # Undated posts sort last among equals: they cannot be placed in time.
        published = item.published_at.timestamp() if item.published_at else float("inf")
        return (-item.followers, -item.reposts, published, item.post_id)

    ranked = sorted(seen.values(), key=rank)
    fingerprints = {
        item.post_id: (
            simhash(item.excerpt)
            if len(fingerprint_text(item.excerpt)) >= MIN_GROUPED_CHARS
            else None
        )
        for item in ranked
    }
    groups = group_near_duplicates(
        ranked, lambda item: fingerprints[item.post_id], max_distance
    )
    return tuple(group[0] for group in groups[:limit])
