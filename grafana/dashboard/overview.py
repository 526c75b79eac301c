"""The overview dashboard ("ElevenLabs credits"): its rows, variables and header."""

from __future__ import annotations

from collections.abc import Sequence

from dashboard.breakdown import BREAKDOWN_LABELS, TOP_COUNTS, breakdown_row
from dashboard.cycle import billing_cycle_row, spend_row
from dashboard.health import REPO_URL, RUNBOOK_URL, alerts_row, health_row
from dashboard.layout import Grid, Json
from dashboard.limits import limits_row
from dashboard.panels import DATASOURCE

# The overview's rows, top to bottom.
OVERVIEW_ROWS = (
    billing_cycle_row,
    spend_row,
    breakdown_row,
    limits_row,
    alerts_row,
    health_row,
)


def credits_overview() -> Json:
    """The overview dashboard: the cycle against the allowance, pace against what is
    left, where the credits go, alerts, exporter health."""
    grid = Grid()
    for add_row in OVERVIEW_ROWS:
        add_row(grid)
    return {
        **import_requirements(),
        "annotations": {"list": [firing_alerts_annotation()]},
        "description": "ElevenLabs credit usage from elevenlabs-exporter: use against the "
        "allowance with a projection to the reset, pace against what is left as the alerts "
        "judge it, spend by product and by any opt-in dimension, API keys and groups against "
        "their credit limits, alert state and the exporter's own health.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            dashboard_link(
                "Runbook", "What each ElevenLabs alert means and what to do", RUNBOOK_URL, "doc"
            ),
            dashboard_link(
                "elevenlabs-exporter", "The exporter's documentation", REPO_URL, "external link"
            ),
        ],
        "panels": grid.panels,
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["elevenlabs", "credits", "elevenlabs-exporter"],
        "templating": {"list": variables()},
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": "ElevenLabs credits",
        "uid": "elevenlabs-credits",
        "version": 1,
        "weekStart": "",
    }


def import_requirements() -> Json:
    """What Grafana's import dialog reads: the data source to ask for and the plugins used."""
    return {
        "__inputs": [
            {
                "description": "The Prometheus that scrapes elevenlabs-exporter.",
                "label": "Prometheus",
                "name": "DS_PROMETHEUS",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
                "type": "datasource",
            }
        ],
        "__elements": {},
        "__requires": [
            {"id": "bargauge", "name": "Bar gauge", "type": "panel", "version": ""},
            {"id": "grafana", "name": "Grafana", "type": "grafana", "version": "10.0.0"},
            {"id": "prometheus", "name": "Prometheus", "type": "datasource", "version": "1.0.0"},
            {"id": "stat", "name": "Stat", "type": "panel", "version": ""},
            {"id": "table", "name": "Table", "type": "panel", "version": ""},
            {"id": "timeseries", "name": "Time series", "type": "panel", "version": ""},
        ],
    }


def firing_alerts_annotation() -> Json:
    """Firing ElevenLabs alerts of the selected workspaces marked on every time series, to
    line spend up with pages."""
    return {
        "datasource": DATASOURCE,
        "enable": True,
        "expr": 'ALERTS{alertname=~"ElevenLabs.*",alertstate="firing",workspace=~"$workspace|"}',
        "hide": False,
        "iconColor": "red",
        "name": "ElevenLabs alerts",
        "step": "60s",
        "tagKeys": "alertname,severity,workspace",
        "textFormat": "{{severity}}: {{alertname}} {{workspace}}",
        "titleFormat": "{{alertname}}",
        "useValueForTime": False,
    }


def dashboard_link(title: str, tooltip: str, url: str, icon: str) -> Json:
    """A link in the dashboard's header, opened in a new tab so the dashboard stays."""
    return {
        "asDropdown": False,
        "icon": icon,
        "includeVars": False,
        "keepTime": False,
        "tags": [],
        "targetBlank": True,
        "title": title,
        "tooltip": tooltip,
        "type": "link",
        "url": url,
    }


def query_variable(name: str, label: str, query: str, description: str, *, multi: bool) -> Json:
    """A Prometheus label_values() variable; multi-valued ones default to All (`.*`)."""
    variable: Json = {
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "datasource": DATASOURCE,
        "definition": query,
        "description": description,
        "hide": 0,
        "includeAll": multi,
        "label": label,
        "multi": multi,
        "name": name,
        "options": [],
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }
    if multi:
        variable["allValue"] = ".*"
    return variable


def custom_variable(
    name: str, label: str, values: Sequence[str], default: str, description: str
) -> Json:
    """A fixed list of choices, one of which is chosen."""
    return {
        "current": {"selected": True, "text": default, "value": default},
        "description": description,
        "hide": 0,
        "includeAll": False,
        "label": label,
        "multi": False,
        "name": name,
        "options": [
            {"selected": value == default, "text": value, "value": value} for value in values
        ],
        "query": ",".join(values),
        "skipUrlSync": False,
        "type": "custom",
    }


def datasource_variable() -> Json:
    """The Prometheus every panel asks."""
    return {
        # Import through the UI replaces ${DS_PROMETHEUS} with the chosen data source.
        # Provisioned, the value matches nothing and Grafana picks the data source named
        # Prometheus, else the first Prometheus data source.
        "current": {"selected": False, "text": "Prometheus", "value": "${DS_PROMETHEUS}"},
        "description": "The Prometheus that scrapes elevenlabs-exporter.",
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": "datasource",
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


def variables() -> list[Json]:
    """The dashboard's variables, in the order Grafana shows them."""
    return [
        datasource_variable(),
        query_variable(
            "job",
            "Job",
            "label_values(elevenlabs_up, job)",
            "The Prometheus scrape job of the exporter.",
            multi=False,
        ),
        query_variable(
            "workspace",
            "Workspace",
            'label_values(elevenlabs_up{job=~"$job"}, workspace)',
            "ElevenLabs workspaces, as named in the exporter's configuration.",
            multi=True,
        ),
        query_variable(
            "product_type",
            "Product",
            'label_values(elevenlabs_credits_used_total{job=~"$job",workspace=~"$workspace"}, '
            "product_type)",
            "Products for the per-product panels.",
            multi=True,
        ),
        custom_variable(
            "usage_bucket",
            "Usage per",
            ("1h", "1d", "7d"),
            "1d",
            "The bucket size of the 'Credits per ... by product' bars.",
        ),
        custom_variable(
            "breakdown",
            "Break down by",
            BREAKDOWN_LABELS,
            BREAKDOWN_LABELS[0],
            "The label the top-N table breaks this cycle's credits down by: the product, or "
            "an opt-in dimension of the workspaces' group_by.",
        ),
        custom_variable(
            "top_n",
            "Top",
            TOP_COUNTS,
            "10",
            "How many values the top-N table lists.",
        ),
    ]
