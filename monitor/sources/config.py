"""The sources file (webhooks, HTTP polling, RSS feeds), every problem at once.

:func:`load_sources` parses the YAML file named by ``MONITOR_SOURCES`` (or given
to ``monitor sources check``), validates it with the pydantic models below and
resolves ``${SOURCE_*}`` secret references from the environment. Each problem
is reported as ``<file> line N: <reason>``; no reason repeats a secret's value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from monitor.config.durations import parse_duration
from monitor.config.yamlfile import YamlDocument, load_yaml
from monitor.errors import ConfigError

#: Letters, digits, ``-`` and ``_``; at most 64 characters.
SOURCE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A whole-value ``${SOURCE_NAME}`` secret reference.
SECRET_REF = re.compile(r"\$\{(SOURCE_[A-Z0-9_]+)\}")
#: A dotted path into a JSON document (``data.items``, ``user.nick``).
DOTTED_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
#: Post fields a ``map:`` may fill.
MAPPED_FIELDS = frozenset(
    {"id", "text", "published_at", "source", "author", "url", "topic"}
)


def _seconds(value: Any) -> float:
    return parse_duration(value).total_seconds()


def _secret(value: Any, info: ValidationInfo) -> SecretStr:
    """Resolve a ``${SOURCE_*}`` reference; a literal secret is refused."""
    if not isinstance(value, str):
        raise ValueError("a secret must be a ${SOURCE_*} reference")
    match = SECRET_REF.fullmatch(value.strip())
    if match is None:
        raise ValueError(
            "secrets are written as ${SOURCE_NAME} references to the environment, "
            "never inline"
        )
    env: Mapping[str, str] = (info.context or {}).get("env", {})
    name = match.group(1)
    if not env.get(name):
        raise ValueError(f"environment variable {name} is not set")
    return SecretStr(env[name])


def _header(value: Any, info: ValidationInfo) -> SecretStr:
    """Resolve the ``${SOURCE_*}`` references in a header value."""
    if not isinstance(value, str | int):
        raise ValueError("a header value must be text")
    text = str(value)
    env: Mapping[str, str] = (info.context or {}).get("env", {})
    missing = [m for m in SECRET_REF.findall(text) if not env.get(m)]
    if missing:
        raise ValueError(f"environment variable {missing[0]} is not set")
    if "${" in SECRET_REF.sub("", text):
        raise ValueError("only ${SOURCE_*} references may be used in headers")
    return SecretStr(SECRET_REF.sub(lambda m: env[m.group(1)], text))


Seconds = Annotated[float, PlainValidator(_seconds)]
Secret = Annotated[SecretStr, PlainValidator(_secret)]
HeaderValue = Annotated[SecretStr, PlainValidator(_header)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rate(_Model):
    """A token bucket: ``per_second`` refill, up to ``burst`` tokens."""

    per_second: float = Field(gt=0, le=100_000, description="sustained rate")
    burst: int = Field(1, ge=1, le=100_000, description="tokens held at most")


class Const(_Model):
    """A constant value for a mapped post field (``topic: {const: 空调}``)."""

    const: str


class _Source(_Model):
    name: str = Field(description="letters, digits, - and _")

    @field_validator("name", mode="before")
    @classmethod
    def _check_name(cls, value: Any) -> str:
        if not isinstance(value, str) or SOURCE_NAME.fullmatch(value) is None:
            raise ValueError("name must be 1-64 letters, digits, '-' or '_'")
        return value


class WebhookSource(_Source):
    """A source that pushes posts to ``POST /ingest/{name}``, signed with ``secret``."""

    kind: Literal["webhook"]
    secret: Secret = Field(description="a ${SOURCE_*} reference")
    max_body_bytes: int | None = Field(None, ge=1, description="else the setting")
    rate: Rate | None = None


class _Poller(_Source):
    url: str = Field(description="http(s) URL; {cursor} or {page} is replaced")
    interval: Seconds = Field(description="time between polls, e.g. 30s")
    timeout: Seconds = 30.0
    max_body_bytes: int | None = Field(
        None, ge=1, le=1 << 30, description="largest answer read (default 10 MiB)"
    )
    rate: Rate | None = None
    headers: dict[str, HeaderValue] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value


class HttpPollSource(_Poller):
    """A JSON API polled every ``interval``: items and cursor found by dotted path."""

    kind: Literal["http_poll"]
    items: str = Field(description="dotted path to the list of items")
    cursor: str | None = None
    map: dict[str, str | Const] = Field(
        description="post field: dotted path in an item, or {const: value}"
    )

    @field_validator("items", "cursor")
    @classmethod
    def _check_path(cls, value: str | None) -> str | None:
        if value is not None and DOTTED_PATH.fullmatch(value) is None:
            raise ValueError(f"{value[:60]!r} is not a dotted path like data.items")
        return value

    @field_validator("map", mode="before")
    @classmethod
    def _check_map(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("map must be a mapping of post field: dotted path")
        out: dict[str, Any] = {}
        for field, path in value.items():
            if field not in MAPPED_FIELDS:
                raise ValueError(
                    f"map: unknown post field {field!r}; expected one of "
                    + ", ".join(sorted(MAPPED_FIELDS))
                )
            if isinstance(path, dict):
                if set(path) != {"const"}:
                    raise ValueError(f"map: {field}: use {{const: value}}")
                out[field] = Const(const=str(path["const"]))
            elif isinstance(path, str) and DOTTED_PATH.fullmatch(path):
                out[field] = path
            else:
                raise ValueError(f"map: {field}: not a dotted path")
        for needed in ("id", "text", "published_at"):
            if needed not in out:
                raise ValueError(f"map needs {needed!r}")
        return out


class RssSource(_Poller):
    """An RSS or Atom feed polled every ``interval``."""

    kind: Literal["rss"]


AnySource = Annotated[
    Union[WebhookSource, HttpPollSource, RssSource],  # noqa: UP007
    Field(discriminator="kind"),
]


class SourcesFile(_Model):
    """The whole file: one list of sources."""

    sources: list[AnySource]


class SourcesConfig(_Model):
    """What the worker runs: webhooks and pollers, by name."""

    path: Path
    webhooks: dict[str, WebhookSource]
    pollers: dict[str, HttpPollSource | RssSource]


def load_sources(path: Path, env: Mapping[str, str] | None = None) -> SourcesConfig:
    """Read and check a sources file, resolving secrets from ``env``.

    Raises:
        ConfigError: Listing every problem as ``<file> line N: <reason>``.

    """
    env = os.environ if env is None else env
    document = load_yaml(path)
    data = document.data
    if not isinstance(data, dict) or "sources" not in data:
        raise ConfigError([f"{path} line 1: expected a mapping with 'sources:'"])
    problems: list[str] = []
    try:
        checked = SourcesFile.model_validate(data, context={"env": env})
    except ValidationError as exc:
        problems = [describe(document, error) for error in exc.errors()]
        checked = None
    seen: dict[str, int] = {}
    raw = data.get("sources")
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            if name in seen:
                problems.append(
                    f"{document.where(['sources', index, 'name'])}: name {name!r} "
                    f"is already used (item {seen[name] + 1})"
                )
            else:
                seen[name] = index
    if problems or checked is None:
        raise ConfigError(sorted(set(problems), key=_line_key))
    return SourcesConfig(
        path=path,
        webhooks={s.name: s for s in checked.sources if isinstance(s, WebhookSource)},
        pollers={
            s.name: s
            for s in checked.sources
            if isinstance(s, HttpPollSource | RssSource)
        },
    )


def describe(document: YamlDocument, error: Any) -> str:
    """Return ``<file> line N: <reason>`` of a pydantic error, never its value."""
    loc = [p for p in error["loc"] if p not in ("webhook", "http_poll", "rss")]
    kind = error["type"]
    key = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        reason = f"unknown key {key!r}"
    elif kind == "missing":
        reason = f"needs {key!r}"
    elif kind == "union_tag_invalid":
        loc.append("kind")
        reason = (
            f"unknown kind {error['ctx']['tag']!r}; "
            "expected one of webhook, http_poll, rss"
        )
    elif kind == "union_tag_not_found":
        reason = "needs kind: one of webhook, http_poll, rss"
    elif kind == "value_error":
        reason = str(error["ctx"]["error"])
    else:
        reason = f"{key}: {error['msg']}"
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        name = _name_at(document, loc[1])
        if name and key != "name":
            reason = f"source {name!r}: {reason}"
    return f"{document.where(loc)}: {reason}"


def _name_at(document: YamlDocument, index: int) -> str | None:
    try:
        name = document.data["sources"][index].get("name")
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) and SOURCE_NAME.fullmatch(name) else None


def _line_key(problem: str) -> tuple[int, str]:
    match = re.search(r" line (\d+): ", problem)
    return (int(match.group(1)) if match else 0, problem)
