"""What the dashboard test modules share: where the dashboards are and how to read them.

The dashboards are loaded once, at import. The PromQL reader is rough on purpose: enough
to say which metrics a query selects and which range windows it uses, for the rules that
every dashboard query must follow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from dashboard_queries import iter_panels, load_dashboards

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "grafana"
DASHBOARDS = load_dashboards()
OVERVIEW_PATH = GRAFANA / "dashboards" / "elevenlabs-credits.json"

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
# Panels without data or a unit of their own.
LAYOUT_PANEL_TYPES = frozenset({"row", "text"})

dashboard_params = pytest.mark.parametrize(
    "dashboard", list(DASHBOARDS.values()), ids=[path.name for path in DASHBOARDS]
)


def data_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (not rows or text)."""
    return [p for p in iter_panels(dashboard) if p.get("type") not in LAYOUT_PANEL_TYPES]


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
