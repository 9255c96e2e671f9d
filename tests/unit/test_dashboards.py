"""The Kibana saved objects are consistent with the index mapping."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from monitor.sinks.elasticsearch.posts import posts_index_pattern
from monitor.sinks.elasticsearch.templates import POST_MAPPING

REPO = Path(__file__).resolve().parents[2]


def load_objects() -> list[dict[str, Any]]:
    lines = (REPO / "dashboards/kibana/monitor.ndjson").read_text(encoding="utf-8")
    return [json.loads(line) for line in lines.splitlines() if line.strip()]


def test_saved_objects_have_unique_ids_and_resolvable_references() -> None:
    objects = load_objects()
    keys = [(o["type"], o["id"]) for o in objects]
    assert len(keys) == len(set(keys))
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in keys, (obj["id"], ref)


def test_data_view_matches_the_posts_indices_and_time_field() -> None:
    (view,) = [o for o in load_objects() if o["type"] == "index-pattern"]
    assert view["attributes"]["title"] == posts_index_pattern("monitor")
    assert view["attributes"]["timeFieldName"] == "published_at"


def test_saved_searches_only_use_mapped_fields() -> None:
    fields = set(POST_MAPPING["properties"])
    for obj in load_objects():
        if obj["type"] != "search":
            continue
        assert set(obj["attributes"]["columns"]) <= fields, obj["id"]
        meta = obj["attributes"]["kibanaSavedObjectMeta"]
        source = json.loads(meta["searchSourceJSON"])
        used = re.findall(r"(\w+)\s*(?::|>=|<=)", source["query"]["query"])
        assert set(used) <= fields, obj["id"]


def test_dashboard_panels_each_have_a_reference() -> None:
    (board,) = [o for o in load_objects() if o["type"] == "dashboard"]
    panels = json.loads(board["attributes"]["panelsJSON"])
    names = {ref["name"] for ref in board["references"]}
    assert panels and {panel["panelRefName"] for panel in panels} == names
