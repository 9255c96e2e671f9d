"""Write the Kibana saved objects of monitor: data views, Lens charts, dashboards.

Run ``.venv/bin/python dashboards/kibana/generate.py`` after changing this file: it
rewrites ``data-views.ndjson``, ``pr-dashboard.ndjson`` and
``oncall-dashboard.ndjson`` beside it. ``tests/unit/test_dashboards.py``
fails while a committed file differs from what this script writes, and checks
every field the objects use against the index templates.

The objects follow the shape Kibana 9.0/9.1 exports: one object per line,
keys sorted, ``coreMigrationVersion`` 8.8.0 and each type's latest migration
version of those releases (data view 8.0.0, Lens 8.9.0, saved search 10.5.0,
dashboard 10.2.0); Kibana 9.2 and later migrate them on import. Lens charts
are saved objects of their own (``type: lens``, a ``formBased`` layer per
chart, referencing its data view as ``indexpattern-datasource-layer-<layer>``)
and the dashboards embed them by reference (``panelRefName`` plus a reference
named ``<panelIndex>:panel_<panelIndex>``), as Kibana writes them.

Index names use the default prefix ``monitor``; ``monitor dashboards
install`` rewrites the data views' titles for another ``MONITOR_INDEX_PREFIX``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.ops.kibana import ObjectsFile

HERE = Path(__file__).resolve().parent

CORE_MIGRATION_VERSION = "8.8.0"
#: The latest migration version of each type in Kibana 9.0 and 9.1.
TYPE_MIGRATION_VERSIONS = {
    "index-pattern": "8.0.0",
    "lens": "8.9.0",
    "search": "10.5.0",
    "dashboard": "10.2.0",
}

KQL = "kuery"
RECORDS = "___records___"
"""Lens's pseudo field of a document count."""

POSTS, COUNTS, BURSTS, TICKETS, EVENTS = (
    "monitor-posts",
    "monitor-counts",
    "monitor-bursts",
    "monitor-tickets",
    "monitor-ticket-events",
)
NEGATIVE = 'label : "negative"'
ACTIVE = 'status : ("open" or "acknowledged" or "in_progress")'
BREACHED = 'sla_state : ("resolve breached" or "ack breached")'

# --- data views -----------------------------------------------------------------------

# Ticket handling times are not stored on the tickets: they are runtime fields
# of the data view, computed from the stored timestamps (a reopened ticket's
# opened_at restarts, so the times are those of its current cycle).
_MINUTES_BETWEEN = """\
if (doc['{end}'].size() == 0 || doc['opened_at'].size() == 0) {{ return; }}
long ms = doc['{end}'].value.toInstant().toEpochMilli()
    - doc['opened_at'].value.toInstant().toEpochMilli();
emit(ms / 60000.0);"""

# A breach counts if the SLA sweep recorded it (sla_breaches holds
# "ack@<due>" / "resolve@<due>") or if the ticket was acknowledged or
# resolved after its due time before a sweep saw it.
_SLA_STATE = """\
boolean ack = false;
boolean resolve = false;
for (def key : doc['sla_breaches']) {
  if (key.startsWith('resolve@')) { resolve = true; }
  else if (key.startsWith('ack@')) { ack = true; }
}
if (doc['resolved_at'].size() > 0 && doc['resolve_due'].size() > 0
    && doc['resolved_at'].value.toInstant().toEpochMilli()
       > doc['resolve_due'].value.toInstant().toEpochMilli()) { resolve = true; }
if (doc['acknowledged_at'].size() > 0 && doc['ack_due'].size() > 0
    && doc['acknowledged_at'].value.toInstant().toEpochMilli()
       > doc['ack_due'].value.toInstant().toEpochMilli()) { ack = true; }
if (resolve) { emit('resolve breached'); }
else if (ack) { emit('ack breached'); }
else if (doc['resolved_at'].size() > 0) { emit('met'); }
else { emit('open, no breach'); }"""

_MINUTES_FORMAT = {
    "id": "duration",
    "params": {
        "inputFormat": "minutes",
        "outputFormat": "humanizePrecise",
        "outputPrecision": 1,
        "includeSpaceWithSuffix": True,
    },
}


