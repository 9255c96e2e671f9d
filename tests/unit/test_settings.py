"""Settings: defaults, MONITOR_* variables, the YAML file, overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from monitor.analysis.sentiment.model import LabelThresholds
from monitor.config.yamlfile import load_yaml
from monitor.errors import ConfigError
from monitor.settings import Settings


def _write(tmp_path: Path, text: str, name: str = "monitor.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(**load_args: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Settings.load(**load_args)  # type: ignore[arg-type]
    assert caught.value.problems
    for problem in caught.value.problems:
        assert problem in str(caught.value)
    return caught.value.problems


# --- defaults ----------------------------------------------------------------


def test_defaults_without_env_or_file() -> None:
    settings = Settings.load(env={})
    assert settings == Settings()
    assert settings.kafka_url is None
    assert settings.es_url is None
    assert settings.es_api_key is None
    assert settings.data_dir == Path(".monitor")
    assert settings.web_host == "127.0.0.1"
    assert settings.web_port == 6066
    assert settings.app_id == "monitor"
    assert settings.log_level == "info"
    assert settings.topic_posts == "posts"
    assert settings.topic_dead_letters == "dead-letters"
    assert settings.negative_below == 0.3
    assert settings.positive_from == 0.7
    assert settings.keywords_per_post == 5
    assert settings.index_prefix == "monitor"
    assert settings.index_utc_offset == "+00:00"
    assert settings.es_retry_initial_seconds == 0.5
    assert settings.es_retry_max_seconds == 30.0


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(pydantic.ValidationError):
        settings.web_port = 1  # type: ignore[misc]


def test_load_ignores_variables_without_the_prefix() -> None:
    settings = Settings.load(
        env={"WEB_PORT": "1", "HOME": "/root", "monitor_web_port": "2"}
    )
    assert settings.web_port == 6066


# --- environment -------------------------------------------------------------


def test_env_sets_ints_floats_paths_and_strings() -> None:
    settings = Settings.load(
        env={
            "MONITOR_WEB_PORT": "8080",
            "MONITOR_TOPIC_PARTITIONS": "12",
            "MONITOR_NEGATIVE_BELOW": "0.25",
            "MONITOR_SCORE_BATCH_SECONDS": "0.05",
            "MONITOR_DATA_DIR": "/var/lib/monitor",
            "MONITOR_TOPICS_FILE": "topics.yaml",
            "MONITOR_LOG_LEVEL": "debug",
            "MONITOR_INDEX_UTC_OFFSET": "+08:00",
            "MONITOR_KAFKA_URL": "kafka://127.0.0.1:9092",
            "MONITOR_ES_URL": "http://127.0.0.1:9200",
        }
    )
    assert settings.web_port == 8080
    assert settings.topic_partitions == 12
    assert settings.negative_below == 0.25
    assert settings.score_batch_seconds == 0.05
    assert settings.data_dir == Path("/var/lib/monitor")
    assert isinstance(settings.data_dir, Path)
    assert settings.topics_file == Path("topics.yaml")
    assert settings.log_level == "debug"
    assert settings.index_utc_offset == "+08:00"
    assert settings.kafka_url == "kafka://127.0.0.1:9092"
    assert settings.es_url == "http://127.0.0.1:9200"


def test_empty_env_value_means_none() -> None:
    settings = Settings.load(env={"MONITOR_ES_API_KEY": "", "MONITOR_TOPICS_FILE": ""})
    assert settings.es_api_key is None
    assert settings.topics_file is None


def test_empty_env_value_for_a_required_setting_is_refused_by_name() -> None:
    (problem,) = _problems(env={"MONITOR_WEB_PORT": ""})
    assert problem.startswith("MONITOR_WEB_PORT: ")


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("MONITOR_WEB_PORT", "http", "valid integer"),
        ("MONITOR_WEB_PORT", "0", "greater than or equal to 1"),
        ("MONITOR_WEB_PORT", "65536", "less than or equal to 65535"),
        ("MONITOR_NEGATIVE_BELOW", "low", "valid number"),
        ("MONITOR_POSITIVE_FROM", "1.5", "less than or equal to 1"),
        ("MONITOR_SCORE_BATCH_SECONDS", "0", "greater than 0"),
        ("MONITOR_LOG_LEVEL", "INFO", "'debug', 'info', 'warning' or 'error'"),
        ("MONITOR_INDEX_PREFIX", "Monitor", "should match pattern"),
        ("MONITOR_INDEX_UTC_OFFSET", "+8", "must look like +08:00"),
        ("MONITOR_APP_ID", "", "valid string"),
    ],
)
def test_bad_env_value_names_the_variable(name: str, value: str, words: str) -> None:
    (problem,) = _problems(env={name: value})
    assert problem.startswith(f"{name}: ")
    assert words in problem


def test_bad_web_port_message_shows_the_value() -> None:
    (problem,) = _problems(env={"MONITOR_WEB_PORT": "eighty"})
    assert problem.startswith("MONITOR_WEB_PORT: ")
    assert "'eighty'" in problem


@pytest.mark.parametrize("key", ["es_api_key", "api_tokens"])
def test_a_bad_secret_is_named_but_never_shown(tmp_path: Path, key: str) -> None:
    path = _write(tmp_path, f"{key}: [hunter2-secret]\n")
    (problem,) = _problems(env={}, config_file=path)
    assert problem.startswith(f"{path} line 1: {key}: ")
    assert "valid string" in problem
    assert "hunter2" not in problem


class _WithSecrets(Settings):
    smtp_password: int = 0
    signing_secret: int = 0
    vendor_api_keys: int = 0
    access_token: int = 0


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("MONITOR_SMTP_PASSWORD", False),
        ("MONITOR_SIGNING_SECRET", False),
        ("MONITOR_VENDOR_API_KEYS", False),
        ("MONITOR_ACCESS_TOKEN", False),
        ("MONITOR_KEYWORDS_PER_POST", True),  # a word containing "key" is not one
    ],
)
def test_values_of_secret_looking_fields_are_never_shown(
    name: str, shown: bool
) -> None:
    with pytest.raises(ConfigError) as caught:
        _WithSecrets.load(env={name: "hunter2"})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{name}: ") and "valid integer" in problem
    assert ("'hunter2'" in problem) is shown


def test_several_bad_values_are_all_reported() -> None:
    problems = _problems(env={"MONITOR_WEB_PORT": "x", "MONITOR_TOPIC_REPLICAS": "0"})
    assert sorted(p.split(":")[0] for p in problems) == [
        "MONITOR_TOPIC_REPLICAS",
        "MONITOR_WEB_PORT",
    ]


def test_unknown_env_variable_is_ignored_with_a_warning_naming_it() -> None:
    # Not fatal: Kubernetes injects MONITOR_PORT etc. for a Service "monitor".
    with pytest.warns(UserWarning, match="MONITOR_FOO: not a monitor setting"):
        settings = Settings.load(env={"MONITOR_FOO": "1"})
    assert settings == Settings()


def test_misspelt_env_variable_warning_suggests_the_setting() -> None:
    with pytest.warns(UserWarning, match="did you mean MONITOR_WEB_PORT"):
        Settings.load(env={"MONITOR_WEB_PROT": "7000"})


def test_monitor_config_is_not_taken_for_a_setting(tmp_path: Path) -> None:
    path = _write(tmp_path, "web_port: 7000\n")
    settings = Settings.load(env={"MONITOR_CONFIG": str(path)})
    assert settings.web_port == 7000


# --- config file -------------------------------------------------------------


def test_file_values_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# monitor settings\n"
        "web_port: 7000\n"
        "app_id: opinion\n"
        "negative_below: 0.2\n"
        "data_dir: /srv/monitor\n"
        "es_api_key: null\n",
    )
    settings = Settings.load(env={}, config_file=path)
    assert settings.web_port == 7000
    assert settings.app_id == "opinion"
    assert settings.negative_below == 0.2
    assert settings.data_dir == Path("/srv/monitor")
    assert settings.es_api_key is None


def test_env_overrides_file_and_overrides_win_over_both(tmp_path: Path) -> None:
    path = _write(tmp_path, "web_port: 7000\napp_id: from-file\nweb_host: 0.0.0.0\n")
    settings = Settings.load(
        env={"MONITOR_WEB_PORT": "7001", "MONITOR_APP_ID": "from-env"},
        config_file=path,
        web_port=7002,
    )
    assert settings.web_port == 7002  # override
    assert settings.app_id == "from-env"  # env over file
    assert settings.web_host == "0.0.0.0"  # file over default


def test_none_override_does_not_replace_a_value() -> None:
    settings = Settings.load(env={"MONITOR_WEB_PORT": "7001"}, web_port=None)
    assert settings.web_port == 7001


def test_config_file_argument_wins_over_monitor_config(tmp_path: Path) -> None:
    chosen = _write(tmp_path, "web_port: 7000\n", "chosen.yaml")
    other = _write(tmp_path, "web_port: 9000\n", "other.yaml")
    settings = Settings.load(env={"MONITOR_CONFIG": str(other)}, config_file=chosen)
    assert settings.web_port == 7000


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, "# nothing yet\n")
    assert Settings.load(env={}, config_file=path) == Settings()


def test_bad_file_value_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "# settings\napp_id: opinion\n\nweb_port: eighty\n")
    (problem,) = _problems(env={}, config_file=path)
    assert problem.startswith(f"{path} line 4: web_port: ")
    assert "valid integer" in problem
    assert "'eighty'" in problem


def test_unknown_file_key_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "app_id: opinion\nweb_prot: 7000\n")
    (problem,) = _problems(env={}, config_file=path)
    assert problem == f"{path} line 2: web_prot: unknown setting"


def test_env_value_is_blamed_not_the_file_it_replaced(tmp_path: Path) -> None:
    path = _write(tmp_path, "web_port: 7000\n")
    (problem,) = _problems(env={"MONITOR_WEB_PORT": "x"}, config_file=path)
    assert problem.startswith("MONITOR_WEB_PORT: ")


def test_bad_override_names_the_option() -> None:
    (problem,) = _problems(env={}, web_port=0)
    assert problem.startswith("--web-port: ")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "app_id: opinion\nweb_port: 7000\nweb_host: a: b\n")
    (problem,) = _problems(env={}, config_file=path)
    assert problem.startswith(f"{path} line 3: invalid YAML: ")


def test_config_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "- web_port\n- 7000\n")
    (problem,) = _problems(env={}, config_file=path)
    assert problem == f"{path} line 1: expected a mapping of setting: value"


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    (problem,) = _problems(env={"MONITOR_CONFIG": str(path)})
    assert problem.startswith(f"{path}: cannot read")


def test_yaml_lines_cover_nested_keys_and_list_items(tmp_path: Path) -> None:
    path = _write(tmp_path, "a:\n  b:\n    - x\n\n    - y\nc: 1\n")
    document = load_yaml(path)
    assert document.data == {"a": {"b": ["x", "y"]}, "c": 1}
    assert document.line_of(["a"]) == 1
    assert document.line_of(["a", "b"]) == 2
    assert document.line_of(["a", "b", 1]) == 5
    assert document.line_of(["a", "b", 7]) == 2  # nearest enclosing location
    assert document.line_of(["nope"]) is None
    assert document.where(["c"]) == f"{path} line 6"
    assert document.where(["nope"]) == str(path)


# --- cross-field rules -------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"MONITOR_KAFKA_URL": "kafka://127.0.0.1:9092"},
        {"MONITOR_ES_URL": "http://127.0.0.1:9200"},
    ],
    ids=["kafka-only", "es-only"],
)
def test_only_one_of_kafka_and_es_is_refused(env: dict[str, str]) -> None:
    (problem,) = _problems(env=env)
    assert "MONITOR_KAFKA_URL" in problem
    assert "MONITOR_ES_URL" in problem
    assert "or neither" in problem


def test_negative_below_above_positive_from_is_refused() -> None:
    (problem,) = _problems(
        env={"MONITOR_NEGATIVE_BELOW": "0.8", "MONITOR_POSITIVE_FROM": "0.6"}
    )
    assert "negative_below must not exceed positive_from" in problem


def test_equal_thresholds_are_allowed() -> None:
    settings = Settings.load(
        env={"MONITOR_NEGATIVE_BELOW": "0.5", "MONITOR_POSITIVE_FROM": "0.5"}
    )
    assert settings.label_thresholds == LabelThresholds(0.5, 0.5)


def test_label_thresholds_property() -> None:
    settings = Settings(negative_below=0.2, positive_from=0.9)
    assert settings.label_thresholds == LabelThresholds(0.2, 0.9)
    assert settings.label_thresholds.label(0.1) == "negative"
    assert settings.label_thresholds.label(0.5) == "neutral"
    assert settings.label_thresholds.label(0.9) == "positive"


@pytest.mark.parametrize(
    ("kafka_url", "es_url", "embedded"),
    [
        (None, None, True),
        ("kafka://127.0.0.1:9092", "http://127.0.0.1:9200", False),
    ],
)
def test_embedded_when_no_servers_are_configured(
    kafka_url: str | None, es_url: str | None, embedded: bool
) -> None:
    assert Settings(kafka_url=kafka_url, es_url=es_url).embedded is embedded


def test_urls_in_errors_never_show_their_password() -> None:
    from monitor.settings import _without_userinfo

    assert _without_userinfo("kafka://user:s3cret@k1:9092,k2") == "kafka://***@k1:9092,k2"
    assert _without_userinfo("http://es:9200") == "http://es:9200"
    assert _without_userinfo(5) == 5


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        ("+99:99", "out of range"),
        ("+15:00", "out of range"),
        ("8", "must look like +08:00"),
        ("CST", "must look like +08:00"),
    ],
)
def test_a_bad_index_utc_offset_is_refused_at_start_up(
    offset: str, reason: str
) -> None:
    # The parser daily_index uses for every post: a bad offset fails here,
    # not on the first post.
    (problem,) = _problems(env={"MONITOR_INDEX_UTC_OFFSET": offset})
    assert problem.startswith("MONITOR_INDEX_UTC_OFFSET: ") and reason in problem


def test_index_utc_offset_takes_the_forms_of_the_one_parser() -> None:
    for offset in ("Z", "+0800", "-05:30"):
        settings = Settings.load(env={"MONITOR_INDEX_UTC_OFFSET": offset})
        assert settings.index_utc_offset == offset


# --- sources -----------------------------------------------------------------


def test_the_sources_file_and_the_webhook_body_limit() -> None:
    assert Settings().sources is None
    assert Settings().ingest_max_body_bytes == 1024 * 1024

    settings = Settings.load(
        env={
            "MONITOR_SOURCES": "examples/sources.yaml",
            "MONITOR_INGEST_MAX_BODY_BYTES": "65536",
        }
    )

    assert settings.sources == Path("examples/sources.yaml")
    assert settings.ingest_max_body_bytes == 65536


def test_a_webhook_body_limit_under_1_kib_is_refused() -> None:
    (problem,) = _problems(env={"MONITOR_INGEST_MAX_BODY_BYTES": "10"})

    assert problem.startswith("MONITOR_INGEST_MAX_BODY_BYTES")
