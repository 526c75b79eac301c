"""The Grafana dashboards and their provisioning, tested as the artefacts users import.

Structure (ids, grid, data source references, units, variables), the metric contract,
the generator, the provisioning files, and every query run against a real Prometheus:
once for syntax, and once against a scrape of contract-shaped metrics to prove that
the panels that must show data do.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from contract import CONTRACT_METRICS, HISTOGRAMS, SERIES_NAMES
from dashboard_queries import (
    ALL,
    DEFAULT_BUILTINS,
    DashboardQuery,
    dashboard_queries,
    duration_seconds,
    iter_panels,
    load_dashboards,
    substitute,
    variable_names,
    variable_replacements,
)

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "grafana"
DASHBOARDS = load_dashboards()
OVERVIEW_PATH = GRAFANA / "dashboards" / "elevenlabs-credits.json"

QUERYABLE_METRICS = SERIES_NAMES | {"ALERTS", "up"}
ALERT_NAMES = (
    "ElevenLabsCreditBurnRate",
    "ElevenLabsCreditsExhaustedBeforeReset",
    "ElevenLabsCreditSpike",
    "ElevenLabsCreditQuotaNearlyExhausted",
    "ElevenLabsExporterDown",
    "ElevenLabsAPIPollingFailing",
    "ElevenLabsUsageDataStale",
    "ElevenLabsAPIKeyRejected",
)
RUNBOOK_URL = "https://github.com/elevenlabs-exporter/elevenlabs-exporter/blob/main/docs/runbook.md"
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTINS = frozenset(
    {*DEFAULT_BUILTINS, "__from", "__to", "__dashboard", "__user", "__org", "__name", "__all"}
)
# Panels without data or a unit of their own.
LAYOUT_PANEL_TYPES = frozenset({"row", "text"})
MIN_FIXED_WINDOW_SECONDS = 300

dashboard_params = pytest.mark.parametrize(
    "dashboard", list(DASHBOARDS.values()), ids=[path.name for path in DASHBOARDS]
)


def data_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (not rows or text)."""
    return [p for p in iter_panels(dashboard) if p.get("type") not in LAYOUT_PANEL_TYPES]


def panel_by_title(dashboard: Mapping[str, Any], title: str) -> dict[str, Any]:
    """The one panel called `title`."""
    matches = [p for p in iter_panels(dashboard) if p.get("title") == title]
    assert len(matches) == 1, f"expected one panel {title!r}, found {len(matches)}"
    return matches[0]


# --- Reading PromQL roughly -----------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(?!\w)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan"}
)
_RANGE_WINDOW = re.compile(r"\[([^\]:]+)(?::[^\]]*)?\]")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (rough: strings, matchers, groupings out)."""
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    text = _STRING.sub(" ", expr)
    text = _GROUPING.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue  # a function or aggregation, or a keyword
        names.add(name)
    return names


def range_windows(expr: str) -> list[str]:
    """The windows of the range selectors and subqueries of `expr`."""
    return [window.strip() for window in _RANGE_WINDOW.findall(_STRING.sub('""', expr))]


def all_strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from all_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_strings(item)


def datasource_references(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every value of a ``datasource`` key anywhere inside a JSON value, with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasource":
                yield f"{path}.{key}", item
            yield from datasource_references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from datasource_references(item, f"{path}[{index}]")


def test_metric_names_reads_selectors_and_skips_functions_labels_and_strings() -> None:
    """The PromQL reader finds selected metrics and ignores functions, labels and strings."""
    expr = (
        'histogram_quantile(0.9, sum by (le, endpoint) (rate(a_bucket{job=~"x",b="c"}[5m]))) '
        "/ on (workspace) group_left (tier) max(b_total offset 1d) or vector(0) * time() "
        'and label_replace(c, "dst", "$1", "src", "(.*)") + 1e3 + Inf'
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
    assert metric_names('{__name__="d"}') == {"d"}
    assert range_windows(expr) == ["5m"]


# --- Files and structure --------------------------------------------------------------


def test_overview_dashboard_exists_with_its_uid_and_title() -> None:
    """The overview users import is where docs/dashboards.md says, with a stable uid and
    title."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    assert dashboard["uid"] == "elevenlabs-credits"
    assert dashboard["title"] == "ElevenLabs credits"


