"""The Kibana saved objects, checked by structure (Kibana cannot run here).

Every field a data view, saved search or Lens layer uses exists in the index
templates with a type its operation accepts; every reference resolves; the
files are what ``dashboards/kibana/generate.py`` writes; and the import
request ``monitor dashboards install`` sends is well formed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from monitor.ops.kibana import (
    InstallError,
    ObjectsFile,
    build_import_request,
    import_order,
    import_url,
    load_objects,
    parse_import_response,
    parse_objects,
    redact_url,
    with_index_prefix,
)
from monitor.records import Burst
from monitor.sinks.elasticsearch.posts import daily_index
from monitor.sinks.elasticsearch.templates import (
    burst_index_template,
    count_index_template,
    events_index,
    post_index_template,
    ticket_index_templates,
    tickets_index,
)
from monitor.sinks.elasticsearch.windows import burst_document

REPO = Path(__file__).resolve().parents[2]
KIBANA = REPO / "dashboards" / "kibana"
AT = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)

#: The latest migration version of each type that Kibana 9.0 and 9.1 know
#: (exports of those releases carry them; a higher one is refused on import).
KIBANA_9_VERSIONS = {
    "index-pattern": "8.0.0",
    "lens": "8.9.0",
    "search": "10.5.0",
    "dashboard": "10.2.0",
}
#: Dashboard attributes Kibana's schema accepts (it forbids any other key).
DASHBOARD_ATTRIBUTES = {
    "title",
    "description",
    "kibanaSavedObjectMeta",
    "timeRestore",
    "timeFrom",
    "timeTo",
    "refreshInterval",
    "controlGroupInput",
    "panelsJSON",
    "optionsJSON",
    "hits",
    "version",
}
NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float"}
#: Lens column data type of each field type.
DATA_TYPES = {
    "keyword": "string",
    "date": "date",
    "boolean": "boolean",
    **{name: "number" for name in NUMERIC},
}
#: Field types each Lens operation accepts (None: no field).
OPERATIONS: dict[str, set[str] | None] = {
    "date_histogram": {"date"},
    "terms": {"keyword", "boolean"},
    "sum": NUMERIC,
    "average": NUMERIC,
    "median": NUMERIC,
    "percentile": NUMERIC,
    "max": NUMERIC,
    "min": NUMERIC,
    "filters": None,
}
#: Types Discover can sort on and Lens can aggregate (not text, not disabled).
SORTABLE = {"keyword", "date", "boolean", *NUMERIC}
KQL_FIELD = re.compile(r"([A-Za-z_][\w.]*)\s*(?::|>=|<=|<|>)")
DOC_FIELD = re.compile(r"doc\['([\w.]+)'\]")


# --- loading --------------------------------------------------------------------------


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kibana_generate", KIBANA / "generate.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def files() -> list[ObjectsFile]:
    return load_objects(KIBANA)


def objects(kind: str | None = None) -> Iterator[dict[str, Any]]:
    for f in files():
        for obj in f.objects:
            if kind is None or obj["type"] == kind:
                yield obj


def flatten(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    fields = {}
    for name, mapping in properties.items():
        if "properties" in mapping:
            fields.update(flatten(mapping["properties"], f"{prefix}{name}."))
        else:
            fields[f"{prefix}{name}"] = mapping
    return fields


def templates() -> dict[str, dict[str, Any]]:
    return {
        "posts": post_index_template("monitor"),
        "counts": count_index_template("monitor"),
        "bursts": burst_index_template("monitor"),
        **ticket_index_templates("monitor"),
    }


def example_indices() -> dict[str, str]:
    """An index each data view must cover, named by the code that writes it."""
    burst = Burst(
        burst_id="topic:x@1",
        series="topic:x",
        kind="topic",
        key="x",
        phase="started",
        window_start=AT,
        window_seconds=60,
        observed=9.0,
        expected=1.0,
        score=5.0,
        started_at=AT,
        peak_at=AT,
        ended_at=None,
        peak_score=5.0,
        peak_observed=9.0,
        peak_expected=1.0,
        post_ids=(),
        updated_at=AT,
    )
    return {
        "monitor-posts": daily_index("monitor", "posts", AT, "+08:00"),
        "monitor-counts": daily_index("monitor", "counts", AT),
        "monitor-bursts": burst_document(burst, prefix="monitor").index,
        "monitor-tickets": tickets_index("monitor"),
        "monitor-ticket-events": events_index("monitor", AT),
    }


def mapping_of(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Fields (dotted name -> mapping) of a data view: template plus runtime."""
    index = example_indices()[view["id"]]
    matching = [
        body
        for body in templates().values()
        if any(fnmatch(index, pattern) for pattern in body["index_patterns"])
    ]
    assert len(matching) == 1, (view["id"], index)
    fields = flatten(matching[0]["template"]["mappings"]["properties"])
    runtime = json.loads(view["attributes"]["runtimeFieldMap"])
    assert not set(runtime) & set(fields), view["id"]
    return {
        **fields,
        **{name: {"type": spec["type"]} for name, spec in runtime.items()},
    }


