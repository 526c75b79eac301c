"""Panel builders: one function per kind of panel, and the small parts they share.

Every query runs against the data source variable. A query that reads a counter with
``rate()`` or ``increase()`` gets a min step of one minute (:data:`SCRAPE_STEP`) and
its panel a min interval of one minute: Grafana takes the min step for the scrape
interval when it works out ``$__rate_interval`` (at least four of them), so the rates
are not empty when zoomed in on a data source whose scrape interval is left at
Grafana's 15s default while Prometheus scrapes the exporter once a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dashboard.layout import Json

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}

# The exporter's data changes once per poll (60s by default), and that is how often
# the example Prometheus configuration scrapes it.
SCRAPE_STEP = "1m"
# What makes a query depend on the scrape interval.
COUNTER_FUNCTIONS = ("rate(", "increase(", "$__rate_interval")


def reads_counters(expr: str) -> bool:
    """Whether `expr` takes a rate or an increase (so depends on the scrape interval)."""
    return any(function in expr for function in COUNTER_FUNCTIONS)


def target(
    expr: str,
    legend: str,
    ref_id: str = "A",
    *,
    instant: bool = False,
    table: bool = False,
) -> Json:
    """One Prometheus query of a panel; one reading counters gets the one-minute min step."""
    result: Json = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref_id,
    }
    if table:
        result["format"] = "table"
    if reads_counters(expr):
        result["interval"] = SCRAPE_STEP
    return result


def with_min_interval(panel: Json) -> Json:
    """`panel`, with a one-minute min interval if any of its queries reads counters."""
    if any(reads_counters(t["expr"]) for t in panel["targets"]):
        panel["interval"] = SCRAPE_STEP
    return panel


def thresholds(base: str, *steps: tuple[float, str]) -> Json:
    """Absolute thresholds: `base` colour below the first step."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in steps],
    }


def value_mappings(mapping: dict[str, tuple[str, str]]) -> list[Json]:
    """Map exact values to text and colour, e.g. {"1": ("OK", "green")}."""
    return [
        {
            "type": "value",
            "options": {
                value: {"color": color, "index": index, "text": text}
                for index, (value, (text, color)) in enumerate(mapping.items())
            },
        }
    ]


def special_mapping(match: str, text: str, index: int) -> Json:
    """Map a special value (``nan``, ``null``, ...) to text."""
    result = {"index": index, "text": text}
    return {"type": "special", "options": {"match": match, "result": result}}


def override(ref_id: str, *properties: tuple[str, Any]) -> Json:
    """Field properties for the series of one query."""
    return {
        "matcher": {"id": "byFrameRefID", "options": ref_id},
        "properties": [{"id": key, "value": value} for key, value in properties],
    }


