#!/usr/bin/env python3
"""Write the Grafana dashboards in ``grafana/dashboards/`` from the definitions below.

The JSON files are what users import and what the tests check; this script is how they
are made, so that ids, grid positions, datasource references and selectors stay
consistent. Each dashboard row is one function that adds its panels, in order and with
their sizes, to a :class:`Grid`, which works out the positions. Edit the definitions
here, then run (standard library only)::

    python grafana/generate.py           # rewrite grafana/dashboards/*.json
    python grafana/generate.py --check   # exit 1 if a committed file is out of date

Every query uses only the metrics of the exporter's contract (plus ``ALERTS`` and
``up``), never recording rules, so the dashboard works without the project's rules.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Json = dict[str, Any]

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"

REPO_URL = "https://github.com/elevenlabs-exporter/elevenlabs-exporter"
RUNBOOK_URL = f"{REPO_URL}/blob/main/docs/runbook.md"

# The alert names of the contract, in the order the alert-state panel shows them.
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

# Burn-rate multiples of even spend at which the burn-rate alert fires (warning 3x over
# 1d and 2h, critical 6x over 6h and 30m or 14.4x over 1h and 5m).
BURN_RATE_THRESHOLDS = ((3.0, "yellow"), (6.0, "orange"), (14.4, "red"))
# Share of the cycle limit at which the quota alert warns and pages.
QUOTA_THRESHOLDS = ((90.0, "orange"), (98.0, "red"))
# Age of the last successful poll at which the usage data counts as stale (15m).
STALE_AFTER_SECONDS = 900

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}

# Selectors. `job` and `workspace` select the exporter and the workspaces;
# `product_type` narrows the per-product panels.
JOB = 'job=~"$job"'
WS = f'{JOB},workspace=~"$workspace"'
PROD = f'{WS},product_type=~"$product_type"'

# Per-workspace values of the subscription. Each workspace is polled by one exporter,
# `max by (workspace)` also collapses duplicates if two exporters ever poll the same one.
USED = f"max by (workspace) (elevenlabs_subscription_credits_used{{{WS}}})"
LIMIT = f"max by (workspace) (elevenlabs_subscription_credits_limit{{{WS}}})"
# The limit where it can divide: a limit of 0 yields no ratio instead of +Inf.
DIVISOR_LIMIT = f"max by (workspace) (elevenlabs_subscription_credits_limit{{{WS}}} > 0)"
RESET = f"max by (workspace) (elevenlabs_subscription_cycle_reset_timestamp_seconds{{{WS}}})"
CYCLE_LENGTH = f"max by (workspace) (elevenlabs_subscription_cycle_length_seconds{{{WS}}} > 0)"
# Even spend: the limit spread evenly over the cycle, in credits per second.
EVEN_SPEND = f"({DIVISOR_LIMIT} / {CYCLE_LENGTH})"
SECONDS_TO_RESET = f"clamp_min({RESET} - time(), 0)"


def spend_rate(window: str, selector: str = WS, by: str = "workspace") -> str:
    """Credits per second over `window`, summed by `by`."""
    return f"sum by ({by}) (rate(elevenlabs_credits_used_total{{{selector}}}[{window}]))"


# Spend rate per workspace for projections; a workspace without any usage series
# projects at 0 more credits instead of vanishing.
PROJECTION_RATE = f"({spend_rate('$projection_window')} or {USED} * 0)"
PROJECTED = f"{USED} + {PROJECTION_RATE} * {SECONDS_TO_RESET}"


class Grid:
    """Places panels on Grafana's 24-column grid and hands out panel ids.

    Grafana stores absolute positions. Stated by hand, every panel added or resized
    shifts the `y` of everything below it; here positions follow from the order and the
    sizes: panels go left to right, a panel that does not fit starts a new line below
    the tallest panel of the current one, and a row header starts a line of its own.
    """

    COLUMNS = 24

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._line_height = 0

    def row(self, title: str) -> None:
        """Start an expanded row called `title` below everything placed so far."""
        self._new_line()
        self._place(row_header(title), self.COLUMNS, 1)

    def add(self, *panels: Json, w: int, h: int) -> None:
        """Place each of `panels`, `w` columns wide and `h` high, after the previous one."""
        for panel in panels:
            if self._x + w > self.COLUMNS:
                self._new_line()
            self._place(panel, w, h)

    def _new_line(self) -> None:
        self._x, self._y, self._line_height = 0, self._y + self._line_height, 0

    def _place(self, panel: Json, w: int, h: int) -> None:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._line_height = max(self._line_height, h)


def target(
    expr: str,
    legend: str,
    ref_id: str = "A",
    *,
    instant: bool = False,
    table: bool = False,
) -> Json:
    """One Prometheus query of a panel."""
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
    return result


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


def row_header(title: str) -> Json:
    """An expanded row header."""
    return {"collapsed": False, "panels": [], "title": title, "type": "row"}


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
    return {
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
    return {
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


def bargauge(title: str, description: str, targets: Sequence[Json], *, unit: str) -> Json:
    """A horizontal bar gauge with one bar per series, largest first."""
    return {
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
        "targets": list(targets),
        "title": title,
        "transformations": [
            {"id": "sortBy", "options": {"sort": [{"desc": True, "field": "Value"}]}}
        ],
        "type": "bargauge",
    }


def override(ref_id: str, *properties: tuple[str, Any]) -> Json:
    """Field properties for the series of one query."""
    return {
        "matcher": {"id": "byFrameRefID", "options": ref_id},
        "properties": [{"id": key, "value": value} for key, value in properties],
    }


DASHED = ("custom.lineStyle", {"dash": [10, 10], "fill": "dash"})
UNSTACKED = ("custom.stacking", {"group": "lines", "mode": "none"})
NO_FILL = ("custom.fillOpacity", 0)


def fixed_color(color: str) -> tuple[str, Json]:
    """A fixed series colour."""
    return ("color", {"fixedColor": color, "mode": "fixed"})


UP_MAPPINGS = value_mappings({"0": ("Failing", "red"), "1": ("OK", "green")})


def alert_state_expr(alertname: str) -> str:
    """2 while `alertname` fires, 1 while it is pending, 0 otherwise."""
    firing = f'max(ALERTS{{alertname="{alertname}",alertstate="firing"}}) * 2'
    pending = f'max(ALERTS{{alertname="{alertname}",alertstate="pending"}})'
    return f"({firing}) or ({pending}) or vector(0)"


def runbook_link(alertname: str) -> str:
    """The runbook section of an alert."""
    return f"{RUNBOOK_URL}#{alertname.lower()}"


def billing_cycle_row(grid: Grid) -> None:
    """Where the cycle stands: the numbers ElevenLabs bills by, and where they are headed."""
    grid.row("This billing cycle")
    grid.add(
        stat(
            "Credits used this cycle",
            "Credits used since the current billing cycle began, as ElevenLabs' subscription "
            "reports it (character_count): the number ElevenLabs bills against the limit. "
            "One value per selected workspace, from the exporter's last poll.",
            [target(USED, "{{workspace}}")],
            unit="locale",
            decimals=0,
        ),
        stat(
            "Cycle credit limit",
            "Credits the plan allows per billing cycle (character_limit), per workspace.",
            [target(LIMIT, "{{workspace}}")],
            unit="locale",
            decimals=0,
        ),
        stat(
            "Share of limit used",
            "Credits used this cycle as a share of the cycle limit. Orange from 90% and red "
            "from 98%, where ElevenLabsCreditQuotaNearlyExhausted warns and pages.",
            [target(f"100 * {USED} / {DIVISOR_LIMIT}", "{{workspace}}")],
            unit="percent",
            decimals=1,
            color_thresholds=thresholds("green", *QUOTA_THRESHOLDS),
        ),
        stat(
            "Credits remaining",
            "Credits left until the cycle limit (limit minus used, never below 0).",
            [target(f"clamp_min({LIMIT} - {USED}, 0)", "{{workspace}}")],
            unit="locale",
            decimals=0,
        ),
        stat(
            "Projected use at reset",
            "Credits this cycle will have used at the next reset if spending continues at "
            "the average rate of the last $projection_window (the 'Projection based on' "
            "variable): used so far plus that rate times the time left.",
            [target(PROJECTED, "{{workspace}}")],
            unit="locale",
            decimals=0,
        ),
        stat(
            "Projected share of limit at reset",
            "The projected use at reset as a share of the cycle limit; above 100% the credits "
            "run out before the reset at the last $projection_window's average rate.",
            [target(f"100 * ({PROJECTED}) / {DIVISOR_LIMIT}", "{{workspace}}")],
            unit="percent",
            decimals=0,
            color_thresholds=thresholds("green", (80.0, "orange"), (100.0, "red")),
        ),
        stat(
            "Time until reset",
            "Time left until the credit counter of the billing cycle resets "
            "(next_character_count_reset_unix).",
            [target(SECONDS_TO_RESET, "{{workspace}}")],
            unit="dtdurations",
            decimals=2,
            graph=False,
        ),
        plan_stat(),
        w=3,
        h=4,
    )


def plan_stat() -> Json:
    """The plan's tier and status as text, since they explain the limit beside it."""
    return stat(
        "Plan",
        "The subscription tier and its status, per workspace (elevenlabs_subscription_info).",
        [
            target(
                "max by (workspace, tier, status, billing_period) "
                f"(elevenlabs_subscription_info{{{WS}}})",
                "{{tier}} ({{status}}, {{billing_period}})",
            )
        ],
        unit="none",
        decimals=0,
        text_mode="name",
        graph=False,
    )


