"""The rules file's schema: pydantic models that check it, every problem at once.

:func:`monitor.config.rules.load_rules` validates the parsed file with
:class:`RulesFile` and turns what it accepts into the plain dataclasses of
:mod:`monitor.analysis.tickets` (which know nothing of pydantic). A problem is
located by its path in the file (``topics/空调异味/rules/0/window``), which
:func:`describe` turns into ``<file> line N: <reason>``; no reason repeats a
channel setting's value.

Names a rule or a team refers to (channels, teams, owners, topics) are checked
against the names the file defines, handed in as :class:`Names` in the
validation context, so a reference and its target are checked independently
and every broken one is reported.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Literal,
    Union,
    get_args,
    get_origin,
)

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from monitor.analysis.tickets.model import (
    ALL_POSTS,
    PRIORITIES,
    AlertRule,
    InvalidPolicyError,
    Priority,
    RuleKind,
    group_fields,
)
from monitor.analysis.tickets.outbox import NoticeClock
from monitor.analysis.tickets.policy import TicketSettings
from monitor.analysis.tickets.routing import STRATEGIES, Routing, Strategy, Team
from monitor.analysis.tickets.silences import MaintenanceWindow, Silence
from monitor.analysis.tickets.sla import SlaPolicy
from monitor.config.channels import (
    CHANNEL_KEYS,
    MOBILE,
    SMS_CHANNEL_KINDS,
    check_channel_combination,
    check_channel_value,
)
from monitor.config.durations import UTC_OFFSET, parse_duration, parse_utc_offset
from monitor.config.yamlfile import YamlDocument

#: The prefix every ``${NAME}`` in channel settings must start with.
ENV_NAME_PREFIX = "ALERT_"
#: A ``${NAME}`` reference in a channel setting.
ENV_REF = re.compile(r"\$\{([^}]*)\}")
#: Longest rule window (and ``within``).
MAX_WINDOW_SECONDS = 86_400
#: Window of a rule that gives none (but burst and emerging_keyword rules),
#: rounded up to whole buckets.
DEFAULT_WINDOW_SECONDS = 300

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DAILY = re.compile(
    rf"(\d{{1,2}}):(\d{{2}})\s*-\s*(\d{{1,2}}):(\d{{2}})\s*({UTC_OFFSET.pattern})"
)


def texts(value: Any) -> list[str]:
    """Return every text in a setting's value (lists and mappings walked)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for item in value.values() for text in texts(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in texts(item)]
    return []


@dataclass(frozen=True)
class Names:
    """What the models check against: names in the file, buckets, windows."""

    bucket: int
    detector: int
    topics: frozenset[str]
    rules: frozenset[tuple[Any, Any]]
    owners: frozenset[str]
    teams: frozenset[str]
    channels: frozenset[str]

    @classmethod
    def of(cls, data: dict[Any, Any], bucket: int, detector: int) -> Names:
        """Return what ``data`` (the parsed file) names, whatever is wrong in it."""

        def mapping(value: Any) -> dict[Any, Any]:
            return value if isinstance(value, dict) else {}

        topics = mapping(data.get("topics"))
        rules = frozenset(
            (topic, rule.get("name"))
            for topic, body in topics.items()
            if isinstance(mapping(body).get("rules"), list)
            for rule in body["rules"]
            if isinstance(rule, dict)
        )
        return cls(
            bucket,
            detector,
            frozenset(topics),
            rules,
            *(
                frozenset(mapping(data.get(key)))
                for key in ("owners", "teams", "channels")
            ),
        )


def _names(info: ValidationInfo) -> Names:
    context: dict[str, Names] = info.context or {}
    return context["names"]


def _problems(found: list[tuple[tuple[Any, ...], str]]) -> None:
    """Raise each ``(location, reason)``; a location is relative to the value."""
    if found:
        raise ValidationError.from_exception_data(
            "rules file",
            [
                InitErrorDetails(
                    type=PydanticCustomError("rules_file", "{reason}", {"reason": why}),
                    loc=at,
                    input=None,
                )
                for at, why in found
            ],
        )


def _text(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{info.field_name} must be non-empty text, got {value!r}")
    return value.strip()


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"name {value!r} must be text; quote it")
    return value


