"""What the overview dashboard shows: its panels, their queries and thresholds.

Every query reads only the metric contract (plus ALERTS, up, the display names and the
rules' marker) and the overview uses all of it; the cycle stats against the allowance,
the projection from the 1d and 7d pace, pace against what is left, spend time series,
per-product breakdowns sorted largest first, the top-N table, alert tiles per workspace
with runbook links and "rules not loaded", alert annotations and the exporter health
row exist with the queries that answer their questions; thresholds sit where the alerts
fire; the docs name every panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest
import yaml
from contract import ALERT_NAMES, CONTRACT_METRICS, HISTOGRAMS, SERIES_NAMES
from dashboard_queries import dashboard_queries, iter_panels
from dashboards_support import (
    DASHBOARDS,
    DATASOURCE_REF,
    OVERVIEW_PATH,
    ROOT,
    dashboard_params,
    data_panels,
    metric_names,
    range_windows,
)

from exporter.config.model import GROUP_BY_VALUES

# Exported by the exporter (README's metric table) though not in the design's table.
DISPLAY_NAMES = "elevenlabs_dimension_info"
# The one series of the project's rules a query may read; only to tell "rules not
# loaded" from "OK", so every use must have a fallback.
RULES_LOADED = "elevenlabs:alert_rules_loaded"
QUERYABLE_METRICS = SERIES_NAMES | {"ALERTS", "up", DISPLAY_NAMES, RULES_LOADED}
RUNBOOK_URL = "https://github.com/elevenlabs-exporter/elevenlabs-exporter/blob/main/docs/runbook.md"


def panel_by_title(dashboard: Mapping[str, Any], title: str) -> dict[str, Any]:
    """The one panel called `title`."""
    matches = [p for p in iter_panels(dashboard) if p.get("title") == title]
    assert len(matches) == 1, f"expected one panel {title!r}, found {len(matches)}"
    return matches[0]


def overview_exprs(title: str) -> list[str]:
    """The query expressions of one overview panel."""
    return [t["expr"] for t in panel_by_title(DASHBOARDS[OVERVIEW_PATH], title)["targets"]]


# --- The metric contract ----------------------------------------------------------------


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


@dashboard_params
def test_queries_use_only_contract_metrics(dashboard: dict[str, Any]) -> None:
    """Queries need only the exporter's metrics, ALERTS and up: no recording rules but
    the rules' marker, and that only in an `or` with a fallback of its own."""
    for query in dashboard_queries(dashboard):
        names = metric_names(query.expr)
        assert names, f"{query.title}: no metric found in {query.expr}"
        assert names <= QUERYABLE_METRICS, f"{query.title}: {names - QUERYABLE_METRICS}"
        if RULES_LOADED in names:
            assert query.title == "Alert state", query.title
            assert query.expr.endswith(f"or (max({RULES_LOADED}) * 0) or vector(-1)")


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


# --- What the overview answers --------------------------------------------------------


def test_overview_has_the_cycle_stats() -> None:
    """Used, allowance, left, share used, share of the cycle elapsed, projection at reset
    and time to reset are stats; the allowance is the budget where set, else the limit."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    allowance = ("elevenlabs_budget_credits", "elevenlabs_subscription_credits_limit")
    expected = {
        "Credits used this cycle": ("elevenlabs_subscription_credits_used",),
        "Cycle credit allowance": allowance,
        "Credits left": (*allowance, "elevenlabs_subscription_credits_used"),
        "Share of allowance used": (*allowance, "elevenlabs_subscription_credits_used"),
        "Share of cycle elapsed": ("cycle_length_seconds", "cycle_reset_timestamp_seconds"),
        "Projected use at reset": ("elevenlabs_window_credits_used", "reset_timestamp"),
        "Projected share of allowance at reset": ("elevenlabs_window_credits_used", *allowance),
        "Time until reset": ("elevenlabs_subscription_cycle_reset_timestamp_seconds",),
    }
    for title, fragments in expected.items():
        panel = panel_by_title(dashboard, title)
        assert panel["type"] == "stat", title
        expr = " ".join(overview_exprs(title))
        for fragment in fragments:
            assert fragment in expr, (title, fragment)
    (allowance_expr, _) = overview_exprs("Cycle credit allowance")
    assert re.search(r"elevenlabs_budget_credits\{[^}]*\} > 0\) or max by", allowance_expr)
    for title in ("Share of allowance used", "Share of cycle elapsed"):
        assert panel_by_title(dashboard, title)["fieldConfig"]["defaults"]["unit"] == "percent"
    assert panel_by_title(dashboard, "Time until reset")["fieldConfig"]["defaults"]["unit"] in (
        "s",
        "dtdurations",
    )


def test_projection_at_reset_reads_the_1d_and_7d_pace() -> None:
    """The projections are used + pace × time to the reset, at the 1d and the 7d pace of
    the window gauges (the paces ElevenLabsCreditsExhaustedBeforeReset reads), never a
    rate of the counter nor a shorter window that follows the time of day."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "projection_window" not in variables
    for title in ("Projected use at reset", "Projected share of allowance at reset"):
        exprs = overview_exprs(title)
        assert [re.findall(r'window="(\w+)"', expr) for expr in exprs] == [["1d"], ["7d"]]
        for expr in exprs:
            assert "rate(" not in expr, title
            assert re.search(
                r"\) \* clamp_min\(max by \(workspace\) \(elevenlabs_subscription_cycle_reset", expr
            )
    cycle = overview_exprs("Cycle use against the allowance")
    assert 'window="1d"' in cycle[2]
    assert 'window="7d"' in cycle[3]


