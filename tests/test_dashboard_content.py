"""What the overview dashboard shows: its panels, their queries and thresholds.

Every query reads only the metric contract (plus ALERTS and up) and the overview uses
all of it; the cycle stats, spend time series, per-product breakdowns, alert tiles with
runbook links, alert annotations and the exporter health row exist with the queries
that answer their questions; thresholds sit where the alerts fire; the docs name every
panel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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

QUERYABLE_METRICS = SERIES_NAMES | {"ALERTS", "up"}
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


# --- What the overview answers --------------------------------------------------------


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


def test_dashboards_doc_describes_every_overview_panel() -> None:
    """docs/dashboards.md names every panel of the overview."""
    section = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    missing = [
        p["title"] for p in data_panels(DASHBOARDS[OVERVIEW_PATH]) if p["title"] not in section
    ]
    assert missing == []
