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
            window: 5m            # whole buckets, at most 1d; default 5m
            channels: [ops-webhook]
            team: facilities      # optional, overrides routing
            min_priority: P3      # optional floor
            group_by: topic,rule  # optional incident key; default topic
          - {name: 负面占比, kind: negative_share, threshold: 0.8, min_volume: 15}
          - {name: 突发, kind: burst, threshold: 4}        # -log10 probability
          - {name: 新词, kind: emerging_keyword, threshold: 5}  # posts, default 3
          - {name: 重复投诉, kind: repeat_complaints, threshold: 3, within: 40m}
    owners:                       # optional contact book; if given, every
      王工: {email: w@x.cn,       # member and escalation contact must be in it
            mobile: "13800000000",  # SMS, and DingTalk @ if no dingtalk id
            dingtalk: wang01,     # DingTalk user id (or mobile) to @mention
            feishu: ou_123}       # Feishu open_id to <at user_id=...>
    teams:
      facilities:
        members: [王工, 李工]
        strategy: least_loaded    # or round_robin (default)
        escalation: [张经理]
    channels:
      ops-webhook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}"}
      ops-sms:                    # Alibaba Cloud SendSms (or kind: http_sms,
        kind: aliyun_sms          #   url, secret, body: {mobile: "{mobile}", ...})
        access_key_id: "${ALERT_SMS_KEY_ID}"
        access_key_secret: "${ALERT_SMS_KEY_SECRET}"
        sign_name: 舆情监控
        template_code: SMS_123456789
        template_params: {content: text}   # optional; the default
        per_recipient_per_hour: 6          # optional; the default
    personal:                     # optional: tell the assignee personally
      email: ops-mail             # an email channel: its SMTP, their address
      sms: ops-sms                # an SMS channel: their mobile
      chat: true                  # @ them in DingTalk/Feishu group notices
      on: [opened, assigned, transferred, escalated]   # the default
    routing: {default_team: facilities, topics: {空调异味: facilities}}
    sla: {P1: {ack: 5m, resolve: 1h}}                   # overrides per priority
    tickets: {cooldown: 30m, flapping: {max_opens: 3, within: 2h},
              group_window: 1h, group_wait: 1s, group_interval: 5m,
              repeat_interval: 4h}
    silences:
      - {id: S-1, topic: 停车, starts: 2026-11-20T08:00:00+08:00,
         expires: 2026-11-21T08:00:00+08:00, author: 小李, reason: 已知问题}
    maintenance:
      - {name: nightly, topics: [空调异味], daily: "02:00-04:00 +08:00"}
      - {name: upgrade, start: 2026-11-22T01:00:00+08:00,
         end: 2026-11-22T03:00:00+08:00}

Durations are written ``30s``, ``5m``, ``1h``, ``2d`` (or combined, ``1h30m``).
The worker counts posts in buckets (``MONITOR_BUCKET_SECONDS``) and sums whole
buckets, sliding by one bucket: a rule's ``window`` (and the ``within`` of
``repeat_complaints``) is a whole number of buckets, at most a day. ``burst``
and ``emerging_keyword`` rules run on the burst detector's window
(``MONITOR_WINDOW_SECONDS``): their ``window`` defaults to it and must equal it.

Channel settings may name environment variables as ``${NAME}``; they are kept
as references here and resolved by :meth:`Channel.resolve` with the
environment the caller passes in (settings stay the only reader of
``os.environ``). Only names starting with ``ALERT_`` (:data:`ENV_NAME_PREFIX`)
may be referred to, so a rules file cannot send the worker's own secrets
(``MONITOR_ES_API_KEY``, say) to a webhook. Problems with channel settings
never repeat the setting's value: it may hold a token or a password.

The file is checked by the pydantic models of :mod:`monitor.config.rulesmodel`;
what they accept becomes the plain dataclasses of :mod:`monitor.analysis.tickets`
(and :class:`Owner`, :class:`Channel` and :class:`RuleSet` here), which know
nothing of pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.analysis.tickets.model import AlertRule, default_ticket_id
from monitor.analysis.tickets.policy import TicketPolicy, TicketSettings
from monitor.analysis.tickets.routing import Routing, Team
from monitor.analysis.tickets.silences import MaintenanceWindow, Silence
from monitor.analysis.tickets.sla import SlaPolicy
from monitor.analysis.topics import WatchedTopic