def _contact(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("a contact must be text")
    return str(value)


def _known(what: str, names: str) -> PlainValidator:
    """Check a name is among the file's ``names`` (topics, teams, ...)."""

    def check(value: Any, info: ValidationInfo) -> str:
        name = _text(value, info)
        known = sorted(getattr(_names(info), names))
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown {what} {name!r}{hint}")
        return name

    return PlainValidator(check)


def _owner(value: Any, info: ValidationInfo) -> str:
    person, owners = _text(value, info), _names(info).owners
    if owners and person not in owners:
        raise ValueError(f"{person!r} is not in owners")
    return person


def _number(
    what: str,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    integer: bool = False,
) -> PlainValidator:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(
            value, int if integer else int | float
        ):
            number = "a whole number" if integer else "a number"
            raise ValueError(f"{what} must be {number}, got {value!r}")
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high):
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            bound += f" and <= {high:g}" if high is not None else ""
            raise ValueError(f"{what} must be {bound}, got {value!r}")
        return value

    return PlainValidator(check)


def _whole(what: str, low: int) -> PlainValidator:
    return _number(what, low=low, integer=True)


def _one_of(what: str, choices: tuple[str, ...]) -> PlainValidator:
    def check(value: Any) -> str:
        if value not in choices:
            listed = ", ".join(map(str, choices))
            raise ValueError(f"{what} must be one of {listed}, got {value!r}")
        return str(value)

    return PlainValidator(check)


def _seconds(value: Any) -> float:
    return parse_duration(value).total_seconds()


def _wait(value: Any) -> float:
    # Zero is a wait too: every notice goes at once.
    return 0.0 if re.fullmatch(r"\s*0+[smhd]?\s*", str(value)) else _seconds(value)


def _span(span: float | timedelta) -> str:
    """Return a duration as the file would write it (``300`` -> ``5m``)."""
    seconds = int(span.total_seconds() if isinstance(span, timedelta) else span)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _buckets(value: Any, info: ValidationInfo) -> int:
    """Check a window (or look-back) is whole buckets, at most a day."""
    seconds, bucket = int(_seconds(value)), _names(info).bucket
    what = f"{info.field_name} {str(value).strip()}"
    if seconds > MAX_WINDOW_SECONDS:
        raise ValueError(f"{what} is longer than {_span(MAX_WINDOW_SECONDS)}")
    if seconds % bucket:
        size = "shorter than one" if seconds < bucket else "not a whole number of"
        raise ValueError(
            f"{what} is {size} {bucket}s bucket{'s' * (seconds > bucket)} "
            "(MONITOR_BUCKET_SECONDS)"
        )
    return seconds


def _moment(value: Any, info: ValidationInfo) -> datetime:
    what = info.field_name
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an ISO 8601 time") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError(f"{what} needs a time and UTC offset, not a date")
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a time like 2026-11-20T08:00+08:00")
    if value.tzinfo is None:
        raise ValueError(f"{what} {value.isoformat()} needs a UTC offset")
    return value


def _daily(value: Any) -> tuple[time, time, timezone]:
    match = _DAILY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"daily must look like '02:00-04:00 +08:00', got {value!r}")
    from_h, from_m, until_h, until_m, offset = match.groups()[:5]
    try:
        start, until = time(int(from_h), int(from_m)), time(int(until_h), int(until_m))
    except ValueError:
        raise ValueError(f"daily {value!r} has an impossible time of day") from None
    if start == until:
        raise ValueError("daily window is empty (start equals end)")
    return start, until, parse_utc_offset(offset)


def _group_by(value: Any) -> str:
    try:
        return ",".join(group_fields(value if isinstance(value, str) else ""))
    except InvalidPolicyError as exc:
        raise ValueError(exc.reason) from None