def views() -> dict[str, dict[str, dict[str, Any]]]:
    return {view["id"]: mapping_of(view) for view in objects("index-pattern")}


def kql_fields(query: str) -> set[str]:
    # Quoted values ("in_progress") are not field names.
    return set(KQL_FIELD.findall(re.sub(r'"[^"]*"', '""', query)))


def lens_layers(lens: dict[str, Any]) -> dict[str, dict[str, Any]]:
    layers: dict[str, dict[str, Any]] = lens["attributes"]["state"]["datasourceStates"][
        "formBased"
    ]["layers"]
    return layers


# --- the files ------------------------------------------------------------------------


def test_committed_files_are_what_the_generator_writes() -> None:
    module = generator()
    written = module.files()
    assert {path.name for path in KIBANA.glob("*.ndjson")} == set(written)
    for name, objs in written.items():
        assert (KIBANA / name).read_bytes() == module.render(name, objs), (
            f"{name} is stale: run .venv/bin/python dashboards/kibana/generate.py"
        )


def test_every_line_is_one_saved_object_and_reencodes_unchanged() -> None:
    for f in files():
        raw = (KIBANA / f.name).read_bytes()
        assert raw.endswith(b"\n") and b"\n\n" not in raw
        assert f.content() == raw


def test_ids_are_unique_and_migration_versions_are_kibana_9s() -> None:
    keys = [(obj["type"], obj["id"]) for obj in objects()]
    assert len(keys) == len(set(keys))
    assert len({obj["id"] for obj in objects()}) == len(keys)
    for obj in objects():
        assert obj["coreMigrationVersion"] == "8.8.0", obj["id"]
        assert obj["typeMigrationVersion"] == KIBANA_9_VERSIONS[obj["type"]], obj["id"]
        assert obj["id"].startswith("monitor-"), obj["id"]


def test_there_are_five_data_views_two_dashboards_and_lens_charts() -> None:
    kinds = [obj["type"] for obj in objects()]
    assert kinds.count("index-pattern") == 5
    assert kinds.count("dashboard") == 2
    assert kinds.count("lens") >= 30
    charts = {obj["attributes"]["visualizationType"] for obj in objects("lens")}
    assert charts == {"lnsXY", "lnsPie", "lnsDatatable", "lnsMetric"}