def test_pace_panel_shows_what_the_spend_alerts_see() -> None:
    """Per workspace: the pace over 1h, 6h, 1d and 7d from the window gauges (credits per
    hour), against the paces at which what is left lasts until the reset, 3 days and 7
    days: the critical and warning lines of ElevenLabsCreditBurnRate."""
    panel = panel_by_title(DASHBOARDS[OVERVIEW_PATH], "Pace against what is left")
    assert panel["type"] == "timeseries"
    assert panel["fieldConfig"]["defaults"]["unit"] == "count:credits/h"
    by_ref = {t["refId"]: t["expr"] for t in panel["targets"]}
    for ref, window, seconds in (("A", "1h", 3600), ("B", "6h", 21600), ("C", "1d", 86400)):
        assert re.fullmatch(
            r"sum by \(workspace\) \(max by \(workspace, product_type\) "
            rf'\(elevenlabs_window_credits_used\{{[^}}]*,window="{window}"\}}\)\) '
            rf"/ {seconds} \* 3600",
            by_ref[ref],
        ), by_ref[ref]
    assert 'window="7d"' in by_ref["D"]
    left = "clamp_min((max by (workspace) (elevenlabs_budget_credits"
    assert all(by_ref[ref].startswith(left) for ref in "EFG")
    assert "elevenlabs_subscription_cycle_reset_timestamp_seconds" in by_ref["E"]
    assert by_ref["F"].endswith(f"/ {3 * 86400} * 3600")
    assert by_ref["G"].endswith(f"/ {7 * 86400} * 3600")
    for expr in by_ref.values():
        assert "rate(" not in expr
        assert "elevenlabs_credits_used_total" not in expr


def test_overview_time_series_answer_spend_questions() -> None:
    """Per-product spend (stacked) and cycle use against the allowance with projections."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    per_minute = panel_by_title(dashboard, "Credits per minute by product")
    assert per_minute["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    (expr,) = overview_exprs("Credits per minute by product")
    assert "by (product_type)" in expr
    assert "[$__rate_interval]" in expr
    assert "* 60" in expr

    cycle = " ".join(overview_exprs("Cycle use against the allowance"))
    assert "elevenlabs_cycle_credits_used" in cycle
    assert "elevenlabs_budget_credits" in cycle
    assert "elevenlabs_subscription_credits_limit" in cycle
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


@dashboard_params
def test_bar_gauges_sort_in_the_query_not_with_a_transformation(dashboard: dict[str, Any]) -> None:
    """Grafana draws a bar gauge's bars in the order of its series, and a sortBy
    transformation cannot reorder series: each bar gauge's one query is an instant
    sort_desc(...), and no panel relies on sortBy."""
    gauges = [p for p in iter_panels(dashboard) if p["type"] == "bargauge"]
    assert gauges
    for panel in gauges:
        (target,) = panel["targets"]
        assert target["expr"].startswith("sort_desc("), panel["title"]
        assert target["expr"].endswith(")"), panel["title"]
        assert target["instant"], panel["title"]
    for panel in iter_panels(dashboard):
        ids = [t["id"] for t in panel.get("transformations", [])]
        assert "sortBy" not in ids, panel["title"]


def test_top_table_breaks_this_cycle_down_by_product_or_any_dimension() -> None:
    """A table of the top $top_n values of $breakdown by credits this cycle, with their
    share of the total and display names joined from elevenlabs_dimension_info; the
    variable offers product_type and every dimension a workspace may group by."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    panel = panel_by_title(dashboard, "Top ${top_n} by ${breakdown} this cycle")
    assert panel["type"] == "table"
    credits, share = panel["targets"]
    for target in (credits, share):
        assert target["instant"]
        assert not target["range"]
        assert target["format"] == "table"
        assert "topk($top_n, sum by ($breakdown) (elevenlabs_cycle_credits_used{" in target["expr"]
        assert '$breakdown!=""' in target["expr"]
    assert "group_left (name)" in credits["expr"]
    assert (
        'elevenlabs_dimension_info{job=~"$job",workspace=~"$workspace",dimension="$breakdown"}'
        in credits["expr"]
    )
    assert credits["expr"].endswith(
        "or on ($breakdown) topk($top_n, sum by ($breakdown) "
        '(elevenlabs_cycle_credits_used{job=~"$job",workspace=~"$workspace",'
        'product_type=~"$product_type",$breakdown!=""}))'
    ), "values without a display name must stay"
    assert share["expr"].startswith("100 * topk($top_n,")
    assert "/ scalar(sum(elevenlabs_cycle_credits_used{" in share["expr"]
    transformations = [t["id"] for t in panel["transformations"]]
    assert transformations == ["merge", "organize"]
    renamed = panel["transformations"][1]["options"]["renameByName"]
    assert renamed["Value #A"] == "Credits"
    assert renamed["Value #B"] == "Share of total"
    assert panel["options"]["sortBy"] == [{"desc": True, "displayName": "Credits"}]

    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    breakdown = variables["breakdown"]
    values = breakdown["query"].split(",")
    assert values[0] == "product_type" == breakdown["current"]["value"]
    assert set(values) == GROUP_BY_VALUES
    assert variables["top_n"]["current"]["value"] in variables["top_n"]["query"].split(",")


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