def spend_row(grid: Grid) -> None:
    """How fast the credits go, by product and against even spend, and the cycle so far."""
    grid.row("Spend over time")
    grid.add(
        timeseries(
            "Credits per minute by product",
            "Spend rate per product, stacked: credits per minute over $__rate_interval, summed "
            "over the selected workspaces. Usage is counted when the exporter first sees it, "
            "so late or revised usage data shows up at the time it arrived.",
            [
                target(
                    f"{spend_rate('$__rate_interval', PROD, 'product_type')} * 60",
                    "{{product_type}}",
                )
            ],
            unit="count:credits/min",
            decimals=2,
            stacked=True,
            fill=30,
        ),
        timeseries(
            "Spend rate against even spend",
            "Credits per minute spent (over $__rate_interval and averaged over the last hour) "
            "against even spend: the cycle limit spread evenly over the cycle. Spending above "
            "the dashed line for long runs out of credits before the reset.",
            [
                target(f"{spend_rate('$__rate_interval')} * 60", "{{workspace}} spend"),
                target(f"{spend_rate('1h')} * 60", "{{workspace}} spend, 1h average", "B"),
                target(f"{EVEN_SPEND} * 60", "{{workspace}} even spend", "C"),
            ],
            unit="count:credits/min",
            decimals=2,
            overrides=[override("C", DASHED, NO_FILL, fixed_color("red"))],
        ),
        timeseries(
            "Burn rate (multiple of even spend)",
            "How many times faster than even spend the credits go, averaged over 5m, 1h, 6h "
            "and 1d. 1 spends exactly the limit by the reset. The dashed lines are where "
            "ElevenLabsCreditBurnRate fires: 3 (warning, over 1d and 2h), 6 (over 6h and 30m) "
            "and 14.4 (over 1h and 5m).",
            [
                target(f"{spend_rate(window)} / {EVEN_SPEND}", f"{{{{workspace}}}} {window}", ref)
                for ref, window in (("A", "5m"), ("B", "1h"), ("C", "6h"), ("D", "1d"))
            ],
            unit="suffix:×",
            decimals=1,
            color_thresholds=thresholds("transparent", *BURN_RATE_THRESHOLDS),
        ),
        w=8,
        h=8,
    )
    grid.add(cycle_use_panel(), credits_per_bucket_panel(), w=12, h=9)


