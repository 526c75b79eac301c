"""tests/dashboard_queries.py, the helper that lists a dashboard's queries as Grafana would
send them, pinned on a small sample dashboard and on the overview: variable formats,
min steps and min intervals, collapsed rows, hidden targets and annotations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from dashboard_queries import (
    ALL,
    dashboard_queries,
    iter_panels,
    substitute,
    variable_replacements,
)
from dashboards_support import DASHBOARDS, OVERVIEW_PATH

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
    # Only label_replace()'s backreference "$1" keeps a dollar sign.
    left = [q.expr for q in queries if "$" in q.expr.replace('"$1"', "")]
    assert left == []
    per_bucket = [q for q in queries if q.title == "Credits per ${usage_bucket} by product"]
    assert [q.expr.endswith("[1d]))") for q in per_bucket] == [True]


def test_min_step_and_min_interval_raise_the_intervals_like_grafana() -> None:
    """A query's min step raises $__interval to it and $__rate_interval to $__interval
    plus it and four times it (Grafana takes the min step for the scrape interval); a
    panel's min interval raises both to itself; "$1" is a backreference, no variable."""
    backreference = ' + label_replace(x, "a", "$1", "b", "(.*)")'
    expr = "rate(x[$__rate_interval]) + increase(x[$__interval])" + backreference
    cases = [
        ({}, {}, "rate(x[4m]) + increase(x[1m])"),
        ({}, {"interval": "1m"}, "rate(x[4m]) + increase(x[1m])"),
        ({}, {"interval": "2m"}, "rate(x[8m]) + increase(x[2m])"),
        ({"interval": "1m"}, {"interval": "1m"}, "rate(x[4m]) + increase(x[1m])"),
        ({"interval": "1h"}, {"interval": "1m"}, "rate(x[61m]) + increase(x[1m])"),
        ({"interval": "1h"}, {}, "rate(x[1h]) + increase(x[1h])"),
    ]
    for panel, step, expected in cases:
        dashboard = {
            "uid": "u",
            "panels": [
                {"id": 1, "title": "P", **panel, "targets": [{"refId": "A", "expr": expr, **step}]}
            ],
        }
        (query,) = dashboard_queries(dashboard)
        assert query.expr == expected + backreference, (panel, step)
