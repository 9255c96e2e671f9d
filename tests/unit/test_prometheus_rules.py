"""The Prometheus rules and the Alertmanager configuration, checked by their own tools.

``promtool`` and ``amtool`` come from Debian's ``prometheus`` and
``prometheus-alertmanager`` packages (``make system-deps``); a missing tool
fails the test instead of skipping it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from monitor.metrics import MonitorMetrics, SourceMetrics
from tests.unit.test_grafana import PROMETHEUS_SERIES, metric_names, worker_series_names

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "dashboards" / "prometheus"
ALERTMANAGER = REPO / "dashboards" / "alertmanager"

#: The alerts the issue asks for, by what they watch.
EXPECTED_ALERTS = {
    "MonitorWorkerDown",
    "MonitorWorkersAbsent",
    "MonitorConsumerLagHigh",
    "MonitorConsumerLagGrowing",
    "MonitorEventTimeLagHigh",
    "MonitorDeadLettersRising",
    "MonitorElasticsearchUnavailable",
    "MonitorElasticsearchBulkRejected",
    "MonitorStageStalled",
    "MonitorConsumerRewound",
    "MonitorWindowsIncomplete",
    "MonitorNoticeChannelFailing",
    "MonitorNoticesStuck",
    "MonitorSlaCheckerNotRunning",
    "MonitorSourceStale",
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: run `make system-deps` (Debian packages)"
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


def _rules() -> list[dict[str, object]]:
    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text(encoding="utf-8"))
    return [rule for group in groups["groups"] for rule in group["rules"]]


def _label_names() -> dict[str, set[str]]:
    """Series name -> the label names it can carry (Prometheus adds job, instance)."""
    registry = CollectorRegistry()
    metrics = [*MonitorMetrics.create(registry), *SourceMetrics.create(registry)]
    labels = {name: {"job", "instance"} for name in PROMETHEUS_SERIES}
    for metric in metrics:
        own = {"job", "instance", *metric._labelnames}
        name = metric._name
        kind = metric._type
        if kind == "counter":
            labels[f"{name}_total"] = own
        elif kind == "histogram":
            labels[f"{name}_bucket"] = own | {"le"}
            labels[f"{name}_sum"] = labels[f"{name}_count"] = own
        else:
            labels[name] = own
    return labels


def test_every_rule_names_metrics_and_labels_the_worker_exports() -> None:
    """A renamed metric or label would leave a rule silent for ever: fail here.

    The source metrics count: a worker that runs sources registers them
    (tests/integration/test_prometheus.py checks the rest on a real worker's
    /metrics).
    """
    known = worker_series_names(sources=True) | PROMETHEUS_SERIES
    labels = _label_names()
    for rule in _rules():
        expr = str(rule["expr"])
        names = metric_names(expr)
        assert names and names <= known, (rule["alert"], names - known)
        for name, matchers in re.findall(r"([a-zA-Z_:][\w:]*)\{([^}]*)\}", expr):
            used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
            assert used <= labels[name], (rule["alert"], name, used - labels[name])
        grouped = {
            label.strip()
            for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
            for label in clause.split(",")
            if label.strip()
        }
        available = set().union(*(labels[name] for name in names))
        assert grouped <= available, (rule["alert"], grouped - available)


def test_rules_pass_promtool_check() -> None:
    done = _run(_tool("promtool"), "check", "rules", "rules.yml", cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in done.stdout


def test_prometheus_config_passes_promtool_check() -> None:
    done = _run(_tool("promtool"), "check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_pass_their_promtool_unit_tests() -> None:
    done = _run(_tool("promtool"), "test", "rules", "rules.test.yml", cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_there_with_a_severity_and_a_summary() -> None:
    rules = _rules()
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    for rule in rules:
        labels = rule.get("labels") or {}
        assert isinstance(labels, dict)
        assert labels.get("severity") in {"page", "ticket"}, rule["alert"]
        annotations = rule.get("annotations") or {}
        assert isinstance(annotations, dict)
        assert annotations.get("summary"), rule["alert"]


def test_every_alert_has_a_firing_and_a_target_gone_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "rules.test.yml").read_text(encoding="utf-8"))[
        "tests"
    ]
    fired: set[str] = set()
    silent_when_gone: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            if check["exp_alerts"]:
                fired.add(check["alertname"])
            elif "target gone" in case["name"]:
                silent_when_gone.add(check["alertname"])
    assert fired == EXPECTED_ALERTS
    assert silent_when_gone >= EXPECTED_ALERTS - {"MonitorWorkersAbsent"}


def test_sla_breaches_are_not_paged_here() -> None:
    """The worker escalates breaches itself: no rule on breach counters."""
    for rule in _rules():
        assert not re.search(r"breach", str(rule["expr"]), re.IGNORECASE)


def test_alertmanager_config_passes_amtool() -> None:
    done = _run(_tool("amtool"), "check-config", "alertmanager.yml", cwd=ALERTMANAGER)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_inhibitions_compare_labels_their_targets_keep() -> None:
    """An ``equal`` label an alert aggregated away would never match: dead config."""
    config = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text("utf-8"))
    aggregation = r"\b(?:sum|max|min|avg|count|absent)\s*(?:by\s*\(([^)]*)\)\s*)?\("
    for inhibit in config["inhibit_rules"]:
        (pattern,) = [
            m.split("=~", 1)[1].strip('"')
            for m in inhibit["target_matchers"]
            if m.startswith("alertname=~")
        ]
        targets = [r for r in _rules() if re.fullmatch(pattern, str(r["alert"]))]
        assert targets, inhibit
        for rule in targets:
            for label in inhibit.get("equal", []):
                for kept in re.findall(aggregation, str(rule["expr"])):
                    assert label in kept.replace(" ", "").split(","), (
                        rule["alert"],
                        label,
                    )


def test_alertmanager_reads_secrets_from_files_only() -> None:
    text = (ALERTMANAGER / "alertmanager.yml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert "${" not in text  # Alertmanager does not expand environment variables
    kinds: set[str] = set()
    for receiver in config["receivers"]:
        for key, entries in receiver.items():
            if key == "name":
                continue
            kinds.add(key)
            for entry in entries:
                for field in ("auth_password", "api_url", "credentials", "password"):
                    assert field not in entry, (receiver["name"], field)
                if key == "slack_configs":
                    assert entry["api_url_file"].startswith(
                        "/etc/alertmanager/secrets/"
                    )
                if key == "email_configs":
                    assert entry["auth_password_file"].startswith(
                        "/etc/alertmanager/secrets/"
                    )
    assert {"email_configs", "webhook_configs", "slack_configs"} <= kinds
    urls = [
        entry["url"]
        for receiver in config["receivers"]
        for entry in receiver.get("webhook_configs", [])
    ]
    assert any("/dingtalk/" in url for url in urls)
    assert any("/feishu/" in url for url in urls)
