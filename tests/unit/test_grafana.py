"""The Grafana dashboard: well formed, provisioned, and every query names real metrics.

The metric names come from the worker's own registry
(:meth:`monitor.metrics.MonitorMetrics.create`), so a renamed metric fails
here instead of leaving an empty panel. Query syntax is checked by promtool
(each query becomes a recording rule).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from monitor.metrics import MonitorMetrics, SourceMetrics

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "dashboards" / "grafana"
#: Series Prometheus makes itself.
PROMETHEUS_SERIES = {"up"}
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
}
#: Grafana's variables, replaced as Grafana would before Prometheus sees them.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "6h", "$__interval": "15s"}


def _dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "monitor.json").read_text(encoding="utf-8"))


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in _dashboard()["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def _expand(expr: str) -> str:
    for name, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def series_names(families: Iterable[Metric]) -> set[str]:
    """Every series name of these metric families, as /metrics names them."""
    names: set[str] = set()
    for family in families:
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {
                f"{family.name}{suffix}"
                for suffix in ("_bucket", "_sum", "_count", "_created")
            }
        else:
            names.add(family.name)
    return names


def worker_series_names(*, sources: bool = False) -> set[str]:
    """Every series name the worker's registry exports.

    With ``sources``, also those of a worker that runs sources (the source
    metrics are registered only when MONITOR_SOURCES is set).
    """
    registry = CollectorRegistry()
    MonitorMetrics.create(registry)
    if sources:
        SourceMetrics.create(registry)
    return series_names(registry.collect())


def test_metric_names_are_read_from_promql() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, stage) (rate(a_bucket{stage="x"}[5m])))'
        " / on (stage) group_left b - time() > bool 3"
    ) == {"a_bucket", "b"}


def test_every_query_names_metrics_the_worker_exports() -> None:
    known = worker_series_names() | PROMETHEUS_SERIES
    used: set[str] = set()
    for title, expr in queries():
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= known, (title, expr, names - known)
        used |= names
    # What the issue asks the dashboard to show.
    for needed in (
        "monitor_posts_consumed_total",
        "monitor_posts_indexed_total",
        "monitor_stage_seconds_bucket",
        "monitor_es_bulk_seconds_bucket",
        "monitor_consumer_lag",
        "monitor_event_lag_seconds_bucket",
        "monitor_es_bulk_errors_total",
        "monitor_posts_dead_lettered_total",
        "monitor_ticket_decisions_total",
        "monitor_notifications_total",
    ):
        assert needed in used, needed


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make system-deps`"
    rules = [
        {"record": f"grafana:query_{number}", "expr": _expand(expr)}
        for number, (_, expr) in enumerate(queries())
    ]
    rules_file = tmp_path / "grafana-queries.yml"
    rules_file.write_text(
        yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}),
        encoding="utf-8",
    )
    done = subprocess.run(
        [promtool, "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_dashboard_structure_and_provisioning() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/prometheus.yml").read_text("utf-8")
    )["datasources"]
    uids = {source["uid"] for source in datasources if source["type"] == "prometheus"}
    for panel in panels:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in uids, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    providers = yaml.safe_load(
        (GRAFANA / "provisioning/dashboards/monitor.yml").read_text("utf-8")
    )["providers"]
    assert providers[0]["type"] == "file" and providers[0]["options"]["path"]
