"""Loading and validating the alert rules file (topics, rules, teams, channels).

The file is YAML; every problem is reported with its line, all at once::

    topics:                       # watched topics, as in the watch list
      空调异味:
        keywords: [空调, 异味]
        exclude: [招聘]           # optional
        rules:                    # optional; names unique within the topic
          - name: 负面量
            kind: negative_volume # negative posts per window >= threshold
            threshold: 10
            window: 5m            # default 5m
            channels: [ops-webhook]
            team: facilities      # optional, overrides routing
            min_priority: P3      # optional floor
          - {name: 负面占比, kind: negative_share, threshold: 0.8, min_volume: 15}
          - {name: 突发, kind: burst, threshold: 4}        # -log10 probability
          - {name: 新词, kind: emerging_keyword, threshold: 5}  # posts, default 3
          - {name: 重复投诉, kind: repeat_complaints, threshold: 3, within: 40m}
    owners:                       # optional contact book; if given, every
      王工: {email: w@x.cn}       # member and escalation contact must be in it
    teams:
      facilities:
        members: [王工, 李工]
        strategy: least_loaded    # or round_robin (default)
        escalation: [张经理]
    channels:
      ops-webhook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}
    routing: {default_team: facilities, topics: {空调异味: facilities}}
    sla: {P1: {ack: 5m, resolve: 1h}}                   # overrides per priority
    tickets: {cooldown: 30m, flapping: {max_opens: 3, within: 2h}}
    silences:
      - {id: S-1, topic: 停车, starts: 2026-11-20T08:00:00+08:00,
         expires: 2026-11-21T08:00:00+08:00, author: 小李, reason: 已知问题}
    maintenance:
      - {name: nightly, topics: [空调异味], daily: "02:00-04:00 +08:00"}
      - {name: upgrade, start: 2026-11-22T01:00:00+08:00,
         end: 2026-11-22T03:00:00+08:00}

Durations are written ``30s``, ``5m``, ``1h``, ``2d`` (or combined, ``1h30m``).
Channel settings may name environment variables as ``${NAME}``; they are kept
as references here and resolved by :meth:`Channel.resolve` with the
environment the caller passes in (settings stay the only reader of
``os.environ``). Only names starting with ``ALERT_`` (:data:`ENV_NAME_PREFIX`)
may be referred to, so a rules file cannot send the worker's own secrets
(``MONITOR_ES_API_KEY``, say) to a webhook. Problems with channel settings
never repeat the setting's value: it may hold a token or a password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from monitor.analysis.tickets.model import (
    BURST,
    EMERGING_KEYWORD,
    NEGATIVE_SHARE,
    NEGATIVE_VOLUME,
    PRIORITIES,
    REPEAT_COMPLAINTS,
    RULE_KINDS,
    AlertRule,
    default_ticket_id,
)
from monitor.analysis.tickets.policy import TicketPolicy, TicketSettings
from monitor.analysis.tickets.routing import STRATEGIES, Routing, Team
from monitor.analysis.tickets.silences import MaintenanceWindow, Silence
from monitor.analysis.tickets.sla import SlaPolicy
from monitor.analysis.topics import WatchedTopic
from monitor.config.channels import (
    CHANNEL_KEYS,
    CHANNEL_KINDS,
    check_channel_combination,
    check_channel_value,
)
from monitor.config.durations import UTC_OFFSET, parse_duration, parse_utc_offset
from monitor.config.watchlist import read_topic
from monitor.config.yamlfile import YamlDocument, load_yaml
from monitor.errors import ConfigError

#: The prefix every ``${NAME}`` in channel settings must start with.
ENV_NAME_PREFIX = "ALERT_"

_TOP_KEYS = frozenset(
    {
        "topics",
        "owners",
        "teams",
        "channels",
        "routing",
        "sla",
        "tickets",
        "silences",
        "maintenance",
    }
)
_COMMON_RULE_KEYS = frozenset(
    {
        "name",
        "kind",
        "threshold",
        "window",
        "channels",
        "team",
        "min_priority",
        "description",
    }
)
_KIND_KEYS = {
    NEGATIVE_VOLUME: frozenset(),
    NEGATIVE_SHARE: frozenset({"min_volume"}),
    BURST: frozenset(),
    EMERGING_KEYWORD: frozenset(),
    REPEAT_COMPLAINTS: frozenset({"within"}),
}
_DEFAULT_THRESHOLD = {EMERGING_KEYWORD: 3}

_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PROBLEM_LINE = re.compile(r" line (\d+): ")
_DAILY = re.compile(
    rf"(\d{{1,2}}):(\d{{2}})\s*-\s*(\d{{1,2}}):(\d{{2}})\s*({UTC_OFFSET.pattern})"
)


@dataclass(frozen=True)
class Owner:
    """A person tickets can be assigned or escalated to.

    Attributes:
        name: Name as used in teams and on tickets.
        contacts: How to reach them (``email``, ``phone``, ``dingtalk``, ...).

    """

    name: str
    contacts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Channel:
    """A notification channel as configured, secrets still as references.

    Attributes:
        name: Name rules refer to.
        kind: One of :data:`CHANNEL_KINDS`.
        settings: The kind's settings; text values may contain ``${NAME}``.

    """

    name: str
    kind: str
    settings: Mapping[str, Any]

    @property
    def env_names(self) -> frozenset[str]:
        """Names of the environment variables the settings refer to."""
        return frozenset(
            match.group(1)
            for value in _texts(self.settings)
            for match in _ENV_REF.finditer(value)
        )

    def resolve(self, env: Mapping[str, str]) -> dict[str, Any]:
        """Return the settings with every ``${NAME}`` replaced from ``env``.

        Args:
            env: The environment, as read by the settings module.

        Raises:
            ConfigError: Naming each variable that does not start with
                :data:`ENV_NAME_PREFIX` or that ``env`` lacks.

        """
        names = sorted(self.env_names)
        problems = [
            f"channel {self.name!r}: environment variable {name} may not be used; "
            f"channel settings may only refer to {ENV_NAME_PREFIX}* variables"
            for name in names
            if not name.startswith(ENV_NAME_PREFIX)
        ]
        problems += [
            f"channel {self.name!r}: environment variable {name} is not set"
            for name in names
            if name.startswith(ENV_NAME_PREFIX) and name not in env
        ]
        if problems:
            raise ConfigError(problems)

        def substitute(value: Any) -> Any:
            if isinstance(value, str):
                return _ENV_REF.sub(lambda match: env[match.group(1)], value)
            if isinstance(value, list | tuple):
                return [substitute(item) for item in value]
            if isinstance(value, Mapping):
                return {key: substitute(item) for key, item in value.items()}
            return value

        return {key: substitute(value) for key, value in self.settings.items()}


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return []


@dataclass(frozen=True)
class RuleSet:
    """Everything the rules file configures, validated.

    Attributes:
        path: The file it was read from.
        topics: Watched topics, in file order.
        rules: Alert rules of every topic, in file order.
        owners: Contact book by name (empty if the file has none).
        teams: Teams by name.
        channels: Notification channels by name.
        routing: Topic -> team, and the default team.
        sla: Deadlines per priority (defaults merged with overrides).
        settings: Ticket policy knobs.
        silences: Configured silences.
        maintenance: Maintenance windows.

    """

    path: Path
    topics: tuple[WatchedTopic, ...]
    rules: tuple[AlertRule, ...]
    owners: Mapping[str, Owner]
    teams: Mapping[str, Team]
    channels: Mapping[str, Channel]
    routing: Routing
    sla: SlaPolicy
    settings: TicketSettings
    silences: tuple[Silence, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()

    def rules_for(self, topic: str) -> tuple[AlertRule, ...]:
        """Return the rules of one topic, in file order."""
        return tuple(rule for rule in self.rules if rule.topic == topic)

    def rule(self, topic: str, name: str) -> AlertRule:
        """Return a rule by topic and name.

        Raises:
            KeyError: If there is no such rule.

        """
        for rule in self.rules:
            if rule.topic == topic and rule.name == name:
                return rule
        raise KeyError((topic, name))

    def policy(self, id_factory: Any = default_ticket_id) -> TicketPolicy:
        """Build the :class:`TicketPolicy` this file describes.

        Args:
            id_factory: ``(fingerprint, sequence) -> ticket id``.

        """
        return TicketPolicy(
            rules={(rule.topic, rule.name): rule for rule in self.rules},
            routing=self.routing,
            sla=self.sla,
            settings=self.settings,
            silences=self.silences,
            maintenance=self.maintenance,
            id_factory=id_factory,
        )


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file.

    Args:
        path: The YAML file.

    Returns:
        The validated rule set.

    Raises:
        ConfigError: With one ``"<file> line N: <reason>"`` per problem.

    """
    document = load_yaml(path)
    return _Loader(document).load()


