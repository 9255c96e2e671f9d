"""Backtest: the incidents a rules file would have opened on history, in one process.

:func:`backtest` runs what the worker runs, with the same pure components,
over posts read from files (or given), in event time:

1. read (:func:`monitor.sources.files.read_posts`: a bad line is counted and
   reported, not fatal) and put in event-time order (``published_at``,
   stable: posts with the same time keep their file order);
2. normalise and score (:class:`~monitor.stages.score.PostScorer`, with the
   watch list of ``MONITOR_TOPICS_FILE`` or else the rules file's topics, as
   the worker does);
3. count into buckets, merge, run the detectors and the rules, with early
   firing on the open buckets' snapshots
   (:func:`~monitor.stages.chain.count_and_detect`);
4. decide every trigger with the rules file's ticket policy
   (:meth:`~monitor.analysis.tickets.policy.TicketPolicy.decide`) against an
   in-memory list of tickets.

No server, no Kafka, no notification: notices fill the tickets' outboxes and
a stand-in sender "delivers" each one when it is due (every channel accepts
at once), so each incident counts the notices it would have sent.

**Time.** Triggers are decided in event-time order (:attr:`Trigger.event_time`:
the crossing post's ``published_at``, else the window start), and the
policy's ``now`` is that time, so ``opened_at``, ``first_fired``,
cool-downs, group windows, flapping and notice timing follow the posts'
clock, never the machine's, and never run backwards. One exception keeps
each rule's triggers in the order the chain emitted them: a trigger that
confirms or withdraws an early firing (a withdrawal has no crossing post, so
its event time is its window's start) is decided after that firing, at its
time (:func:`order_triggers`). Live, the alert stage decides in arrival
order on the wall clock: which of two signals of one incident came first may
differ within a bucket, and with it ``opened_at``. Nobody acknowledges a
ticket in a backtest and no SLA sweep runs: priorities are the policy's own
(opening score, growth, escalation by occurrences), not missed deadlines.

**Batches.** The count stage is fed :data:`BATCH_SIZE` posts at a time on one
partition. An early trigger fires on the snapshot after the batch that holds
its crossing post and names the topic's latest negative post of that batch,
so smaller batches name the crossing post more exactly; but each batch costs
a merge and an early evaluation of every rule. See :data:`BATCH_SIZE`.

Everything but reading the files and loading the sentiment model is pure:
the same posts and rules give the same result (:meth:`BacktestResult.to_json`
is identical but for ``seconds``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from monitor.analysis.tickets.model import Evidence, Signal, Ticket, Trigger
from monitor.analysis.tickets.outbox import due_deliveries, record_outcome
from monitor.analysis.tickets.policy import TicketDecision, TicketPolicy
from monitor.config.rules import RuleSet, load_rules
from monitor.records import Post, ScoredPost
from monitor.settings import Settings
from monitor.sources.files import read_posts
from monitor.stages.chain import ChainResult, count_and_detect
from monitor.stages.count import CountSettings
from monitor.stages.score import PostScorer, scorer_for

#: Posts handed to the count stage at a time. Early firing sees a snapshot
#: after each batch, so a trigger names the topic's latest negative post of
#: the batch that crossed: the smaller the batch the more exact, but each
#: batch costs a merge and an early look at every rule. On the sample feed
#: (5,884 posts in 6 h, 13-30 a minute in the incident; one partition)
#: counting and detecting takes 11.8-13.6 s at 1 post per batch, 3.8-4.2 s
#: at 10, 3.3-3.7 s at 25, 3.1-3.4 s at 50, 2.8 s at 100. At 25 every
#: incident opens within 20 s of its 1-post-per-batch time (空调异味 on the
#: same post, 13:08:17), every signal first fires within 20 s of it but for
#: 星河广场's provisional negative share (88 s later), and the whole
#: backtest takes 9-10 s, about 5 s of it loading snownlp's model. (At 10 and
#: below, on this feed, the first batches end less than the grace after the
#: first post: the count stage then sends an empty marker bucket before it,
#: the detectors learn an empty window before the feed's first, and
#: 星河广场's burst rule fires at 09:02 against a baseline of 0.05 posts.)
BATCH_SIZE = 25


@dataclass(frozen=True)
class Rejected:
    """An input line (or post) the backtest could not use.

    Attributes:
        source: The file it came from (or ``"posts"`` for given posts).
        line: Its line number (0 for a given post).
        reason: Why.

    """

    source: str
    line: int
    reason: str


@dataclass
class BacktestResult:
    """What a backtest found.

    Attributes:
        incidents: Every ticket the triggers opened, as it stood at the end
            of the feed, in ``opened_at`` order (ties by ticket id).
        fires: ``"<topic>/<rule>"`` -> times the rule fired (a confirmation
            or a withdrawal of an early firing is not a firing), every rule
            of the rules file listed, 0 if it never fired.
        decisions: Every trigger with the policy's decision, in the order
            decided.
        posts: Posts read and scored.
        rejected: Lines (or posts) left out, with the reason.
        late: Posts too late for their bucket (event time out of order by
            more than the grace; none once sorted).
        duplicates: Later copies of a post id already counted.
        seconds: Run time, wall clock (the only value that varies).
        utc_offset: The offset times are shown in: the first post's.
        batch_size: Posts counted per batch.
        chain: What the count and detect stages produced (windows, bursts,
            state logs).

    """

    incidents: list[Ticket] = field(default_factory=list)
    fires: dict[str, int] = field(default_factory=dict)
    decisions: list[tuple[Trigger, TicketDecision]] = field(default_factory=list)
    posts: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    late: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    utc_offset: tzinfo = timezone.utc
    batch_size: int = BATCH_SIZE
    chain: ChainResult = field(default_factory=ChainResult)

    def local(self, moment: datetime | None) -> str | None:
        """Return ``moment`` as ISO 8601 in :attr:`utc_offset` (None stays None)."""
        if moment is None:
            return None
        return moment.astimezone(self.utc_offset).isoformat()

    def incident_json(self, ticket: Ticket) -> dict[str, Any]:
        """Return one incident as the ``--json`` output lists it."""
        return {
            "id": ticket.ticket_id,
            "topic": ticket.topic,
            "group": ticket.group_key,
            "opened_at": self.local(ticket.opened_at),
            "first_seen": self.local(ticket.first_seen),
            "last_seen": self.local(ticket.last_seen),
            "priority": str(ticket.priority),
            "priority_reason": ticket.priority_reason,
            "status": str(ticket.status),
            "signals": [self.signal_json(signal) for signal in ticket.signals],
            "team": ticket.team,
            "owner": ticket.owner,
            "occurrences": ticket.occurrences,
            "evidence": [self.evidence_json(item) for item in ticket.evidence],
            "notices": ticket.notices,
        }

    def signal_json(self, signal: Signal) -> dict[str, Any]:
        """Return one signal of an incident as ``--json`` lists it."""
        return {
            "rule": signal.rule,
            "kind": str(signal.kind),
            "keyword": signal.keyword,
            "first_fired": self.local(signal.first_fired),
            "last_value": _number(signal.last_value),
            "peak_value": _number(signal.peak_value),
            "threshold": _number(signal.threshold),
            "baseline": _number(signal.baseline),
            "occurrences": signal.occurrences,
            "provisional": signal.provisional,
            "retracted": signal.retracted,
        }

    def evidence_json(self, item: Evidence) -> dict[str, Any]:
        """Return one evidence post as ``--json`` lists it."""
        return {
            "post_id": item.post_id,
            "published_at": self.local(item.published_at),
            "author": item.author,
            "excerpt": item.excerpt,
        }

    def to_json(self) -> dict[str, Any]:
        """Return the ``--json`` object: incidents, rule fire counts, totals."""
        outcomes = Counter(str(decision.outcome) for _, decision in self.decisions)
        return {
            "incidents": [self.incident_json(ticket) for ticket in self.incidents],
            "rules": dict(self.fires),
            "outcomes": dict(sorted(outcomes.items())),
            "posts": self.posts,
            "rejected": [
                {"source": item.source, "line": item.line, "reason": item.reason}
                for item in self.rejected
            ],
            "late": self.late,
            "duplicates": self.duplicates,
            "batch_size": self.batch_size,
            "seconds": round(self.seconds, 3),
        }


def _number(value: float | None) -> float | None:
    """Round a value for reading (shares to 4 places); keep None."""
    return None if value is None else round(float(value), 4)


def count_settings(settings: Settings) -> CountSettings:
    """Return the count stage's settings, as the worker derives them."""
    return CountSettings.from_settings(settings)


