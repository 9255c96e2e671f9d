"""Event-time tumbling windows of post counts, per watched topic and keyword.

Counting happens in two steps, so that it scales with the partitions of
``scored-posts`` and still gives one exact count per series and window:

1. :class:`PartitionWindows` follows one partition of ``scored-posts``. It adds
   every post to the window its ``published_at`` falls in and closes a window
   once the partition's watermark (the latest event time seen, minus the
   grace period) has passed the window's end. A closed window leaves as a
   :class:`WindowAggregate` *partial*: that partition's share of the window.
   Windows close in order, and one close sends only the windows that have
   posts plus, as a marker, the latest window the watermark passed (empty or
   not): "this partition has closed everything up to here". So a close costs
   what it carries, not the event time it spans: a quiet gap of days, or
   history followed by live posts, is one or two partials, not thousands.
2. :class:`WindowMerger` sums the partials of all partitions. A window is
   complete once every partition has closed it (its latest partial is at or
   after it; or, for a partition that never reports, after a wall-clock
   timeout) and complete windows leave in time order, with no gaps: the
   windows no partition sent a partial for were empty everywhere, and leave
   as empty windows, so detectors see the zeros. A gap longer than
   ``max_gap_windows`` (a week of windows by default) leaves as its last
   ``max_gap_windows`` windows only: older empty windows carry nothing a
   detector with a shorter memory keeps. The windows skipped are counted
   (:attr:`WindowMerger.skipped_gap_windows`).

Posts later than the grace period are not counted (they are reported, so
the loss is visible). Copies of a post are counted once: within
``dedup_horizon`` seconds of event time when :class:`PartitionLedger` is
given one (:mod:`monitor.analysis.dedup`; the memory costs about 80 bytes
per id held), else within one open window. Everything here is pure: no
Faust, no I/O. State round-trips through plain JSON-able dicts (``to_dict``
/ ``from_dict``).

**Influence-weighted negative volume.** A negative post counts
``1 + log10(1 + reposts) + 0.5 * log10(1 + followers)``: an ordinary post
counts about 1, one reposted 100 times by an author with 10,000 followers
counts 1 + 2 + 2 = 5. Logarithms keep one celebrity from drowning out a
hundred customers.
"""

from __future__ import annotations

from monitor.analysis.windows.aggregate import (
    AUTHOR_LIMIT,
    AUTHOR_POSTS_LIMIT,
    EVIDENCE_LIMIT,
    EXCERPT_CHARS,
    GLOBAL_KEYWORD_LIMIT,
    NEGATIVE,
    TOPIC_KEYWORD_LIMIT,
    PostFacts,
    TopicCounts,
    WindowAggregate,
    influence,
    to_datetime,
    window_start,
)
from monitor.analysis.windows.merger import (
    AMEND_WINDOWS,
    AMENDED,
    DROPPED,
    DUPLICATE,
    MAX_GAP_SECONDS,
    TAKEN,
    MergeOutcome,
    MergeStatus,
    WindowMerger,
)
from monitor.analysis.windows.partition import (
    DEDUP_MAX_IDS,
    DUPLICATE_OFFSETS_SPAN,
    AddResult,
    BatchOutcome,
    PartitionLedger,
    PartitionWindows,
    post_hash,
)
from monitor.analysis.windows.snapshots import OpenBuckets

__all__ = [
    "AMEND_WINDOWS",
    "AMENDED",
    "AUTHOR_LIMIT",
    "AUTHOR_POSTS_LIMIT",
    "DEDUP_MAX_IDS",
    "DROPPED",
    "DUPLICATE",
    "DUPLICATE_OFFSETS_SPAN",
    "EVIDENCE_LIMIT",
    "EXCERPT_CHARS",
    "GLOBAL_KEYWORD_LIMIT",
    "MAX_GAP_SECONDS",
    "NEGATIVE",
    "TAKEN",
    "TOPIC_KEYWORD_LIMIT",
    "AddResult",
    "BatchOutcome",
    "MergeOutcome",
    "MergeStatus",
    "OpenBuckets",
    "PartitionLedger",
    "PartitionWindows",
    "PostFacts",
    "TopicCounts",
    "WindowAggregate",
    "WindowMerger",
    "influence",
    "post_hash",
    "to_datetime",
    "window_start",
]