def cycle_use_panel() -> Json:
    """The cycle's use by product against the limit and the projection, on one axis, so
    the gap between projection and limit reads as the margin left."""
    return timeseries(
        "Cycle use against the limit",
        "Credits used since the cycle began, stacked by product, against the cycle limit "
        "(red) and the use projected at the reset at the last $projection_window's "
        "average rate (dashed). Summed over the selected workspaces; the projection "
        "covers all products.",
        [
            target(
                f"sum by (product_type) (elevenlabs_cycle_credits_used{{{PROD}}})",
                "{{product_type}}",
            ),
            target(f"sum({LIMIT})", "limit", "B"),
            target(f"sum({PROJECTED})", "projected at reset", "C"),
        ],
        unit="locale",
        decimals=0,
        stacked=True,
        fill=30,
        overrides=[
            override("B", UNSTACKED, NO_FILL, fixed_color("red"), ("custom.lineWidth", 2)),
            override("C", UNSTACKED, NO_FILL, DASHED, fixed_color("purple")),
        ],
    )


def credits_per_bucket_panel() -> Json:
    """Bars of the credits per hour, day or week; the panel's min interval is the chosen
    bucket, so `$__interval` (and so each bar) is never shorter than one bucket."""
    panel = timeseries(
        "Credits per ${usage_bucket} by product",
        "Credits used in each ${usage_bucket} (the 'Usage per' variable: hour, day or week), "
        "stacked by product and summed over the selected workspaces. Each bar covers the "
        "interval that ends at its time; buckets are aligned to UTC.",
        [
            target(
                "sum by (product_type) "
                f"(increase(elevenlabs_credits_used_total{{{PROD}}}[$__interval]))",
                "{{product_type}}",
            )
        ],
        unit="locale",
        decimals=0,
        stacked=True,
        bars=True,
        legend_calcs=("sum",),
    )
    panel["interval"] = "$usage_bucket"
    return panel