def test_every_reference_resolves_to_an_object_of_its_type() -> None:
    keys = {(obj["type"], obj["id"]) for obj in objects()}
    for obj in objects():
        names = [ref["name"] for ref in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in keys, (obj["id"], ref)


def test_the_data_views_file_imports_first() -> None:
    ordered = [f.name for f in files()]
    assert ordered[0] == "data-views.ndjson"
    assert set(ordered) == {
        "data-views.ndjson",
        "pr-dashboard.ndjson",
        "oncall-dashboard.ndjson",
    }


# --- data views -----------------------------------------------------------------------


def test_data_views_cover_the_indices_the_product_writes() -> None:
    indices = example_indices()
    seen = set()
    for view in objects("index-pattern"):
        attributes = view["attributes"]
        assert fnmatch(indices[view["id"]], attributes["title"]), view["id"]
        fields = mapping_of(view)
        assert fields[attributes["timeFieldName"]]["type"] == "date", view["id"]
        for key in ("fieldAttrs", "fieldFormatMap", "fields", "sourceFilters"):
            json.loads(attributes[key])
        for name in json.loads(attributes["fieldFormatMap"]):
            assert name in fields, (view["id"], name)
        seen.add(view["id"])
    assert seen == set(indices)


def test_runtime_fields_read_only_mapped_doc_values() -> None:
    (tickets,) = [v for v in objects("index-pattern") if v["id"] == "monitor-tickets"]
    runtime = json.loads(tickets["attributes"]["runtimeFieldMap"])
    assert set(runtime) == {
        "time_to_acknowledge_minutes",
        "time_to_resolve_minutes",
        "sla_state",
    }
    fields = mapping_of(tickets)
    for name, spec in runtime.items():
        script = spec["script"]["source"]
        read = DOC_FIELD.findall(script)
        assert read, name
        for field_name in read:
            assert fields[field_name]["type"] in {"date", "keyword"}, (name, field_name)
        assert "emit(" in script and script.count("{") == script.count("}"), name
    assert runtime["time_to_resolve_minutes"]["type"] == "double"
    assert "'resolve@'" in runtime["sla_state"]["script"]["source"]


# --- saved searches -------------------------------------------------------------------


def test_saved_searches_only_use_mapped_fields() -> None:
    fields_of = views()
    for search in objects("search"):
        (ref,) = search["references"]
        fields = fields_of[ref["id"]]
        attributes = search["attributes"]
        for column in attributes["columns"]:
            assert column in fields, (search["id"], column)
            assert fields[column].get("enabled", True), (search["id"], column)
        for name, direction in attributes["sort"]:
            assert fields[name]["type"] in SORTABLE and direction in {"asc", "desc"}
        source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["indexRefName"] == ref["name"]
        assert kql_fields(source["query"]["query"]) <= set(fields), search["id"]


# --- filter values --------------------------------------------------------------------


def kql_queries(node: Any) -> Iterator[str]:
    """Every KQL query string inside a saved object (JSON strings decoded)."""
    if isinstance(node, dict):
        if node.get("language") == "kuery" and isinstance(node.get("query"), str):
            yield node["query"]
        for value in node.values():
            yield from kql_queries(value)
    elif isinstance(node, list):
        for value in node:
            yield from kql_queries(value)
    elif isinstance(node, str) and node[:1] in "[{":
        try:
            decoded = json.loads(node)
        except ValueError:
            return
        yield from kql_queries(decoded)


def test_filters_match_values_the_product_writes() -> None:
    """A misspelt status or action would leave a panel empty, never failing."""
    from monitor.analysis.sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE
    from monitor.analysis.tickets.model import TicketAction, TicketStatus

    (tickets,) = [v for v in objects("index-pattern") if v["id"] == "monitor-tickets"]
    runtime = json.loads(tickets["attributes"]["runtimeFieldMap"])
    sla_states = set(
        re.findall(r"emit\('([^']*)'\)", runtime["sla_state"]["script"]["source"])
    )
    allowed = {
        "status": {str(s) for s in TicketStatus},
        "action": {str(a) for a in TicketAction},
        "label": {NEGATIVE, NEUTRAL, POSITIVE},
        # SeriesPoint.kind of the window counts and bursts
        "kind": {"topic", "negative", "keyword"},
        "sla_state": sla_states,
        "anomalous": {"true", "false"},
    }
    assert len(sla_states) == 4
    seen: set[str] = set()
    for obj in objects():
        for query in kql_queries(obj["attributes"]):
            for field, values in re.findall(
                r'([A-Za-z_][\w.]*)\s*:\s*(\([^)]*\)|"[^"]*"|\w+)', query
            ):
                assert field in allowed, (obj["id"], field, query)
                for value in re.findall(r'"([^"]*)"|\b(?!or\b|and\b)(\w+)', values):
                    word = value[0] or value[1]
                    assert word in allowed[field], (obj["id"], field, word)
                seen.add(field)
    assert {"status", "action", "label", "kind", "sla_state"} <= seen


# --- Lens -----------------------------------------------------------------------------


def test_each_lens_layer_references_its_data_view() -> None:
    data_views = {view["id"] for view in objects("index-pattern")}
    for lens in objects("lens"):
        layers = lens_layers(lens)
        assert layers, lens["id"]
        expected = {f"indexpattern-datasource-layer-{layer}" for layer in layers}
        assert {ref["name"] for ref in lens["references"]} == expected, lens["id"]
        assert {ref["type"] for ref in lens["references"]} == {"index-pattern"}
        assert {ref["id"] for ref in lens["references"]} <= data_views


def test_lens_columns_use_fields_of_a_compatible_type() -> None:
    fields_of = views()
    for lens in objects("lens"):
        fields = fields_of[lens["references"][0]["id"]]
        state = lens["attributes"]["state"]
        queries = [state["query"]["query"]]
        for layer in lens_layers(lens).values():
            order = layer["columnOrder"]
            assert sorted(order) == sorted(layer["columns"]), lens["id"]
            # Lens keeps bucket columns before metric columns.
            buckets = [layer["columns"][c]["isBucketed"] for c in order]
            assert buckets == sorted(buckets, reverse=True), lens["id"]
            for column_id, column in layer["columns"].items():
                where = (lens["id"], column_id)
                operation = column["operationType"]
                queries.append(column.get("filter", {}).get("query", ""))
                if operation == "filters":
                    queries += [
                        f["input"]["query"] for f in column["params"]["filters"]
                    ]
                    assert column["isBucketed"] and "sourceField" not in column, where
                    continue
                if operation == "count":
                    assert column["sourceField"] == "___records___", where
                    assert column["dataType"] == "number", where
                    continue
                field_type = fields[column["sourceField"]]["type"]
                assert field_type in (OPERATIONS[operation] or ()), where
                wanted = "number" if field_type in NUMERIC else DATA_TYPES[field_type]
                assert column["dataType"] == wanted, where
                if operation == "terms":
                    order = column["params"]["orderBy"]
                    if order["type"] == "column":
                        assert order["columnId"] in layer["columns"], where
        for query in queries:
            assert kql_fields(query) <= set(fields), (lens["id"], query)


def test_lens_visualizations_point_at_their_layer_columns() -> None:
    for lens in objects("lens"):
        attributes = lens["attributes"]
        visualization = attributes["state"]["visualization"]
        (layer_id,) = lens_layers(lens)
        layer_state = lens_layers(lens)[layer_id]
        columns = layer_state["columns"]
        bucketed = {c for c, column in columns.items() if column["isBucketed"]}
        metrics = set(columns) - bucketed
        kind = attributes["visualizationType"]
        if kind == "lnsXY":
            (layer,) = visualization["layers"]
            assert layer["layerId"] == layer_id and layer["layerType"] == "data"
            assert layer["xAccessor"] in bucketed
            assert set(layer["accessors"]) == metrics
            assert {layer["xAccessor"], layer.get("splitAccessor")} - {None} == bucketed
        elif kind == "lnsPie":
            (layer,) = visualization["layers"]
            assert layer["layerId"] == layer_id
            assert set(layer["primaryGroups"]) == bucketed
            assert set(layer["metrics"]) == metrics
        elif kind == "lnsDatatable":
            assert visualization["layerId"] == layer_id
            shown = [c["columnId"] for c in visualization["columns"]]
            assert shown == layer_state["columnOrder"]
            if "sorting" in visualization:
                assert visualization["sorting"]["columnId"] in metrics
        else:
            assert kind == "lnsMetric"
            assert visualization["layerId"] == layer_id
            assert {visualization["metricAccessor"]} == metrics and not bucketed
        assert attributes["title"] and attributes["description"], lens["id"]


# --- dashboards -----------------------------------------------------------------------


def test_dashboards_follow_kibanas_schema_and_panels_resolve() -> None:
    for board in objects("dashboard"):
        attributes = board["attributes"]
        assert set(attributes) <= DASHBOARD_ATTRIBUTES, board["id"]
        json.loads(attributes["optionsJSON"])
        json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
        panels = json.loads(attributes["panelsJSON"])
        references = {ref["name"]: ref for ref in board["references"]}
        assert len(references) == len(panels), board["id"]
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            grid = panel["gridData"]
            assert grid["i"] == panel["panelIndex"]
            # Kibana 8.x/9.x: references are named <panelIndex>:<panelRefName>.
            ref = references[f"{panel['panelIndex']}:{panel['panelRefName']}"]
            assert ref["type"] == panel["type"], panel
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 48, panel
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not area & cells, (
                f"{board['id']}: panel {panel['panelIndex']} overlaps"
            )
            cells |= area


def test_every_chart_and_search_is_on_a_dashboard() -> None:
    placed = {
        ref["id"] for board in objects("dashboard") for ref in board["references"]
    }
    shown = {obj["id"] for obj in objects() if obj["type"] in {"lens", "search"}}
    assert placed == shown


# --- install: the objects, the request, the answer ------------------------------------


def test_prefix_rewrites_only_data_view_titles() -> None:
    original = files()
    renamed = with_index_prefix(original, "acme")
    titles = {
        obj["id"]: obj["attributes"]["title"]
        for f in renamed
        for obj in f.objects
        if obj["type"] == "index-pattern"
    }
    assert titles["monitor-posts"] == "acme-posts-*"
    assert titles["monitor-ticket-events"] == "acme-ticket-events-*"
    assert titles["monitor-tickets"] == "acme-tickets"
    for before, after in zip(original, renamed, strict=True):
        changed = [
            a for a, b in zip(before.objects, after.objects, strict=True) if a != b
        ]
        assert all(obj["type"] == "index-pattern" for obj in changed)
    assert with_index_prefix(original, "monitor") == original


def test_import_order_puts_files_after_those_they_refer_to() -> None:
    view = {"type": "index-pattern", "id": "v", "references": []}
    chart = {
        "type": "lens",
        "id": "c",
        "references": [{"type": "index-pattern", "id": "v"}],
    }
    board = {
        "type": "dashboard",
        "id": "d",
        "references": [{"type": "lens", "id": "c"}],
    }
    a, b, c = (
        ObjectsFile(n, (o,))
        for n, o in (("a.ndjson", board), ("b.ndjson", chart), ("c.ndjson", view))
    )
    assert [f.name for f in import_order([a, b, c])] == [
        "c.ndjson",
        "b.ndjson",
        "a.ndjson",
    ]
    loop = ObjectsFile(
        "d.ndjson", ({**view, "references": [{"type": "lens", "id": "c"}]},)
    )
    with pytest.raises(InstallError, match="refer to each other"):
        import_order([b, loop])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no saved objects"),
        ("{not json\n", "line 1: not JSON"),
        ("\n[1]\n", "line 2"),
    ],
)
def test_malformed_files_are_refused_with_the_line(text: str, problem: str) -> None:
    with pytest.raises(InstallError, match=problem):
        parse_objects("x.ndjson", text)