# The schema's shared parsers and channel check, under the names that show the
# rules file has none of its own (tests/unit/test_one_home.py).
from monitor.config.channels import check_channel_value as check_channel_value
from monitor.config.durations import parse_duration as parse_duration
from monitor.config.durations import parse_utc_offset as parse_utc_offset
from monitor.config.rulesmodel import (
    DEFAULT_PERSONAL_ON,
    ENV_NAME_PREFIX,
    ENV_REF,
    PERSONAL_PREFIX,
    Names,
    RulesFile,
    describe,
    texts,
)
from monitor.config.watchlist import read_topic
from monitor.config.yamlfile import YamlDocument, load_yaml
from monitor.errors import ConfigError

__all__ = [
    "ENV_NAME_PREFIX",
    "PERSONAL_PREFIX",
    "Channel",
    "Owner",
    "PersonalNotices",
    "RuleSet",
    "load_rules",
]

_PROBLEM_LINE = re.compile(r" line (\d+): ")


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
class PersonalNotices:
    """Which channels carry personal notices (the rules file's ``personal:``).

    A personal notice is queued in the outbox under the channel name
    ``@<person>/email`` or ``@<person>/sms`` (:func:`personal_channel`; no
    configured channel name starts with ``@``); the notifier sends it with
    the named channel's settings to that person's address or mobile from the
    owners book, read when it is sent.

    Attributes:
        email: An ``email`` channel: its SMTP settings, the person's
            ``email`` as the only recipient.
        sms: An SMS channel (``aliyun_sms`` or ``http_sms``): to the
            person's ``mobile``.
        chat: @mention the assignee in the DingTalk/Feishu group notices of
            the ticket's channels (their ``dingtalk``/``feishu`` contact).
        on: When: ``opened``, ``reopened``, ``assigned``, ``transferred``,
            ``escalated`` (an escalation also tells the escalation contact).

    """

    email: str | None = None
    sms: str | None = None
    chat: bool = True
    on: frozenset[str] = frozenset(DEFAULT_PERSONAL_ON)

    def channel_for(self, via: str) -> str | None:
        """Return the configured channel carrying ``via`` (``email``/``sms``)."""
        return {"email": self.email, "sms": self.sms}.get(via)


def personal_channel(person: str, via: str) -> str:
    """Return the outbox channel name of a personal notice: ``@<person>/<via>``."""
    return f"{PERSONAL_PREFIX}{person}/{via}"


def parse_personal_channel(name: str) -> tuple[str, str] | None:
    """Return ``(person, via)`` of ``@<person>/<via>``, else ``None``."""
    if not name.startswith(PERSONAL_PREFIX) or "/" not in name:
        return None
    person, _, via = name[len(PERSONAL_PREFIX) :].rpartition("/")
    return (person, via) if person and via else None