def breakdown_row(grid: Grid) -> None:
    """Which products the credits went to, today, this week and this cycle."""
    grid.row("Where the credits go")
    today = bargauge(
        "Today so far by product",
        "Credits used per product since midnight (dashboard time zone), summed over the "
        "selected workspaces. Counts what Prometheus saw: usage before Prometheus first "
        "scraped the exporter is not included.",
        [
            target(
                "sum by (product_type) "
                f"(increase(elevenlabs_credits_used_total{{{PROD}}}[$__range]))",
                "{{product_type}}",
                instant=True,
            )
        ],
        unit="locale",
    )
    # The panel's own time range: from midnight, whatever range the dashboard shows.
    today["timeFrom"] = "now/d"
    week = bargauge(
        "Last 7 days by product",
        "Credits used per product in the 7 days before the end of the time range, summed "
        "over the selected workspaces (counts what Prometheus saw).",
        [
            target(
                f"sum by (product_type) (increase(elevenlabs_credits_used_total{{{PROD}}}[7d]))",
                "{{product_type}}",
                instant=True,
            )
        ],
        unit="locale",
    )
    cycle = bargauge(
        "This cycle by product",
        "Credits used per product since the current billing cycle began, from the "
        "exporter's usage ledger, summed over the selected workspaces.",
        [
            target(
                f"sum by (product_type) (elevenlabs_cycle_credits_used{{{PROD}}})",
                "{{product_type}}",
                instant=True,
            )
        ],
        unit="locale",
    )
    grid.add(today, week, cycle, w=8, h=8)


def alerts_row(grid: Grid) -> None:
    """What Prometheus is alerting on, and the subscription's other limits."""
    grid.row("Alerts and subscription")
    grid.add(alert_state_panel(), w=16, h=6)
    grid.add(
        slots_stat(
            "Voice slots",
            "Voice slots in use and the plan's limit, per workspace.",
            "elevenlabs_subscription_voice_slots",
        ),
        slots_stat(
            "Professional voice slots",
            "Professional voice clone slots in use and the plan's limit, per workspace.",
            "elevenlabs_subscription_professional_voice_slots",
        ),
        w=4,
        h=6,
    )


