"""The rules file: the example loads and fits the sample feed; errors name lines."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from monitor.analysis.tickets.model import RULE_KINDS, Trigger
from monitor.analysis.tickets.outbox import NoticeClock
from monitor.analysis.tickets.policy import OPENED, SUPPRESSED, TicketSettings
from monitor.config.rules import Channel, RuleSet, load_rules
from monitor.config.watchlist import load_watchlist
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rules.yaml"
CST = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def example() -> RuleSet:
    return load_rules(EXAMPLE)


# --- the example file ---------------------------------------------------------------


def test_example_topics_are_the_sample_watch_list(example: RuleSet) -> None:
    sample = load_watchlist(ROOT / "samples" / "topics.yaml")
    assert sorted(example.topics, key=str) == sorted(sample, key=str)


def test_example_covers_every_rule_kind_and_routes_everything(
    example: RuleSet,
) -> None:
    assert {rule.kind for rule in example.rules} == set(RULE_KINDS)
    assert example.routing.default_team == "mall-ops"
    assert example.routing.team_for("空调异味").name == "facilities"
    assert example.routing.team_for("影城").name == "mall-ops"
    assert example.rule("空调异味", "重复投诉").team == "customer-care"
    assert example.rule("空调异味", "重复投诉").within_seconds == 40 * 60
    assert example.rule("空调异味", "负面声量").window_seconds == 300
    for rule in example.rules:
        assert set(rule.channels) <= set(example.channels)
    for team in example.teams.values():
        assert set(team.members) | set(team.escalation) <= set(example.owners)


def test_example_channels_keep_secrets_as_env_references(example: RuleSet) -> None:
    channels = example.channels
    assert {channel.kind for channel in channels.values()} == {
        "webhook",
        "dingtalk",
        "feishu",
        "wecom",
        "slack",
        "email",
    }
    assert channels["ops-webhook"].settings["url"] == "${ALERT_WEBHOOK_URL}"
    assert channels["duty-email"].env_names == {
        "ALERT_SMTP_HOST",
        "ALERT_SMTP_PORT",
        "ALERT_SMTP_USER",
        "ALERT_SMTP_PASSWORD",
    }
    resolved = channels["ops-webhook"].resolve(
        {
            "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "ALERT_WEBHOOK_SECRET": "s",
        }
    )
    assert resolved == {
        "url": "http://127.0.0.1:9/hook",
        "secret": "s",
        "timeout": "10s",
    }
    with pytest.raises(ConfigError, match="ALERT_WEBHOOK_SECRET is not set"):
        channels["ops-webhook"].resolve({"ALERT_WEBHOOK_URL": "http://x"})


def test_example_sla_silences_and_maintenance(example: RuleSet) -> None:
    assert example.sla.ack["P1"] == timedelta(minutes=5)
    assert example.sla.resolve["P3"] == timedelta(hours=24)  # default kept
    assert example.settings.cooldown == timedelta(minutes=30)
    assert example.settings.flap_max_opens == 3
    (silence,) = example.silences
    assert silence.topic == "停车" and silence.author == "值班运营"
    nightly = example.maintenance[0]
    assert (nightly.daily_from, nightly.daily_until) == (time(2), time(4))
    assert nightly.is_active(
        "停车", datetime(2026, 11, 20, 18, 30, tzinfo=timezone.utc)
    )


def test_example_policy_opens_an_incident_ticket(example: RuleSet) -> None:
    policy = example.policy()
    start = datetime(2026, 11, 20, 13, 5, tzinfo=CST)
    trigger = Trigger(
        topic="空调异味",
        rule="负面声量",
        kind="negative_volume",
        keyword=None,
        window_start=start,
        window_end=start + timedelta(minutes=5),
        observed_value=7,
        threshold=example.rule("空调异味", "负面声量").threshold,
    )
    decision = policy.decide(trigger, [], start + timedelta(minutes=5))
    assert decision.outcome == OPENED and decision.ticket is not None
    ticket = decision.ticket
    assert ticket.priority == "P3"  # the rule's floor
    assert (ticket.team, ticket.owner) == ("facilities", "王工")
    assert ticket.channels == ("ops-webhook", "facilities-dingtalk")
    parking = Trigger(**{**trigger.__dict__, "topic": "停车"})
    assert policy.decide(parking, [], start).outcome == SUPPRESSED


# Negative/all posts per 5-minute window, 09:00 to 14:55 +08:00, as snownlp
# (positive probability < 0.3) labels samples/feed.jsonl per watched topic.
MEASURED = {
    "空调异味": "0/0 0/0 0/0 0/0 0/0 0/0 0/0 0/0 1/1 0/0 0/0 0/0 0/0 0/0 0/0 1/1 0/0 "
    "0/0 0/0 0/0 0/0 0/0 1/1 0/0 0/0 0/0 0/0 0/0 0/0 0/0 0/0 0/0 0/0 0/0 0/1 0/0 "
    "0/0 0/0 0/0 0/0 1/1 0/0 0/0 0/0 0/0 0/0 0/0 0/0 0/0 7/7 14/15 31/33 57/61 "
    "83/84 78/83 60/62 94/97 95/99 78/80 42/42 37/38 22/23 12/14 7/7 2/2 1/1 0/0 "
    "0/0 0/0 1/1 0/0 0/1",
    "星河广场": "9/17 10/19 8/21 13/25 10/26 11/25 16/30 9/30 22/35 21/31 15/27 "
    "10/25 11/22 15/30 7/23 12/23 15/33 7/25 13/26 8/20 17/23 11/30 15/28 11/27 "
    "18/32 15/32 21/41 14/33 14/29 13/35 13/34 17/32 14/31 13/28 13/30 31/42 23/35 "
    "20/35 22/41 18/35 15/30 22/39 21/40 17/34 14/33 20/40 13/25 23/35 20/37 24/43 "
    "25/42 50/67 74/93 87/109 88/106 71/87 98/112 113/129 79/93 47/59 51/69 30/48 "
    "25/40 15/34 19/42 7/21 19/40 12/29 12/22 18/39 21/33 12/25",
    "会员活动": "0/0 0/0 0/0 0/0 1/1 1/1 1/1 2/2 0/0 1/1 1/1 0/0 2/2 1/2 0/0 0/0 1/1 "
    "0/0 4/16 4/20 5/33 2/27 2/23 0/8 1/2 0/1 0/0 1/2 0/0 0/0 2/2 2/3 0/0 1/1 0/0 "
    "1/1 1/1 1/1 0/0 3/3 0/0 1/1 2/2 0/0 0/1 2/2 0/0 1/1 0/0 2/2 1/1 1/2 2/2 1/1 "
    "0/0 1/1 0/0 0/0 1/1 0/0 1/1 0/0 1/1 0/0 1/1 0/0 0/0 0/0 0/0 0/0 2/2 0/0",
    "停车": "1/2 4/7 4/8 4/5 2/5 3/4 3/4 2/4 6/8 4/6 2/4 4/7 2/4 5/9 2/5 4/5 3/8 3/9 "
    "4/10 3/6 3/5 1/7 5/8 3/6 5/11 5/8 4/10 3/6 3/3 2/6 6/12 5/6 2/4 6/9 6/9 9/11 "
    "5/11 3/4 5/12 6/7 3/4 3/5 6/10 3/4 3/7 3/6 5/6 6/8 6/8 4/6 4/6 6/9 3/5 5/10 "
    "3/6 5/8 1/2 4/5 2/6 2/4 1/6 2/5 2/5 0/2 6/13 2/3 6/10 1/2 3/7 5/8 6/8 5/7",
    "客服": "2/2 3/4 1/1 5/5 3/4 4/5 6/7 5/6 5/5 5/5 5/5 2/2 1/2 0/0 2/3 5/8 5/5 2/2 "
    "3/4 3/3 4/4 2/4 4/6 3/5 3/3 4/5 4/4 4/5 3/4 3/6 2/2 5/5 4/8 1/2 1/2 4/5 7/7 4/4 "
    "6/7 4/7 3/4 5/6 4/5 3/3 2/3 5/7 9/9 5/6 4/5 5/7 9/9 10/10 13/13 10/12 22/24 "
    "11/12 15/15 19/19 8/8 10/12 14/14 8/10 5/6 3/3 3/4 4/6 3/3 2/3 3/3 2/2 7/7 2/3",
    "餐饮": "0/9 8/17 7/16 10/24 7/18 6/17 4/11 4/21 5/18 5/11 7/13 4/14 1/15 11/20 "
    "5/14 7/16 9/23 5/22 4/9 3/10 8/19 10/19 7/16 6/21 8/19 3/16 9/19 8/26 2/14 5/23 "
    "7/21 12/21 7/17 8/19 5/19 11/21 5/12 17/37 3/18 10/30 5/23 10/30 6/22 6/21 "
    "16/32 10/16 9/18 5/16 6/18 8/25 10/32 14/27 12/32 16/30 22/36 14/27 16/29 13/36 "
    "14/27 10/19 15/22 5/18 5/16 5/17 4/27 7/18 5/13 9/26 6/16 10/22 11/26 6/22",
}
INCIDENT = (time(13, 0), time(14, 30))


def _windows(topic: str) -> list[tuple[time, int, int]]:
    counts = MEASURED[topic].split()
    assert len(counts) == 72
    result = []
    for index, pair in enumerate(counts):
        negative, total = (int(part) for part in pair.split("/"))
        result.append((time(9 + index // 12, index % 12 * 5), negative, total))
    return result


def _fires(example: RuleSet, topic: str) -> list[time]:
    fired = []
    for start, negative, total in _windows(topic):
        for rule in example.rules_for(topic):
            if rule.kind == "negative_volume" and negative >= rule.threshold:
                fired.append(start)
            elif (
                rule.kind == "negative_share"
                and total >= rule.min_volume
                and negative / total >= rule.threshold
            ):
                fired.append(start)
    return sorted(set(fired))


def test_example_air_conditioning_rules_fire_through_the_incident_only(
    example: RuleSet,
) -> None:
    fired = _fires(example, "空调异味")
    assert fired[0] == time(13, 5)  # the first window with incident posts
    assert fired[-1] >= time(14, 10)
    assert all(INCIDENT[0] <= start < INCIDENT[1] for start in fired)
    # Every window of the main incident (13:05-14:15) fires.
    assert len(fired) == (fired[-1].hour * 60 + fired[-1].minute - 13 * 60 - 5) // 5 + 1


@pytest.mark.parametrize("topic", ["星河广场", "客服"])
def test_example_mall_rules_fire_only_during_the_incident(
    example: RuleSet, topic: str
) -> None:
    fired = _fires(example, topic)
    assert fired
    assert all(INCIDENT[0] <= start < INCIDENT[1] for start in fired)


@pytest.mark.parametrize("topic", ["会员活动", "停车", "餐饮"])
def test_example_calm_topics_and_the_promotion_never_fire(
    example: RuleSet, topic: str
) -> None:
    assert example.rules_for(topic)
    assert _fires(example, topic) == []


# --- errors name the line --------------------------------------------------

BASE = """\
topics:
  空调异味:
    keywords: [空调, 异味]
    rules:
      - name: 负面声量
        kind: negative_volume
        threshold: 6
        window: 5m
        channels: [hook]
  停车:
    keywords: [停车]