@pytest.mark.parametrize("path", sorted((GRAFANA / "dashboards").glob("*.json")), ids=str)
def test_dashboard_file_is_valid_json_with_a_schema_version(path: Path) -> None:
    """Each dashboard parses as a JSON object and declares a schemaVersion and a uid."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(dashboard, dict)
    assert isinstance(dashboard.get("schemaVersion"), int)
    assert dashboard["schemaVersion"] >= 36
    assert dashboard.get("uid")
    assert dashboard.get("id") is None, "a fixed id clashes with other dashboards on import"


def test_dashboard_uids_are_unique() -> None:
    """Two dashboards with one uid would overwrite each other when provisioned."""
    uids = [dashboard["uid"] for dashboard in DASHBOARDS.values()]
    assert len(uids) == len(set(uids))


@dashboard_params
def test_panel_ids_are_unique_including_panels_in_rows(dashboard: dict[str, Any]) -> None:
    """Grafana keys panels by id; a duplicate id makes links and edits hit the wrong one."""
    ids = [panel.get("id") for panel in iter_panels(dashboard)]
    assert all(isinstance(panel_id, int) for panel_id in ids), ids
    assert len(ids) == len(set(ids)), ids


@dashboard_params
def test_panels_fit_24_columns_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    """Every panel lies within the 24-column grid and no two panels share a cell."""
    groups = [dashboard["panels"]] + [
        panel["panels"] for panel in dashboard["panels"] if panel.get("panels")
    ]
    for group in groups:
        cells: dict[tuple[int, int], str] = {}
        for panel in group:
            pos = panel["gridPos"]
            x, y, w, h = pos["x"], pos["y"], pos["w"], pos["h"]
            assert min(x, y) >= 0, panel["title"]
            assert min(w, h) > 0, panel["title"]
            assert x + w <= 24, f"{panel['title']} reaches column {x + w}"
            for column in range(x, x + w):
                for line in range(y, y + h):
                    other = cells.setdefault((column, line), panel["title"])
                    assert other == panel["title"], f"{panel['title']} overlaps {other}"


@dashboard_params
def test_rows_come_before_their_panels_in_grid_order(dashboard: dict[str, Any]) -> None:
    """Panels are listed top to bottom, so Grafana groups each under the row above it."""
    positions = [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in dashboard["panels"]]
    assert positions == sorted(positions)


@dashboard_params
def test_every_data_source_reference_is_the_datasource_variable(
    dashboard: dict[str, Any],
) -> None:
    """No hard-coded data source uid: every panel, target, variable and annotation uses it."""
    references = list(datasource_references(dashboard))
    assert references
    for path, reference in references:
        assert reference == DATASOURCE_REF, path
    for panel in data_panels(dashboard):
        assert panel.get("datasource") == DATASOURCE_REF, panel["title"]
        assert panel.get("targets"), panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE_REF, (panel["title"], target)


@dashboard_params
def test_import_input_and_datasource_variable_work_together(dashboard: dict[str, Any]) -> None:
    """UI import asks for a Prometheus (``__inputs``) and sets the datasource variable to it.

    Provisioned, the placeholder matches no uid and Grafana falls back to the option whose
    name is the variable's text (the provisioned data source "Prometheus"), else the first.
    """
    inputs = dashboard["__inputs"]
    assert inputs == [
        {
            "description": inputs[0]["description"],
            "label": "Prometheus",
            "name": "DS_PROMETHEUS",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
            "type": "datasource",
        }
    ]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    assert datasource["current"]["value"] == "${DS_PROMETHEUS}"
    assert datasource["current"]["text"] == "Prometheus"
    # The placeholder appears nowhere else: panels never depend on the import step.
    uses = [s for s in all_strings(dashboard) if "DS_PROMETHEUS" in s]
    assert uses == ["DS_PROMETHEUS", "${DS_PROMETHEUS}"]


@dashboard_params
def test_every_data_panel_has_title_description_unit_and_decimals(
    dashboard: dict[str, Any],
) -> None:
    """Each panel says what it shows, in which unit, and how precisely."""
    for panel in iter_panels(dashboard):
        assert panel.get("title"), panel.get("id")
    for panel in data_panels(dashboard):
        title = panel["title"]
        assert len(panel.get("description", "")) >= 20, title
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), title
        assert isinstance(defaults.get("decimals"), int), title


@dashboard_params
def test_every_referenced_variable_is_defined(dashboard: dict[str, Any]) -> None:
    """A ``$name`` anywhere in panels, variables or annotations names a defined variable."""
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    defined |= {entry["name"] for entry in dashboard.get("__inputs", [])}
    referenced = set()
    for part in (dashboard["panels"], dashboard["templating"], dashboard["annotations"]):
        for text in all_strings(part):
            referenced |= variable_names(text)
    assert referenced - defined - GRAFANA_BUILTINS == set()
    assert {"job", "workspace", "product_type"} <= referenced


@dashboard_params
def test_queries_use_only_contract_metrics(dashboard: dict[str, Any]) -> None:
    """Queries need only the exporter's metrics, ALERTS and up: no recording rules."""
    for query in dashboard_queries(dashboard):
        names = metric_names(query.expr)
        assert names, f"{query.title}: no metric found in {query.expr}"
        assert names <= QUERYABLE_METRICS, f"{query.title}: {names - QUERYABLE_METRICS}"