def test_import_request_is_multipart_with_the_file_and_kibanas_headers() -> None:
    (views_file, *_) = files()
    request = build_import_request(
        "https://kibana.example:5601/base/",
        views_file,
        space="ops-team",
        api_key="aWQ6a2V5",
        boundary="BOUNDARY",
    )

    assert request.url == (
        "https://kibana.example:5601/base/s/ops-team/api/saved_objects/_import"
        "?overwrite=true"
    )
    assert request.headers["kbn-xsrf"] == "true"
    assert request.headers["Authorization"] == "ApiKey aWQ6a2V5"
    assert request.headers["Content-Type"] == "multipart/form-data; boundary=BOUNDARY"
    head, rest = request.body.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n") == [
        b"--BOUNDARY",
        b'Content-Disposition: form-data; name="file"; filename="data-views.ndjson"',
        b"Content-Type: application/ndjson",
    ]
    assert rest == views_file.content() + b"\r\n--BOUNDARY--\r\n"
    assert "aWQ6a2V5" not in repr(request)


def test_default_space_has_no_space_path_and_no_key_no_authorization() -> None:
    request = build_import_request("http://k:5601", files()[0], space="default")
    assert request.url == "http://k:5601/api/saved_objects/_import?overwrite=true"
    assert "Authorization" not in request.headers
    assert len(request.headers["Content-Type"].split("boundary=")[1]) > 20


