"""Metrics: names follow the conventions, labels stay bounded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.metrics import MonitorMetrics, SourceLabels


def test_source_labels_keep_the_first_names_then_say_other() -> None:
    label = SourceLabels(limit=3)  # "unknown" is always one of them
    assert [label(s) for s in ("weibo", "dianping", "douyin", "weibo")] == [
        "weibo",
        "dianping",
        "other",
        "weibo",
    ]
    assert label("unknown") == "unknown"


def test_metric_names_follow_the_conventions() -> None:
    registry = CollectorRegistry()
    MonitorMetrics.create(registry)
    names = {family.name for family in registry.collect()}
    assert names, "no metrics defined"
    for family in registry.collect():
        assert family.name.startswith("monitor_")
        if family.type == "counter":
            # prometheus_client strips _total from the family name
            assert not family.name.endswith("_total")
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