def test_overview_uses_every_contract_metric() -> None:
    """The overview stands alone: every metric of the contract appears on it somewhere."""
    used: set[str] = set()
    for query in dashboard_queries(DASHBOARDS[OVERVIEW_PATH]):
        used |= metric_names(query.expr)
    for name in HISTOGRAMS:
        if f"{name}_bucket" in used:
            used.add(name)
    assert CONTRACT_METRICS - used == set()
    assert {"ALERTS", "up"} <= used


@dashboard_params
def test_every_query_selects_the_job_and_workspaces(dashboard: dict[str, Any]) -> None:
    """Every exporter metric selection honours $job, and $workspace where it has one."""
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            for selector in re.finditer(r"(\w+)\{([^}]*)\}", expr):
                name, matchers = selector.groups()
                if name == "ALERTS":
                    continue
                assert 'job=~"$job"' in matchers, (panel["title"], name)
                if name.startswith("elevenlabs_") and name != "elevenlabs_exporter_build_info":
                    assert 'workspace=~"$workspace"' in matchers, (panel["title"], name)


@dashboard_params
def test_range_windows_suit_a_once_a_minute_exporter(dashboard: dict[str, Any]) -> None:
    """Rates use $__rate_interval or fixed windows of 5m or more; $__interval only where a
    panel's min interval keeps it at least a usage bucket; $__range only in instant queries.
    """
    allowed_variables = {"$__rate_interval", "$projection_window"}
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            for window in range_windows(target["expr"]):
                where = f"{panel['title']}: [{window}]"
                if window.startswith("$"):
                    if window == "$__interval":
                        assert panel.get("interval"), where
                    elif window == "$__range":
                        assert target.get("instant"), where
                        assert not target.get("range"), where
                    else:
                        assert window in allowed_variables, where
                else:
                    assert duration_seconds(window) >= MIN_FIXED_WINDOW_SECONDS, where


def test_variables_select_job_workspace_and_product() -> None:
    """The overview's variables: data source, job, workspace (multi/All) and product (multi/All)."""
    variables = {v["name"]: v for v in DASHBOARDS[OVERVIEW_PATH]["templating"]["list"]}
    assert list(variables)[:4] == ["datasource", "job", "workspace", "product_type"]
    expected = {
        "job": "label_values(elevenlabs_up, job)",
        "workspace": 'label_values(elevenlabs_up{job=~"$job"}, workspace)',
        "product_type": (
            'label_values(elevenlabs_credits_used_total{job=~"$job",workspace=~"$workspace"}, '
            "product_type)"
        ),
    }
    for name, query in expected.items():
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["definition"] == query
        assert variable["query"]["query"] == query
        assert variable["datasource"] == DATASOURCE_REF
        assert variable["refresh"] in (1, 2), "options must load, not stay as saved"
    assert not variables["job"]["multi"]
    for name in ("workspace", "product_type"):
        assert variables[name]["multi"], name
        assert variables[name]["includeAll"], name
        assert variables[name]["allValue"] == ".*", name
        assert variables[name]["current"]["value"] == [ALL], name
    for name in ("projection_window", "usage_bucket"):
        variable = variables[name]
        assert variable["type"] == "custom"
        values = variable["query"].split(",")
        assert variable["current"]["value"] in values
        assert all(duration_seconds(value) >= 3600 for value in values), name