def _channel_setting(value: Any, info: ValidationInfo) -> Any:
    """Check one channel setting as written, never repeating its value."""
    key, problems = str(info.field_name), []
    if isinstance(value, str) and ENV_REF.search(value):
        # The value is checked once resolved, by the notifier at start-up
        # (with the same check_channel_value).
        if key in {"url", "webhook"} and not (
            ENV_REF.fullmatch(value.strip())
            or value.startswith(("http://", "https://"))
        ):
            problems.append(f"{key} must be an http(s) URL or a ${{ALERT_...}}")
    else:
        check_channel_value(key, value)
    for text in texts(value):
        for match in ENV_REF.finditer(text):
            if not _ENV_NAME.fullmatch(match.group(1)):
                problems.append(
                    f"bad environment reference {match.group(0)!r} in {key}; "
                    "use ${NAME} with letters, digits and _"
                )
            elif not match.group(1).startswith(ENV_NAME_PREFIX):
                problems.append(
                    f"{key} refers to environment variable {match.group(1)}; channel "
                    f"settings may only refer to {ENV_NAME_PREFIX}* variables"
                )
        if "${" in ENV_REF.sub("", text):
            problems.append(f"unclosed '${{' in {key}")
    if problems:
        raise ValueError("; ".join(problems))
    return value


_Text = Annotated[str, PlainValidator(_text)]
_Name = Annotated[str, PlainValidator(_name)]
_Duration = Annotated[timedelta, PlainValidator(parse_duration)]
_Seconds = Annotated[float, PlainValidator(_seconds)]
_Moment = Annotated[datetime, PlainValidator(_moment)]
_Owner = Annotated[str, PlainValidator(_owner)]
_TopicRef = Annotated[str, _known("topic", "topics")]
_TeamRef = Annotated[str, _known("team", "teams")]
_ChannelRef = Annotated[str, _known("channel", "channels")]
_Problems = list[tuple[tuple[Any, ...], str]]


# --- the file's models -------------------------------------------------------------