def make_scorer(ruleset: RuleSet, settings: Settings) -> PostScorer:
    """Build the scorer the worker would: the watch list, else the rules' topics."""
    return scorer_for(settings, ruleset.topics)


def read_inputs(
    posts_or_paths: Iterable[Path | str | Post],
) -> tuple[list[Post], list[Rejected]]:
    """Read files (paths) and take posts as they are; bad lines are reported."""
    posts: list[Post] = []
    rejected: list[Rejected] = []
    for item in posts_or_paths:
        if isinstance(item, Post):
            posts.append(item)
            continue
        path = Path(item)
        for line in read_posts(path):
            if line.post is not None:
                posts.append(line.post)
            else:
                rejected.append(Rejected(str(path), line.line, line.error or "invalid"))
    return posts, rejected


def order_triggers(chain: ChainResult) -> list[tuple[datetime, Trigger]]:
    """Every trigger of a chain run with its decision time, in that order.

    The decision time is the trigger's event time, except that the triggers
    of one rule (and keyword) stay in the order the chain emitted them: one
    that settles an earlier firing (a confirmation, or a withdrawal, whose
    own event time is its window's start) is decided at the time of the
    trigger before it, not before it. Then stable: the chain's threshold-rule
    triggers before the detector windows' at equal times.
    """
    ranked: list[tuple[datetime, int, int, Trigger]] = []
    for source, triggers in enumerate(
        (chain.triggers, [t for window in chain.windows for t in window.triggers])
    ):
        latest: dict[tuple[str, str, str | None], datetime] = {}
        for number, trigger in enumerate(triggers):
            series = (trigger.topic, trigger.rule, trigger.keyword)
            at = trigger.event_time
            if series in latest:
                at = max(at, latest[series])
            latest[series] = at
            ranked.append((at, source, number, trigger))
    ranked.sort(key=lambda item: item[:3])
    return [(at, trigger) for at, _, _, trigger in ranked]


