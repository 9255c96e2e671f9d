"""Helpers shared by the tests: deterministic posts and waiting."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

T = TypeVar("T")

CST = timezone(timedelta(hours=8))

_SUBJECTS = [
    "星河广场",
    "这家店",
    "外卖小哥",
    "客服",
    "停车场",
    "电影院",
    "会员App",
    "新开的奶茶店",
]
_GOOD = [
    "服务很热情",
    "环境干净舒服",
    "味道非常好",
    "性价比很高",
    "下次还会再来",
    "体验超级棒",
]
_BAD = [
    "态度太差了",
    "等了一个小时",
    "空调有股怪味",
    "退款一直不处理",
    "乱收费",
    "卫生很糟糕",
]
_NEUTRAL = [
    "今天人有点多",
    "周末开门时间是十点",
    "三楼在装修",
    "听说下周有活动",
    "地铁站出口在东边",
]
_TAILS = ["", "！", "。", "～", "，大家怎么看？", " #星河广场#", "😀", "😡", "..."]


def make_posts(
    count: int, *, seed: int = 7, start: datetime | None = None, prefix: str = "t"
) -> list[dict[str, Any]]:
    """Return ``count`` varied posts in the public post format, ids ``{prefix}-N``."""
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 20, 9, 0, tzinfo=CST)
    posts = []
    for number in range(count):
        mood = rng.choice([_GOOD, _BAD, _NEUTRAL])
        text = rng.choice(_SUBJECTS) + rng.choice(mood)
        if rng.random() < 0.5:
            text += "，" + rng.choice(rng.choice([_GOOD, _BAD, _NEUTRAL]))
        text += rng.choice(_TAILS) + str(number % 97 if rng.random() < 0.2 else "")
        if rng.random() < 0.05:
            text = f"<p>{text}</p>&amp;"
        posts.append(
            {
                "id": f"{prefix}-{number}",
                "text": text,
                "published_at": (start + timedelta(seconds=3 * number)).isoformat(),
                "source": rng.choice(["weibo", "dianping", "heimao"]),
                "author": f"user{rng.randrange(300)}",
                "metrics": {
                    "likes": rng.randrange(50),
                    "reposts": rng.randrange(5),
                    "followers": rng.randrange(10_000),
                },
                "customer_tier": rng.choice(["gold", "regular"]),
            }
        )
    return posts


def wait_until(
    predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})"
    )


def apply_state_writes(log: dict[str, Any], writes: Mapping[str, Any]) -> None:
    """Apply state-log writes (``None`` deletes) through JSON, as a log stores them."""
    for key, value in writes.items():
        if value is None:
            log.pop(key, None)
        else:
            log[key] = json.loads(json.dumps(value, ensure_ascii=False))


def restore_rule_windows(log: Mapping[str, Any], bucket_seconds: int) -> Any:
    """Return a :class:`RuleWindows` rebuilt from ``RuleWindows.writes()`` entries."""
    from monitor.analysis.rulewindows import RuleWindows

    copy = RuleWindows(bucket_seconds, 0)
    for key, value in log.items():
        kind, rest = key.split(":", 1)
        copy.restore(kind, rest, value)
    return copy


def assert_each_signal_resolved(fired: Iterable[Any]) -> None:
    """Each signal id fires once, or provisionally then confirmed or withdrawn."""
    by_id: dict[str | None, list[tuple[bool, bool]]] = {}
    for trigger in fired:
        by_id.setdefault(trigger.signal_id, []).append(
            (trigger.provisional, trigger.retracted)
        )
    for signal, seen in by_id.items():
        assert seen in (
            [(False, False)],
            [(True, False), (False, False)],
            [(True, False), (False, True)],
        ), (signal, seen)
