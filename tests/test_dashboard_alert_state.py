"""The alert-state tiles against ALERTS as Prometheus keeps them, with promtool.

Each case loads series into ``promtool test rules`` (no rule files: the ALERTS series and
the rules' marker ``elevenlabs:alert_rules_loaded`` are given as input, as a Prometheus
evaluating the project's rules would hold them) and evaluates the overview's tile
queries, substituted for a workspace selection, expecting 2 (firing), 1 (pending),
0 (OK) or -1 (rules not loaded). Without any input, the real-Prometheus test in
test_dashboard_queries.py shows -1.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from dashboard_queries import ALL, dashboard_queries
from dashboards_support import DASHBOARDS, OVERVIEW_PATH

MARKER = "elevenlabs:alert_rules_loaded"
BURN = "ElevenLabsCreditBurnRate"
DOWN = "ElevenLabsExporterDown"
Selection = str | Sequence[str]


def alerts(name: str, state: str, **labels: str) -> str:
    """An ALERTS series as Prometheus writes it for an alert in `state`."""
    extra = "".join(f',{key}="{value}"' for key, value in labels.items())
    return f'ALERTS{{alertname="{name}",alertstate="{state}"{extra}}}'


def tile(alertname: str, workspace: Selection) -> str:
    """The alert-state tile query of `alertname` for a workspace selection."""
    values = {"workspace": workspace}
    (query,) = [
        q.expr
        for q in dashboard_queries(DASHBOARDS[OVERVIEW_PATH], values)
        if q.title == "Alert state" and q.ref_id and alertname in q.expr
    ]
    return query


# (case, input series, [(alert, workspace selection, expected tile value)])
CASES: list[tuple[str, list[str], list[tuple[str, Selection, int]]]] = [
    ("rules loaded, nothing pending", [MARKER], [(BURN, ALL, 0), (DOWN, "a", 0)]),
    (
        "firing in one workspace shows there only",
        [MARKER, alerts(BURN, "firing", workspace="a", severity="critical")],
        [(BURN, "a", 2), (BURN, "b", 0), (BURN, ["a", "b"], 2), (BURN, ALL, 2)],
    ),
    (
        "pending",
        [MARKER, alerts(BURN, "pending", workspace="a", severity="warning")],
        [(BURN, "a", 1), (BURN, "b", 0)],
    ),
    (
        "firing wins over pending",
        [
            MARKER,
            alerts(BURN, "pending", workspace="a", severity="warning"),
            alerts(BURN, "firing", workspace="a", severity="critical"),
        ],
        [(BURN, "a", 2)],
    ),
    (
        "an alert without a workspace belongs to every selection",
        [MARKER, alerts(DOWN, "firing", job="elevenlabs-exporter", severity="warning")],
        [(DOWN, "a", 2), (DOWN, ["a", "b"], 2), (DOWN, ALL, 2), (BURN, "a", 0)],
    ),
    ("rules not loaded", [], [(BURN, ALL, -1), (DOWN, "a", -1)]),
    (
        "rules without the marker still show what fires",
        [alerts(BURN, "firing", workspace="a", severity="critical")],
        [(BURN, "a", 2), (BURN, "b", -1)],
    ),
]


@pytest.mark.parametrize(
    ("series", "expectations"),
    [(series, expectations) for _, series, expectations in CASES],
    ids=[case for case, _, _ in CASES],
)
def test_alert_state_tiles(
    series: list[str], expectations: list[tuple[str, Selection, int]], tmp_path: Path
) -> None:
    """Each tile shows Firing, Pending or OK for the selected workspaces where the rules'
    marker exists, and "Rules not loaded" (-1) where neither it nor the alert does."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is required"
    tests = {
        "interval": "1m",
        "input_series": [{"series": name, "values": "1x10"} for name in series],
        "promql_expr_test": [
            {
                "expr": tile(alertname, workspace),
                "eval_time": "5m",
                "exp_samples": [{"labels": "{}", "value": expected}],
            }
            for alertname, workspace, expected in expectations
        ],
    }
    path = tmp_path / "alert-state.yml"
    path.write_text(
        yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": [tests]}),
        encoding="utf-8",
    )
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