@dataclass(frozen=True)
class Channel:
    """A notification channel as configured, secrets still as references.

    Attributes:
        name: Name rules refer to.
        kind: One of :data:`~monitor.config.channels.CHANNEL_KINDS`.
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
            for value in texts(self.settings)
            for match in ENV_REF.finditer(value)
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
                return ENV_REF.sub(lambda match: env[match.group(1)], value)
            if isinstance(value, list | tuple):
                return [substitute(item) for item in value]
            if isinstance(value, Mapping):
                return {key: substitute(item) for key, item in value.items()}
            return value

        return {key: substitute(value) for key, value in self.settings.items()}


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
        stop_words: Words that are never hot words (``hot_words:
            stop_words``), beside the built-in stop list.
        personal: Personal notices (``personal:``); ``None``: none.

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
    stop_words: tuple[str, ...] = ()
    personal: PersonalNotices | None = None

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


def load_rules(
    path: Path, *, bucket_seconds: int = 60, detector_window_seconds: int = 300
) -> RuleSet:
    """Read and validate a rules file.

    Args:
        path: The YAML file.
        bucket_seconds: The worker's count bucket (``Settings.bucket_seconds``):
            every rule window is a whole number of them.
        detector_window_seconds: The burst detector's window
            (``Settings.window_seconds``), the window of every ``burst`` and
            ``emerging_keyword`` rule.

    Returns:
        The validated rule set.

    Raises:
        ConfigError: With one ``"<file> line N: <reason>"`` per problem.

    """
    document = load_yaml(path)
    data = document.data
    if not isinstance(data, dict):
        raise ConfigError([f"{document.where([])}: expected a mapping with 'topics:'"])
    problems = _duplicate_keys(document) + _duplicate_names(document)
    # Keywords are checked by the watch list's reader; the rest by the models.
    topics = []
    for name, body in _mapping(data.get("topics")).items():
        topic, found = read_topic(name, body, more_keys=frozenset({"rules"}))
        for where, reason in found:
            problems.append(f"{document.where(['topics', name, *where])}: {reason}")
        if topic is not None:
            topics.append(topic)
    names = Names.of(data, bucket_seconds, detector_window_seconds)
    try:
        checked = RulesFile.model_validate(data, context={"names": names})
    except ValidationError as exc:
        problems += [describe(document, error) for error in exc.errors()]
    if problems:
        raise ConfigError(sorted(problems, key=_line_number))
    routing = checked.routing_and_teams()
    return RuleSet(
        path=document.path,
        topics=tuple(topics),
        rules=checked.alert_rules(),
        owners={
            name: Owner(name, {str(key): value for key, value in book.items()})
            for name, book in checked.owners.items()
        },
        teams=routing.teams,
        channels={
            name: Channel(name, channel.kind, channel.settings())
            for name, channel in checked.channels.items()
        },
        routing=routing,
        sla=checked.sla_policy(),
        settings=checked.tickets.ticket_settings(),
        silences=tuple(silence.silence() for silence in checked.silences),
        maintenance=tuple(window.window() for window in checked.maintenance),
        stop_words=tuple(checked.hot_words.stop_words),
        personal=(
            PersonalNotices(
                email=checked.personal.email,
                sms=checked.personal.sms,
                chat=checked.personal.chat,
                on=frozenset(checked.personal.on),
            )
            if checked.personal is not None
            else None
        ),
    )


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _line_number(problem: str) -> int:
    match = _PROBLEM_LINE.search(problem)
    return int(match.group(1)) if match else 0


def _duplicate_keys(document: YamlDocument) -> list[str]:
    # The parsed data keeps only the last of two equal keys, so a repeated
    # topic, team or channel name would silently replace the first one. The
    # document's own node tree is walked: reading the file again could see
    # another version of it (and load_yaml's limits would not apply).
    problems = []
    todo = [document.node] if document.node is not None else []
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                line, key = key_node.start_mark.line + 1, key_node.value
                if key in first:
                    problems.append(
                        f"{document.path} line {line}: duplicate key {key!r} "
                        f"(first at line {first[key]})"
                    )
                first.setdefault(key, line)
                todo.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return problems


def _duplicate_names(document: YamlDocument) -> list[str]:
    # On the parsed data, so that a duplicate is reported whatever else is wrong.
    data = document.data
    lists: list[tuple[tuple[Any, ...], str, str]] = [
        (("topics", topic, "rules"), "name", "rule name")
        for topic in _mapping(data.get("topics"))
    ]
    lists += [(("silences",), "id", "silence id")]
    lists += [(("maintenance",), "name", "maintenance name")]
    problems = []
    for where, key, what in lists:
        items: Any = data
        for part in where:
            items = _mapping(items).get(part)
        seen: set[str] = set()
        for index, item in enumerate(items if isinstance(items, list) else []):
            name = _mapping(item).get(key)
            if isinstance(name, str) and name.strip() in seen:
                line = document.where([*where, index, key])
                problems.append(f"{line}: duplicate {what} {name.strip()!r}")
            elif isinstance(name, str):
                seen.add(name.strip())
    return problems