class _Model(BaseModel):
    """A mapping of the file: unknown keys refused, ``key:`` alone means unset."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    #: What it is, in messages; ``{key}`` is its key in the enclosing mapping.
    label: ClassVar[str] = "this mapping"
    #: Whether ``key:`` with no value means the key is not there.
    empty_is_unset: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _unset_empty_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.empty_is_unset:
            return {key: value for key, value in data.items() if value is not None}
        return data


class _Rule(_Model):
    """What rules of every kind have; each kind adds its threshold (and more)."""

    label = "a rule"
    on_detector: ClassVar[bool] = False  # runs on the burst detector's window
    name: _Text
    kind: str
    threshold: float
    window: int = Field(None, validate_default=True)
    channels: list[_ChannelRef] = []
    team: _TeamRef | None = None
    min_priority: Annotated[str, _one_of("min_priority", PRIORITIES)] | None = None
    description: str | None = None
    group_by: Annotated[str, PlainValidator(_group_by)] = "topic"

    @field_validator("window", mode="plain")
    @classmethod
    def _window(cls, value: Any, info: ValidationInfo) -> int:
        names = _names(info)
        if not cls.on_detector:
            if value is None:
                return -(-DEFAULT_WINDOW_SECONDS // names.bucket) * names.bucket
            return _buckets(value, info)
        if value is not None and _seconds(value) != names.detector:
            raise ValueError(
                f"{cls.label} runs on the detector window: window must be "
                f"{_span(names.detector)} (MONITOR_WINDOW_SECONDS), "
                f"got {str(value).strip()}"
            )
        return names.detector

    def alert_rule(self, topic: str) -> AlertRule:
        return AlertRule(
            name=self.name,
            topic=topic,
            kind=RuleKind(self.kind),
            threshold=self.threshold,
            window_seconds=self.window,
            min_volume=getattr(self, "min_volume", 0),
            within_seconds=getattr(self, "within", 0),
            channels=tuple(self.channels),
            team=self.team,
            min_priority=Priority(self.min_priority) if self.min_priority else None,
            group_by=self.group_by,
        )


class _NegativeVolume(_Rule):
    label = "a negative_volume rule"
    kind: Literal["negative_volume"]
    threshold: Annotated[
        float, _number("threshold (posts per window)", low=1, integer=True)
    ]


class _NegativeShare(_Rule):
    label = "a negative_share rule"
    kind: Literal["negative_share"]
    threshold: Annotated[
        float, _number("threshold (share of posts)", low=0, high=1, low_open=True)
    ]
    min_volume: Annotated[int, _number("min_volume", low=1, integer=True)] = Field(
        description="posts in the window before it may fire"
    )


class _Burst(_Rule):
    label = "a burst rule"
    on_detector = True
    kind: Literal["burst"]
    threshold: Annotated[
        float, _number("threshold (burst score)", low=0, high=20, low_open=True)
    ]


class _EmergingKeyword(_Rule):
    label = "an emerging_keyword rule"
    on_detector = True
    kind: Literal["emerging_keyword"]
    threshold: Annotated[
        float, _number("threshold (posts per window)", low=1, integer=True)
    ] = 3


class _RepeatComplaints(_Rule):
    label = "a repeat_complaints rule"
    kind: Literal["repeat_complaints"]
    threshold: Annotated[
        float, _number("threshold (posts by one author)", low=2, integer=True)
    ]
    within: Annotated[int, PlainValidator(_buckets)] = Field(description="e.g. 40m")


class _HotWord(_Rule):
    label = "a hot_word rule"
    kind: Literal["hot_word"]
    threshold: Annotated[
        float, _number("threshold (posts with the word)", low=2, integer=True)
    ] = 5


class _GlobalHotWord(_HotWord):
    """A ``hot_words:`` rule: over every post, one incident per word by default."""

    label = "a hot_words rule"
    kind: Literal["hot_word"] = "hot_word"
    group_by: Annotated[str, PlainValidator(_group_by)] = "topic,keyword"


class _HotWords(_Model):
    label = "hot_words"
    stop_words: list[_Text] = []
    rules: list[_GlobalHotWord] = []


class _Topic(_Model):
    # Its keywords are read_topic's (see load_rules), which also reports an
    # entry that is not a mapping.
    model_config = ConfigDict(extra="ignore")
    label = "topic {key!r}"
    rules: list[
        Annotated[
            _NegativeVolume
            | _NegativeShare
            | _Burst
            | _EmergingKeyword
            | _RepeatComplaints
            | _HotWord,
            Field(discriminator="kind"),
        ]
    ] = []

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        return data if isinstance(data, dict) else {}


class _Channel(_Model):
    """A channel; :func:`_channel_kind` makes a model per kind from CHANNEL_KEYS."""

    label = "a channel"
    # An empty setting is refused, not dropped: `secret:` left blank must not
    # silently send unsigned.
    empty_is_unset = False
    kind: str

    def settings(self) -> dict[str, Any]:
        return self.model_dump(exclude={"kind"}, exclude_unset=True)

    @model_validator(mode="after")
    def _combination(self) -> _Channel:
        check_channel_combination(self.kind, self.settings())
        return self


def _channel_kind(kind: str) -> type[_Channel]:
    required, optional = CHANNEL_KEYS[kind]
    setting = Annotated[Any, PlainValidator(_channel_setting)]
    fields: dict[str, Any] = {"kind": (Literal[kind], ...)}
    fields |= {
        key: (setting, ... if key in required else None)
        for key in sorted(required | optional)
    }
    model: type[_Channel] = create_model(
        f"_{kind.title()}Channel", __base__=_Channel, **fields
    )
    model.label = f"a {kind} channel"
    return model


if TYPE_CHECKING:
    _AnyChannel = _Channel
else:
    _AnyChannel = Annotated[
        Union[tuple(_channel_kind(kind) for kind in CHANNEL_KEYS)],  # noqa: UP007
        Field(discriminator="kind"),
    ]


class _Team(_Model):
    label = "a team"
    members: list[_Owner]
    strategy: Annotated[str, _one_of("strategy", STRATEGIES)] = "round_robin"
    escalation: tuple[_Owner, ...] = ()

    @field_validator("members")
    @classmethod
    def _some_members_once(cls, members: list[str]) -> list[str]:
        if not members:
            raise ValueError("needs at least one member")
        if len(set(members)) != len(members):
            raise ValueError("lists a member twice")
        return members


class _Routing(_Model):
    label = "routing"
    default_team: _TeamRef
    topics: dict[_TopicRef, _TeamRef] = {}


class _Deadlines(_Model):
    label = "sla {key}"
    ack: _Duration | None = None
    resolve: _Duration | None = None


class _Flapping(_Model):
    label = "flapping"
    max_opens: Annotated[int | None, _whole("max_opens", 1)] = None
    within: _Duration | None = None


#: Ticket settings the file names otherwise than :class:`TicketSettings` does.
_TICKET_SETTINGS = {
    "growth": "growth_ratio",
    "group_window": "group_window_seconds",
    "group_wait": "group_wait_seconds",
    "group_interval": "group_interval_seconds",
    "repeat_interval": "repeat_interval_seconds",
}


class _Tickets(_Model):
    label = "tickets"
    cooldown: _Duration | None = None
    flapping: _Flapping = _Flapping()
    growth: Annotated[float | None, _number("growth", low=0, low_open=True)] = None
    escalate_every: Annotated[int | None, _whole("escalate_every", 2)] = None
    evidence_limit: Annotated[int | None, _whole("evidence_limit", 1)] = None
    history_limit: Annotated[int | None, _whole("history_limit", 1)] = None
    group_window: _Seconds | None = None
    group_wait: Annotated[float | None, PlainValidator(_wait)] = None
    group_interval: _Seconds | None = None
    repeat_interval: _Seconds | None = None
    notice_clock: Annotated[str | None, _one_of("notice_clock", tuple(NoticeClock))] = (
        None
    )
    #: Priorities whose close needs a review (复盘); default P1 and P2.
    review_required: list[Literal["P1", "P2", "P3", "P4"]] | None = None

    def ticket_settings(self) -> TicketSettings:
        """Return the settings; those the file leaves out keep their defaults."""
        values = self.model_dump(exclude={"flapping"})
        values = {
            _TICKET_SETTINGS.get(key, key): value for key, value in values.items()
        }
        values |= {"flap_max_opens": self.flapping.max_opens}
        values |= {"flap_window": self.flapping.within}
        if self.review_required is not None:
            values["review_required"] = frozenset(self.review_required)
        return TicketSettings(
            **{key: value for key, value in values.items() if value is not None}
        )


class _Silence(_Model):
    label = "a silence"
    id: _Text
    topic: _TopicRef | None = None
    keyword: _Text | None = None
    rule: _Text | None = None
    starts: _Moment
    expires: _Moment
    author: _Text
    reason: _Text

    @model_validator(mode="after")
    def _matches(self, info: ValidationInfo) -> _Silence:
        found: _Problems = []
        if self.topic is None and self.keyword is None and self.rule is None:
            found.append(((), "a silence needs a topic, keyword or rule to match"))
        if self.rule is not None and not any(
            name == self.rule and self.topic in (None, topic)
            for topic, name in _names(info).rules
        ):
            found.append((("rule",), f"silence on unknown rule {self.rule!r}"))
        if self.expires <= self.starts:
            found.append((("expires",), "a silence must expire after it starts"))
        _problems(found)
        return self

    def silence(self) -> Silence:
        return Silence(
            *(self.id, self.starts, self.expires, self.author, self.reason),
            *(self.topic, self.keyword, self.rule),
        )


class _Maintenance(_Model):
    label = "a maintenance window"
    name: _Text
    topics: tuple[_TopicRef, ...] = ()
    start: _Moment | None = None
    end: _Moment | None = None
    daily: Annotated[tuple[time, time, timezone], PlainValidator(_daily)] | None = None

    @model_validator(mode="after")
    def _times(self) -> _Maintenance:
        found: _Problems = []
        if self.daily is None and (self.start is None or self.end is None):
            found.append(
                (
                    (),
                    "a maintenance window needs start and end, or daily: "
                    "'HH:MM-HH:MM +08:00'",
                )
            )
        if self.start and self.end and self.end <= self.start:
            found.append((("end",), "maintenance ends before it starts"))
        _problems(found)
        return self

    def window(self) -> MaintenanceWindow:
        daily = self.daily or (None, None, None)
        return MaintenanceWindow(self.name, self.topics, self.start, self.end, *daily)


#: When the assignee (and an escalation's contact) is told personally.
PERSONAL_OCCASIONS = ("opened", "reopened", "assigned", "transferred", "escalated")
DEFAULT_PERSONAL_ON = ("opened", "assigned", "transferred", "escalated")
#: A personal notice's channel name starts with this; configured names may not.
PERSONAL_PREFIX = "@"


class _Personal(_Model):
    label = "personal"
    email: _ChannelRef | None = None
    sms: _ChannelRef | None = None
    chat: bool = True
    on: tuple[Annotated[str, _one_of("on", PERSONAL_OCCASIONS)], ...] = (
        DEFAULT_PERSONAL_ON
    )

    @model_validator(mode="before")
    @classmethod
    def _on_key(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as true.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {
                ("on" if key is True else key): value for key, value in data.items()
            }
        return data


def _contact_book(book: dict[Any, str]) -> dict[Any, str]:
    found: _Problems = []
    email = book.get("email")
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        found.append((("email",), "email must be an address (name@host)"))
    mobile = book.get("mobile")
    if mobile is not None and not MOBILE.fullmatch(mobile.strip()):
        found.append((("mobile",), "mobile must be digits, with an optional +"))
    _problems(found)
    return book


class RulesFile(_Model):
    """The whole file."""

    label = "the rules file"
    topics: dict[Any, _Topic]
    # Documented contact keys: email, mobile, dingtalk (user id or mobile to
    # @), feishu (open_id to @); others are kept as they are.
    owners: dict[
        _Name,
        Annotated[
            dict[Any, Annotated[str, PlainValidator(_contact)]],
            AfterValidator(_contact_book),
        ],
    ] = {}
    teams: dict[_Name, _Team]
    channels: dict[_Name, _AnyChannel] = {}
    personal: _Personal | None = None
    routing: _Routing
    sla: dict[Annotated[str, _one_of("priority", PRIORITIES)], _Deadlines] = {}
    tickets: _Tickets = _Tickets()
    silences: list[_Silence] = []
    maintenance: list[_Maintenance] = []
    hot_words: _HotWords = _HotWords()

    @field_validator("topics")
    @classmethod
    def _some_topics(cls, topics: dict[Any, _Topic]) -> dict[Any, _Topic]:
        if not topics:
            raise ValueError("expected a non-empty 'topics:' mapping")
        return topics

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, channels: dict[str, Any]) -> dict[str, Any]:
        _problems(
            [
                (
                    (name,),
                    f"a channel name may not start with {PERSONAL_PREFIX!r} "
                    "(personal notices use @person/via)",
                )
                for name in channels
                if name.startswith(PERSONAL_PREFIX)
            ]
        )
        return channels

    @model_validator(mode="after")
    def _personal_kinds(self) -> RulesFile:
        if self.personal is None:
            return self
        found: _Problems = []
        for via, kinds in (("email", {"email"}), ("sms", SMS_CHANNEL_KINDS)):
            name = getattr(self.personal, via)
            channel = self.channels.get(name) if name else None
            if channel is not None and channel.kind not in kinds:
                found.append(
                    (
                        ("personal", via),
                        f"personal {via} channel {name!r} is a {channel.kind} "
                        f"channel; expected {' or '.join(sorted(kinds))}",
                    )
                )
        _problems(found)
        return self

    @field_validator("sla")
    @classmethod
    def _in_order(cls, sla: dict[str, _Deadlines]) -> dict[str, _Deadlines]:
        merged = _merged_sla(sla)
        ack, resolve = merged.ack, merged.resolve
        found: _Problems = [
            ((priority,), f"{priority} ack deadline is after its resolve deadline")
            for priority in map(Priority, sla)
            if ack[priority] > resolve[priority]
        ]
        for earlier, later in zip(PRIORITIES, PRIORITIES[1:], strict=False):
            for key, table in (("ack", ack), ("resolve", resolve)):
                if table[earlier] > table[later]:
                    found.append(
                        (
                            (earlier,),
                            f"{earlier} {key} ({_span(table[earlier])}) is longer "
                            f"than {later}'s ({_span(table[later])})",
                        )
                    )
        _problems(found)
        return sla

    def alert_rules(self) -> tuple[AlertRule, ...]:
        """Return every topic's rules, in file order, then the ``hot_words`` rules.

        A ``hot_words`` rule watches every post: its topic is
        :data:`~monitor.analysis.tickets.model.ALL_POSTS`.
        """
        return tuple(
            rule.alert_rule(name)
            for name, topic in self.topics.items()
            for rule in topic.rules
        ) + tuple(rule.alert_rule(ALL_POSTS) for rule in self.hot_words.rules)

    def routing_and_teams(self) -> Routing:
        """Return the routing, its teams included."""
        teams = {
            name: Team(
                name, tuple(team.members), Strategy(team.strategy), team.escalation
            )
            for name, team in self.teams.items()
        }
        return Routing(teams, self.routing.topics, self.routing.default_team)

    def sla_policy(self) -> SlaPolicy:
        """Return the default deadlines with the file's overrides."""
        return _merged_sla(self.sla)