def data_view(
    view_id: str,
    title: str,
    name: str,
    time_field: str,
    *,
    runtime: dict[str, Any] | None = None,
    formats: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return an index-pattern (data view) saved object."""
    return saved_object(
        "index-pattern",
        view_id,
        {
            "allowHidden": False,
            "fieldAttrs": "{}",
            "fieldFormatMap": _json(formats or {}),
            "fields": "[]",
            "name": name,
            "runtimeFieldMap": _json(runtime or {}),
            "sourceFilters": "[]",
            "timeFieldName": time_field,
            "title": title,
        },
        [],
    )


def data_views() -> list[dict[str, Any]]:
    """Return the five data views: posts, window counts, bursts, tickets, events."""
    return [
        data_view(
            POSTS,
            "monitor-posts-*",
            "monitor 帖子 posts",
            "published_at",
            formats={"sentiment": {"id": "percent"}},
        ),
        data_view(
            COUNTS,
            "monitor-counts-*",
            "monitor 窗口计数 window counts",
            "window_start",
            formats={"negative_share": {"id": "percent"}},
        ),
        data_view(BURSTS, "monitor-bursts", "monitor 突发 bursts", "started_at"),
        data_view(
            TICKETS,
            "monitor-tickets",
            "monitor 预警工单 tickets",
            "opened_at",
            runtime={
                "time_to_acknowledge_minutes": {
                    "type": "double",
                    "script": {
                        "source": _MINUTES_BETWEEN.format(end="acknowledged_at")
                    },
                },
                "time_to_resolve_minutes": {
                    "type": "double",
                    "script": {"source": _MINUTES_BETWEEN.format(end="resolved_at")},
                },
                "sla_state": {"type": "keyword", "script": {"source": _SLA_STATE}},
            },
            formats={
                "time_to_acknowledge_minutes": _MINUTES_FORMAT,
                "time_to_resolve_minutes": _MINUTES_FORMAT,
            },
        ),
        data_view(
            EVENTS,
            "monitor-ticket-events-*",
            "monitor 工单事件 ticket events",
            "at",
        ),
    ]


# --- saved searches -------------------------------------------------------------------


def saved_search(
    search_id: str,
    title: str,
    view: str,
    columns: Sequence[str],
    sort: Sequence[tuple[str, str]],
    query: str = "",
    description: str = "",
) -> dict[str, Any]:
    """Return a saved search (a Discover table) over one data view."""
    source = {
        "query": {"query": query, "language": KQL},
        "filter": [],
        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index",
    }
    return saved_object(
        "search",
        search_id,
        {
            "columns": list(columns),
            "description": description,
            "grid": {},
            "hideChart": False,
            "isTextBasedQuery": False,
            "kibanaSavedObjectMeta": {"searchSourceJSON": _json(source)},
            "sort": [list(pair) for pair in sort],
            "timeRestore": False,
            "title": title,
        },
        [
            {
                "id": view,
                "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
                "type": "index-pattern",
            }
        ],
    )


# --- Lens columns ---------------------------------------------------------------------


def count(label: str, kql: str | None = None) -> dict[str, Any]:
    """Return a count of documents (only those matching ``kql`` if given)."""
    column = {
        "customLabel": True,
        "dataType": "number",
        "isBucketed": False,
        "label": label,
        "operationType": "count",
        "params": {"emptyAsNull": True},
        "scale": "ratio",
        "sourceField": RECORDS,
    }
    return _filtered(column, kql)


def metric(
    operation: str,
    field_name: str,
    label: str,
    kql: str | None = None,
    percentile: int | None = None,
) -> dict[str, Any]:
    """Return a metric: ``sum``, ``average``, ``max``, ``median``, ``percentile``."""
    params: dict[str, Any] = {"emptyAsNull": True}
    if percentile is not None:
        params = {"percentile": percentile}
    column = {
        "customLabel": True,
        "dataType": "number",
        "isBucketed": False,
        "label": label,
        "operationType": operation,
        "params": params,
        "scale": "ratio",
        "sourceField": field_name,
    }
    return _filtered(column, kql)


def date_histogram(field_name: str, label: str) -> dict[str, Any]:
    """Return time buckets of ``field_name`` at Lens's automatic interval."""
    return {
        "customLabel": True,
        "dataType": "date",
        "isBucketed": True,
        "label": label,
        "operationType": "date_histogram",
        "params": {"dropPartials": False, "includeEmptyRows": True, "interval": "auto"},
        "scale": "interval",
        "sourceField": field_name,
    }


def terms(
    field_name: str,
    label: str,
    size: int,
    order_by: str | None = None,
    *,
    other: bool = True,
    data_type: str = "string",
) -> dict[str, Any]:
    """Return the top values of ``field_name``, by column ``order_by`` or A-Z."""
    order: dict[str, Any] = (
        {"type": "column", "columnId": order_by}
        if order_by
        else {"type": "alphabetical", "fallback": False}
    )
    return {
        "customLabel": True,
        "dataType": data_type,
        "isBucketed": True,
        "label": label,
        "operationType": "terms",
        "params": {
            "exclude": [],
            "excludeIsRegex": False,
            "include": [],
            "includeIsRegex": False,
            "missingBucket": False,
            "orderBy": order,
            "orderDirection": "desc" if order_by else "asc",
            "otherBucket": other,
            "parentFormat": {"id": "terms"},
            "size": size,
        },
        "scale": "ordinal",
        "sourceField": field_name,
    }


def filters(label: str, buckets: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Return buckets, one per (label, KQL query)."""
    return {
        "customLabel": True,
        "dataType": "string",
        "isBucketed": True,
        "label": label,
        "operationType": "filters",
        "params": {
            "filters": [
                {"input": {"language": KQL, "query": query}, "label": name}
                for name, query in buckets
            ]
        },
        "scale": "ordinal",
    }


def _filtered(column: dict[str, Any], kql: str | None) -> dict[str, Any]:
    if kql:
        column["filter"] = {"language": KQL, "query": kql}
    return column


# --- Lens visualisations --------------------------------------------------------------

LAYER = "layer-1"


@dataclass
class Chart:
    """One Lens visualisation: a single ``formBased`` layer over one data view.

    Attributes:
        chart_id: Saved object id.
        title: Shown on the panel.
        description: What the chart shows (shown in the panel's info tip).
        view: Data view id.
        columns: Column id -> column, buckets first (Lens's column order).
        visualization_type: ``lnsXY``, ``lnsPie``, ``lnsDatatable``, ``lnsMetric``.
        visualization: The visualisation's state.
        query: KQL applied to the whole chart.

    """

    chart_id: str
    title: str
    description: str
    view: str
    columns: dict[str, dict[str, Any]]
    visualization_type: str
    visualization: dict[str, Any]
    query: str = ""

    def saved_object(self) -> dict[str, Any]:
        """Return the ``lens`` saved object."""
        layer = {
            "columnOrder": list(self.columns),
            "columns": self.columns,
            "ignoreGlobalFilters": False,
            "incompleteColumns": {},
            "sampling": 1,
        }
        state = {
            "adHocDataViews": {},
            "datasourceStates": {
                "formBased": {"layers": {LAYER: layer}},
                "indexpattern": {"layers": {}},
                "textBased": {"layers": {}},
            },
            "filters": [],
            "internalReferences": [],
            "query": {"language": KQL, "query": self.query},
            "visualization": self.visualization,
        }
        return saved_object(
            "lens",
            self.chart_id,
            {
                "description": self.description,
                "state": state,
                "title": self.title,
                "visualizationType": self.visualization_type,
            },
            [
                {
                    "id": self.view,
                    "name": f"indexpattern-datasource-layer-{LAYER}",
                    "type": "index-pattern",
                }
            ],
        )


def xy_chart(
    chart_id: str,
    title: str,
    description: str,
    view: str,
    *,
    x: tuple[str, dict[str, Any]],
    ys: Sequence[tuple[str, dict[str, Any]]],
    split: tuple[str, dict[str, Any]] | None = None,
    series: str = "bar_stacked",
    query: str = "",
) -> Chart:
    """Return a bar, line or area chart of ``ys`` along ``x``, split by ``split``."""
    columns = dict([x, *([split] if split else []), *ys])
    layer: dict[str, Any] = {
        "accessors": [column_id for column_id, _ in ys],
        "layerId": LAYER,
        "layerType": "data",
        "position": "top",
        "seriesType": series,
        "showGridlines": False,
        "xAccessor": x[0],
    }
    if split:
        layer["splitAccessor"] = split[0]
    visible = {"x": True, "yLeft": True, "yRight": True}
    visualization = {
        "axisTitlesVisibilitySettings": visible,
        "fittingFunction": "Zero",
        "gridlinesVisibilitySettings": visible,
        "labelsOrientation": {"x": 0, "yLeft": 0, "yRight": 0},
        "layers": [layer],
        "legend": {"isVisible": True, "position": "right"},
        "preferredSeriesType": series,
        "tickLabelsVisibilitySettings": visible,
        "valueLabels": "hide",
    }
    return Chart(
        chart_id, title, description, view, columns, "lnsXY", visualization, query
    )


def pie_chart(
    chart_id: str,
    title: str,
    description: str,
    view: str,
    *,
    group: tuple[str, dict[str, Any]],
    size: tuple[str, dict[str, Any]],
    query: str = "",
) -> Chart:
    """Return a donut of ``size`` per ``group``, with percentages."""
    visualization = {
        "layers": [
            {
                "categoryDisplay": "default",
                "layerId": LAYER,
                "layerType": "data",
                "legendDisplay": "default",
                "metrics": [size[0]],
                "nestedLegend": False,
                "numberDisplay": "percent",
                "primaryGroups": [group[0]],
            }
        ],
        "shape": "donut",
    }
    return Chart(
        chart_id,
        title,
        description,
        view,
        dict([group, size]),
        "lnsPie",
        visualization,
        query,
    )


def table_chart(
    chart_id: str,
    title: str,
    description: str,
    view: str,
    *,
    rows: Sequence[tuple[str, dict[str, Any]]],
    values: Sequence[tuple[str, dict[str, Any]]],
    sort_by: str | None = None,
    query: str = "",
) -> Chart:
    """Return a table: one line per ``rows`` bucket, one column per value."""
    visualization: dict[str, Any] = {
        "columns": [
            {"columnId": column_id, "isTransposed": False}
            for column_id, _ in (*rows, *values)
        ],
        "layerId": LAYER,
        "layerType": "data",
    }
    if sort_by:
        visualization["sorting"] = {"columnId": sort_by, "direction": "desc"}
    return Chart(
        chart_id,
        title,
        description,
        view,
        dict([*rows, *values]),
        "lnsDatatable",
        visualization,
        query,
    )


def metric_chart(
    chart_id: str,
    title: str,
    description: str,
    view: str,
    value: tuple[str, dict[str, Any]],
    *,
    color: str | None = None,
    query: str = "",
) -> Chart:
    """Return one big number."""
    visualization: dict[str, Any] = {
        "layerId": LAYER,
        "layerType": "data",
        "metricAccessor": value[0],
    }
    if color:
        visualization["color"] = color
    return Chart(
        chart_id,
        title,
        description,
        view,
        dict([value]),
        "lnsMetric",
        visualization,
        query,
    )


# --- the PR dashboard -----------------------------------------------------------------

RED = "#E7664C"
AMBER = "#D6BF57"


def pr_charts() -> list[Chart]:
    """Return the PR dashboard's charts, in the order of its panels."""
    published = ("time", date_histogram("published_at", "发布时间 published"))
    posts = ("posts", count("帖子 posts"))
    negative = ("negative", count("负面 negative posts", NEGATIVE))
    topic = ("topic", terms("topics", "话题 topic", 10, "posts"))
    negative_topic = ("topic", terms("topics", "话题 topic", 10, "negative"))
    source = ("source", terms("source", "来源 source", 10, "posts"))
    negative_source = ("source", terms("source", "来源 source", 10, "negative"))
    return [
        metric_chart(
            "monitor-pr-posts",
            "帖子 Posts",
            "Posts published in the time range.",
            POSTS,
            posts,
        ),
        metric_chart(
            "monitor-pr-negative",
            "负面帖子 Negative posts",
            "Posts labelled negative in the time range.",
            POSTS,
            negative,
            color=RED,
        ),
        metric_chart(
            "monitor-pr-bursts",
            "突发 Bursts",
            "Bursts (topic, negative-volume or keyword series) that started in "
            "the time range.",
            BURSTS,
            ("bursts", count("突发 bursts")),
            color=AMBER,
        ),
        metric_chart(
            "monitor-pr-active-tickets",
            "处理中工单 Active tickets",
            "Tickets opened in the time range that are not resolved or closed.",
            TICKETS,
            ("active", count("处理中 active tickets", ACTIVE)),
        ),
        xy_chart(
            "monitor-pr-volume-by-topic",
            "声量·话题 Posts over time by topic",
            "Posts per time bucket, stacked by watched topic (top 10).",
            POSTS,
            x=published,
            split=topic,
            ys=[posts],
            series="area_stacked",
        ),
        xy_chart(
            "monitor-pr-negative-by-topic",
            "负面声量·话题 Negative posts over time by topic",
            "Negative posts per time bucket, stacked by watched topic (top 10).",
            POSTS,
            x=published,
            split=negative_topic,
            ys=[negative],
        ),
        xy_chart(
            "monitor-pr-volume-by-source",
            "声量·来源 Posts over time by source",
            "Posts per time bucket, stacked by source feed (top 10).",
            POSTS,
            x=published,
            split=source,
            ys=[posts],
            series="area_stacked",
        ),
        xy_chart(
            "monitor-pr-negative-by-source",
            "负面声量·来源 Negative posts over time by source",
            "Negative posts per time bucket, stacked by source feed (top 10).",
            POSTS,
            x=published,
            split=negative_source,
            ys=[negative],
        ),
        xy_chart(
            "monitor-pr-sentiment-mix",
            "情感构成 Sentiment mix over time",
            "Share of negative, neutral and positive posts per time bucket.",
            POSTS,
            x=published,
            split=("label", terms("label", "情感 sentiment", 3, "posts", other=False)),
            ys=[posts],
            series="bar_percentage_stacked",
        ),
        pie_chart(
            "monitor-pr-sentiment-share",
            "情感占比 Sentiment share",
            "Negative, neutral and positive posts in the time range.",
            POSTS,
            group=("label", terms("label", "情感 sentiment", 3, "posts", other=False)),
            size=posts,
        ),
        table_chart(
            "monitor-pr-top-keywords",
            "热词 Top keywords",
            "The 20 most frequent keywords, with their negative posts and mean "
            "positive probability (0-1).",
            POSTS,
            rows=[("keyword", terms("keywords", "关键词 keyword", 20, "posts"))],
            values=[
                posts,
                negative,
                (
                    "sentiment",
                    metric("average", "sentiment", "平均情感 mean sentiment"),
                ),
            ],
            sort_by="posts",
        ),
        table_chart(
            "monitor-pr-emerging-keywords",
            "新兴热词 Emerging keywords",
            "Keywords whose window count the detector found anomalous against "
            "their own baseline, by peak surprise score.",
            COUNTS,
            rows=[
                ("keyword", terms("key", "关键词 keyword", 20, "score", other=False))
            ],
            values=[
                ("score", metric("max", "score", "峰值得分 peak score")),
                ("observed", metric("sum", "observed", "异常窗口帖子 posts")),
                ("expected", metric("sum", "expected", "基线 expected")),
            ],
            sort_by="score",
            query='kind : "keyword" and anomalous : true',
        ),
        xy_chart(
            "monitor-pr-keyword-trend",
            "热词走势 Top keywords over time",
            "Posts per time bucket for the 5 most frequent keywords.",
            POSTS,
            x=published,
            split=(
                "keyword",
                terms("keywords", "关键词 keyword", 5, "posts", other=False),
            ),
            ys=[posts],
            series="line",
        ),
        xy_chart(
            "monitor-pr-burst-timeline",
            "突发时间线 Bursts on a timeline",
            "Peak surprise score of the bursts that started in each time bucket, "
            "per series key (topic or keyword).",
            BURSTS,
            x=("time", date_histogram("started_at", "开始 started")),
            split=("key", terms("key", "序列 series key", 10, "score")),
            ys=[("score", metric("max", "peak_score", "峰值得分 peak score"))],
        ),
        xy_chart(
            "monitor-pr-negative-baseline",
            "负面声量与基线 Negative volume against its baseline",
            "Negative posts per detector window against the count the baseline "
            "expected, summed over topics.",
            COUNTS,
            x=("time", date_histogram("window_start", "窗口 window")),
            ys=[
                ("observed", metric("sum", "observed", "负面 negative posts")),
                ("expected", metric("sum", "expected", "基线 expected")),
            ],
            series="line",
            query='kind : "negative"',
        ),
        table_chart(
            "monitor-pr-burst-table",
            "突发列表 Bursts",
            "Bursts in the time range by series, with their phase and peak.",
            BURSTS,
            rows=[
                ("key", terms("key", "序列 series key", 20, "score", other=False)),
                ("kind", terms("kind", "类型 kind", 3, "score", other=False)),
                ("phase", terms("phase", "阶段 phase", 4, "score", other=False)),
            ],
            values=[
                ("score", metric("max", "peak_score", "峰值得分 peak score")),
                ("observed", metric("max", "peak_observed", "峰值 peak count")),
                ("expected", metric("max", "peak_expected", "基线 expected")),
            ],
            sort_by="score",
        ),
        table_chart(
            "monitor-pr-influential-authors",
            "高影响力负面作者 Influential negative authors",
            "Authors of negative posts by reposts, with their followers.",
            POSTS,
            rows=[
                ("author", terms("author", "作者 author", 15, "reposts", other=False))
            ],
            values=[
                ("reposts", metric("sum", "reposts", "转发 reposts")),
                ("followers", metric("max", "followers", "粉丝 followers")),
                ("negative", count("负面帖子 negative posts")),
            ],
            sort_by="reposts",
            query=NEGATIVE,
        ),
        pie_chart(
            "monitor-pr-tickets-by-status",
            "工单状态 Tickets by status",
            "Tickets opened in the time range, by lifecycle status.",
            TICKETS,
            group=("status", terms("status", "状态 status", 5, "tickets", other=False)),
            size=("tickets", count("工单 tickets")),
        ),
        pie_chart(
            "monitor-pr-tickets-by-priority",
            "工单优先级 Tickets by priority",
            "Tickets opened in the time range, by priority (P1 most urgent).",
            TICKETS,
            group=("priority", terms("priority", "优先级 priority", 4, other=False)),
            size=("tickets", count("工单 tickets")),
        ),
        pie_chart(
            "monitor-pr-tickets-by-sla",
            "SLA 状态 Tickets by SLA state",
            "Tickets opened in the time range: met, open with no breach, or "
            "acknowledged / resolved late (runtime field sla_state).",
            TICKETS,
            group=("sla", terms("sla_state", "SLA", 4, "tickets", other=False)),
            size=("tickets", count("工单 tickets")),
        ),
    ]


def pr_searches() -> list[dict[str, Any]]:
    """Return the PR dashboard's saved searches: posts with their text."""
    return [
        saved_search(
            "monitor-influential-negative",
            "高影响力负面帖子 Most influential negative posts",
            POSTS,
            ["source", "author", "reposts", "followers", "likes", "text", "topics"],
            [("reposts", "desc"), ("followers", "desc")],
            NEGATIVE,
            "Negative posts, most reposted first.",
        ),
        saved_search(
            "monitor-negative-posts",
            "负面帖子 Negative posts",
            POSTS,
            ["source", "author", "text", "sentiment", "topics", "keywords"],
            [("published_at", "desc")],
            NEGATIVE,
            "Negative posts, newest first.",
        ),
    ]


# --- the on-call dashboard ---------------------------------------------------------


def oncall_charts() -> list[Chart]:
    """Return the on-call dashboard's charts, in the order of its panels."""
    tickets = ("tickets", count("工单 tickets"))
    priority = ("priority", terms("priority", "优先级 priority", 4, other=False))
    ack = "time_to_acknowledge_minutes"
    resolve = "time_to_resolve_minutes"
    return [
        metric_chart(
            "monitor-oncall-active",
            "处理中工单 Active tickets",
            "Tickets open, acknowledged or in progress (opened in the time range).",
            TICKETS,
            ("active", count("处理中 active", ACTIVE)),
        ),
        metric_chart(
            "monitor-oncall-unacknowledged",
            "待确认 Unacknowledged",
            "Tickets still open: nobody has acknowledged them.",
            TICKETS,
            ("open", count("待确认 open", 'status : "open"')),
            color=RED,
        ),
        metric_chart(
            "monitor-oncall-breached",
            "SLA 超时 SLA breached",
            "Tickets that missed their acknowledge or resolve deadline.",
            TICKETS,
            ("breached", count("超时 breached", BREACHED)),
            color=RED,
        ),
        metric_chart(
            "monitor-oncall-ack-median",
            "确认用时中位数 Median time to acknowledge",
            "Median of acknowledged_at - opened_at over acknowledged tickets.",
            TICKETS,
            ("ack", metric("median", ack, "确认用时 time to acknowledge")),
        ),
        metric_chart(
            "monitor-oncall-resolve-median",
            "解决用时中位数 Median time to resolve",
            "Median of resolved_at - opened_at over resolved tickets.",
            TICKETS,
            ("resolve", metric("median", resolve, "解决用时 time to resolve")),
        ),
        xy_chart(
            "monitor-oncall-active-by-priority",
            "处理中工单·优先级 Active tickets by priority and status",
            "Active tickets per priority, stacked by status.",
            TICKETS,
            x=priority,
            split=("status", terms("status", "状态 status", 3, "tickets", other=False)),
            ys=[tickets],
            query=ACTIVE,
        ),
        table_chart(
            "monitor-oncall-active-by-owner",
            "处理人 Active tickets by owner",
            "Who holds the active tickets, with their team and escalation level.",
            TICKETS,
            rows=[
                ("owner", terms("owner", "处理人 owner", 20, "tickets")),
                ("team", terms("team", "团队 team", 5, "tickets", other=False)),
            ],
            values=[
                tickets,
                (
                    "escalation",
                    metric("max", "escalation_level", "最高升级 escalation"),
                ),
            ],
            sort_by="tickets",
            query=ACTIVE,
        ),
        xy_chart(
            "monitor-oncall-ack-by-priority",
            "确认用时·优先级 Time to acknowledge by priority",
            "Median and 90th percentile of the time to acknowledge, per priority.",
            TICKETS,
            x=priority,
            ys=[
                ("median", metric("median", ack, "中位数 median")),
                ("p90", metric("percentile", ack, "P90", percentile=90)),
            ],
            series="bar",
        ),
        xy_chart(
            "monitor-oncall-resolve-by-priority",
            "解决用时·优先级 Time to resolve by priority",
            "Median and 90th percentile of the time to resolve, per priority.",
            TICKETS,
            x=priority,
            ys=[
                ("median", metric("median", resolve, "中位数 median")),
                ("p90", metric("percentile", resolve, "P90", percentile=90)),
            ],
            series="bar",
        ),
        xy_chart(
            "monitor-oncall-handling-trend",
            "处理用时走势 Handling times over time",
            "Median time to acknowledge and to resolve of the tickets opened in "
            "each time bucket.",
            TICKETS,
            x=("time", date_histogram("opened_at", "开单 opened")),
            ys=[
                ("ack", metric("median", ack, "确认用时 time to acknowledge")),
                ("resolve", metric("median", resolve, "解决用时 time to resolve")),
            ],
            series="line",
        ),
        xy_chart(
            "monitor-oncall-breaches",
            "SLA 超时与升级 Breaches and escalations",
            "SLA breaches and escalations recorded in the audit trail per time bucket.",
            EVENTS,
            x=("time", date_histogram("at", "时间 at")),
            ys=[
                ("breaches", count("SLA 超时 breaches", 'action : "sla_breach"')),
                ("escalations", count("升级 escalations", 'action : "escalate"')),
            ],
        ),
        xy_chart(
            "monitor-oncall-activity",
            "工单动态 Ticket activity by action",
            "Audit-trail events per time bucket, by action (open, acknowledge, "
            "resolve, escalate, delivery, ...).",
            EVENTS,
            x=("time", date_histogram("at", "时间 at")),
            split=("action", terms("action", "动作 action", 10, "events")),
            ys=[("events", count("事件 events"))],
        ),
        table_chart(
            "monitor-oncall-incidents-by-rule",
            "事件规则 Incidents by rule",
            "Tickets per rule that fired a signal into them, with the signals "
            "folded in (occurrences).",
            TICKETS,
            rows=[("rule", terms("signals.rule", "规则 rule", 20, "tickets"))],
            values=[
                tickets,
                ("occurrences", metric("sum", "occurrences", "触发次数 occurrences")),
                ("reopened", metric("sum", "reopen_count", "重开 reopened")),
            ],
            sort_by="tickets",
        ),
        pie_chart(
            "monitor-oncall-review-coverage",
            "复盘覆盖 Review coverage",
            "Closed tickets with and without a review (复盘).",
            TICKETS,
            group=(
                "review",
                filters(
                    "复盘 review",
                    [
                        ("已复盘 reviewed", "review.at : *"),
                        ("未复盘 none", "not review.at : *"),
                    ],
                ),
            ),
            size=("tickets", count("工单 tickets")),
            query='status : "closed"',
        ),
    ]


def oncall_searches() -> list[dict[str, Any]]:
    """Return the on-call dashboard's saved searches: the ticket lists."""
    return [
        saved_search(
            "monitor-active-tickets",
            "处理中工单 Active tickets",
            TICKETS,
            [
                "ticket_id",
                "priority",
                "status",
                "sla_state",
                "topic",
                "rule",
                "owner",
                "ack_due",
                "resolve_due",
                "escalation_level",
                "occurrences",
            ],
            [("priority", "asc"), ("opened_at", "asc")],
            ACTIVE,
            "Active tickets, most urgent and oldest first.",
        ),
        saved_search(
            "monitor-ticket-reviews",
            "复盘 Reviews",
            TICKETS,
            [
                "ticket_id",
                "topic",
                "priority",
                "review.author",
                "review.root_cause",
                "review.resolution",
                "review.lessons",
            ],
            [("review.at", "desc")],
            "review.at : *",
            "Reviews recorded on closing, newest first.",
        ),
    ]


# --- dashboards -----------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """A panel: a saved object placed on the 48-column grid."""

    target_type: str
    target_id: str
    x: int
    y: int
    w: int
    h: int


def dashboard(
    dashboard_id: str,
    title: str,
    description: str,
    panels: Sequence[Panel],
    *,
    time_from: str,
    refresh_ms: int,
) -> dict[str, Any]:
    """Return a dashboard embedding ``panels`` by reference."""
    entries = []
    references = []
    for number, panel in enumerate(panels, start=1):
        index = f"p{number}"
        entries.append(
            {
                "embeddableConfig": {"enhancements": {}},
                "gridData": {
                    "h": panel.h,
                    "i": index,
                    "w": panel.w,
                    "x": panel.x,
                    "y": panel.y,
                },
                "panelIndex": index,
                "panelRefName": f"panel_{index}",
                "type": panel.target_type,
            }
        )
        references.append(
            {
                "id": panel.target_id,
                "name": f"{index}:panel_{index}",
                "type": panel.target_type,
            }
        )
    options = {
        "hidePanelTitles": False,
        "syncColors": False,
        "syncCursor": True,
        "syncTooltips": False,
        "useMargins": True,
    }
    search = {"filter": [], "query": {"language": KQL, "query": ""}}
    return saved_object(
        "dashboard",
        dashboard_id,
        {
            "description": description,
            "kibanaSavedObjectMeta": {"searchSourceJSON": _json(search)},
            "optionsJSON": _json(options),
            "panelsJSON": _json(entries),
            "refreshInterval": {"pause": False, "value": refresh_ms},
            "timeFrom": time_from,
            "timeRestore": True,
            "timeTo": "now",
            "title": title,
        },
        references,
    )


def layout(items: Sequence[tuple[str, str, int, int]]) -> list[Panel]:
    """Place (type, id, width, height) left to right in rows of 48 columns."""
    panels = []
    x = y = row_height = 0
    for target_type, target_id, w, h in items:
        if x + w > 48:
            x, y, row_height = 0, y + row_height, 0
        panels.append(Panel(target_type, target_id, x, y, w, h))
        x += w
        row_height = max(row_height, h)
    return panels


def pr_dashboard(charts: Sequence[Chart]) -> dict[str, Any]:
    """Return the PR dashboard: volume, sentiment, keywords, bursts, tickets."""
    size = {
        "monitor-pr-posts": (12, 7),
        "monitor-pr-negative": (12, 7),
        "monitor-pr-bursts": (12, 7),
        "monitor-pr-active-tickets": (12, 7),
        "monitor-pr-sentiment-mix": (32, 14),
        "monitor-pr-sentiment-share": (16, 14),
        "monitor-pr-top-keywords": (16, 16),
        "monitor-pr-emerging-keywords": (16, 16),
        "monitor-pr-keyword-trend": (16, 16),
        "monitor-pr-burst-table": (24, 15),
        "monitor-pr-influential-authors": (24, 15),
        "monitor-pr-tickets-by-status": (16, 12),
        "monitor-pr-tickets-by-priority": (16, 12),
        "monitor-pr-tickets-by-sla": (16, 12),
    }
    items = [("lens", c.chart_id, *size.get(c.chart_id, (24, 14))) for c in charts]
    # The posts themselves (with their text) come after the influential authors.
    at = next(
        i for i, item in enumerate(items) if item[1] == "monitor-pr-tickets-by-status"
    )
    items[at:at] = [
        ("search", "monitor-influential-negative", 48, 16),
    ]
    items.append(("search", "monitor-negative-posts", 48, 16))
    return dashboard(
        "monitor-pr",
        "舆情监测 PR: 声量、情感与热点 volume, sentiment and hot topics",
        "For PR teams: post and negative volume by topic and source, sentiment "
        "mix, top and emerging keywords, bursts, the most influential negative "
        "posts and the alert tickets.",
        layout(items),
        time_from="now-24h",
        refresh_ms=30_000,
    )


def oncall_dashboard(charts: Sequence[Chart]) -> dict[str, Any]:
    """Return the on-call dashboard: tickets, handling times, breaches, reviews."""
    size = {
        "monitor-oncall-active": (12, 7),
        "monitor-oncall-unacknowledged": (12, 7),
        "monitor-oncall-breached": (8, 7),
        "monitor-oncall-ack-median": (8, 7),
        "monitor-oncall-resolve-median": (8, 7),
        "monitor-oncall-review-coverage": (16, 14),
    }
    items = [("lens", c.chart_id, *size.get(c.chart_id, (24, 14))) for c in charts]
    at = next(
        i for i, item in enumerate(items) if item[1] == "monitor-oncall-ack-by-priority"
    )
    items[at:at] = [("search", "monitor-active-tickets", 48, 16)]
    at = next(
        i for i, item in enumerate(items) if item[1] == "monitor-oncall-review-coverage"
    )
    items[at:at] = [("search", "monitor-ticket-reviews", 32, 14)]
    return dashboard(
        "monitor-oncall",
        "预警值班 On-call: 工单与 SLA tickets and SLA",
        "For on-call staff: active tickets and who holds them, time to "
        "acknowledge and to resolve, SLA breaches and escalations, ticket "
        "activity, incidents by rule and review coverage.",
        layout(items),
        time_from="now-7d",
        refresh_ms=30_000,
    )


# --- files ----------------------------------------------------------------------------


def saved_object(
    object_type: str,
    object_id: str,
    attributes: dict[str, Any],
    references: list[dict[str, str]],
) -> dict[str, Any]:
    """Wrap attributes as an exported saved object of ``object_type``."""
    return {
        "attributes": attributes,
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "id": object_id,
        "managed": False,
        "references": references,
        "type": object_type,
        "typeMigrationVersion": TYPE_MIGRATION_VERSIONS[object_type],
    }


def files() -> dict[str, list[dict[str, Any]]]:
    """Return file name -> the saved objects it holds."""
    pr = pr_charts()
    oncall = oncall_charts()
    return {
        "data-views.ndjson": data_views(),
        "pr-dashboard.ndjson": [
            *(chart.saved_object() for chart in pr),
            *pr_searches(),
            pr_dashboard(pr),
        ],
        "oncall-dashboard.ndjson": [
            *(chart.saved_object() for chart in oncall),
            *oncall_searches(),
            oncall_dashboard(oncall),
        ],
    }


def render(name: str, objects: Sequence[dict[str, Any]]) -> bytes:
    """Return a file's objects as NDJSON, the way the installer sends them."""
    return ObjectsFile(name, tuple(objects)).content()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def main() -> None:
    """Rewrite the NDJSON files beside this script."""
    for name, objects in files().items():
        (HERE / name).write_bytes(render(name, objects))
        print(f"{name}: {len(objects)} objects")


if __name__ == "__main__":
    main()
