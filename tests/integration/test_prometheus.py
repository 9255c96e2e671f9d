"""A real Prometheus (Debian's package) scrapes a real worker and evaluates our rules.

promtool checks and unit-tests the rules in tests/unit/test_prometheus_rules.py.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.local.embedded import free_port
from tests.integration.conftest import Stack, WorkerProcess
from tests.support import make_posts, wait_until
from tests.unit.test_grafana import (
    PROMETHEUS_SERIES,
    metric_names,
    queries,
    series_names,
    worker_series_names,
)
from tests.unit.test_prometheus_rules import EXPECTED_ALERTS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def rules(self) -> dict[str, dict[str, Any]]:
        """Return the alerting rules by name, as /api/v1/rules shows them."""
        with urllib.request.urlopen(f"{self.url}/api/v1/rules", timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return {
            rule["name"]: rule
            for group in body["data"]["groups"]
            for rule in group["rules"]
        }


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus package is missing (make test installs it)"
    shutil.copy(REPO / "dashboards" / "prometheus" / "rules.yml", tmp_path)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n"
        "  - job_name: monitor\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{stack.web_port}']}}]\n",
        encoding="utf-8",
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                "prometheus exited:\n"
                + (tmp_path / "prometheus.log").read_text()[-2000:]
            )
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_until(ready, timeout=30, what="prometheus ready")
        yield Prometheus(url)
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def _exported(worker: WorkerProcess) -> set[str]:
    """Series names the worker's /metrics serves (labelled ones without samples too)."""
    with urllib.request.urlopen(worker.web_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return series_names(text_string_to_metric_families(text))


def test_prometheus_scrapes_the_worker_counters_and_loads_the_alert_rules(
    stack: Stack, prometheus: Prometheus
) -> None:
    # One post goes to a day whose index maps `sentiment` as another type
    # (made by hand before the worker's template): Elasticsearch refuses it.
    refused = make_posts(1, prefix="r", start=datetime(2026, 11, 19, 12, tzinfo=UTC))
    stack.es.indices.create(
        index=f"{stack.index_prefix}-posts-2026.11.19",
        mappings={"properties": {"sentiment": {"type": "boolean"}}},
    )
    worker = stack.worker().start()
    posts = make_posts(25, prefix="p") + refused
    stack.monitor("replay", str(stack.write_jsonl(posts)))
    stack.publish_raw([b"{not json"])
    wait_until(
        lambda: worker.metric_sum("monitor_posts_indexed_total") >= 25
        and worker.metric_sum("monitor_es_bulk_errors_total", kind="rejected") >= 1,
        timeout=120,
        what="25 posts indexed and one refused",
    )

    wait_until(
        lambda: prometheus.value('up{job="monitor"}') == 1.0,
        timeout=30,
        what="the worker target up",
    )
    wait_until(
        lambda: prometheus.value("sum(monitor_posts_indexed_total)") == 25.0,
        timeout=30,
        what="Prometheus to see 25 indexed posts",
    )
    wait_until(
        lambda: prometheus.value("sum(monitor_posts_consumed_total)") == 27.0,
        timeout=30,
        what="Prometheus to see 27 consumed records",
    )
    assert (
        prometheus.value('sum(monitor_posts_dead_lettered_total{stage="score"})') == 1.0
    )
    assert (
        prometheus.value('sum(monitor_event_lag_seconds_count{stage="index"})') == 25.0
    )

    # Every metric a rule or a Grafana query reads is on the worker's /metrics
    # (the source metrics only on a worker running sources: this one runs
    # none, tests/unit/test_prometheus_rules.py checks them in the registry).
    exported = _exported(worker) | PROMETHEUS_SERIES
    only_with_sources = worker_series_names(sources=True) - worker_series_names()
    rule_file = yaml.safe_load((REPO / "dashboards/prometheus/rules.yml").read_text())
    for group in rule_file["groups"]:
        for rule in group["rules"]:
            names = metric_names(rule["expr"]) - only_with_sources
            assert names <= exported, (rule["alert"], names - exported)
    for title, expr in queries():
        assert metric_names(expr) <= exported, (title, metric_names(expr) - exported)

    rules = prometheus.rules()
    assert set(rules) == EXPECTED_ALERTS

    # Every rule evaluates against the worker's real series without error.
    def all_evaluated_ok() -> bool:
        return all(
            rule["health"] == "ok" and not rule["lastEvaluation"].startswith("0001")
            for rule in prometheus.rules().values()
        )

    wait_until(all_evaluated_ok, timeout=30, what="every rule evaluated, health ok")
    # The worker answers: no worker alert, no stalled stage (it is idle).
    # The refused document fires its rule (no `for`) from the real series.
    wait_until(
        lambda: prometheus.rules()["MonitorElasticsearchBulkRejected"]["state"]
        == "firing",
        timeout=30,
        what="MonitorElasticsearchBulkRejected firing",
    )
    (alert,) = prometheus.rules()["MonitorElasticsearchBulkRejected"]["alerts"]
    assert alert["labels"]["severity"] == "ticket"
    assert alert["annotations"]["summary"].startswith("Elasticsearch rejected 1 ")
    rules = prometheus.rules()
    assert rules["MonitorWorkerDown"]["state"] == "inactive"
    assert rules["MonitorWorkersAbsent"]["state"] == "inactive"
    assert rules["MonitorStageStalled"]["state"] == "inactive"
    assert prometheus.query("monitor_stage_last_progress_timestamp_seconds")

    # The worker dies: Prometheus sees up == 0 and MonitorWorkerDown
    # becomes pending (it fires after its `for: 1m`) for this very target.
    worker.stop(signal.SIGKILL)
    wait_until(
        lambda: prometheus.rules()["MonitorWorkerDown"]["state"] == "pending",
        timeout=30,
        what="MonitorWorkerDown pending once the worker stopped",
    )
    (alert,) = prometheus.rules()["MonitorWorkerDown"]["alerts"]
    assert alert["labels"]["instance"] == f"127.0.0.1:{stack.web_port}"
    assert alert["labels"]["severity"] == "page"
    assert alert["annotations"]["summary"] == (
        f"monitor worker 127.0.0.1:{stack.web_port} is not answering /metrics"
    )