def test_alert_state_follows_the_workspace_and_says_rules_not_loaded() -> None:
    """Each tile reads the alert's ALERTS of the selected workspaces (and alerts without a
    workspace), 2 firing, 1 pending, 0 OK where the rules' marker exists, else -1, which
    reads "Rules not loaded", never "OK"."""
    panel = panel_by_title(DASHBOARDS[OVERVIEW_PATH], "Alert state")
    for target in panel["targets"]:
        name = target["legendFormat"]
        selector = f'ALERTS{{alertname="{name}",alertstate="%s",workspace=~"$workspace|"}}'
        assert target["expr"] == (
            f"(max({selector % 'firing'}) * 2) or (max({selector % 'pending'})) "
            f"or (max({RULES_LOADED}) * 0) or vector(-1)"
        )
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    texts = {value: option["text"] for value, option in mapping["options"].items()}
    assert texts == {"-1": "Rules not loaded", "0": "OK", "1": "Pending", "2": "Firing"}
    assert "rules not loaded" in panel["description"].lower()


def test_overview_annotates_firing_elevenlabs_alerts() -> None:
    """Firing ElevenLabs alerts show as annotations on every time series panel."""
    annotations = DASHBOARDS[OVERVIEW_PATH]["annotations"]["list"]
    (alerts,) = [a for a in annotations if "ALERTS" in a.get("expr", "")]
    assert alerts["enable"] is True
    assert alerts["datasource"] == DATASOURCE_REF
    assert 'alertname=~"ElevenLabs.*"' in alerts["expr"]
    assert 'alertstate="firing"' in alerts["expr"]
    assert 'workspace=~"$workspace|"' in alerts["expr"]


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
    """The runway stat turns orange under 7 days and red under 3 (the burn-rate alert's
    warning and critical runways); the quota stat turns at 90% and 98%; the stale line
    sits at 15 minutes. No v1 burn-rate multiples (3, 6, 14.4 × even spend) are left."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]

    def steps(title: str) -> list[float]:
        defaults = panel_by_title(dashboard, title)["fieldConfig"]["defaults"]
        return [s["value"] for s in defaults["thresholds"]["steps"] if s["value"] is not None]

    assert steps("Runway at each pace") == [3 * 86400, 7 * 86400]
    assert steps("Share of allowance used") == [90, 98]
    assert steps("Age of last successful poll") == [900]
    text = json.dumps(dashboard)
    for v1 in ("14.4", "even spend", "Burn rate (multiple"):
        assert v1 not in text


def test_dashboard_thresholds_are_the_rules_thresholds() -> None:
    """Where the shipped rules state their thresholds (elevenlabs:alert_threshold), the
    dashboard's runway lines and quota colours are the same numbers."""
    thresholds = rule_thresholds()
    if not thresholds:
        pytest.skip("the shipped rules do not state elevenlabs:alert_threshold (v1 rules)")
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    pace = {
        t["refId"]: t["expr"]
        for t in panel_by_title(dashboard, "Pace against what is left")["targets"]
    }
    assert pace["F"].endswith(f"/ {thresholds['burn_rate_critical_runway_seconds']:.0f} * 3600")
    assert pace["G"].endswith(f"/ {thresholds['burn_rate_warning_runway_seconds']:.0f} * 3600")
    defaults = panel_by_title(dashboard, "Share of allowance used")["fieldConfig"]["defaults"]
    steps = [s["value"] for s in defaults["thresholds"]["steps"] if s["value"] is not None]
    assert steps == [
        pytest.approx(100 * thresholds["quota_warning_ratio"]),
        pytest.approx(100 * thresholds["quota_critical_ratio"]),
    ]


def rule_thresholds() -> dict[str, float]:
    """The thresholds the rule files record as elevenlabs:alert_threshold, by name."""
    found: dict[str, float] = {}
    for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if rule.get("record") == "elevenlabs:alert_threshold":
                    for value, name in re.findall(
                        r'vector\(([\d.e+]+)\), "threshold", "(\w+)"', rule["expr"]
                    ):
                        found[name] = float(value)
    return found


def test_dashboards_doc_describes_every_overview_panel() -> None:
    """docs/dashboards.md names every panel of the overview."""
    section = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    missing = [
        p["title"] for p in data_panels(DASHBOARDS[OVERVIEW_PATH]) if p["title"] not in section
    ]
    assert missing == []
