"""The dashboards' structure, as Grafana reads it on import and provisioning.

Valid JSON with a schema version and unique uids; unique panel ids on a 24-column grid
without overlaps, rows above their panels; every data source reference the datasource
variable; every panel titled, described and with a unit; every variable referenced
defined; every query selecting the job and workspaces, over windows that suit an
exporter polled once a minute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_queries import ALL, DEFAULT_BUILTINS, duration_seconds, iter_panels, variable_names
from dashboards_support import (
    DASHBOARDS,
    DATASOURCE_REF,
    GRAFANA,
    OVERVIEW_PATH,
    dashboard_params,
    data_panels,
    range_windows,
)

GRAFANA_BUILTINS = frozenset(
    {*DEFAULT_BUILTINS, "__from", "__to", "__dashboard", "__user", "__org", "__name", "__all"}
)
MIN_FIXED_WINDOW_SECONDS = 300


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


# --- Queries and variables --------------------------------------------------------------


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
    allowed_variables = {"$__rate_interval"}
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
    variable = variables["usage_bucket"]
    assert variable["type"] == "custom"
    values = variable["query"].split(",")
    assert variable["current"]["value"] in values
    assert all(duration_seconds(value) >= 3600 for value in values)


@dashboard_params
def test_rates_have_a_one_minute_min_step_and_interval(dashboard: dict[str, Any]) -> None:
    """Every query taking rate() or increase() has a min step of 1m and its panel a min
    interval of 1m: Grafana takes the min step for the scrape interval, so
    $__rate_interval spans at least 4 of the exporter's once-a-minute values even on a
    data source left at the 15s default. The per-bucket bars keep their $usage_bucket
    min interval, with no min step (Grafana would take it for $__interval)."""
    counters = ("rate(", "increase(", "$__rate_interval")
    checked = 0
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            if not any(function in target["expr"] for function in counters):
                assert "interval" not in target, panel["title"]
                continue
            checked += 1
            if "$__interval" in target["expr"]:
                assert panel["interval"] == "$usage_bucket", panel["title"]
                assert "interval" not in target, panel["title"]
            else:
                assert panel.get("interval") == "1m", panel["title"]
                assert target.get("interval") == "1m", panel["title"]
    assert checked