def alert_state_panel() -> Json:
    """One tile per contract alert, each linking to its runbook section, so the way from
    "firing" to "what to do" is one click."""
    ref_ids = [chr(ord("A") + index) for index in range(len(ALERT_NAMES))]
    panel = stat(
        "Alert state",
        "State of each ElevenLabs alert in Prometheus (ALERTS), across all workspaces: OK, "
        "Pending or Firing. Click a tile for the alert's runbook. Firing alerts also appear "
        "as red annotations on the time series. Shows OK when the project's alert rules "
        "are not loaded into this Prometheus.",
        [
            target(alert_state_expr(name), name, ref)
            for ref, name in zip(ref_ids, ALERT_NAMES, strict=True)
        ],
        unit="none",
        decimals=0,
        color_thresholds=thresholds("green", (1.0, "yellow"), (2.0, "red")),
        mappings=value_mappings(
            {"0": ("OK", "green"), "1": ("Pending", "yellow"), "2": ("Firing", "red")}
        ),
        text_mode="value_and_name",
        graph=False,
        color_mode="background",
    )
    panel["fieldConfig"]["overrides"] = [
        override(
            ref,
            (
                "links",
                [{"targetBlank": True, "title": f"Runbook: {name}", "url": runbook_link(name)}],
            ),
        )
        for ref, name in zip(ref_ids, ALERT_NAMES, strict=True)
    ]
    return panel


def slots_stat(title: str, description: str, metric: str) -> Json:
    """Slots of a kind in use beside the plan's limit; `metric` lacks `_used`/`_limit`."""
    return stat(
        title,
        description,
        [
            target(f"max by (workspace) ({metric}_used{{{WS}}})", "{{workspace}} used"),
            target(f"max by (workspace) ({metric}_limit{{{WS}}})", "{{workspace}} limit", "B"),
        ],
        unit="none",
        decimals=0,
        text_mode="value_and_name",
        graph=False,
    )


def health_row(grid: Grid) -> None:
    """Whether the numbers above can be trusted: polling, scraping, errors and latency."""
    grid.row("Exporter health")
    grid.add(
        up_stat(
            "ElevenLabs polling",
            "Whether the last poll of every ElevenLabs endpoint succeeded, per workspace "
            "(elevenlabs_up). Failing for 10 minutes fires ElevenLabsAPIPollingFailing.",
            target(f"min by (workspace) (elevenlabs_up{{{WS}}})", "{{workspace}}"),
        ),
        up_stat(
            "Exporter scrape",
            "Whether Prometheus can scrape the exporter, per instance (up). Failing for 5 "
            "minutes fires ElevenLabsExporterDown.",
            target(f"min by (instance) (up{{{JOB}}})", "{{instance}}"),
        ),
        stat(
            "Exporter version",
            "The version of the running exporter (elevenlabs_exporter_build_info).",
            [
                target(
                    f"max by (version) (elevenlabs_exporter_build_info{{{JOB}}})",
                    "{{version}}",
                )
            ],
            unit="none",
            decimals=0,
            text_mode="name",
            graph=False,
        ),
        stat(
            "Credits revised downward",
            "Credits the ElevenLabs usage data later revised away within the time range. "
            "The exporter never lowers its counter for them; it counts them here. Usually 0.",
            [
                target(
                    f"sum(increase(elevenlabs_credits_downward_revision_total{{{WS}}}[$__range]))",
                    "revised downward",
                    instant=True,
                )
            ],
            unit="locale",
            decimals=0,
            graph=False,
        ),
        w=6,
        h=4,
    )
    grid.add(*polling_panels(), *api_request_panels(), w=12, h=8)


def up_stat(title: str, description: str, query: Json) -> Json:
    """A red or green tile per series of a 0/1 health query, readable at a glance."""
    return stat(
        title,
        description,
        [query],
        unit="none",
        decimals=0,
        color_thresholds=thresholds("red", (1.0, "green")),
        mappings=UP_MAPPINGS,
        graph=False,
        color_mode="background",
    )


