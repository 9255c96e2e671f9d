"""Every setting in one place; the only module that reads the environment.

Settings come from, in increasing precedence: the defaults below, a YAML
config file (``MONITOR_CONFIG`` or ``--config``), and ``MONITOR_*``
environment variables (``MONITOR_WEB_PORT`` sets ``web_port``). A bad value
fails at start-up with a message naming the variable or the file line.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.config.durations import parse_duration, parse_utc_offset
from monitor.config.yamlfile import YamlDocument, load_yaml
from monitor.errors import ConfigError

ENV_PREFIX = "MONITOR_"
CONFIG_ENV = "MONITOR_CONFIG"


class Settings(BaseModel):
    """Typed, frozen settings of one monitor process.

    Build it directly in tests (``Settings(kafka_url=...)``) and with
    :meth:`load` everywhere else.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Servers. None means: use (or start) the embedded noida-db server.
    kafka_url: str | None = Field(
        None,
        description="Kafka bootstrap, e.g. kafka://127.0.0.1:9092 (comma-separated)",
    )
    es_url: str | None = Field(
        None, description="Elasticsearch URL, e.g. http://127.0.0.1:9200"
    )
    es_api_key: str | None = Field(
        None, description="Elasticsearch API key, if required"
    )
    data_dir: Path = Field(
        Path(".monitor"), description="Worker state and embedded server data"
    )

    # Web server of the worker: /metrics now, the ticket API later.
    web_host: str = Field(
        "127.0.0.1", description="Address the worker's web server binds"
    )
    web_port: int = Field(
        6066, ge=1, le=65535, description="Port of the worker's web server"
    )

    app_id: str = Field(
        "monitor", min_length=1, description="Faust app id (consumer group)"
    )
    instance_id: str | None = Field(
        None,
        description="Stable id of this worker process (Kafka static membership): a "
        "restarted worker takes its old place without waiting for a rebalance",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Topics.
    topic_posts: str = Field("posts", min_length=1)
    topic_scored_posts: str = Field("scored-posts", min_length=1)
    topic_window_partials: str = Field("window-partials", min_length=1)
    topic_count_state: str = Field(
        "count-state-posts",
        min_length=1,
        description="Count state log, by posts offsets (releases that counted "
        "from scored-posts used count-state)",
    )
    topic_merge_state: str = Field("merge-state", min_length=1)
    topic_bursts: str = Field("bursts", min_length=1)
    topic_triggers: str = Field("triggers", min_length=1)
    topic_tickets: str = Field("tickets", min_length=1)
    topic_dead_letters: str = Field("dead-letters", min_length=1)
    topic_partitions: int = Field(
        4, ge=1, le=1024, description="Partitions of every topic"
    )
    topic_replicas: int = Field(
        1, ge=1, le=16, description="Replication factor of new topics"
    )

    # Scoring.
    topics_file: Path | None = Field(None, description="YAML of watched topics")
    sentiment_model: Path | None = Field(
        None, description="snownlp model file; default: built-in"
    )
    negative_below: float = Field(0.3, ge=0.0, le=1.0)
    positive_from: float = Field(0.7, ge=0.0, le=1.0)
    keywords_per_post: int = Field(5, ge=0, le=50)
    score_batch_size: int = Field(500, ge=1, le=10_000)
    score_batch_seconds: float = Field(0.2, gt=0.0, le=60.0)
    publish_scored_posts: bool = Field(
        False,
        description="Also send every scored post to the scored-posts topic, for "
        "other consumers (the workers do not read it); costs about a quarter "
        "more worker and broker CPU per post",
    )
    score_cache_size: int = Field(
        10_000,
        ge=0,
        le=10_000_000,
        description="Distinct texts whose scores are kept (repost storms); 0: off",
    )

    # Indexing.
    index_prefix: str = Field("monitor", pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    index_utc_offset: str = Field(
        "+00:00",
        description="UTC offset that dates daily indices: +08:00, -05:00 or Z",
    )
    index_backlog_records: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Posts counted but not yet indexed that the hot path may hold "
        "while Elasticsearch catches up (their offsets are committed once indexed); "
        "when full, counting waits too; 0 (the default until a stall seen with "
        "two workers is explained): index each batch before the next",
    )
    index_backlog_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        le=4 * 1024**3,
        description="Bound on the raw bytes of the posts in that backlog (memory "
        "holds a few times as much: their decoded and scored forms)",
    )
    es_retry_initial_seconds: float = Field(0.5, gt=0.0)
    es_retry_max_seconds: float = Field(30.0, gt=0.0)
    es_request_timeout_seconds: float = Field(30.0, gt=0.0)

    stream_buffer_maxsize: int = Field(4096, ge=1)
    producer_linger_seconds: float = Field(
        0.005,
        ge=0.0,
        le=1.0,
        description="How long the worker's producer gathers records into one "
        "request: fewer, larger produce requests and responses",
    )

    # Windowed counts and burst detection (event time = published_at).
    window_seconds: int = Field(
        300, ge=10, le=86_400, description="Length of the tumbling count windows"
    )
    bucket_seconds: int = Field(
        60,
        ge=1,
        le=3600,
        description="Length of the count buckets: rule windows are sums of whole "
        "buckets (sliding by one bucket), and the detector window a multiple of it",
    )
    window_grace_seconds: int = Field(
        120,
        ge=0,
        le=86_400,
        description="How late (event time) a post may arrive and still be counted",
    )
    idle_close_seconds: float = Field(
        30.0,
        gt=0.0,
        description="Close a partition's windows after this long without posts "
        "(wall clock), so a quiet feed still gets its last window scored",
    )
    window_wait_seconds: float = Field(
        60.0,
        gt=0.0,
        description="How long the merge waits for a partition it hears nothing "
        "from (no partial, no heartbeat) before completing windows without it",
    )

    # Bounds and fault handling.
    max_future_seconds: float = Field(
        900.0,
        ge=0.0,
        le=7 * 86_400,
        description="A post published more than this far ahead of the worker's "
        "clock is refused (dead letter 'from the future')",
    )
    batch_max_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description="Times a stage handles a batch that fails with a non-transient "
        "error before bisecting it to dead-letter the record that fails alone",
    )
    shutdown_seconds: float = Field(
        20.0,
        gt=0.0,
        le=3600.0,
        description="On SIGTERM, how long in-flight batches may drain; a batch "
        "still failing then is abandoned unacknowledged (redelivered on restart)",
    )
    dedup_horizon_seconds: int = Field(
        7 * 86_400,
        ge=0,
        description="A post id seen again within this much event time is a "
        "duplicate: the first version is counted and indexed, later ones dropped",
    )
    dedup_max_ids: int = Field(
        2_000_000,
        ge=1_000,
        description="Post ids remembered per posts partition for the dedup "
        "horizon (~80 bytes each); past it the oldest are forgotten early",
    )

    # Sources.
    sources: Path | None = Field(
        None, description="YAML of sources: webhooks, HTTP polling and RSS feeds"
    )
    ingest_max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest webhook body accepted on /ingest/{source}, in bytes",
    )
    topic_source_state: str = Field(
        "source-state",
        min_length=1,
        description="Compacted topic of the pollers' cursors and health, keyed by "
        "source name",
    )
    topic_source_leases: str = Field(
        "source-leases",
        min_length=1,
        description="Topic whose partitions (slots) lease each poller to one worker",
    )
    source_slots: int = Field(
        16,
        ge=1,
        le=1024,
        description="Partitions of the source-leases topic: pollers are spread over "
        "at most this many workers",
    )
    http_proxy_from_env: bool = Field(
        False,
        description="Outbound HTTP (polled sources, notification channels) "
        "goes through the proxies named by HTTP_PROXY and HTTPS_PROXY, except "
        "to the hosts of NO_PROXY, with proxy credentials from ~/.netrc; off: "
        "every request goes direct and those variables are ignored",
    )

    # Alert tickets.
    rules: Path | None = Field(
        None, description="YAML of alert rules, owners, teams and channels"
    )
    rules_reload_seconds: float = Field(
        5.0, gt=0.0, description="How often the rules file is checked for changes"
    )
    api_tokens: str | None = Field(
        None,
        description="Ticket API tokens, comma-separated name:role:sha256-of-token "
        "(role viewer, responder or admin); see `monitor tokens hash`",
    )
    console_url: str | None = Field(
        None, description="Public base URL of the worker's web server, for links"
    )
    sla_check_seconds: float = Field(15.0, gt=0.0)
    action_link_keys: str | None = Field(
        None,
        repr=False,
        description="Keys that sign the one-tap action links of chat notices, "
        "comma-separated id:secret (each secret at least 32 bytes, no white space "
        "or comma; the first signs, all verify); unset: no action links. Never "
        "logged",
    )
    action_link_ttl_seconds: float = Field(
        3600.0,
        gt=0.0,
        le=7 * 86_400,
        description="How long an action link works: seconds or a duration like 1h",
    )

    @field_validator("action_link_ttl_seconds", mode="before")
    @classmethod
    def _link_ttl(cls, value: Any) -> Any:
        # A duration as people write it (1h, 30m); a bare number is seconds.
        if isinstance(value, str) and value.strip() and value.strip()[-1] in "smhd":
            return parse_duration(value).total_seconds()
        return value

    @field_validator("action_link_keys")
    @classmethod
    def _check_link_keys(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from monitor.web.links import ActionLinkKeys  # noqa: PLC0415

        ActionLinkKeys.parse(value)  # raises ValueError naming no secret
        return value

    @field_validator("index_utc_offset")
    @classmethod
    def _check_utc_offset(cls, value: str) -> str:
        parse_utc_offset(value)  # raises ValueError with the reason
        return value.strip()

    @model_validator(mode="after")
    def _check_dedup_horizon(self) -> Settings:
        # Shorter than grace + the merge's amend horizon, a redelivered copy
        # could be counted into a window that is still open or amendable.
        minimum = self.window_grace_seconds + 24 * self.window_seconds
        if 0 < self.dedup_horizon_seconds < minimum:
            raise ValueError(
                f"dedup_horizon_seconds must be 0 (off) or at least the grace plus "
                f"24 windows ({minimum} s)"
            )
        return self

    @model_validator(mode="after")
    def _check_buckets(self) -> Settings:
        if self.window_seconds % self.bucket_seconds:
            raise ValueError(
                f"window_seconds ({self.window_seconds}) must be a whole number of "
                f"buckets (bucket_seconds {self.bucket_seconds})"
            )
        return self

    @model_validator(mode="after")
    def _check_thresholds(self) -> Settings:
        if self.negative_below > self.positive_from:
            raise ValueError("negative_below must not exceed positive_from")
        return self

    @property
    def label_thresholds(self) -> LabelThresholds:
        """The three-way label thresholds."""
        return LabelThresholds(self.negative_below, self.positive_from)

    @property
    def embedded(self) -> bool:
        """True when neither Kafka nor Elasticsearch is configured."""
        return self.kafka_url is None and self.es_url is None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Settings:
        if (self.kafka_url is None) != (self.es_url is None):
            raise ValueError(
                "set both kafka_url and es_url (MONITOR_KAFKA_URL, MONITOR_ES_URL) "
                "or neither (then the embedded noida-db server is used)"
            )
        return self

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from a config file, the environment and overrides.

        Args:
            env: Environment to read ``MONITOR_*`` from; ``os.environ`` if None.
            config_file: YAML file of settings; else ``MONITOR_CONFIG`` if set.
            **overrides: Values that win over everything (e.g. CLI options).

        Raises:
            ConfigError: Naming each bad variable or file line, and why.

        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        document: YamlDocument | None = None
        path = config_file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
        if path is not None:
            document = load_yaml(path)
            if document.data is None:
                document = None
            elif not isinstance(document.data, dict):
                raise ConfigError(
                    [f"{path} line 1: expected a mapping of setting: value"]
                )
            else:
                for key, value in document.data.items():
                    values[str(key)] = value
                    origin[str(key)] = f"{document.where([key])}: {key}"
        for name, value in env.items():
            if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
                continue
            field = name[len(ENV_PREFIX) :].lower()
            if field not in cls.model_fields:
                # Not fatal: platforms inject MONITOR_* of their own (Kubernetes
                # adds MONITOR_PORT, MONITOR_SERVICE_HOST for a Service "monitor").
                close = difflib.get_close_matches(field, cls.model_fields, n=1)
                hint = (
                    f"; did you mean {ENV_PREFIX}{close[0].upper()}?" if close else ""
                )
                warnings.warn(
                    f"{name}: not a monitor setting, ignored{hint}", stacklevel=2
                )
                continue
            values[field] = value if value != "" else None
            origin[field] = name
        for field, value in overrides.items():
            if value is not None:
                values[field] = value
                origin[field] = f"--{field.replace('_', '-')}"
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, origin)) from None


def _without_userinfo(value: Any) -> Any:
    """Hide ``user:password@`` in a URL-like value (Kafka, Elasticsearch URLs)."""
    if isinstance(value, str):
        return _USERINFO.sub(r"\1***@", value)
    return value


_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")


def _describe(exc: ValidationError, origin: Mapping[str, str]) -> list[str]:
    """One problem per error: where it was set, what is wrong, and the bad value.

    The value is left out for secret fields (``es_api_key``, ``api_tokens``,
    any name with a key, token, secret or password word in it): start-up
    errors end up in logs and CI output.
    """
    secret_words = {"key", "token", "secret", "password", "passwd", "credential"}
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        where = origin.get(field, field or "settings")
        if error["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown setting")
            continue
        # By word, not substring: keywords_per_post is not a key.
        secret = any(part.rstrip("s") in secret_words for part in field.split("_"))
        value = _without_userinfo(error.get("input"))
        shown = (
            f" (got {value!r})"
            if field and not secret and not isinstance(value, dict)
            else ""
        )
        problems.append(f"{where}: {error['msg']}{shown}")
    return problems