def field_override(name: str, *properties: tuple[str, Any]) -> Json:
    """Field properties for the field (table column) called `name`."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties],
    }


DASHED = ("custom.lineStyle", {"dash": [10, 10], "fill": "dash"})
DOTTED = ("custom.lineStyle", {"dash": [2, 6], "fill": "dot"})
UNSTACKED = ("custom.stacking", {"group": "lines", "mode": "none"})
NO_FILL = ("custom.fillOpacity", 0)


def fixed_color(color: str) -> tuple[str, Json]:
    """A fixed series colour."""
    return ("color", {"fixedColor": color, "mode": "fixed"})


def stat(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    unit: str,
    decimals: int,
    color_thresholds: Json | None = None,
    mappings: list[Json] | None = None,
    text_mode: str = "auto",
    graph: bool = True,
    color_mode: str = "value",
) -> Json:
    """A stat panel showing the last value of each series."""
    return with_min_interval(
        {
            "datasource": DATASOURCE,
            "description": description,
            "fieldConfig": {
                "defaults": {
                    "color": {"mode": "thresholds"},
                    "decimals": decimals,
                    "mappings": mappings or [],
                    "thresholds": color_thresholds or thresholds("blue"),
                    "unit": unit,
                },
                "overrides": [],
            },
            "options": {
                "colorMode": color_mode,
                "graphMode": "area" if graph else "none",
                "justifyMode": "auto",
                "orientation": "auto",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "showPercentChange": False,
                "textMode": text_mode,
                "wideLayout": True,
            },
            "targets": list(targets),
            "title": title,
            "type": "stat",
        }
    )


def timeseries(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    unit: str,
    decimals: int,
    stacked: bool = False,
    bars: bool = False,
    fill: int = 10,
    overrides: list[Json] | None = None,
    color_thresholds: Json | None = None,
    legend_calcs: Sequence[str] = (),
) -> Json:
    """A time series panel."""
    custom: Json = {
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "axisLabel": "",
        "axisPlacement": "auto",
        "axisSoftMin": 0,
        # A bar at time T covers the interval that ends at T.
        "barAlignment": -1 if bars else 0,
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else fill,
        "gradientMode": "none",
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "pointSize": 4,
        "scaleDistribution": {"type": "linear"},
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": "dashed" if color_thresholds else "off"},
    }
    return with_min_interval(
        {
            "datasource": DATASOURCE,
            "description": description,
            "fieldConfig": {
                "defaults": {
                    "color": {"mode": "palette-classic"},
                    "custom": custom,
                    "decimals": decimals,
                    "mappings": [],
                    "thresholds": color_thresholds or thresholds("green"),
                    "unit": unit,
                },
                "overrides": overrides or [],
            },
            "options": {
                "legend": {
                    "calcs": list(legend_calcs),
                    "displayMode": "table" if legend_calcs else "list",
                    "placement": "bottom",
                    "showLegend": True,
                },
                "tooltip": {"mode": "multi", "sort": "desc"},
            },
            "targets": list(targets),
            "title": title,
            "type": "timeseries",
        }
    )


def bargauge(title: str, description: str, query: Json, *, unit: str) -> Json:
    """A horizontal bar gauge with one bar per series of an instant query.

    Grafana draws the bars in the order of the series, and a ``sortBy`` transformation
    cannot reorder them (it sorts the rows inside each series, and here each series has
    one row); so the query itself must sort them, with ``sort_desc()``.
    """
    if not query["expr"].startswith("sort_desc(") or not query["instant"]:
        raise ValueError(f"{title}: a bar gauge's query must be an instant sort_desc(...)")
    return with_min_interval(
        {
            "datasource": DATASOURCE,
            "description": description,
            "fieldConfig": {
                "defaults": {
                    "color": {"mode": "palette-classic"},
                    "decimals": 0,
                    "mappings": [],
                    "min": 0,
                    "thresholds": thresholds("green"),
                    "unit": unit,
                },
                "overrides": [],
            },
            "options": {
                "displayMode": "gradient",
                "maxVizHeight": 300,
                "minVizHeight": 16,
                "minVizWidth": 8,
                "namePlacement": "auto",
                "orientation": "horizontal",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "showUnfilled": True,
                "sizing": "auto",
                "valueMode": "color",
            },
            "targets": [query],
            "title": title,
            "type": "bargauge",
        }
    )


def table(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    columns: dict[str, str],
    sort_by: str,
    overrides: list[Json],
) -> Json:
    """A table of instant table-format queries merged into one row per label set.

    `columns` renames fields (``Value #A`` is query A's value, labels by their name);
    the table starts sorted by `sort_by`, largest first. Time is hidden.
    """
    return with_min_interval(
        {
            "datasource": DATASOURCE,
            "description": description,
            "fieldConfig": {
                "defaults": {
                    "color": {"mode": "thresholds"},
                    "custom": {
                        "align": "auto",
                        "cellOptions": {"type": "auto"},
                        "filterable": False,
                        "inspect": False,
                    },
                    "decimals": 0,
                    "mappings": [],
                    "thresholds": thresholds("green"),
                    "unit": "locale",
                },
                "overrides": overrides,
            },
            "options": {
                "cellHeight": "sm",
                "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
                "showHeader": True,
                "sortBy": [{"desc": True, "displayName": sort_by}],
            },
            "targets": list(targets),
            "title": title,
            "transformations": [
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "indexByName": {},
                        "renameByName": columns,
                    },
                },
            ],
            "type": "table",
        }
    )
