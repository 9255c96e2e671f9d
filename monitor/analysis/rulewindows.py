"""Threshold rules on their own windows of buckets, and the latches of every rule.

The merge completes short buckets (``bucket_seconds``, a minute by default).
A threshold rule — ``negative_volume``, ``negative_share``,
``repeat_complaints`` — is the sum of the last ``window / bucket`` buckets,
sliding by one bucket, so 5-minute, 15-minute and 1-hour rules coexist on one
topic. :class:`RuleWindows` keeps the complete buckets a rule may still read
(:class:`BucketHistory`), evaluates the rules whenever a bucket completes or
is amended, and — for rules whose value only grows with posts — also on the
open buckets' lower bounds (see :mod:`monitor.analysis.windows.snapshots`),
so a rule fires on the post that crosses it rather than minutes later:

* ``negative_volume`` and ``repeat_complaints`` fire on the lower bound: the
  closed window can only hold more;
* ``negative_share`` can fall as lagging partitions report: an early firing
  is ``provisional`` and is confirmed (same signal id, ``provisional=False``)
  or withdrawn (``retracted=True``) when its last bucket completes;
* ``burst`` runs on the detector window; the detect stage asks the burst
  detector whether the open window's lower bound already scores above the
  threshold (:meth:`~monitor.analysis.detection.WindowEvaluator.burst_crossed`).

**Latches.** Each rule and series has a :class:`Latch` in the merge state: a
firing names its window end (the signal id ``<rule>@<series>@<end>``), so the
close of a window that fired early, a retried batch or a restart never fires
it again (the alert stage drops repeats of a signal id too). While the value
stays at or above the threshold, the rule fires again once per rule-window
length (an update to the incident: the value grew); it re-arms at once when a
complete window falls below the threshold.

Pure: no Faust, no I/O, no clock; state round-trips through JSON-able dicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.analysis.detection import build_trigger, trigger_evidence
from monitor.analysis.tickets.model import (
    NEGATIVE_SHARE,
    NEGATIVE_VOLUME,
    REPEAT_COMPLAINTS,
    AlertRule,
    Evidence,
    Trigger,
)
from monitor.analysis.windows import TopicCounts, WindowAggregate

#: Rule kinds summed over their own window of buckets.
THRESHOLD_KINDS = frozenset({NEGATIVE_VOLUME, NEGATIVE_SHARE, REPEAT_COMPLAINTS})
#: A hot word's latch is dropped once it last fired this long ago (seconds).
WORD_LATCH_SECONDS = 86_400
#: Threshold kinds whose value cannot fall as more posts are counted.
MONOTONE_KINDS = frozenset({NEGATIVE_VOLUME, REPEAT_COMPLAINTS})

#: ``counts(bucket start, topic)``: the parts of a topic's counts in a bucket.
CountsOf = Callable[[int, str], Sequence[TopicCounts]]


def rule_window_seconds(rule: AlertRule) -> int:
    """Return the event time a threshold rule sums (its ``window``/``within``)."""
    if rule.kind == REPEAT_COMPLAINTS:
        return max(rule.within_seconds, rule.window_seconds)
    return rule.window_seconds


@dataclass
class Latch:
    """Whether one rule on one series may fire, and what it fired last.

    Attributes:
        fired_end: Window end (epoch seconds) of its latest firing, if any.
        armed: True until it fires; again once a complete window is below
            the threshold.
        provisional_end: Window end of an early ``negative_share`` firing not
            yet confirmed or withdrawn (at most one: no other early firing
            until it is).

    """

    fired_end: int | None = None
    armed: bool = True
    provisional_end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the state-log value."""
        return {
            "fired_end": self.fired_end,
            "armed": self.armed,
            "provisional_end": self.provisional_end,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Latch:
        """Inverse of :meth:`to_dict`."""
        fired = data.get("fired_end")
        provisional = data.get("provisional_end")
        return cls(
            fired_end=None if fired is None else int(fired),
            armed=bool(data.get("armed", True)),
            provisional_end=None if provisional is None else int(provisional),
        )

    def gate(self, end: int, crossed: bool, final: bool, period: int) -> str | None:
        """Decide what a rule's value at window end ``end`` does.

        Args:
            end: The window's end (epoch seconds).
            crossed: The value is at or above the threshold.
            final: The window is complete (else: a lower bound, or for a
                share an early view).
            period: The rule's window length: while the value stays above
                the threshold it fires again once a whole period has passed
                since its last firing (window ends at least ``period`` apart).

        Returns:
            ``fire``, ``confirm`` (a provisional firing at ``end`` holds),
            ``retract`` (it does not), or None.

        """
        if final and self.provisional_end == end:
            self.provisional_end = None
            if crossed:
                return "confirm"
            self.armed = True
            return "retract"
        if not final and self.provisional_end is not None:
            # One provisional signal at a time: a second early firing would
            # take the place of the first, left neither confirmed nor
            # withdrawn. A later window that crosses fires at its close, or
            # early once the first is settled.
            return None
        if not crossed:
            if final and (self.fired_end is None or end > self.fired_end):
                self.armed = True
            return None
        if self.fired_end is not None and end <= self.fired_end:
            return None
        if (
            not self.armed
            and self.fired_end is not None
            and end - self.fired_end < max(period, 1)
        ):
            return None  # still above: again only a whole period after the last
        self.fired_end = end
        self.armed = False
        return "fire"


@dataclass
class BucketHistory:
    """The complete buckets a rule may still read, by start.

    Buckets without posts are not kept (they count as empty); a bucket with
    posts of no watched topic is, for the detector window's totals and
    keywords. ``dirty`` and ``gone`` say which entries to write or delete.
    """

    bucket_seconds: int
    buckets: dict[int, WindowAggregate] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    gone: set[int] = field(default_factory=set)

    def put(self, bucket: WindowAggregate) -> None:
        """Keep a completed (or amended) bucket; replaces any earlier copy."""
        if bucket.posts or bucket.topics:
            self.buckets[bucket.start] = bucket
            self.dirty.add(bucket.start)
            self.gone.discard(bucket.start)
        elif bucket.start in self.buckets:
            self.forget(bucket.start)

    def forget(self, start: int) -> None:
        """Drop a bucket."""
        if self.buckets.pop(start, None) is not None:
            self.gone.add(start)
        self.dirty.discard(start)

    def prune(self, before: int) -> None:
        """Drop every bucket that starts before ``before``."""
        for start in [s for s in self.buckets if s < before]:
            self.forget(start)

    def topic(self, start: int, name: str) -> list[TopicCounts]:
        """Return the topic's counts in a kept bucket (nothing if none)."""
        bucket = self.buckets.get(start)
        counts = None if bucket is None else bucket.topics.get(name)
        return [] if counts is None else [counts]

    def window(self, start: int, size: int) -> WindowAggregate:
        """Return the kept buckets of ``[start, start + size)`` summed."""
        parts = [
            self.buckets[s]
            for s in range(start, start + size, self.bucket_seconds)
            if s in self.buckets
        ]
        return WindowAggregate.span(start, size, parts)


@dataclass(frozen=True)
class RuleValue:
    """A threshold rule's value over one window of buckets."""

    value: float
    crossed: bool
    counts: TopicCounts


def rule_value(
    rule: AlertRule, end: int, bucket_seconds: int, counts: CountsOf
) -> RuleValue:
    """Return a threshold rule's value on the window that ends at ``end``.

    The window is the whole buckets of the rule's length ending at ``end``
    (a length that is not a whole number of buckets is rounded up).
    """
    length = rule_window_seconds(rule)
    buckets = max(1, -(-length // bucket_seconds))
    first = end - buckets * bucket_seconds
    parts = [
        part
        for start in range(first, end, bucket_seconds)
        for part in counts(start, rule.topic)
    ]
    posts = sum(part.posts for part in parts)
    negative = sum(part.negative for part in parts)
    merged = TopicCounts()
    if rule.kind == REPEAT_COMPLAINTS:
        per_author: dict[str, int] = {}
        for part in parts:
            for author, (count, _) in part.negative_authors.items():
                per_author[author] = per_author.get(author, 0) + int(count)
        value = float(max(per_author.values(), default=0))
        crossed = value >= rule.threshold
    elif rule.kind == NEGATIVE_VOLUME:
        value = float(negative)
        crossed = value >= rule.threshold
    else:  # negative_share
        value = negative / posts if posts else 0.0
        crossed = posts >= max(rule.min_volume, 1) and value >= rule.threshold
    if crossed:  # the rest of the counts only matter for a trigger
        for part in parts:
            merged.merge(part)
        # Most frequent first, ties by word: the trigger's keywords must not
        # depend on whether a bucket came from memory or from the state log
        # (stored most frequent first, so ties come back in another order).
        merged.keywords = Counter(
            dict(sorted(merged.keywords.items(), key=lambda kv: (-kv[1], kv[0])))
        )
    return RuleValue(value, crossed, merged)


def repeaters_evidence(rule: AlertRule, counts: TopicCounts) -> tuple[Evidence, ...]:
    """Return the evidence posts of the authors who reached a repeat rule.

    Falls back to the window's evidence when none of theirs is among it.
    """
    ids = [
        post
        for count, posts in counts.negative_authors.values()
        if count >= rule.threshold
        for post in posts
    ]
    return trigger_evidence(counts, ids) or trigger_evidence(counts)


class RuleWindows:
    """Threshold rules over sliding sums of buckets, and every rule's latch.

    Args:
        bucket_seconds: Bucket length.
        keep_seconds: Event time of complete buckets kept beyond the longest
            rule window (for amendments and the detector window).

    """

    def __init__(self, bucket_seconds: int, keep_seconds: int) -> None:
        """Start with no history and every latch armed."""
        self.bucket_seconds = bucket_seconds
        self.keep_seconds = keep_seconds
        self.history = BucketHistory(bucket_seconds)
        self.latches: dict[str, Latch] = {}
        self.dirty_latches: set[str] = set()
        self.gone_latches: set[str] = set()

    # -- latches -----------------------------------------------------------

    def gate(
        self,
        rule: str,
        topic: str,
        end: int,
        crossed: bool,
        final: bool,
        period: int,
    ) -> str | None:
        """Pass a rule's value through its latch; see :meth:`Latch.gate`."""
        key = f"{rule}@{topic}"
        latch = self.latches.get(key)
        if latch is None:
            if not crossed:
                return None  # an armed latch that stays armed: nothing to keep
            latch = self.latches[key] = Latch()
        before = latch.to_dict()
        verdict = latch.gate(end, crossed, final, period)
        if latch.to_dict() != before:
            self.dirty_latches.add(key)
        return verdict

    # -- evaluation --------------------------------------------------------

    def completed(
        self, end: int, rules: Iterable[AlertRule], counts: CountsOf
    ) -> list[Trigger]:
        """Evaluate the threshold rules on the windows ending at ``end``.

        Every bucket before ``end`` is complete (or given up on).
        """
        return self._evaluate(end, rules, counts, final=True)

    def early(
        self, end: int, rules: Iterable[AlertRule], counts: CountsOf
    ) -> list[Trigger]:
        """Evaluate on lower bounds: the window ending at ``end`` is still open.

        Monotone rules fire; a share rule fires provisionally.
        """
        return self._evaluate(end, rules, counts, final=False)

    def _evaluate(
        self, end: int, rules: Iterable[AlertRule], counts: CountsOf, final: bool
    ) -> list[Trigger]:
        triggers = []
        for rule in rules:
            if rule.kind not in THRESHOLD_KINDS:
                continue
            result = rule_value(rule, end, self.bucket_seconds, counts)
            length = rule_window_seconds(rule)
            verdict = self.gate(
                rule.name, rule.topic, end, result.crossed, final, length
            )
            if verdict is None:
                continue
            start = (
                end - max(1, -(-length // self.bucket_seconds)) * self.bucket_seconds
            )
            triggers.append(
                build_trigger(
                    rule,
                    result.counts,
                    start,
                    end,
                    observed_value=result.value,
                    evidence=repeaters_evidence(rule, result.counts)
                    if rule.kind == REPEAT_COMPLAINTS
                    else None,
                    provisional=verdict == "fire"
                    and not final
                    and rule.kind == NEGATIVE_SHARE,
                    retracted=verdict == "retract",
                )
            )
            if verdict == "fire" and not final and rule.kind == NEGATIVE_SHARE:
                self.latches[f"{rule.name}@{rule.topic}"].provisional_end = end
                self.dirty_latches.add(f"{rule.name}@{rule.topic}")
        return triggers

    def longest(self, rules: Iterable[AlertRule]) -> int:
        """Return the longest threshold-rule window, in seconds (0 if none)."""
        return max(
            (rule_window_seconds(r) for r in rules if r.kind in THRESHOLD_KINDS),
            default=0,
        )

    def prune(self, through: int, rules: Iterable[AlertRule]) -> None:
        """Drop buckets no rule window ending after ``through`` reads any more.

        Also drops the latches of hot words (``<rule>@<topic>/<word>``) that
        last fired over a day before ``through``: words come and go.
        """
        horizon = max(self.longest(rules), self.bucket_seconds) + self.keep_seconds
        self.history.prune(through - horizon)
        for key, latch in list(self.latches.items()):
            if (
                "/" in key.split("@", 1)[-1]
                and latch.fired_end is not None
                and latch.fired_end < through - WORD_LATCH_SECONDS
            ):
                del self.latches[key]
                self.dirty_latches.discard(key)
                self.gone_latches.add(key)

    # -- persistence -------------------------------------------------------

    def writes(self) -> dict[str, Any | None]:
        """Return ``{"bucket:<start>" | "latch:<key>": value or None}`` to log.

        Clears the record of what changed.
        """
        out: dict[str, Any | None] = {}
        history = self.history
        for start in sorted(history.dirty):
            out[f"bucket:{start}"] = history.buckets[start].to_dict(bounded=True)
        for start in sorted(history.gone):
            out[f"bucket:{start}"] = None
        for key in sorted(self.dirty_latches):
            out[f"latch:{key}"] = self.latches[key].to_dict()
        for key in sorted(self.gone_latches):
            out[f"latch:{key}"] = None
        history.dirty.clear()
        history.gone.clear()
        self.dirty_latches.clear()
        self.gone_latches.clear()
        return out

    def restore(self, kind: str, rest: str, value: Mapping[str, Any]) -> None:
        """Take one logged entry (``bucket`` or ``latch``) back."""
        if kind == "bucket":
            self.history.buckets[int(rest)] = WindowAggregate.from_dict(value)
        elif kind == "latch":
            self.latches[rest] = Latch.from_dict(value)