def polling_panels() -> list[Json]:
    """How stale the data is and why polls fail: the first look when an alert fires."""
    return [
        timeseries(
            "Age of last successful poll",
            "Time since the last successful poll of each endpoint, per workspace. It grows "
            "while polls fail; the dashed line at 15 minutes is where "
            "ElevenLabsUsageDataStale fires for the usage endpoint.",
            [
                target(
                    "time() - max by (workspace, endpoint) "
                    f"(elevenlabs_exporter_last_success_timestamp_seconds{{{WS}}} > 0)",
                    "{{workspace}} {{endpoint}}",
                )
            ],
            unit="s",
            decimals=0,
            color_thresholds=thresholds("transparent", (float(STALE_AFTER_SECONDS), "red")),
        ),
        timeseries(
            "Poll errors by reason",
            "Failed polls per minute by reason (auth, permission, rate_limited, server_error, "
            "timeout, network, bad_response, client_error), over all selected workspaces and "
            "endpoints. Any auth or permission error fires ElevenLabsAPIKeyRejected.",
            [
                target(
                    "sum by (reason) "
                    f"(rate(elevenlabs_exporter_poll_errors_total{{{WS}}}[$__rate_interval])) "
                    "* 60",
                    "{{reason}}",
                )
            ],
            unit="count:errors/min",
            decimals=2,
            legend_calcs=("max",),
        ),
    ]


def api_request_panels() -> list[Json]:
    """How the ElevenLabs API answers: slow or refused requests explain failing polls."""
    return [
        timeseries(
            "API request latency",
            "How long the ElevenLabs API took to answer, per endpoint: median and 99th "
            "percentile over $__rate_interval, from the exporter's request histogram.",
            [
                target(
                    f"histogram_quantile({quantile}, sum by (endpoint, le) "
                    "(rate(elevenlabs_exporter_api_request_duration_seconds_bucket"
                    f"{{{WS}}}[$__rate_interval])))",
                    f"{{{{endpoint}}}} p{label}",
                    ref_id,
                )
                for ref_id, quantile, label in (("A", "0.5", "50"), ("B", "0.99", "99"))
            ],
            unit="s",
            decimals=2,
        ),
        timeseries(
            "API requests by status code",
            "Requests per minute the exporter sent to the ElevenLabs API, by endpoint and "
            'HTTP status code (code="error" when no HTTP answer arrived).',
            [
                target(
                    "sum by (endpoint, code) "
                    f"(rate(elevenlabs_exporter_api_requests_total{{{WS}}}[$__rate_interval])) "
                    "* 60",
                    "{{endpoint}} {{code}}",
                )
            ],
            unit="count:requests/min",
            decimals=2,
        ),
    ]


# The overview's rows, top to bottom.
OVERVIEW_ROWS = (billing_cycle_row, spend_row, breakdown_row, alerts_row, health_row)


def credits_overview() -> Json:
    """The overview dashboard: spend, projection, per-product use, alerts, exporter health."""
    grid = Grid()
    for add_row in OVERVIEW_ROWS:
        add_row(grid)
    return {
        **import_requirements(),
        "annotations": {"list": [firing_alerts_annotation()]},
        "description": "ElevenLabs credit usage from elevenlabs-exporter: spend by product "
        "over time, use against the plan's limit with a projection to the reset, burn rate, "
        "alert state and the exporter's own health.",
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
            {"id": "timeseries", "name": "Time series", "type": "panel", "version": ""},
        ],
    }


def firing_alerts_annotation() -> Json:
    """Firing ElevenLabs alerts marked on every time series, to line spend up with pages."""
    return {
        "datasource": DATASOURCE,
        "enable": True,
        "expr": 'ALERTS{alertname=~"ElevenLabs.*",alertstate="firing"}',
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
    """A fixed list of choices."""
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


def variables() -> list[Json]:
    """The dashboard's variables, in the order Grafana shows them."""
    return [
        {
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
        },
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
            "projection_window",
            "Projection based on",
            ("1h", "6h", "1d", "7d"),
            "6h",
            "The window whose average spend rate projects the use at the reset.",
        ),
        custom_variable(
            "usage_bucket",
            "Usage per",
            ("1h", "1d", "7d"),
            "1d",
            "The bucket size of the 'Credits per ... by product' bars.",
        ),
    ]


DASHBOARDS = {"elevenlabs-credits.json": credits_overview}


def render(dashboard: Json) -> str:
    """The JSON text as committed: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with --check, compare) every dashboard file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DASHBOARD_DIR, help="directory to write")
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    args = parser.parse_args(argv)
    stale = []
    for filename, build in DASHBOARDS.items():
        path = args.output / filename
        text = render(build())
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{path} is out of date; run python grafana/generate.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