def _line_number(problem: str) -> int:
    match = _PROBLEM_LINE.search(problem)
    return int(match.group(1)) if match else 0


class _Loader:
    """Walks the document once, collecting every problem with its line."""

    def __init__(self, document: YamlDocument) -> None:
        self.document = document
        self.problems: list[str] = []

    def problem(self, location: Sequence[Any], reason: str) -> None:
        self.problems.append(f"{self.document.where(location)}: {reason}")

    # -- small typed readers -------------------------------------------------

    def mapping(self, value: Any, location: Sequence[Any], what: str) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(location, f"{what} must be a mapping")
            return {}
        return value

    def sequence(self, value: Any, location: Sequence[Any], what: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(location, f"{what} must be a list")
            return []
        return value

    def unknown(
        self,
        body: dict[Any, Any],
        allowed: frozenset[str],
        location: Sequence[Any],
        what: str,
    ) -> None:
        for key in body:
            if key not in allowed:
                self.problem(
                    [*location, key],
                    f"unknown key {key!r} in {what}; expected one of "
                    f"{', '.join(sorted(allowed))}",
                )

    def text(
        self, value: Any, location: Sequence[Any], what: str, *, show: bool = True
    ) -> str | None:
        # show=False for channel settings: the value may be a token or password.
        if not isinstance(value, str) or not value.strip():
            got = f", got {value!r}" if show else ""
            self.problem(location, f"{what} must be non-empty text{got}")
            return None
        return value.strip()

    def texts(
        self, value: Any, location: Sequence[Any], what: str, *, show: bool = True
    ) -> list[str]:
        items = self.sequence(value, location, what)
        result = []
        for index, item in enumerate(items):
            checked = self.text(item, [*location, index], f"each of {what}", show=show)
            if checked is not None:
                result.append(checked)
        return result

    def duration(
        self, value: Any, location: Sequence[Any], what: str
    ) -> timedelta | None:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(location, f"{what}: {exc}")
            return None

    def number(
        self,
        value: Any,
        location: Sequence[Any],
        what: str,
        *,
        low: float,
        high: float | None = None,
        low_open: bool = False,
        integer: bool = False,
    ) -> float | None:
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.problem(
                location,
                f"{what} must be {'a whole number' if integer else 'a number'}, "
                f"got {value!r}",
            )
            return None
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high):
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            if high is not None:
                bound += f" and <= {high:g}"
            self.problem(location, f"{what} must be {bound}, got {value!r}")
            return None
        return value

    def moment(self, value: Any, location: Sequence[Any], what: str) -> datetime | None:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                self.problem(location, f"{what} {value!r} is not an ISO 8601 time")
                return None
        if isinstance(value, date) and not isinstance(value, datetime):
            self.problem(location, f"{what} needs a time and UTC offset, not a date")
            return None
        if not isinstance(value, datetime):
            self.problem(location, f"{what} must be a time like 2026-11-20T08:00+08:00")
            return None
        if value.tzinfo is None:
            self.problem(location, f"{what} {value.isoformat()} needs a UTC offset")
            return None
        return value

    # -- sections --------------------------------------------------------------

    def load(self) -> RuleSet:
        data = self.document.data
        self.check_duplicate_keys()
        if not isinstance(data, dict):
            raise ConfigError(
                [f"{self.document.where([])}: expected a mapping with 'topics:'"]
            )
        self.unknown(data, _TOP_KEYS, [], "the rules file")
        owners = self.load_owners(data.get("owners"))
        channels = self.load_channels(data.get("channels"))
        teams = self.load_teams(data.get("teams"), owners)
        topics, rules = self.load_topics(data.get("topics"), channels, teams)
        routing = self.load_routing(data.get("routing"), teams, topics)
        sla = self.load_sla(data.get("sla"))
        settings = self.load_settings(data.get("tickets"))
        silences = self.load_silences(data.get("silences"), topics, rules)
        maintenance = self.load_maintenance(data.get("maintenance"), topics)
        if self.problems:
            raise ConfigError(sorted(self.problems, key=_line_number))
        assert routing is not None and sla is not None and settings is not None
        return RuleSet(
            path=self.document.path,
            topics=tuple(topics),
            rules=tuple(rules),
            owners=owners,
            teams=teams,
            channels=channels,
            routing=routing,
            sla=sla,
            settings=settings,
            silences=tuple(silences),
            maintenance=tuple(maintenance),
        )

    def check_duplicate_keys(self) -> None:
        # The parsed data keeps only the last of two equal keys, so a repeated
        # topic, team or channel name would silently replace the first one.
        # The document's own node tree is walked: reading the file again could
        # see another version of it (and load_yaml's limits would not apply).
        root = self.document.node
        todo = [root] if root is not None else []
        while todo:
            node = todo.pop()
            if isinstance(node, yaml.MappingNode):
                first: dict[Any, int] = {}
                for key_node, value_node in node.value:
                    line = key_node.start_mark.line + 1
                    key = key_node.value
                    if key in first:
                        self.problems.append(
                            f"{self.document.path} line {line}: duplicate key "
                            f"{key!r} (first at line {first[key]})"
                        )
                    else:
                        first[key] = line
                    todo.append(value_node)
            elif isinstance(node, yaml.SequenceNode):
                todo.extend(node.value)

    def load_owners(self, raw: Any) -> dict[str, Owner]:
        owners = {}
        for name, body in self.mapping(raw, ["owners"], "owners").items():
            where = ["owners", name]
            if not isinstance(name, str):
                self.problem(where, f"owner name {name!r} must be text; quote it")
                continue
            contacts = self.mapping(body, where, f"owner {name!r}")
            good = {}
            for key, value in contacts.items():
                if not isinstance(value, str | int) or isinstance(value, bool):
                    self.problem([*where, key], f"contact {key!r} must be text")
                else:
                    good[str(key)] = str(value)
            owners[name] = Owner(name, good)
        return owners

    def load_channels(self, raw: Any) -> dict[str, Channel]:
        channels = {}
        for name, body in self.mapping(raw, ["channels"], "channels").items():
            where = ["channels", name]
            if not isinstance(name, str):
                self.problem(where, f"channel name {name!r} must be text; quote it")
                continue
            body = self.mapping(body, where, f"channel {name!r}")
            kind = body.get("kind")
            if kind not in CHANNEL_KEYS:
                self.problem(
                    [*where, "kind"] if "kind" in body else where,
                    f"channel {name!r} needs kind: one of {', '.join(CHANNEL_KINDS)}"
                    + (f" (got {kind!r})" if kind is not None else ""),
                )
                continue
            required, optional = CHANNEL_KEYS[kind]
            self.unknown(
                body, required | optional | {"kind"}, where, f"a {kind} channel"
            )
            for key in sorted(required - set(body)):
                self.problem(where, f"{kind} channel {name!r} needs {key!r}")
            settings = {
                key: value for key, value in body.items() if key in required | optional
            }
            self.check_channel_values(kind, name, settings, where)
            channels[name] = Channel(name, kind, settings)
        return channels

    def check_channel_values(
        self, kind: str, name: str, settings: dict[str, Any], where: list[Any]
    ) -> None:
        for key, value in settings.items():
            location = [*where, key]
            if isinstance(value, str) and _ENV_REF.search(value):
                # Its value is checked once resolved, by the notifier at
                # start-up (with the same check_channel_value).
                if key in {"url", "webhook"} and not (
                    _ENV_REF.fullmatch(value.strip())
                    or value.startswith(("http://", "https://"))
                ):
                    self.problem(
                        location,
                        f"{key} of channel {name!r} must be an http(s) URL or a "
                        "${ENV_VAR} reference",
                    )
            else:
                try:
                    check_channel_value(key, value)
                except ValueError as exc:
                    self.problem(location, f"channel {name!r}: {exc}")
                    continue
            for text in _texts(value):
                for match in _ENV_REF.finditer(text):
                    if not _ENV_NAME.fullmatch(match.group(1)):
                        self.problem(
                            location,
                            f"bad environment reference {match.group(0)!r}; "
                            "use ${NAME} with letters, digits and _",
                        )
                    elif not match.group(1).startswith(ENV_NAME_PREFIX):
                        self.problem(
                            location,
                            f"{key} of channel {name!r} refers to environment "
                            f"variable {match.group(1)}; channel settings may "
                            f"only refer to {ENV_NAME_PREFIX}* variables",
                        )
                if "${" in _ENV_REF.sub("", text):
                    self.problem(location, f"unclosed '${{' in {key} of {name!r}")
        try:
            check_channel_combination(kind, settings)
        except ValueError as exc:
            self.problem(where, f"channel {name!r}: {exc}")

    def load_teams(self, raw: Any, owners: Mapping[str, Owner]) -> dict[str, Team]:
        teams = {}
        if raw is None:
            self.problem([], "the rules file needs a 'teams:' mapping")
        for name, body in self.mapping(raw, ["teams"], "teams").items():
            where = ["teams", name]
            if not isinstance(name, str):
                self.problem(where, f"team name {name!r} must be text; quote it")
                continue
            body = self.mapping(body, where, f"team {name!r}")
            self.unknown(
                body,
                frozenset({"members", "strategy", "escalation"}),
                where,
                f"team {name!r}",
            )
            members = self.texts(body.get("members"), [*where, "members"], "members")
            if not members:
                self.problem(where, f"team {name!r} needs at least one member")
            if len(set(members)) != len(members):
                self.problem([*where, "members"], f"team {name!r} lists a member twice")
            escalation = self.texts(
                body.get("escalation"), [*where, "escalation"], "escalation"
            )
            strategy = body.get("strategy", "round_robin")
            if strategy not in STRATEGIES:
                self.problem(
                    [*where, "strategy"],
                    f"unknown strategy {strategy!r}; expected "
                    + " or ".join(STRATEGIES),
                )
                strategy = "round_robin"
            if owners:
                for key, people in (("members", members), ("escalation", escalation)):
                    for index, person in enumerate(people):
                        if person not in owners:
                            self.problem(
                                [*where, key, index],
                                f"{person!r} in team {name!r} is not in owners",
                            )
            teams[name] = Team(name, tuple(members), strategy, tuple(escalation))
        return teams

    def load_topics(
        self, raw: Any, channels: Mapping[str, Channel], teams: Mapping[str, Team]
    ) -> tuple[list[WatchedTopic], list[AlertRule]]:
        if not isinstance(raw, dict) or not raw:
            self.problem(["topics"], "expected a non-empty 'topics:' mapping")
            return [], []
        topics: list[WatchedTopic] = []
        rules: list[AlertRule] = []
        for name, body in raw.items():
            where = ["topics", name]
            topic, problems = read_topic(name, body, more_keys=frozenset({"rules"}))
            for path, reason in problems:
                self.problem([*where, *path], reason)
            if topic is not None:
                topics.append(topic)
            if not isinstance(name, str) or not isinstance(body, dict):
                continue
            seen: dict[str, int] = {}
            items = self.sequence(body.get("rules"), [*where, "rules"], "rules")
            for index, item in enumerate(items):
                rule = self.load_rule(name, index, item, channels, teams)
                if rule is None:
                    continue
                if rule.name in seen:
                    self.problem(
                        [*where, "rules", index, "name"],
                        f"duplicate rule name {rule.name!r} in topic {name!r} "
                        f"(first is rule {seen[rule.name] + 1})",
                    )
                    continue
                seen[rule.name] = index
                rules.append(rule)
        return topics, rules

    def load_rule(
        self,
        topic: str,
        index: int,
        item: Any,
        channels: Mapping[str, Channel],
        teams: Mapping[str, Team],
    ) -> AlertRule | None:
        where: list[Any] = ["topics", topic, "rules", index]
        if not isinstance(item, dict):
            self.problem(where, "a rule must be a mapping with name and kind")
            return None
        problems_before = len(self.problems)
        name = self.text(item.get("name"), [*where, "name"], "rule name")
        kind = item.get("kind")
        if kind not in RULE_KINDS:
            self.problem(
                [*where, "kind"] if "kind" in item else where,
                f"unknown rule kind {kind!r}; expected one of {', '.join(RULE_KINDS)}",
            )
            return None
        self.unknown(
            item, _COMMON_RULE_KEYS | _KIND_KEYS[kind], where, f"a {kind} rule"
        )
        threshold = self.threshold(kind, item, where)
        window = self.duration(item.get("window", "5m"), [*where, "window"], "window")
        if window is not None and not (
            timedelta(seconds=10) <= window <= timedelta(days=1)
        ):
            self.problem([*where, "window"], "window must be between 10s and 1d")
        min_volume = 0
        if kind == NEGATIVE_SHARE:
            if "min_volume" not in item:
                self.problem(where, "a negative_share rule needs min_volume (posts)")
            else:
                checked = self.number(
                    item["min_volume"],
                    [*where, "min_volume"],
                    "min_volume",
                    low=1,
                    integer=True,
                )
                min_volume = int(checked or 0)
        within = timedelta(0)
        if kind == REPEAT_COMPLAINTS:
            if "within" not in item:
                self.problem(where, "a repeat_complaints rule needs within (e.g. 40m)")
            else:
                within = (
                    self.duration(item["within"], [*where, "within"], "within")
                    or within
                )
        rule_channels = self.texts(
            item.get("channels"), [*where, "channels"], "channels"
        )
        for position, channel in enumerate(rule_channels):
            if channel not in channels:
                self.problem(
                    [*where, "channels", position],
                    f"rule {name!r} refers to unknown channel {channel!r}",
                )
        team = item.get("team")
        if team is not None and team not in teams:
            self.problem(
                [*where, "team"], f"rule {name!r} refers to unknown team {team!r}"
            )
        min_priority = item.get("min_priority")
        if min_priority is not None and min_priority not in PRIORITIES:
            self.problem(
                [*where, "min_priority"],
                f"min_priority must be one of {', '.join(PRIORITIES)}",
            )
        if "description" in item and not isinstance(item["description"], str):
            self.problem([*where, "description"], "description must be text")
        if len(self.problems) > problems_before or name is None or threshold is None:
            return None
        assert window is not None
        return AlertRule(
            name=name,
            topic=topic,
            kind=kind,
            threshold=threshold,
            window_seconds=int(window.total_seconds()),
            min_volume=min_volume,
            within_seconds=int(within.total_seconds()),
            channels=tuple(rule_channels),
            team=team,
            min_priority=min_priority,
        )

    def threshold(
        self, kind: str, item: dict[Any, Any], where: list[Any]
    ) -> float | None:
        location = [*where, "threshold"]
        if "threshold" not in item:
            if kind in _DEFAULT_THRESHOLD:
                return _DEFAULT_THRESHOLD[kind]
            self.problem(where, f"a {kind} rule needs a threshold")
            return None
        value = item["threshold"]
        if kind == NEGATIVE_SHARE:
            return self.number(
                value,
                location,
                "threshold (share of posts)",
                low=0,
                high=1,
                low_open=True,
            )
        if kind == BURST:
            return self.number(
                value,
                location,
                "threshold (burst score)",
                low=0,
                high=20,
                low_open=True,
            )
        if kind == REPEAT_COMPLAINTS:
            return self.number(
                value, location, "threshold (posts by one author)", low=2, integer=True
            )
        return self.number(
            value, location, "threshold (posts per window)", low=1, integer=True
        )

    def load_routing(
        self, raw: Any, teams: Mapping[str, Team], topics: Sequence[WatchedTopic]
    ) -> Routing | None:
        body = self.mapping(raw, ["routing"], "routing")
        self.unknown(
            body, frozenset({"default_team", "topics"}), ["routing"], "routing"
        )
        default = body.get("default_team")
        if default is None:
            self.problem(
                ["routing"] if raw is not None else [], "routing needs default_team"
            )
        elif default not in teams:
            self.problem(
                ["routing", "default_team"], f"default_team {default!r} is not a team"
            )
        names = {topic.name for topic in topics}
        topic_teams = {}
        routes = self.mapping(body.get("topics"), ["routing", "topics"], "topics")
        for topic, team in routes.items():
            location = ["routing", "topics", topic]
            if topic not in names:
                self.problem(location, f"routing names unknown topic {topic!r}")
            if team not in teams:
                self.problem(
                    location, f"topic {topic!r} routed to unknown team {team!r}"
                )
            topic_teams[str(topic)] = str(team)
        return Routing(teams=teams, topic_teams=topic_teams, default_team=str(default))

    def load_sla(self, raw: Any) -> SlaPolicy | None:
        defaults = SlaPolicy()
        ack, resolve = dict(defaults.ack), dict(defaults.resolve)
        for priority, body in self.mapping(raw, ["sla"], "sla").items():
            where = ["sla", priority]
            if priority not in PRIORITIES:
                self.problem(
                    where,
                    f"unknown priority {priority!r}; expected {', '.join(PRIORITIES)}",
                )
                continue
            body = self.mapping(body, where, f"sla {priority}")
            self.unknown(body, frozenset({"ack", "resolve"}), where, f"sla {priority}")
            for key, table in (("ack", ack), ("resolve", resolve)):
                if key in body:
                    value = self.duration(body[key], [*where, key], f"{priority} {key}")
                    if value is not None:
                        table[priority] = value
            if ack[priority] > resolve[priority]:
                self.problem(
                    where, f"{priority} ack deadline is after its resolve deadline"
                )
        for earlier, later in zip(PRIORITIES, PRIORITIES[1:], strict=False):
            for key, table in (("ack", ack), ("resolve", resolve)):
                if table[earlier] > table[later]:
                    self.problem(
                        ["sla", earlier],
                        f"{earlier} {key} "
                        f"({table[earlier]}) is longer than {later}'s "
                        f"({table[later]})",
                    )
        return SlaPolicy(ack=ack, resolve=resolve)

    def load_settings(self, raw: Any) -> TicketSettings | None:
        body = self.mapping(raw, ["tickets"], "tickets")
        where = ["tickets"]
        allowed = frozenset(
            {
                "cooldown",
                "flapping",
                "growth",
                "escalate_every",
                "evidence_limit",
                "history_limit",
            }
        )
        self.unknown(body, allowed, where, "tickets")
        values: dict[str, Any] = {}
        if "cooldown" in body:
            cooldown = self.duration(body["cooldown"], [*where, "cooldown"], "cooldown")
            if cooldown is not None:
                values["cooldown"] = cooldown
        flapping = self.mapping(body.get("flapping"), [*where, "flapping"], "flapping")
        self.unknown(
            flapping,
            frozenset({"max_opens", "within"}),
            [*where, "flapping"],
            "flapping",
        )
        if "max_opens" in flapping:
            opens = self.number(
                flapping["max_opens"],
                [*where, "flapping", "max_opens"],
                "max_opens",
                low=1,
                integer=True,
            )
            if opens is not None:
                values["flap_max_opens"] = int(opens)
        if "within" in flapping:
            within = self.duration(
                flapping["within"], [*where, "flapping", "within"], "flapping within"
            )
            if within is not None:
                values["flap_window"] = within
        numbers = {
            "growth": ("growth_ratio", 0.0, True, False),
            "escalate_every": ("escalate_every", 2, False, True),
            "evidence_limit": ("evidence_limit", 1, False, True),
            "history_limit": ("history_limit", 1, False, True),
        }
        for key, (attribute, low, low_open, integer) in numbers.items():
            if key in body:
                value = self.number(
                    body[key],
                    [*where, key],
                    key,
                    low=low,
                    low_open=low_open,
                    integer=integer,
                )
                if value is not None:
                    values[attribute] = value
        return TicketSettings(**values)

    def load_silences(
        self, raw: Any, topics: Sequence[WatchedTopic], rules: Sequence[AlertRule]
    ) -> list[Silence]:
        silences: list[Silence] = []
        seen: set[str] = set()
        names = {topic.name for topic in topics}
        allowed = frozenset(
            {"id", "topic", "keyword", "rule", "starts", "expires", "author", "reason"}
        )
        for index, body in enumerate(self.sequence(raw, ["silences"], "silences")):
            where: list[Any] = ["silences", index]
            if not isinstance(body, dict):
                self.problem(where, "a silence must be a mapping")
                continue
            before = len(self.problems)
            self.unknown(body, allowed, where, "a silence")
            silence_id = self.text(body.get("id"), [*where, "id"], "silence id")
            if silence_id is not None and silence_id in seen:
                self.problem([*where, "id"], f"duplicate silence id {silence_id!r}")
            seen.add(silence_id or "")
            matchers = {}
            for key in ("topic", "keyword", "rule"):
                if key in body:
                    matchers[key] = self.text(body[key], [*where, key], key)
            if not matchers:
                self.problem(where, "a silence needs a topic, keyword or rule to match")
            topic, rule = matchers.get("topic"), matchers.get("rule")
            if topic is not None and topic not in names:
                self.problem([*where, "topic"], f"silence on unknown topic {topic!r}")
            if rule is not None and not any(
                r.name == rule and topic in (None, r.topic) for r in rules
            ):
                self.problem([*where, "rule"], f"silence on unknown rule {rule!r}")
            starts = self.moment(body.get("starts"), [*where, "starts"], "starts")
            expires = self.moment(body.get("expires"), [*where, "expires"], "expires")
            if starts and expires and expires <= starts:
                self.problem(
                    [*where, "expires"], "a silence must expire after it starts"
                )
            author = self.text(body.get("author"), [*where, "author"], "author")
            reason = self.text(body.get("reason"), [*where, "reason"], "reason")
            if len(self.problems) > before:
                continue
            assert silence_id and starts and expires and author and reason
            silences.append(
                Silence(
                    silence_id,
                    starts,
                    expires,
                    author,
                    reason,
                    topic,
                    matchers.get("keyword"),
                    rule,
                )
            )
        return silences

    def load_maintenance(
        self, raw: Any, topics: Sequence[WatchedTopic]
    ) -> list[MaintenanceWindow]:
        windows: list[MaintenanceWindow] = []
        names = {topic.name for topic in topics}
        seen: set[str] = set()
        allowed = frozenset({"name", "topics", "start", "end", "daily"})
        items = self.sequence(raw, ["maintenance"], "maintenance")
        for index, body in enumerate(items):
            where: list[Any] = ["maintenance", index]
            if not isinstance(body, dict):
                self.problem(where, "a maintenance window must be a mapping")
                continue
            before = len(self.problems)
            self.unknown(body, allowed, where, "a maintenance window")
            name = self.text(body.get("name"), [*where, "name"], "name")
            if name is not None and name in seen:
                self.problem([*where, "name"], f"duplicate maintenance name {name!r}")
            seen.add(name or "")
            covered = self.texts(body.get("topics"), [*where, "topics"], "topics")
            for position, topic in enumerate(covered):
                if topic not in names:
                    self.problem(
                        [*where, "topics", position],
                        f"maintenance on unknown topic {topic!r}",
                    )
            start = end = None
            if "start" in body:
                start = self.moment(body["start"], [*where, "start"], "start")
            if "end" in body:
                end = self.moment(body["end"], [*where, "end"], "end")
            daily = None
            if "daily" in body:
                daily = self.daily(body["daily"], [*where, "daily"])
            elif "start" not in body or "end" not in body:
                self.problem(
                    where,
                    "a maintenance window needs start and end, or "
                    "daily: 'HH:MM-HH:MM +08:00'",
                )
            if start and end and end <= start:
                self.problem([*where, "end"], "maintenance ends before it starts")
            if len(self.problems) > before:
                continue
            assert name is not None
            daily_from, daily_until, tz = daily or (None, None, None)
            windows.append(
                MaintenanceWindow(
                    name, tuple(covered), start, end, daily_from, daily_until, tz
                )
            )
        return windows

    def daily(
        self, value: Any, location: list[Any]
    ) -> tuple[time, time, timezone] | None:
        match = _DAILY.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            self.problem(
                location, f"daily must look like '02:00-04:00 +08:00', got {value!r}"
            )
            return None
        from_h, from_m, until_h, until_m, offset = match.groups()[:5]
        try:
            start = time(int(from_h), int(from_m))
            until = time(int(until_h), int(until_m))
        except ValueError:
            self.problem(location, f"daily {value!r} has an impossible time of day")
            return None
        if start == until:
            self.problem(location, "daily window is empty (start equals end)")
            return None
        try:
            return start, until, parse_utc_offset(offset)
        except ValueError as exc:
            self.problem(location, str(exc))
            return None