def _merged_sla(overrides: Mapping[str, _Deadlines]) -> SlaPolicy:
    ack, resolve = dict(SlaPolicy().ack), dict(SlaPolicy().resolve)
    for priority, deadlines in overrides.items():
        ack[Priority(priority)] = deadlines.ack or ack[Priority(priority)]
        resolve[Priority(priority)] = deadlines.resolve or resolve[Priority(priority)]
    return SlaPolicy(ack=ack, resolve=resolve)


# --- errors, each with its line ----------------------------------------------------


def describe(document: YamlDocument, error: Any) -> str:
    """Return ``<file> line N: <reason>`` of a pydantic error, never its value."""
    loc, kind = tuple(error["loc"]), error["type"]
    path, here = _walk(loc)
    parent_path, parent = _walk(loc[:-1])
    key = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        allowed = sorted(_fields(parent))
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "expected one of "
        reason = f"unknown key {key!r} in {_label(parent, parent_path)}; " + (
            hint if close else hint + ", ".join(allowed)
        )
    elif kind == "missing":
        about = _fields(parent)[key].description if key in _fields(parent) else None
        reason = f"{_label(parent, parent_path)} needs {key!r}" + (
            f" ({about})" if about else ""
        )
    elif kind == "union_tag_invalid":
        path.append("kind")
        reason = f"unknown kind {error['ctx']['tag']!r}; expected one of {_tags(here)}"
    elif kind == "union_tag_not_found":
        reason = f"{_label(here, path)} needs kind: one of {_tags(here)}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        reason = f"{_label(here, path)} must be a mapping"
    elif kind in ("list_type", "tuple_type"):
        reason = f"{key} must be a list"
    elif kind == "value_error":
        reason = str(error["ctx"]["error"])
    elif kind == "rules_file":
        reason = error["msg"]
    else:
        reason = f"{key}: {error['msg']}"
    if len(path) >= 2 and path[0] in ("channels", "teams"):
        reason = f"{path[0][:-1]} {path[1]!r}: {reason}"
    return f"{document.where(path)}: {reason}"