@pytest.mark.parametrize(
    ("url", "space", "problem"),
    [
        ("kibana:5601", None, "http"),
        ("http://k:5601?x=1", None, "no query"),
        ("http://k:5601", "Ops Team", "space id"),
        ("http://k:5601", "../x", "space id"),
    ],
)
def test_bad_kibana_url_or_space_is_refused(
    url: str, space: str | None, problem: str
) -> None:
    with pytest.raises(InstallError, match=problem):
        import_url(url, space)


def test_api_key_with_spaces_or_beside_url_credentials_is_refused() -> None:
    with pytest.raises(InstallError, match="spaces"):
        build_import_request("http://k", files()[0], api_key="a\r\nX-Evil: 1")
    with pytest.raises(InstallError, match="either"):
        build_import_request("http://u:p@k", files()[0], api_key="abc")


def test_kibana_answers_are_read_with_each_objects_error() -> None:
    good = parse_import_response(
        200, b'{"success":true,"successCount":5,"warnings":[]}'
    )
    assert good.success and good.success_count == 5 and not good.errors

    answer = {
        "success": False,
        "successCount": 1,
        "errors": [
            {
                "id": "monitor-pr-posts",
                "type": "lens",
                "meta": {"title": "Posts"},
                "error": {
                    "type": "missing_references",
                    "references": [{"type": "index-pattern", "id": "monitor-posts"}],
                },
            },
            {
                "id": "monitor-pr",
                "type": "dashboard",
                "title": "PR",
                "error": {
                    "type": "unknown",
                    "message": "bad panelsJSON",
                    "statusCode": 400,
                },
            },
        ],
        "warnings": [{"type": "simple", "message": "check it"}],
    }
    bad = parse_import_response(200, json.dumps(answer).encode())

    assert not bad.success and bad.success_count == 1
    missing, unknown = (e.describe() for e in bad.errors)
    assert missing == (
        'lens monitor-pr-posts "Posts": missing_references: index-pattern monitor-posts'
    )
    assert unknown == 'dashboard monitor-pr "PR": unknown: bad panelsJSON (400)'
    assert bad.warnings == ("check it",)


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (
            401,
            b'{"statusCode":401,"error":"Unauthorized","message":"no key"}',
            "401.*no key",
        ),
        (502, b"<html>bad gateway</html>", "502.*bad gateway"),
        (200, b"<html>login</html>", "not an import result"),
    ],
)
def test_a_refused_import_raises_with_the_status(
    status: int, body: bytes, problem: str
) -> None:
    with pytest.raises(InstallError, match=problem) as caught:
        parse_import_response(status, body)
    assert caught.value.status == status


def test_urls_are_printed_without_credentials() -> None:
    assert (
        redact_url("https://elastic:s3cret@es.example:9200/x")
        == "https://es.example:9200/x"
    )
    assert redact_url("http://k:5601") == "http://k:5601"