# --- What the overview answers --------------------------------------------------------


def overview_exprs(title: str) -> list[str]:
    """The query expressions of one overview panel."""
    return [t["expr"] for t in panel_by_title(DASHBOARDS[OVERVIEW_PATH], title)["targets"]]


def test_overview_has_the_cycle_stats() -> None:
    """Used, limit, share, remaining, projection at reset and time to reset are stats."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    expected = {
        "Credits used this cycle": ("elevenlabs_subscription_credits_used",),
        "Cycle credit limit": ("elevenlabs_subscription_credits_limit",),
        "Share of limit used": ("elevenlabs_subscription_credits_used", "credits_limit"),
        "Credits remaining": ("elevenlabs_subscription_credits_limit", "credits_used"),
        "Projected use at reset": ("rate(elevenlabs_credits_used_total", "reset_timestamp"),
        "Time until reset": ("elevenlabs_subscription_cycle_reset_timestamp_seconds",),
    }
    for title, fragments in expected.items():
        panel = panel_by_title(dashboard, title)
        assert panel["type"] == "stat", title
        (expr,) = overview_exprs(title)
        for fragment in fragments:
            assert fragment in expr, (title, fragment)
    assert panel_by_title(dashboard, "Share of limit used")["fieldConfig"]["defaults"]["unit"] == (
        "percent"
    )
    assert panel_by_title(dashboard, "Time until reset")["fieldConfig"]["defaults"]["unit"] in (
        "s",
        "dtdurations",
    )


def test_overview_time_series_answer_spend_questions() -> None:
    """Per-product spend (stacked), burn rate against even spend, cycle use against the limit."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    per_minute = panel_by_title(dashboard, "Credits per minute by product")
    assert per_minute["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    (expr,) = overview_exprs("Credits per minute by product")
    assert "by (product_type)" in expr
    assert "[$__rate_interval]" in expr
    assert "* 60" in expr

    even_spend = "elevenlabs_subscription_credits_limit"
    for title in ("Spend rate against even spend", "Burn rate (multiple of even spend)"):
        exprs = " ".join(overview_exprs(title))
        assert even_spend in exprs
        assert "elevenlabs_subscription_cycle_length_seconds" in exprs

    cycle = " ".join(overview_exprs("Cycle use against the limit"))
    assert "elevenlabs_cycle_credits_used" in cycle
    assert "elevenlabs_subscription_credits_limit" in cycle
    # The projection: used + rate over $projection_window * time left until the reset.
    assert "[$projection_window]" in cycle
    assert re.search(r"cycle_reset_timestamp_seconds\{[^}]*\}\) - time\(\)", cycle)


def test_overview_breaks_usage_down_by_product_for_today_week_and_cycle() -> None:
    """Bar gauges answer: per product, today so far, the last 7 days and this cycle."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    today = panel_by_title(dashboard, "Today so far by product")
    assert today["type"] == "bargauge"
    assert today["timeFrom"] == "now/d"
    assert "[$__range]" in today["targets"][0]["expr"]
    assert "[7d]" in overview_exprs("Last 7 days by product")[0]
    assert "elevenlabs_cycle_credits_used" in overview_exprs("This cycle by product")[0]
    for title in ("Today so far by product", "Last 7 days by product", "This cycle by product"):
        (target,) = panel_by_title(dashboard, title)["targets"]
        assert target["instant"], title
        assert not target["range"], title
        assert "by (product_type)" in target["expr"], title


def test_overview_shows_every_alert_with_its_runbook() -> None:
    """Each contract alert has a state tile whose link opens its runbook section."""
    panel = panel_by_title(DASHBOARDS[OVERVIEW_PATH], "Alert state")
    by_ref = {t["refId"]: t for t in panel["targets"]}
    links = {}
    for entry in panel["fieldConfig"]["overrides"]:
        assert entry["matcher"]["id"] == "byFrameRefID"
        (prop,) = entry["properties"]
        assert prop["id"] == "links"
        links[entry["matcher"]["options"]] = [link["url"] for link in prop["value"]]
    shown = {}
    for ref_id, target in by_ref.items():
        (name,) = re.findall(r'alertname="(\w+)"', target["expr"])[:1]
        assert target["legendFormat"] == name
        shown[name] = links[ref_id]
    assert set(shown) == set(ALERT_NAMES)
    for name, urls in shown.items():
        assert urls == [f"{RUNBOOK_URL}#{name.lower()}"], name


def test_overview_annotates_firing_elevenlabs_alerts() -> None:
    """Firing ElevenLabs alerts show as annotations on every time series panel."""
    annotations = DASHBOARDS[OVERVIEW_PATH]["annotations"]["list"]
    (alerts,) = [a for a in annotations if "ALERTS" in a.get("expr", "")]
    assert alerts["enable"] is True
    assert alerts["datasource"] == DATASOURCE_REF
    assert 'alertname=~"ElevenLabs.*"' in alerts["expr"]
    assert 'alertstate="firing"' in alerts["expr"]


def test_overview_has_an_exporter_health_row() -> None:
    """Polling status, last-success age, poll errors by reason and request latency."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert "Exporter health" in [r["title"] for r in rows]
    health_y = next(r["gridPos"]["y"] for r in rows if r["title"] == "Exporter health")
    below = [p for p in dashboard["panels"] if p["gridPos"]["y"] > health_y]
    exprs = " ".join(t["expr"] for p in below for t in p.get("targets", []))
    assert "elevenlabs_up{" in exprs
    assert "time() - max by (workspace, endpoint) (elevenlabs_exporter_last_success" in exprs
    assert "sum by (reason) (rate(elevenlabs_exporter_poll_errors_total{" in exprs
    assert "histogram_quantile(" in exprs
    assert "elevenlabs_exporter_api_request_duration_seconds_bucket" in exprs


def test_thresholds_mirror_the_alert_contract() -> None:
    """Burn-rate lines sit at the alert's multiples; the quota stat turns at 90% and 98%."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]

    def steps(title: str) -> list[float]:
        defaults = panel_by_title(dashboard, title)["fieldConfig"]["defaults"]
        return [s["value"] for s in defaults["thresholds"]["steps"] if s["value"] is not None]

    assert steps("Burn rate (multiple of even spend)") == [3, 6, 14.4]
    assert steps("Share of limit used") == [90, 98]
    assert steps("Age of last successful poll") == [900]


# --- Generator and provisioning -------------------------------------------------------


def test_generator_reproduces_the_committed_dashboards(tmp_path: Path) -> None:
    """The committed JSON is exactly what grafana/generate.py writes, file for file."""
    subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), "--output", str(tmp_path)], check=True
    )
    generated = {path.name: path.read_bytes() for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_bytes() for path in DASHBOARDS}
    assert set(generated) == set(committed)
    for name, text in generated.items():
        assert text == committed[name], f"{name} is out of date: run python grafana/generate.py"


def test_generator_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    """``--check`` fails on a dashboard that differs from what the generator would write."""
    generate = [sys.executable, str(GRAFANA / "generate.py"), "--output", str(tmp_path)]
    subprocess.run(generate, check=True)
    assert subprocess.run([*generate, "--check"], check=False).returncode == 0
    (tmp_path / OVERVIEW_PATH.name).write_text("{}\n", encoding="utf-8")
    result = subprocess.run([*generate, "--check"], capture_output=True, check=False, text=True)
    assert result.returncode == 1
    assert "out of date" in result.stderr


def test_provisioned_datasource_is_the_default_prometheus() -> None:
    """Grafana provisions Prometheus (uid prometheus) at the compose service's address."""
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    assert config["apiVersion"] == 1
    (datasource,) = config["datasources"]
    assert datasource["name"] == "Prometheus"
    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["access"] == "proxy"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True


def test_provisioned_dashboard_provider_reads_the_mounted_directory() -> None:
    """The file provider loads the dashboards from where compose mounts grafana/dashboards."""
    config = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "elevenlabs.yml").read_text(encoding="utf-8")
    )
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert provider.get("name")


