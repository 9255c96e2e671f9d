"""docker-compose.yml is a valid Compose file and agrees with the code.

No Docker engine runs here, so the stack is proven by structure: the Compose
schema, the files it mounts, the settings and commands it uses, and the
configurations of Prometheus, Alertmanager, the alert bridge and nginx
checked against each other (and by promtool where a real tool exists).
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from monitor.cli import cli
from monitor.config.rules import load_rules
from monitor.ops.alertbridge import load_config as load_bridge_config
from monitor.settings import Settings
from monitor.sinks.notifiers.notifier import Notifier
from monitor.web.auth import Authenticator

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "monitor.conf"
ENV_EXAMPLE = REPO / ".env.example"
INIT_SECRETS = REPO / "deploy" / "init-secrets.sh"

#: Services that run once and exit; the others run for good.
ONE_SHOT = {"setup", "replay"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env_file(path: Path) -> dict[str, str]:
    """Read a Compose env file: NAME=value lines, # comments."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not NAME=value"
        assert "${" not in value, f"{name}: Compose would expand ${{...}}"
        env[name.strip()] = value.strip()
    return env


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def _mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(source, target) of each volume; named volumes have no ./ source."""
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        yield source, target


def _repo_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of the service's bind mounts."""
    return {
        target: REPO / source
        for source, target in _mounts(service)
        if source.startswith("./")
    }


def _secret_targets(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> secret name of the service's secrets."""
    targets = {}
    for entry in service.get("secrets", []):
        if isinstance(entry, str):
            targets[f"/run/secrets/{entry}"] = entry
        else:
            name = entry["source"]
            targets[entry.get("target", f"/run/secrets/{name}")] = name
    return targets


def _worker_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The worker's environment: its env file (as .env.example) and settings."""
    worker = services["worker"]
    assert worker["env_file"] == ".env"
    return {**_env_file(ENV_EXAMPLE), **_environment(worker)}


# --- the file as Compose reads it ---------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    schema = json.loads((REPO / "tests/data/compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)  # the spec is draft-07


def test_stack_has_the_real_servers_the_workers_and_their_operators(
    services: dict[str, dict[str, Any]],
) -> None:
    assert {
        "kafka",
        "elasticsearch",
        "kibana",
        "setup",
        "worker",
        "proxy",
        "prometheus",
        "alertmanager",
        "alertbridge",
        "grafana",
    } <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")  # the official one
    kafka_env = _environment(services["kafka"])
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    # The named volume holds the data only if Kafka writes there.
    assert ("kafka-data", kafka_env["KAFKA_LOG_DIRS"]) in _mounts(services["kafka"])
    # elasticsearch-py 9 talks to Elasticsearch 9; Kibana must match it.
    es_version = services["elasticsearch"]["image"].rsplit(":", 1)[1]
    assert es_version.startswith("9.")
    assert services["kibana"]["image"].endswith(f"/kibana:{es_version}")


def test_security_is_off_and_says_so(services: dict[str, dict[str, Any]]) -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert _environment(services["elasticsearch"])["xpack.security.enabled"] == "false"
    assert "SECURITY IS OFF" in text
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for what in ("xpack.security.enabled", "SASL", "ACL", "TLS", "API key"):
        assert what in readme, what
    # Nothing is published beyond this machine.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_every_image_is_pinned_or_built_here(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if "build" in service:
            assert service["build"] == ".", name
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image}"
    # The one image built here carries a version, not `latest` either.
    built = {s["image"] for s in services.values() if "build" in s}
    assert len(built) == 1 and not built.pop().endswith(":latest")
    # ... and its base image is pinned to a patch release too.
    (base,) = re.findall(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.M)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base