def _walk(loc: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """Follow an error location down the models.

    Returns:
        The path into the document (pydantic's union tags and ``[key]``
        markers left out) and the type found there (``None`` past the models).

    """
    path: list[Any] = []
    here: Any = RulesFile
    for part in loc:
        origin = get_origin(here)
        if part == "[key]":
            continue
        if origin in (Union, types.UnionType):  # the tag of a rule or channel kind
            here = next((m for m in get_args(here) if _tag(m) == part), None)
            continue
        path.append(part)
        if _is_model(here):
            here = _fields(here)[part].annotation if part in _fields(here) else None
        elif origin in (dict, list, tuple):
            here = get_args(here)[-1 if origin is dict else 0]
        else:
            here = None
        here = _unwrap(here)
    return path, here


def _unwrap(annotation: Any) -> Any:
    """Return the type under ``Annotated[...]`` and ``... | None``."""
    while True:
        args = get_args(annotation)
        if get_origin(annotation) is Annotated:
            annotation = args[0]
        elif get_origin(annotation) in (Union, types.UnionType) and type(None) in args:
            annotation = next(arg for arg in args if arg is not type(None))
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _fields(model: Any) -> dict[str, FieldInfo]:
    return dict(model.model_fields) if _is_model(model) else {}


def _tag(model: Any) -> str:
    return str(get_args(model.model_fields["kind"].annotation)[0])


def _tags(union: Any) -> str:
    return ", ".join(_tag(member) for member in get_args(union))


def _label(model: Any, path: list[Any]) -> str:
    if get_origin(model) in (Union, types.UnionType):  # of rule or channel kinds
        model = get_args(model)[0].__mro__[1]
    label = str(getattr(model, "label", "this mapping"))
    return label.format(key=path[-1] if path else "")