def test_dashboards_doc_describes_every_overview_panel() -> None:
    """docs/dashboards.md names every panel of the overview."""
    section = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    missing = [
        p["title"] for p in data_panels(DASHBOARDS[OVERVIEW_PATH]) if p["title"] not in section
    ]
    assert missing == []


# --- The query helper -----------------------------------------------------------------

SAMPLE_DASHBOARD: dict[str, Any] = {
    "uid": "elevenlabs-credits",
    "templating": {
        "list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {
                "name": "job",
                "type": "query",
                "multi": False,
                "includeAll": False,
                "query": {"query": "label_values(elevenlabs_up, job)", "refId": "V"},
            },
            {
                "name": "workspace",
                "type": "query",
                "multi": True,
                "includeAll": True,
                "allValue": ".*",
                "query": 'label_values(elevenlabs_up{job=~"$job"}, workspace)',
            },
            {
                "name": "bucket",
                "type": "custom",
                "query": "1h,1d",
                "current": {"text": "1d", "value": "1d"},
            },
        ]
    },
    "panels": [
        {
            "id": 1,
            "type": "timeseries",
            "title": "Top",
            "targets": [
                {"refId": "A", "expr": 'up{job=~"$job",workspace=~"${workspace}"}'},
                {"refId": "B", "expr": "hidden_metric", "hide": True},
            ],
        },
        {
            "id": 2,
            "type": "row",
            "title": "Collapsed",
            "collapsed": True,
            "panels": [
                {
                    "id": 3,
                    "type": "timeseries",
                    "title": "Credits revised downward",
                    "interval": "$bucket",
                    "targets": [
                        {
                            "refId": "A",
                            "expr": "increase(x[$__interval]) + rate(x[$__rate_interval])",
                            "instant": True,
                            "range": False,
                        }
                    ],
                }
            ],
        },
    ],
    "annotations": {
        "list": [
            {"name": "Built-in", "builtIn": 1},
            {"name": "Alerts", "expr": 'ALERTS{job=~"[[job]]"}'},
        ]
    },
}


