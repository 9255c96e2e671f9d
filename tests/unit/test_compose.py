"""docker-compose.yml is a valid Compose file and agrees with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from monitor.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    schema = json.loads((REPO / "tests/data/compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)  # the spec is draft-07


def test_stack_has_the_real_servers_and_the_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "elasticsearch", "kibana", "prometheus", "worker"} <= set(services)
    es_image = services["elasticsearch"]["image"]
    assert re.search(r"elasticsearch:9\.", es_image), "the client is elasticsearch-py 9"
    assert (
        services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    )


def test_every_monitor_variable_in_the_stack_is_a_known_setting(
    compose: dict[str, Any],
) -> None:
    env: dict[str, str] = {}
    for service in compose["services"].values():
        env.update(
            {
                k: str(v)
                for k, v in (service.get("environment") or {}).items()
                if k.startswith("MONITOR_")
            }
        )
    assert env["MONITOR_KAFKA_URL"].startswith("kafka://kafka:")
    assert env["MONITOR_ES_URL"].startswith("http://elasticsearch:")
    settings = Settings.load(env=env)  # raises ConfigError naming a bad one
    assert not settings.embedded


def test_files_the_stack_mounts_or_copies_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).is_file(), source
    dockerfile = (REPO / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE):
        for name in source.split():
            assert (REPO / name).exists(), name