def count_fires(
    triggers: Sequence[Trigger], ruleset: RuleSet | None = None
) -> dict[str, int]:
    """Return ``"<topic>/<rule>"`` -> firings, in the rules file's order.

    A trigger that confirms or withdraws an early firing (same signal id)
    is not a firing of its own.
    """
    fires: dict[str, int] = {}
    if ruleset is not None:
        fires = {f"{rule.topic}/{rule.name}": 0 for rule in ruleset.rules}
    seen: set[tuple[str, str, str]] = set()
    for trigger in triggers:
        key = (trigger.topic, trigger.rule, trigger.signal_key)
        if trigger.retracted or key in seen:
            continue
        seen.add(key)
        name = f"{trigger.topic}/{trigger.rule}"
        fires[name] = fires.get(name, 0) + 1
    return fires


def deliver_due(
    tickets: dict[str, Ticket], now: datetime, policy: TicketPolicy
) -> None:
    """Accept every notice due by ``now`` on every channel (no message is sent)."""
    for ticket_id, ticket in tickets.items():
        for notice, channel in due_deliveries(ticket, now):
            ticket, _ = record_outcome(
                ticket,
                notice.notice_id,
                channel,
                accepted=True,
                now=now,
                settings=policy.settings,
            )
        tickets[ticket_id] = ticket


def decide_all(
    triggers: Sequence[tuple[datetime, Trigger]], policy: TicketPolicy
) -> tuple[list[Ticket], list[tuple[Trigger, TicketDecision]]]:
    """Apply the policy to each trigger in turn, ``now`` = its decision time.

    Notices due by then are delivered first (see :func:`deliver_due`).

    Returns:
        The tickets (in the order opened) and each trigger's decision.

    """
    tickets: dict[str, Ticket] = {}
    decisions: list[tuple[Trigger, TicketDecision]] = []
    for now, trigger in triggers:
        deliver_due(tickets, now, policy)
        decision = policy.decide(trigger, list(tickets.values()), now)
        if decision.event is not None and decision.ticket is not None:
            tickets[decision.ticket.ticket_id] = decision.ticket
        decisions.append((trigger, decision))
    return list(tickets.values()), decisions


def backtest(
    posts_or_paths: Iterable[Path | str | Post],
    ruleset: RuleSet | Path | str,
    settings: Settings | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    partitions: int = 1,
    scorer: PostScorer | None = None,
) -> BacktestResult:
    """Run the worker's stages over history; return the incidents they open.

    Args:
        posts_or_paths: JSON Lines or CSV files (paths), or posts.
        ruleset: The rules (or the path of a rules file, read with the
            settings' bucket and detector window).
        settings: Buckets, windows, grace, dedup, label thresholds, sentiment
            model and watch list (default: the defaults, without MONITOR_*).
        batch_size: Posts per count batch (see :data:`BATCH_SIZE`).
        partitions: ``posts`` partitions to spread the posts over
            (1: the posts are counted exactly in event-time order).
        scorer: A scorer to reuse (its topics are the caller's choice).

    Returns:
        See :class:`BacktestResult`.

    Raises:
        ConfigError: A bad rules file, watch list or sentiment model.
        InvalidRecordError: A file that cannot be read at all (a CSV
            without a header, not UTF-8).

    """
    started = time.perf_counter()
    settings = settings or Settings.load(env={})
    if not isinstance(ruleset, RuleSet):
        ruleset = load_rules(
            Path(ruleset),
            bucket_seconds=settings.bucket_seconds,
            detector_window_seconds=settings.window_seconds,
        )
    posts, rejected = read_inputs(posts_or_paths)
    posts.sort(key=lambda post: post.published_at)
    scorer = scorer or make_scorer(ruleset, settings)
    scored: list[ScoredPost] = []
    for post, result in zip(posts, scorer.score_many(posts), strict=True):
        if isinstance(result, Exception):
            reason = f"scoring failed: {type(result).__name__}: {result}"
            rejected.append(Rejected("posts", 0, f"{post.id}: {reason}"))
        else:
            scored.append(result)
    chain = count_and_detect(
        scored,
        settings=count_settings(settings),
        rules=ruleset.rules,
        topics=list(scorer.matcher.names),
        partitions=partitions,
        batch_size=batch_size,
        window_seconds=settings.window_seconds,
        stop_words=ruleset.stop_words,
        topic_words=scorer.matcher.keywords,
    )
    triggers = order_triggers(chain)
    tickets, decisions = decide_all(triggers, ruleset.policy())
    offset = posts[0].published_at.utcoffset() if posts else None
    return BacktestResult(
        incidents=sorted(tickets, key=lambda t: (t.opened_at, t.ticket_id)),
        fires=count_fires([trigger for _, trigger in triggers], ruleset),
        decisions=decisions,
        posts=len(scored),
        rejected=rejected,
        late=chain.late,
        duplicates=chain.duplicates,
        seconds=time.perf_counter() - started,
        utc_offset=timezone(offset) if offset is not None else timezone.utc,
        batch_size=batch_size,
        chain=chain,
    )