def test_substitute_formats_single_multi_and_all_values_like_grafana() -> None:
    """Single values go in as they are; multi values become an escaped regex group; All
    becomes the variable's allValue."""
    single = {"name": "job", "multi": False, "includeAll": False}
    multi = {"name": "ws", "multi": True, "includeAll": True, "allValue": ".*"}
    dashboard = {"templating": {"list": [{**single, "type": "query"}, {**multi, "type": "query"}]}}
    expr = 'x{job=~"$job",ws=~"${ws}"}[$__rate_interval]'

    def render(values: Mapping[str, str | Sequence[str]]) -> str:
        return substitute(expr, variable_replacements(dashboard, values))

    assert render({"job": "a-b", "ws": "main"}) == 'x{job=~"a-b",ws=~"main"}[4m]'
    assert render({"job": "j", "ws": ["a.b", "c"]}) == 'x{job=~"j",ws=~"(a\\\\.b|c)"}[4m]'
    assert render({"job": "j", "ws": ALL}) == 'x{job=~"j",ws=~".*"}[4m]'
    assert render({"job": "j", "ws": [ALL]}) == 'x{job=~"j",ws=~".*"}[4m]'
    assert substitute("[[a]] $b ${c}", {"a": "1", "b": "2", "c": "3"}) == "1 2 3"


def test_substitute_rejects_undefined_variables_and_formats() -> None:
    """A query naming an unknown variable or a format fails loudly, never half-substituted."""
    with pytest.raises(KeyError, match="undefined variable"):
        substitute("x[$nope]", {"__range": "1h"})
    with pytest.raises(ValueError, match="format"):
        substitute("${job:regex}", {"job": "j"})
    single = {"name": "job", "type": "query", "multi": False}
    with pytest.raises(ValueError, match="single value"):
        variable_replacements({"templating": {"list": [single]}}, {"job": ["a", "b"]})
    with pytest.raises(KeyError, match="no value"):
        variable_replacements({"templating": {"list": [{**single, "name": "other"}]}})


def test_dashboard_queries_lists_variables_panels_rows_and_annotations() -> None:
    """Every query comes back substituted: variable selectors, panel targets (nested in
    collapsed rows too, hidden ones left out), and annotations; a panel's min interval
    raises $__interval and $__rate_interval; panels allowed to be empty need no data."""
    queries = dashboard_queries(
        SAMPLE_DASHBOARD,
        {"job": "exp", "workspace": "default"},
        may_be_empty={"Credits revised downward"},
    )
    summary = [
        (q.source, q.title, q.ref_id, q.expr, q.instant, q.must_have_data, q.label) for q in queries
    ]
    assert summary == [
        ("variable", "job", "job", "elevenlabs_up", True, True, "job"),
        (
            "variable",
            "workspace",
            "workspace",
            'elevenlabs_up{job=~"exp"}',
            True,
            True,
            "workspace",
        ),
        ("panel", "Top", "A", 'up{job=~"exp",workspace=~"default"}', False, True, None),
        (
            "panel",
            "Credits revised downward",
            "A",
            "increase(x[1d]) + rate(x[1d])",
            True,
            False,
            None,
        ),
        ("annotation", "Alerts", "Alerts", 'ALERTS{job=~"exp"}', False, False, None),
    ]
    assert [q.panel_id for q in queries] == [None, None, 1, 3, None]