def test_every_service_has_a_health_check_and_a_memory_limit(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        assert re.fullmatch(r"\d+[mg]", str(service.get("mem_limit"))), name
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if name in ONE_SHOT:
            # The image's own check probes a worker's port: off for a job.
            assert check == {"disable": True}, name
            assert service["restart"] == "no", name
        else:
            assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
            assert service["restart"] == "unless-stopped", name


@pytest.mark.parametrize(
    ("service", "probe"),
    [
        ("kibana", "localhost:5601/api/status"),
        ("prometheus", "127.0.0.1:9090/-/healthy"),
        ("alertmanager", "127.0.0.1:9093/-/healthy"),
        ("alertbridge", "127.0.0.1:9095/-/healthy"),
        ("worker", "127.0.0.1:6066/api/health"),
        ("proxy", "127.0.0.1:8080/healthz"),
        ("grafana", "127.0.0.1:3000/api/health"),
        ("elasticsearch", "localhost:9200/_cluster/health"),
        ("kafka", "kafka-broker-api-versions.sh"),
    ],
)
def test_health_checks_probe_what_each_service_serves(
    services: dict[str, dict[str, Any]], service: str, probe: str
) -> None:
    assert probe in " ".join(services[service]["healthcheck"]["test"])


def test_dependencies_wait_for_health_or_completion(
    services: dict[str, dict[str, Any]],
) -> None:
    waited_for_completion = set()
    for name, service in services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            assert dependency in services, (name, dependency)
            condition = how["condition"]
            if condition == "service_healthy":
                assert "test" in services[dependency]["healthcheck"], dependency
            else:
                assert condition == "service_completed_successfully", (name, how)
                assert dependency in ONE_SHOT
                waited_for_completion.add(dependency)
    assert "setup" in waited_for_completion
    worker_needs = services["worker"]["depends_on"]
    assert {"kafka", "elasticsearch"} <= set(worker_needs)
    # Alerting must not wait for Kibana or its import.
    assert not {"kibana", "setup"} & set(worker_needs)
    assert services["setup"]["depends_on"]["kibana"]["condition"] == "service_healthy"


def test_setup_makes_topics_templates_and_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    """The one-shot set-up: topics with partitions, index templates, Kibana import."""
    setup = services["setup"]
    assert setup["command"][:2] == ["dashboards", "install"]
    assert "--topics" in setup["command"]  # Kafka topics, MONITOR_TOPIC_PARTITIONS
    assert "--kibana" in setup["command"]
    env = _environment(setup)
    assert env["MONITOR_KAFKA_URL"] == "kafka://kafka:9092"
    assert env["MONITOR_ES_URL"] == "http://elasticsearch:9200"  # templates
    assert int(env["MONITOR_TOPIC_PARTITIONS"]) > 1
    assert {"kafka", "elasticsearch", "kibana"} <= set(setup["depends_on"])


def test_data_lives_in_named_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    named = {
        source
        for service in services.values()
        for source, _ in _mounts(service)
        if not source.startswith(("./", "/"))
    }
    assert named == set(compose["volumes"])
    assert {"kafka-data", "es-data", "prometheus-data", "grafana-data"} <= named


# --- the workers --------------------------------------------------------------


def test_the_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    for fixed in ("container_name", "hostname", "ports"):
        assert fixed not in worker, f"{fixed} would stop --scale worker=N"
    assert "deploy" not in worker or "replicas" not in worker["deploy"]


def test_each_replica_takes_its_hostname_as_instance_id(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    for name, service in services.items():
        assert "MONITOR_INSTANCE_ID" not in _environment(service), name
    assert "MONITOR_INSTANCE_ID" not in _env_file(ENV_EXAMPLE)
    shell, flag, script, arg0 = worker["entrypoint"]
    assert (shell, flag, arg0) == ("sh", "-c", "monitor")
    script = script.replace("$$", "$")  # Compose's escape for a literal $
    assert re.search(
        r'export MONITOR_INSTANCE_ID="\$\((hostname|cat /etc/hostname)\)"', script
    )
    assert script.endswith('exec monitor "$@"')
    assert worker["command"] == ["worker"]
    assert "instance_id" in Settings.model_fields


def test_the_entrypoint_runs_the_command_with_the_hostname(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Run the entrypoint's script (dash, as in the image) with a stand-in monitor."""
    shell, flag, script, arg0 = services["worker"]["entrypoint"]
    script = script.replace("$$", "$").replace("/etc/hostname", str(tmp_path / "h"))
    (tmp_path / "h").write_text("3f2a9c1b7d4e\n")
    fake = tmp_path / "monitor"
    fake.write_text('#!/bin/sh\necho "$MONITOR_INSTANCE_ID" "$@"\n')
    fake.chmod(0o755)
    done = subprocess.run(
        [
            shutil.which("dash") or shell,
            flag,
            script,
            arg0,
            *services["worker"]["command"],
        ],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert done.stdout.split() == ["3f2a9c1b7d4e", "worker"]


def test_the_worker_drains_before_it_is_killed(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    grace = re.fullmatch(r"(\d+)s", worker["stop_grace_period"])
    assert grace
    settings = Settings.load(env=_worker_env(services))
    assert int(grace.group(1)) > settings.shutdown_seconds


def test_every_monitor_variable_in_the_stack_is_a_known_setting(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        env = _environment(service)
        if not any(key.startswith("MONITOR_") for key in env):
            continue
        if service.get("env_file"):
            assert service["env_file"] == ".env", name  # made from .env.example
            env = {**_env_file(ENV_EXAMPLE), **env}
        monitor_env = {k: v for k, v in env.items() if k.startswith("MONITOR_")}
        assert monitor_env["MONITOR_KAFKA_URL"].startswith("kafka://kafka:")
        assert monitor_env["MONITOR_ES_URL"].startswith("http://elasticsearch:")
        for key in monitor_env:
            assert key[len("MONITOR_") :].lower() in Settings.model_fields, (name, key)
        settings = Settings.load(env=monitor_env)  # raises ConfigError naming one
        assert not settings.embedded


def test_partitions_and_replicas_fit_one_broker(
    services: dict[str, dict[str, Any]],
) -> None:
    settings = Settings.load(env=_worker_env(services))
    kafka_env = _environment(services["kafka"])
    assert (
        settings.topic_replicas
        == 1
        == int(kafka_env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"])
    )
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert settings.topic_partitions >= 2  # room for more than one worker


def test_the_rules_file_is_mounted_and_loads(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    settings = Settings.load(env=_worker_env(services))
    assert settings.rules is not None
    mounted = _repo_mounts(worker)[str(settings.rules)]
    assert mounted == REPO / "examples" / "rules.yaml" and mounted.is_file()
    assert all(v.endswith(":ro") for v in worker["volumes"])
    ruleset = load_rules(
        mounted,
        bucket_seconds=settings.bucket_seconds,
        detector_window_seconds=settings.window_seconds,
    )
    assert ruleset.rules and ruleset.channels  # the stack opens tickets and tells


def test_the_worker_starts_with_the_example_env_file(
    services: dict[str, dict[str, Any]],
) -> None:
    """What the worker checks at start: settings, tokens, every channel."""
    env = _worker_env(services)
    settings = Settings.load(env=env)
    Authenticator.from_spec(settings.api_tokens)
    assert settings.rules is not None
    ruleset = load_rules(REPO / "examples" / "rules.yaml")
    referenced = {
        name for channel in ruleset.channels.values() for name in channel.env_names
    }
    assert referenced and referenced <= set(env)
    Notifier(ruleset.channels, env, console_url=settings.console_url)


def test_env_example_lists_the_tokens_and_env_is_ignored() -> None:
    env = _env_file(ENV_EXAMPLE)
    for name in (
        "MONITOR_API_TOKENS",
        "MONITOR_CONSOLE_URL",
        "MONITOR_ACTION_LINK_KEYS",
    ):
        assert name in env, name
    for name in env:
        assert name.startswith(("MONITOR_", "ALERT_")), name
        if name.startswith("MONITOR_"):
            assert name[len("MONITOR_") :].lower() in Settings.model_fields, name
    # No known secret is shipped: empty tokens and keys until someone sets them.
    assert env["MONITOR_API_TOKENS"] == env["MONITOR_ACTION_LINK_KEYS"] == ""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "tokens hash --new" in text
    for secret in (".env", "deploy/secrets/alertbridge_token"):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", secret], cwd=REPO, check=False
        )
        assert ignored.returncode == 0, f"{secret} must be ignored by git"
    tracked = subprocess.run(
        ["git", "check-ignore", "-q", ".env.example"], cwd=REPO, check=False
    )
    assert tracked.returncode == 1, ".env.example must not be ignored"


def test_commands_the_stack_runs_exist(services: dict[str, dict[str, Any]]) -> None:
    """Every monitor command line in the stack names real commands and options."""
    built = {name for name, s in services.items() if "build" in s}
    assert {"worker", "setup", "alertbridge", "replay"} <= built
    for name in built:
        args = list(services[name]["command"])
        command: click.Command = cli
        path = []
        while isinstance(command, click.Group):
            word = args.pop(0)
            sub = command.get_command(click.Context(command), word)
            assert sub is not None, (
                f"{name}: no command `monitor {' '.join(path + [word])}`"
            )
            path.append(word)
            command = sub
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        for word in args:
            if word.startswith("--"):
                assert word in options, (
                    f"{name}: monitor {' '.join(path)} has no {word}"
                )


def test_files_the_stack_mounts_or_copies_exist(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for target, source in _repo_mounts(service).items():
            # Docker would mount a missing file as an empty directory.
            if Path(target).suffix:
                assert source.is_file(), (name, source)
            else:
                assert source.is_dir(), (name, source)
    dockerfile = (REPO / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE):
        for name in source.split():
            assert (REPO / name).exists(), name
    # Commands look for samples/, examples/ and dashboards/ beside the package.
    assert "pip install -e ." in dockerfile
    for needed in ("samples", "examples", "dashboards", "monitor"):
        assert re.search(rf"^COPY {needed} \./{needed}$", dockerfile, re.MULTILINE)


# --- secrets ------------------------------------------------------------------


def test_secrets_are_files_made_by_the_init_script(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    secrets = compose["secrets"]
    used = {name for s in services.values() for name in _secret_targets(s).values()}
    assert used == set(secrets)
    readme = (REPO / "deploy" / "secrets" / "README.md").read_text(encoding="utf-8")
    for name, spec in secrets.items():
        assert spec["file"] == f"./deploy/secrets/{name}", name
        assert f"`{name}`" in readme, name
    target = tmp_path / "secrets"
    done = subprocess.run(
        [str(INIT_SECRETS), str(target)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    for name in secrets:
        path = target / name
        assert path.read_text().strip(), name
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, name
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    # Run again: nothing that exists is replaced.
    token = (target / "alertbridge_token").read_text()
    subprocess.run([str(INIT_SECRETS), str(target)], capture_output=True, check=True)
    assert (target / "alertbridge_token").read_text() == token
    assert len(token.strip()) == 64


def test_the_bridge_starts_with_the_secrets_the_stack_mounts(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    bridge = services["alertbridge"]
    config_path = bridge["command"][bridge["command"].index("--config") + 1]
    config_file = _repo_mounts(bridge)[config_path]
    text = config_file.read_text(encoding="utf-8")
    targets = _secret_targets(bridge)
    named = set(re.findall(r"_file: (\S+)", text))
    assert named and named <= set(targets), named - set(targets)
    # Load it as the container would, with the files the init script makes.
    secrets = tmp_path / "secrets"
    subprocess.run([str(INIT_SECRETS), str(secrets)], capture_output=True, check=True)
    for path in named:
        text = text.replace(path, str(secrets / targets[path]))
    (tmp_path / "alertbridge.yml").write_text(text, encoding="utf-8")
    config = load_bridge_config(tmp_path / "alertbridge.yml")
    assert config.token and config.host == "0.0.0.0"
    assert f"127.0.0.1:{config.port}/-/healthy" in " ".join(
        bridge["healthcheck"]["test"]
    )


def test_alertmanager_gets_every_file_its_config_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    manager = services["alertmanager"]
    config_file = _repo_mounts(manager)["/etc/alertmanager/alertmanager.yml"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in manager["command"]
    text = config_file.read_text(encoding="utf-8")
    files = set(re.findall(r"_file: (\S+)", text))
    assert files and files <= set(_secret_targets(manager)), files
    # Alertmanager and the bridge share the bearer token's secret.
    token_secret = _secret_targets(manager)[
        "/etc/alertmanager/secrets/alertbridge_token"
    ]
    assert token_secret in _secret_targets(services["alertbridge"]).values()
    # Its webhooks reach the bridge service on the port the bridge listens on.
    bridge_file = _repo_mounts(services["alertbridge"])[
        "/etc/alertbridge/alertbridge.yml"
    ]
    port = yaml.safe_load(bridge_file.read_text(encoding="utf-8"))["listen"]["port"]
    urls = re.findall(r"url: (http://alertbridge\S*)", text)
    assert urls and all(u.startswith(f"http://alertbridge:{port}/") for u in urls)


# --- Prometheus and Grafana ---------------------------------------------------


def test_prometheus_finds_every_worker_replica_and_loads_the_rules(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    mounts = _repo_mounts(prometheus)
    config_path = next(
        arg.split("=", 1)[1]
        for arg in prometheus["command"]
        if arg.startswith("--config.file=")
    )
    config_file = mounts[config_path]
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    worker_port = Settings.load(env=_worker_env(services)).web_port
    jobs = config["scrape_configs"]
    sd = [entry for job in jobs for entry in job.get("dns_sd_configs", [])]
    assert sd == [{"names": ["worker"], "type": "A", "port": worker_port}]
    assert not [job for job in jobs if "static_configs" in job]
    # Rule files are relative to the config file, in the container too.
    for rule_file in config["rule_files"]:
        in_container = str(Path(config_path).parent / rule_file)
        assert mounts[in_container] == config_file.parent / rule_file
        assert mounts[in_container].name == "rules.yml"
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make system-deps` (Debian packages)"
    done = subprocess.run(
        [promtool, "check", "config", config_file.name],
        cwd=config_file.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rules.yml" in done.stdout  # the rule file was found and checked


def test_grafana_is_provisioned_with_the_dashboard_and_this_prometheus(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    mounts = _repo_mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    provider = yaml.safe_load(
        (provisioning / "dashboards" / "monitor.yml").read_text(encoding="utf-8")
    )["providers"][0]
    dashboard_dir = provider["options"]["path"]
    assert (
        mounts[f"{dashboard_dir}/monitor.json"]
        == REPO / "dashboards/grafana/monitor.json"
    )
    source = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    assert _environment(grafana)["GF_SECURITY_ADMIN_PASSWORD__FILE"] in _secret_targets(
        grafana
    )


# --- the proxy ----------------------------------------------------------------


def _nginx_locations(text: str) -> dict[str, str]:
    """Location -> its block, for the flat blocks of our config."""
    text = re.sub(r"#[^\n]*", "", text)
    return {
        match.group(1).strip(): match.group(2)
        for match in re.finditer(r"location\s+([^{]+?)\s*\{([^{}]*)\}", text)
    }


def test_the_proxy_serves_the_console_and_api_of_every_replica(
    services: dict[str, dict[str, Any]],
) -> None:
    proxy = services["proxy"]
    assert _repo_mounts(proxy)["/etc/nginx/conf.d/default.conf"] == NGINX_CONF
    text = NGINX_CONF.read_text(encoding="utf-8")
    code = re.sub(r"#[^\n]*", "", text)
    assert re.search(r"^resolver 127\.0\.0\.11\b", code, re.MULTILINE)
    port = Settings.load(env=_worker_env(services)).web_port
    variable = re.search(r"set \$(\w+) worker:(\d+);", code)
    assert variable and int(variable.group(2)) == port
    locations = _nginx_locations(text)
    upstream = f"proxy_pass http://${variable.group(1)};"
    for path in ("/api/", "/console", "= /api/stream"):
        assert upstream in locations[path], path
    stream = locations["= /api/stream"]
    assert "proxy_buffering off;" in stream
    timeout = re.search(r"proxy_read_timeout (\d+)([smh]);", stream)
    assert (
        timeout
        and int(timeout.group(1)) * {"s": 1, "m": 60, "h": 3600}[timeout.group(2)]
        >= 600
    )
    # /metrics stays inside: nothing else is passed on.
    passing = {path for path, block in locations.items() if "proxy_pass" in block}
    assert passing == {"/api/", "/console", "= /api/stream"}
    listen = re.search(r"listen (\d+);", code)
    assert listen and any(
        str(p).endswith(f":{listen.group(1)}") for p in proxy["ports"]
    )
    assert f"127.0.0.1:{listen.group(1)}/healthz" in " ".join(
        proxy["healthcheck"]["test"]
    )
    assert "location = /healthz" in code
    # The console's links point at the proxy.
    env = _env_file(ENV_EXAMPLE)
    assert env["MONITOR_CONSOLE_URL"].endswith(f":{proxy['ports'][0].split(':')[1]}")


def test_nginx_config_braces_balance() -> None:
    code = re.sub(r"#[^\n]*", "", NGINX_CONF.read_text(encoding="utf-8"))
    depth = 0
    for char in code:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    for line in code.splitlines():
        line = line.strip()
        if line and not line.endswith(("{", "}", ";")):
            pytest.fail(f"nginx statement without ';': {line!r}")