def _signal_names(incident: Mapping[str, Any]) -> list[str]:
    return [
        signal["rule"] + (f" ({signal['keyword']})" if signal["keyword"] else "")
        for signal in incident["signals"]
    ]


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Return True for the same incident group over overlapping event time."""
    return (
        a["group"] == b["group"]
        and _instant(a["first_seen"]) < _instant(b["last_seen"])
        and _instant(b["first_seen"]) < _instant(a["last_seen"])
    )


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def match_incidents(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]
) -> list[tuple[int | None, int | None]]:
    """Pair the incidents of two runs: same group, overlapping event time.

    Each of ``a`` (in order) takes the first of ``b`` not yet taken that
    overlaps it. Returns index pairs, ``None`` for an incident of one run
    only; ``a``'s order, then ``b``'s left over.
    """
    taken: set[int] = set()
    pairs: list[tuple[int | None, int | None]] = []
    for i, left in enumerate(a):
        j = next(
            (
                j
                for j, right in enumerate(b)
                if j not in taken and _overlap(left, right)
            ),
            None,
        )
        if j is not None:
            taken.add(j)
        pairs.append((i, j))
    pairs += [(None, j) for j in range(len(b)) if j not in taken]
    return pairs


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Return the differences between two backtests' JSON (``a`` then ``b``).

    Incidents are paired by :func:`match_incidents` (the same group, e.g.
    ``topic=空调异味``, over overlapping event time), so an incident that
    opens earlier or later with the other rules is the same incident.

    Returns:
        ``{"only_a": [...], "only_b": [...], "changed": [...], "rules": {...}}``:
        the incidents of one run only; paired incidents whose priority,
        signals or opening time differ (``{"a": id, "b": id, "topic",
        "opened_at": [a, b], "priority": [a, b], "signals": {"only_a",
        "only_b"}}``, only what differs); and ``"<topic>/<rule>": {"a", "b",
        "delta"}`` for every rule whose fire count differs.

    """
    left_all, right_all = a["incidents"], b["incidents"]
    only_a, only_b, changed = [], [], []
    for i, j in match_incidents(left_all, right_all):
        if j is None:
            only_a.append(left_all[i])
            continue
        if i is None:
            only_b.append(right_all[j])
            continue
        left, right = left_all[i], right_all[j]
        change: dict[str, Any] = {}
        for name in ("opened_at", "priority"):
            if left[name] != right[name]:
                change[name] = [left[name], right[name]]
        signals_a, signals_b = _signal_names(left), _signal_names(right)
        if set(signals_a) != set(signals_b):
            change["signals"] = {
                "only_a": [s for s in signals_a if s not in signals_b],
                "only_b": [s for s in signals_b if s not in signals_a],
            }
        if change:
            changed.append(
                {"a": left["id"], "b": right["id"], "topic": left["topic"], **change}
            )
    rules = {}
    for name in dict.fromkeys([*a["rules"], *b["rules"]]):
        before, after = a["rules"].get(name, 0), b["rules"].get(name, 0)
        if before != after:
            rules[name] = {"a": before, "b": after, "delta": after - before}
    return {"only_a": only_a, "only_b": only_b, "changed": changed, "rules": rules}


__all__ = [
    "BATCH_SIZE",
    "BacktestResult",
    "Rejected",
    "backtest",
    "compare",
    "count_fires",
    "count_settings",
    "decide_all",
    "make_scorer",
    "match_incidents",
    "order_triggers",
    "read_inputs",
]