def test_dashboard_queries_of_the_overview_are_fully_substituted() -> None:
    """Each overview target, query variable and annotation yields one query, no `$` left."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    queries = dashboard_queries(dashboard)
    targets = sum(len(p.get("targets", [])) for p in iter_panels(dashboard))
    variables = sum(v["type"] == "query" for v in dashboard["templating"]["list"])
    annotations = len(dashboard["annotations"]["list"])
    assert len(queries) == targets + variables + annotations
    assert all("$" not in q.expr for q in queries), [q.expr for q in queries if "$" in q.expr]
    per_bucket = [q for q in queries if q.title == "Credits per ${usage_bucket} by product"]
    assert [q.expr.endswith("[1d]))") for q in per_bucket] == [True]


# --- Against a real Prometheus --------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


WORKSPACES = ("default", "second")
PRODUCTS = ("text_to_speech", "speech_to_text", "dubbing")
ENDPOINTS = ("usage", "subscription")
REASONS = (
    "auth",
    "permission",
    "rate_limited",
    "server_error",
    "timeout",
    "network",
    "bad_response",
    "client_error",
)
BUCKETS = ("0.05", "0.1", "0.5", "1.0", "+Inf")


def contract_exposition(scrape: int, now: float) -> str:
    """Metrics shaped like the contract's, with usage growing at every scrape."""
    lines: list[str] = []

    def family(name: str, kind: str, samples: Sequence[tuple[str, float]]) -> None:
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    per_product = [
        (f'{{workspace="{w}",product_type="{p}"}}', 100.0 * (i + 1) + scrape * (i + 1))
        for w in WORKSPACES
        for i, p in enumerate(PRODUCTS)
    ]
    family("elevenlabs_credits_used", "counter", [(f"_total{lbl}", v) for lbl, v in per_product])
    family(
        "elevenlabs_credits_downward_revision",
        "counter",
        [(f"_total{labels}", 0.0) for labels, _ in per_product],
    )
    family("elevenlabs_cycle_credits_used", "gauge", per_product)
    per_ws = [f'{{workspace="{w}"}}' for w in WORKSPACES]
    for name, value in (
        ("elevenlabs_subscription_credits_used", 1000.0 + scrape),
        ("elevenlabs_subscription_credits_limit", 100000.0),
        ("elevenlabs_subscription_cycle_reset_timestamp_seconds", now + 10 * 86400),
        ("elevenlabs_subscription_cycle_length_seconds", 30 * 86400.0),
        ("elevenlabs_subscription_voice_slots_used", 3.0),
        ("elevenlabs_subscription_voice_slots_limit", 10.0),
        ("elevenlabs_subscription_professional_voice_slots_used", 1.0),
        ("elevenlabs_subscription_professional_voice_slots_limit", 1.0),
        ("elevenlabs_up", 1.0),
    ):
        family(name, "gauge", [(labels, value) for labels in per_ws])
    family(
        "elevenlabs_subscription_info",
        "gauge",
        [
            (
                f'{{workspace="{w}",tier="creator",status="active",currency="usd",'
                'billing_period="monthly_period"}',
                1.0,
            )
            for w in WORKSPACES
        ],
    )
    per_endpoint = [f'workspace="{w}",endpoint="{e}"' for w in WORKSPACES for e in ENDPOINTS]
    family(
        "elevenlabs_exporter_last_success_timestamp_seconds",
        "gauge",
        [(f"{{{labels}}}", now) for labels in per_endpoint],
    )
    family(
        "elevenlabs_exporter_api_requests",
        "counter",
        [(f'_total{{{labels},code="200"}}', float(scrape)) for labels in per_endpoint],
    )
    family(
        "elevenlabs_exporter_poll_errors",
        "counter",
        [(f'_total{{{labels},reason="{r}"}}', 0.0) for labels in per_endpoint for r in REASONS],
    )
    histogram: list[tuple[str, float]] = []
    for labels in per_endpoint:
        histogram += [(f'_bucket{{{labels},le="{le}"}}', float(scrape)) for le in BUCKETS]
        histogram += [(f"_sum{{{labels}}}", 0.2 * scrape), (f"_count{{{labels}}}", float(scrape))]
    family("elevenlabs_exporter_api_request_duration_seconds", "histogram", histogram)
    family("elevenlabs_exporter_build_info", "gauge", [('{version="0.1.0"}', 1.0)])
    return "\n".join(lines) + "\n"