owners:
  王工: {email: w@example.com}
  张经理: {email: z@example.com}
teams:
  ops:
    members: [王工]
    escalation: [张经理]
channels:
  hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}
routing:
  default_team: ops
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_base_file_is_valid(tmp_path: Path) -> None:
    rules = load_rules(_write(tmp_path, BASE))
    assert [rule.name for rule in rules.rules] == ["负面声量"]
    assert rules.teams["ops"].strategy == "round_robin"


def _edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


RULE_LINES = "        kind: negative_volume\n        threshold: 6\n"

# (edited file, reason fragment); the line marked "#!" is the one to name.
ERRORS = {
    "unknown-top-key": (BASE + "alerts: []  #!\n", "unknown key 'alerts'"),
    "unknown-rule-key": (
        _edit("        window: 5m\n", "        window: 5m\n        treshold: 6  #!\n"),
        "unknown key 'treshold' in a negative_volume rule",
    ),
    "unknown-kind": (
        _edit("kind: negative_volume\n", "kind: sentiment  #!\n"),
        "unknown kind 'sentiment'; expected one of negative_volume",
    ),
    "threshold-type": (
        _edit("threshold: 6\n", "threshold: many  #!\n"),
        "must be a whole number",
    ),
    "threshold-bool": (
        _edit("threshold: 6\n", "threshold: true  #!\n"),
        "must be a whole number",
    ),
    "threshold-zero": (_edit("threshold: 6\n", "threshold: 0  #!\n"), "must be >= 1"),
    "share-out-of-range": (
        _edit(
            RULE_LINES,
            "        kind: negative_share\n        threshold: 1.5  #!\n"
            "        min_volume: 10\n",
        ),
        "must be > 0 and <= 1, got 1.5",
    ),
    "share-needs-volume": (
        _edit(
            "      - name: 负面声量\n" + RULE_LINES,
            "      - name: 负面声量  #!\n        kind: negative_share\n"
            "        threshold: 0.8\n",
        ),
        "a negative_share rule needs 'min_volume'",
    ),
    "burst-out-of-range": (
        _edit(RULE_LINES, "        kind: burst\n        threshold: 50  #!\n"),
        "burst score",
    ),
    "repeat-threshold": (
        _edit(
            RULE_LINES,
            "        kind: repeat_complaints\n        threshold: 1  #!\n"
            "        within: 40m\n",
        ),
        "must be >= 2",
    ),
    "repeat-needs-within": (
        _edit(
            "      - name: 负面声量\n" + RULE_LINES,
            "      - name: 负面声量  #!\n        kind: repeat_complaints\n"
            "        threshold: 3\n",
        ),
        "a repeat_complaints rule needs 'within'",
    ),
    "missing-threshold": (
        _edit(
            "      - name: 负面声量\n" + RULE_LINES,
            "      - name: 负面声量  #!\n        kind: negative_volume\n",
        ),
        "a negative_volume rule needs 'threshold'",
    ),
    "bad-duration": (_edit("window: 5m\n", "window: 5x  #!\n"), "bad duration '5x'"),
    "duration-without-unit": (
        _edit("window: 5m\n", "window: 300  #!\n"),
        "needs a unit",
    ),
    "window-too-long": (
        _edit("window: 5m\n", "window: 2d  #!\n"),
        "window 2d is longer than 1d",
    ),
    "unknown-channel": (
        _edit(
            "channels: [hook]\n", "channels:\n          - hook\n          - pager  #!\n"
        ),
        "unknown channel 'pager'",
    ),
    "unknown-team": (
        _edit("window: 5m\n", "window: 5m\n        team: nobody  #!\n"),
        "unknown team 'nobody'",
    ),
    "bad-min-priority": (
        _edit("window: 5m\n", "window: 5m\n        min_priority: P0  #!\n"),
        "min_priority must be one of",
    ),
    "duplicate-rule": (
        _edit(
            "        channels: [hook]\n",
            "        channels: [hook]\n      - name: 负面声量  #!\n"
            "        kind: negative_volume\n        threshold: 9\n",
        ),
        "duplicate rule name '负面声量'",
    ),
    "duplicate-topic": (
        _edit(
            "  停车:\n    keywords: [停车]\n",
            "  停车:\n    keywords: [停车]\n  空调异味:  #!\n    keywords: [x]\n",
        ),
        "duplicate key '空调异味' (first at line 2)",
    ),
    "topic-without-keywords": (
        _edit("  停车:\n    keywords: [停车]\n", "  停车:  #!\n    exclude: [x]\n"),
        "has no keywords",
    ),
    "channel-kind": (
        _edit(
            'hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}',
            "hook: {kind: pager, url: x}  #!",
        ),
        "channel 'hook': unknown kind 'pager'; expected one of webhook",
    ),
    "channel-missing-url": (
        _edit(
            'hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}',
            "hook: {kind: webhook}  #!",
        ),
        "needs 'url'",
    ),
    "channel-unknown-key": (
        _edit(
            'hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}',
            'hook:\n    kind: webhook\n    url: "${ALERT_WEBHOOK_URL}"\n'
            "    token: abc  #!",
        ),
        "unknown key 'token' in a webhook channel",
    ),
    "bad-env-reference": (
        _edit('url: "${ALERT_WEBHOOK_URL}"}', 'url: "${monitor-url}"}  #!'),
        "bad environment reference '${monitor-url}'",
    ),
    "env-reference-outside-alert": (
        _edit('url: "${ALERT_WEBHOOK_URL}"}', 'url: "${MONITOR_ES_API_KEY}"}  #!'),
        "may only refer to ALERT_* variables",
    ),
    "unclosed-env-reference": (
        _edit('url: "${ALERT_WEBHOOK_URL}"}', 'url: "https://x/${TOKEN"}  #!'),
        "unclosed",
    ),
    "channel-empty-secret": (
        _edit(
            'hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}',
            'hook:\n    kind: webhook\n    url: "${ALERT_WEBHOOK_URL}"\n'
            "    secret:  #!",
        ),
        "channel 'hook': secret must be non-empty text",
    ),
    "url-not-http": (
        _edit('url: "${ALERT_WEBHOOK_URL}"}', "url: ftp://x}  #!"),
        "must be an http(s) URL",
    ),
    "email-port": (
        _edit(
            'hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}',
            'hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}\n'
            "  mail: {kind: email, smtp_host: h, from: a@b, to: [c@d], "
            "smtp_port: 70000}  #!",
        ),
        "smtp_port must be >= 1 and <= 65535",
    ),
    "member-not-owner": (
        _edit("members: [王工]\n", "members:\n      - 王工\n      - 李工  #!\n"),
        "team 'ops': '李工' is not in owners",
    ),
    "team-without-members": (
        _edit("    members: [王工]\n", "    members: []\n"),
        "team 'ops': needs at least one member",
    ),
    "bad-strategy": (
        _edit(
            "    escalation: [张经理]\n",
            "    escalation: [张经理]\n    strategy: random  #!\n",
        ),
        "strategy must be one of round_robin, least_loaded, got 'random'",
    ),
    "unknown-default-team": (
        _edit("default_team: ops\n", "default_team: nobody  #!\n"),
        "unknown team 'nobody'",
    ),
    "route-unknown-topic": (
        BASE + "  topics:\n    影城: ops  #!\n",
        "unknown topic '影城'",
    ),
    "route-unknown-team": (
        BASE + "  topics:\n    停车: valet  #!\n",
        "unknown team 'valet'",
    ),
    "sla-unknown-priority": (
        BASE + "sla:\n  P5: {ack: 5m}  #!\n",
        "priority must be one of P1, P2, P3, P4, got 'P5'",
    ),
    "sla-ack-after-resolve": (
        BASE + "sla:\n  P1: {ack: 2h, resolve: 1h}  #!\n",
        "P1 ack deadline is after its resolve deadline",
    ),
    "sla-bad-duration": (
        BASE + "sla:\n  P1:\n    ack: soon  #!\n",
        "bad duration 'soon'",
    ),
    "flapping-max-opens": (
        BASE + "tickets:\n  flapping:\n    max_opens: 0  #!\n",
        "max_opens must be >= 1",
    ),
    "silence-without-matcher": (
        BASE + "silences:\n  - id: S-1  #!\n    starts: 2026-11-20T08:00:00+08:00\n"
        "    expires: 2026-11-21T08:00:00+08:00\n    author: a\n    reason: r\n",
        "needs a topic, keyword or rule",
    ),
    "silence-naive-time": (
        BASE + "silences:\n  - id: S-1\n    topic: 停车\n"
        "    starts: 2026-11-20T08:00:00  #!\n"
        "    expires: 2026-11-21T08:00:00+08:00\n    author: a\n    reason: r\n",
        "needs a UTC offset",
    ),
    "silence-expires-first": (
        BASE + "silences:\n  - id: S-1\n    topic: 停车\n"
        "    starts: 2026-11-20T08:00:00+08:00\n"
        "    expires: 2026-11-19T08:00:00+08:00  #!\n    author: a\n    reason: r\n",
        "must expire after it starts",
    ),
    "silence-unknown-rule": (
        BASE + "silences:\n  - id: S-1\n    rule: 负面占比  #!\n"
        "    starts: 2026-11-20T08:00:00+08:00\n"
        "    expires: 2026-11-21T08:00:00+08:00\n    author: a\n    reason: r\n",
        "silence on unknown rule '负面占比'",
    ),
    "maintenance-bad-daily": (
        BASE + "maintenance:\n  - name: n\n    daily: 2-4  #!\n",
        "daily must look like",
    ),
    "maintenance-impossible-time": (
        BASE + "maintenance:\n  - name: n\n    daily: '25:00-04:00 +08:00'  #!\n",
        "impossible time of day",
    ),
    "maintenance-needs-times": (
        BASE + "maintenance:\n  - name: n  #!\n    topics: [停车]\n",
        "needs start and end, or daily",
    ),
    "maintenance-unknown-topic": (
        BASE + "maintenance:\n  - name: n\n    topics: [影城]  #!\n"
        "    daily: '02:00-04:00 +08:00'\n",
        "unknown topic '影城'",
    ),
    # Windows are sums of whole count buckets (60 s unless told otherwise).
    "window-not-whole-buckets": (
        _edit("window: 5m\n", "window: 90s  #!\n"),
        "window 90s is not a whole number of 60s buckets (MONITOR_BUCKET_SECONDS)",
    ),
    "window-under-one-bucket": (
        _edit("window: 5m\n", "window: 30s  #!\n"),
        "window 30s is shorter than one 60s bucket (MONITOR_BUCKET_SECONDS)",
    ),
    "burst-window-not-the-detector's": (
        _edit(RULE_LINES, "        kind: burst\n        threshold: 4\n").replace(
            "window: 5m\n", "window: 10m  #!\n"
        ),
        "a burst rule runs on the detector window: window must be 5m "
        "(MONITOR_WINDOW_SECONDS), got 10m",
    ),
    "emerging-window-not-the-detector's": (
        _edit(RULE_LINES, "        kind: emerging_keyword\n").replace(
            "window: 5m\n", "window: 1m  #!\n"
        ),
        "an emerging_keyword rule runs on the detector window: window must be 5m",
    ),
    "within-not-whole-buckets": (
        _edit(
            RULE_LINES,
            "        kind: repeat_complaints\n        threshold: 3\n"
            "        within: 40m30s  #!\n",
        ),
        "within 40m30s is not a whole number of 60s buckets",
    ),
    "within-too-long": (
        _edit(
            RULE_LINES,
            "        kind: repeat_complaints\n        threshold: 3\n"
            "        within: 2d  #!\n",
        ),
        "within 2d is longer than 1d",
    ),
    "unknown-group-by-field": (
        _edit("window: 5m\n", "window: 5m\n        group_by: topic,author  #!\n"),
        "group_by 'topic,author': use one or more of topic, rule, kind, keyword",
    ),
    "group-by-not-text": (
        _edit("window: 5m\n", "window: 5m\n        group_by: [topic]  #!\n"),
        "group_by '': use one or more of",
    ),
    "unknown-key-did-you-mean": (
        _edit("window: 5m\n", "window: 5m\n        group-by: topic  #!\n"),
        "unknown key 'group-by' in a negative_volume rule; did you mean 'group_by'?",
    ),
    "tickets-bad-group-interval": (
        BASE + "tickets:\n  group_window: 1h\n  group_interval: soon  #!\n",
        "bad duration 'soon'",
    ),
    "tickets-group-window-without-unit": (
        BASE + "tickets:\n  group_window: 3600  #!\n",
        "duration 3600 needs a unit",
    ),
    "tickets-bad-notice-clock": (
        BASE + "tickets:\n  notice_clock: utc  #!\n",
        "notice_clock must be one of event, wall, got 'utc'",
    ),
    "tickets-unknown-timing-key": (
        BASE + "tickets:\n  group_waits: 1s  #!\n",
        "unknown key 'group_waits' in tickets; did you mean 'group_wait'?",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_each_error_names_its_line(tmp_path: Path, case: str) -> None:
    text, reason = ERRORS[case]
    lines = text.splitlines()
    marked = [number for number, line in enumerate(lines, start=1) if "#!" in line]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    problems = caught.value.problems
    matching = [problem for problem in problems if reason in problem]
    assert matching, problems
    if marked:
        assert matching[0].startswith(f"{path} line {marked[0]}: "), problems
    else:
        assert matching[0].startswith(f"{path} line "), problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = _edit("threshold: 6\n", "threshold: 0\n")
    text = text.replace("window: 5m\n", "window: 5x\n").replace(
        "default_team: ops", "default_team: nobody"
    )
    with pytest.raises(ConfigError) as caught:
        load_rules(_write(tmp_path, text))
    assert len(caught.value.problems) == 3
    lines = [
        int(problem.split(" line ")[1].split(":")[0])
        for problem in caught.value.problems
    ]
    assert lines == sorted(lines) == [7, 8, 22]


def test_resolve_refuses_a_reference_outside_alert_even_when_set() -> None:
    channel = Channel("hook", "webhook", {"url": "${MONITOR_ES_API_KEY}"})
    with pytest.raises(ConfigError) as caught:
        channel.resolve({"MONITOR_ES_API_KEY": "es-secret-key"})
    (problem,) = caught.value.problems
    assert "MONITOR_ES_API_KEY may not be used" in problem
    assert "es-secret-key" not in problem


HOOK = 'hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}'
HOOK_LINE = BASE.splitlines().index(f"  {HOOK}") + 1


def test_a_reference_outside_alert_is_refused_by_name_not_value(
    tmp_path: Path,
) -> None:
    url = "https://h.example/?k=${MONITOR_ES_API_KEY}"
    path = _write(tmp_path, _edit(HOOK, f'hook: {{kind: webhook, url: "{url}"}}'))
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path} line {HOOK_LINE}: ")
    assert "MONITOR_ES_API_KEY" in problem and "ALERT_*" in problem
    assert "h.example" not in problem


@pytest.mark.parametrize(
    ("channel", "secret"),
    [
        ('{kind: webhook, url: "${ALERT_WEBHOOK_URL}", secret: 8675309}', "8675309"),
        ("{kind: webhook, url: ['https://hooks.example/T0/tok-123']}", "tok-123"),
        ("{kind: webhook, url: 'ftp://hooks.example/tok-123'}", "tok-123"),
        ("{kind: webhook, url: 'https://x.example/?k=${ALERT_K'}", "x.example"),
        ('{kind: slack, webhook: "${ALERT_SLACK}", channel: [tok-123]}', "tok-123"),
        (
            "{kind: email, smtp_host: h, from: a@b, to: [c@d], username: u, "
            "password: [pw-123]}",
            "pw-123",
        ),
        (
            '{kind: webhook, url: "${ALERT_WEBHOOK_URL}", '
            "headers: {Authorization: 8675309}}",
            "8675309",
        ),
    ],
)
def test_channel_setting_errors_do_not_echo_the_value(
    tmp_path: Path, channel: str, secret: str
) -> None:
    path = _write(tmp_path, _edit(HOOK, f"hook: {channel}"))
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    problems = caught.value.problems
    assert problems and all(
        problem.startswith(f"{path} line {HOOK_LINE}: ") for problem in problems
    ), problems
    assert not any(secret in problem for problem in problems), problems


def test_invalid_yaml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 3: invalid YAML"):
        load_rules(_write(tmp_path, "topics:\n  a: [1, 2\n  b: 3\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_rules(_write(tmp_path, "- just\n- a list\n"))


# --- windows, buckets, grouping and the tickets' timing ---------------------------


def test_rule_windows_default_to_five_minutes_and_the_detector_window(
    tmp_path: Path,
) -> None:
    text = _edit(
        "        window: 5m\n        channels: [hook]\n",
        "        channels: [hook]\n"
        "      - {name: 突增, kind: burst, threshold: 4}\n"
        "      - {name: 新词, kind: emerging_keyword}\n"
        "      - {name: 重复, kind: repeat_complaints, threshold: 3, within: 40m}\n",
    )
    path = _write(tmp_path, text)
    rules = load_rules(path)
    assert [rule.window_seconds for rule in rules.rules] == [300, 300, 300, 300]
    assert rules.rule("空调异味", "重复").within_seconds == 2400
    assert rules.rule("空调异味", "新词").threshold == 3
    # Two-minute buckets, a ten-minute detector: 5m rounds up to 6m, the
    # detector's rules follow it; 40m is 20 buckets.
    wide = load_rules(path, bucket_seconds=120, detector_window_seconds=600)
    assert [rule.window_seconds for rule in wide.rules] == [360, 600, 600, 360]
    assert wide.rule("空调异味", "重复").within_seconds == 2400


def test_a_window_that_fits_other_buckets_is_refused_naming_them(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, BASE)
    with pytest.raises(ConfigError) as caught:
        load_rules(path, bucket_seconds=120)
    assert caught.value.problems == [
        f"{path} line 8: window 5m is not a whole number of 120s buckets "
        "(MONITOR_BUCKET_SECONDS)"
    ]


def test_the_example_burst_rules_run_on_a_five_minute_detector_only() -> None:
    with pytest.raises(ConfigError) as caught:
        load_rules(EXAMPLE, detector_window_seconds=600)
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    expected = [
        f"{EXAMPLE} line {number}: a{'n' * (kind == 'emerging_keyword')} {kind} "
        "rule runs on the detector window: window must be 10m "
        "(MONITOR_WINDOW_SECONDS), got 5m"
        for number, kind in (
            (index + 3, lines[index].split()[-1])
            for index, line in enumerate(lines)
            if line.strip() in ("kind: burst", "kind: emerging_keyword")
        )
    ]
    assert len(expected) == 3
    assert all(
        lines[number - 1].strip() == "window: 5m"
        for number in (
            int(problem.split(" line ")[1].split(":")[0]) for problem in expected
        )
    )
    assert caught.value.problems == expected


def test_group_by_is_read_and_defaults_to_the_topic(tmp_path: Path) -> None:
    text = _edit(
        "        window: 5m\n",
        "        window: 15m\n        group_by: topic, rule ,topic\n",
    )
    (rule,) = load_rules(_write(tmp_path, text)).rules
    assert rule.group_by == "topic,rule"
    assert rule.window_seconds == 900
    (rule,) = load_rules(_write(tmp_path, BASE)).rules
    assert rule.group_by == "topic"


def test_tickets_timing_keys_are_durations(tmp_path: Path) -> None:
    text = BASE + (
        "tickets:\n  cooldown: 20m\n  group_window: 2h\n  group_wait: 0s\n"
        "  group_interval: 10m\n  repeat_interval: 1h30m\n  notice_clock: wall\n"
        "  flapping: {max_opens: 4, within: 3h}\n  growth: 0.25\n"
    )
    settings = load_rules(_write(tmp_path, text)).settings
    assert settings.cooldown == timedelta(minutes=20)
    assert settings.group_window_seconds == 7200
    assert settings.group_wait_seconds == 0
    assert settings.group_interval_seconds == 600
    assert settings.repeat_interval_seconds == 5400
    assert settings.notice_clock == NoticeClock.WALL
    assert (settings.flap_max_opens, settings.flap_window) == (4, timedelta(hours=3))
    assert settings.growth_ratio == 0.25
    # Left out: the defaults.
    defaults = load_rules(_write(tmp_path, BASE)).settings
    assert defaults == TicketSettings()


def test_a_file_with_many_problems_reports_each_with_its_line(
    tmp_path: Path,
) -> None:
    text = """\
topics:
  空调异味:
    keywords: [空调]
    rules:
      - name: 负面声量
        kind: negative_volume
        treshold: 6
        window: 90s
        channels: [hok]
        group_by: topic,author
      - {name: 突增, kind: burst, threshold: 4, window: 10m}
      - {name: 重复, kind: repeat_complaints, threshold: 3, within: 45s}
      - {name: 负面声量, kind: negative_volume, threshold: 2}
      - {name: 无类}
  停车:
    exclude: [x]
owners:
  王工: {email: w@example.com}
teams:
  ops:
    members: [王工, 李工]
    strategy: random
channels:
  hook: {kind: webhook, url: "${MONITOR_ES_API_KEY}"}
  mail: {kind: pager}
routing:
  default_team: opz
sla:
  P1: {ack: 2h, resolve: 1h}
tickets:
  group_interval: soon
  flapping: {max_opens: 0}
silences:
  - {id: S-1, topic: 影城, starts: 2026-11-20, expires: x, author: a, reason: r}
maintenance:
  - {name: n}
alerts: []
"""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    expected = [
        (5, "a negative_volume rule needs 'threshold'"),
        (7, "unknown key 'treshold' in a negative_volume rule; did you mean"),
        (8, "window 90s is not a whole number of 60s buckets"),
        (9, "unknown channel 'hok'; did you mean 'hook'?"),
        (10, "group_by 'topic,author'"),
        (11, "a burst rule runs on the detector window"),
        (12, "within 45s is shorter than one 60s bucket"),
        (13, "duplicate rule name '负面声量'"),
        (14, "a rule needs kind: one of negative_volume"),
        (15, "topic '停车' has no keywords"),
        (21, "team 'ops': '李工' is not in owners"),
        (22, "team 'ops': strategy must be one of"),
        (24, "channel 'hook': url refers to environment variable MONITOR_ES_API_KEY"),
        (25, "channel 'mail': unknown kind 'pager'"),
        (27, "unknown team 'opz'; did you mean 'ops'?"),
        (29, "P1 ack deadline is after its resolve deadline"),
        (29, "P1 ack (2h) is longer than P2's (15m)"),
        (31, "bad duration 'soon'"),
        (32, "max_opens must be >= 1, got 0"),
        (34, "unknown topic '影城'"),
        (34, "starts needs a time and UTC offset, not a date"),
        (34, "expires 'x' is not an ISO 8601 time"),
        (36, "a maintenance window needs start and end, or daily"),
        (37, "unknown key 'alerts' in the rules file"),
    ]
    problems = caught.value.problems
    assert len(problems) == len(expected), problems
    for (line, reason), problem in zip(expected, problems, strict=True):
        assert problem.startswith(f"{path} line {line}: "), (line, problem)
        assert reason in problem, (reason, problem)


def test_rules_check_uses_the_worker_settings_for_windows(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from monitor.cli import cli

    runner = CliRunner()
    done = runner.invoke(cli, ["rules", "check", str(EXAMPLE)], obj={})
    assert done.exit_code == 0, done.output
    assert "OK: 8 topics" in done.output
    done = runner.invoke(
        cli,
        ["rules", "check", str(EXAMPLE)],
        obj={},
        env={"MONITOR_WINDOW_SECONDS": "600"},
    )
    assert done.exit_code == 2
    problems = done.output.splitlines()
    assert len(problems) == 3
    assert all(
        problem.startswith(f"{EXAMPLE} line ")
        and "window must be 10m (MONITOR_WINDOW_SECONDS), got 5m" in problem
        for problem in problems
    ), problems
    config = tmp_path / "monitor.yaml"
    config.write_text("bucket_seconds: 120\nwindow_seconds: 600\n", encoding="utf-8")
    done = runner.invoke(
        cli, ["--config", str(config), "rules", "check", str(EXAMPLE)], obj={}
    )
    assert done.exit_code == 2
    assert "window 5m is not a whole number of 120s buckets" in done.output


def test_review_required_priorities_come_from_the_tickets_settings(
    tmp_path: Path,
) -> None:
    from monitor.config.rules import load_rules

    path = tmp_path / "rules.yaml"
    path.write_text(
        "topics:\n  空调异味:\n    keywords: [空调]\n"
        "teams:\n  facilities: {members: [王工]}\n"
        "routing: {default_team: facilities}\n"
        "tickets: {review_required: [P1]}\n",
        encoding="utf-8",
    )
    assert load_rules(path).policy().settings.review_required == frozenset({"P1"})
