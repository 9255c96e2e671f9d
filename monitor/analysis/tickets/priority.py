"""How urgent a trigger is: points for severity and reach, mapped to P1-P4.

:func:`compute_priority` adds points for:

==========================  ==========================================  ======
signal                      condition                                   points
==========================  ==========================================  ======
past the threshold          observed / threshold >= 4 / >= 2 / >= 1.5   3/2/1
burst strength              burst score >= 8 / >= 5 (not burst rules)   2/1
author influence            max followers >= 1M / >= 100k / >= 10k      3/2/1
repeat complaints           one author's posts >= 5 / >= 3              2/1
                            (not repeat_complaints rules)
customer tier               vip / gold                                  2/1
==========================  ==========================================  ======

and maps the total to ``P1`` (>= 6), ``P2`` (4-5), ``P3`` (2-3) or ``P4``
(0-1); a rule's ``min_priority`` is a floor.
"""

from __future__ import annotations

from monitor.analysis.tickets.model import (
    PRIORITIES,
    AlertRule,
    Priority,
    RuleKind,
    Trigger,
)

#: Points per customer tier (lower-case tier name).
CUSTOMER_TIER_POINTS = {"vip": 2, "gold": 1}


def _ratio_points(ratio: float) -> int:
    return 3 if ratio >= 4 else 2 if ratio >= 2 else 1 if ratio >= 1.5 else 0


def format_number(value: float) -> str:
    """Return a value as people read it: ``42`` for whole numbers, else ``4.2``."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _followers(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M".replace(".0M", "M")
    if count >= 1_000:
        return f"{count // 1_000}k"
    return str(count)


def _describe(trigger: Trigger, ratio: float) -> str:
    observed, threshold = trigger.observed_value, trigger.threshold
    times = f"{ratio:.1f}×"
    if trigger.kind == RuleKind.NEGATIVE_SHARE:
        text = f"negative share {observed:.0%} is {times} the threshold {threshold:.0%}"
    elif trigger.kind == RuleKind.BURST:
        text = f"burst score {observed:.1f} is {times} the threshold {threshold:g}"
    elif trigger.kind == RuleKind.EMERGING_KEYWORD:
        text = (
            f"new keyword {trigger.keyword!r} in {format_number(observed)} posts is "
            f"{times} the threshold {format_number(threshold)}"
        )
    elif trigger.kind == RuleKind.HOT_WORD:
        text = (
            f"hot word {trigger.keyword!r} in {format_number(observed)} posts is "
            f"{times} the threshold {format_number(threshold)}"
        )
    elif trigger.kind == RuleKind.REPEAT_COMPLAINTS:
        text = (
            f"one author posted {format_number(observed)} negative posts, {times} "
            f"the threshold {format_number(threshold)}"
        )
    else:
        text = (
            f"negative volume {format_number(observed)} is {times} the threshold "
            f"{format_number(threshold)}"
        )
    if trigger.expected_value is not None:
        text += f" (baseline {format_number(round(trigger.expected_value, 1))})"
    return text


def priority_score(trigger: Trigger) -> tuple[int, list[str]]:
    """Return the points of a trigger and the reasons behind them.

    See the module docstring for the table. Each reason ends with its points,
    e.g. ``"author with 120k followers (+2)"``.
    """
    ratio = trigger.observed_value / trigger.threshold if trigger.threshold else 1.0
    points = _ratio_points(ratio)
    reasons = [f"{_describe(trigger, ratio)} (+{points})"]
    burst = trigger.burst_score
    if trigger.kind != RuleKind.BURST and burst is not None and burst >= 5:
        gained = 2 if burst >= 8 else 1
        points += gained
        reasons.append(f"burst score {burst:.1f} (+{gained})")
    followers = trigger.author_followers
    if followers >= 10_000:
        gained = 3 if followers >= 1_000_000 else 2 if followers >= 100_000 else 1
        points += gained
        reasons.append(f"author with {_followers(followers)} followers (+{gained})")
    repeats = trigger.repeat_complaints
    if trigger.kind != RuleKind.REPEAT_COMPLAINTS and repeats >= 3:
        gained = 2 if repeats >= 5 else 1
        points += gained
        reasons.append(f"{repeats} complaints from one author (+{gained})")
    tier = (trigger.customer_tier or "").lower()
    if tier in CUSTOMER_TIER_POINTS:
        gained = CUSTOMER_TIER_POINTS[tier]
        points += gained
        reasons.append(f"{tier} customer (+{gained})")
    return points, reasons


def priority_for_points(points: int) -> Priority:
    """Map a score to ``P1`` (>= 6), ``P2`` (>= 4), ``P3`` (>= 2) or ``P4``."""
    if points >= 6:
        return Priority.P1
    if points >= 4:
        return Priority.P2
    return Priority.P3 if points >= 2 else Priority.P4


def compute_priority(
    trigger: Trigger, rule: AlertRule | None = None
) -> tuple[Priority, str]:
    """Return the priority of a trigger and the reason, spelled out.

    Args:
        trigger: What fired.
        rule: Its rule; its ``min_priority`` (if any) is a floor.

    Returns:
        ``(priority, reason)``, e.g. ``("P2", "P2: negative volume 42 is 2.8×
        the threshold 15 (+2); author with 120k followers (+2); gold customer
        (+1); score 5")``.

    """
    points, reasons = priority_score(trigger)
    priority = priority_for_points(points)
    floor = rule.min_priority if rule else None
    if floor is not None and is_more_urgent(floor, priority):
        reasons.append(f"raised from {priority} to the rule's minimum {floor}")
        priority = floor
    return priority, f"{priority}: " + "; ".join(reasons) + f"; score {points}"


def is_more_urgent(first: Priority, second: Priority) -> bool:
    """Return True if ``first`` is strictly more urgent than ``second``."""
    return PRIORITIES.index(first) < PRIORITIES.index(second)


def raise_priority(priority: Priority, levels: int = 1) -> Priority:
    """Return the priority ``levels`` steps more urgent, capped at ``P1``."""
    return PRIORITIES[max(0, PRIORITIES.index(priority) - levels)]