class ContractMetricsHandler(BaseHTTPRequestHandler):
    """Serves :func:`contract_exposition` at any path, one scrape more each time."""

    scrapes = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        """Answer a scrape."""
        with self.lock:
            type(self).scrapes += 1
            scrape = self.scrapes
        body = contract_exposition(scrape, time.time()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


class Prometheus:
    """A Prometheus on loopback, queried like Grafana queries it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Status code and JSON body of a GET request."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:  # noqa: S310
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def run(self, query: DashboardQuery) -> tuple[int, dict[str, Any]]:
        """Run `query` as Grafana would: instant, or a range over the last five minutes."""
        if query.instant:
            return self.get("/api/v1/query", {"query": query.expr})
        end = time.time()
        params = {"query": query.expr, "start": str(end - 300), "end": str(end), "step": "15"}
        return self.get("/api/v1/query_range", params)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus scraping contract-shaped metrics every second as job
    elevenlabs-exporter."""
    binary = shutil.which("prometheus")
    assert binary, "the prometheus binary must be on PATH (scripts/apt-packages.txt)"
    server = ThreadingHTTPServer(("127.0.0.1", 0), ContractMetricsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "elevenlabs-exporter",
                        "static_configs": [{"targets": [f"127.0.0.1:{server.server_port}"]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    port = free_port()
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (directory / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(f"{client.url}/-/ready", timeout=1):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline, "prometheus did not become ready"
                time.sleep(0.2)
        yield client
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
        server.shutdown()
        server.server_close()


def wait_for_scrapes(prometheus: Prometheus, count: int) -> None:
    """Block until Prometheus holds `count` scrapes of the contract metrics."""
    deadline = time.monotonic() + 60
    query = 'count_over_time(elevenlabs_up{job="elevenlabs-exporter",workspace="default"}[5m])'
    while True:
        status, body = prometheus.get("/api/v1/query", {"query": query})
        result = body["data"]["result"] if status == 200 else []
        if result and float(result[0]["value"][1]) >= count:
            return
        assert time.monotonic() < deadline, f"fewer than {count} scrapes after 60s"
        time.sleep(0.5)


@dashboard_params
def test_every_substituted_query_parses_in_prometheus(
    dashboard: dict[str, Any], prometheus: Prometheus
) -> None:
    """Prometheus accepts every panel, variable and annotation query (no parse error)."""
    for values in ({}, {"workspace": ["default", "second"], "product_type": "dubbing"}):
        for query in dashboard_queries(dashboard, values):
            status, body = prometheus.run(query)
            assert status == 200, (query.title, query.expr, body)
            assert body["status"] == "success", (query.title, query.expr, body)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"workspace": "default", "product_type": ["text_to_speech", "dubbing"]},
        {"workspace": ["default", "second"], "product_type": "speech_to_text"},
    ],
    ids=["all", "one-workspace-two-products", "two-workspaces-one-product"],
)
@dashboard_params
def test_panels_that_must_show_data_do_on_contract_metrics(
    dashboard: dict[str, Any], values: dict[str, str | list[str]], prometheus: Prometheus
) -> None:
    """With the contract's metrics scraped a few times, every query that must show data
    returns at least one series, and variable queries return the label they list."""
    wait_for_scrapes(prometheus, 4)
    empty = []
    for query in dashboard_queries(dashboard, values):
        if not query.must_have_data:
            continue
        status, body = prometheus.run(query)
        assert status == 200, (query.title, body)
        result = body["data"]["result"]
        if not result:
            empty.append(f"{query.title} [{query.ref_id}]: {query.expr}")
        elif query.label:
            assert all(query.label in series["metric"] for series in result), query.title
    assert empty == []
