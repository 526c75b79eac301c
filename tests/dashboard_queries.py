"""Every query of a Grafana dashboard, with its variables substituted as Grafana would.

Tests use this to run a dashboard's queries against a real Prometheus::

    from dashboard_queries import dashboard_queries, load_dashboards

    for path, dashboard in load_dashboards().items():
        for query in dashboard_queries(dashboard, {"job": "elevenlabs-exporter"}):
            result = prometheus_instant_query(query.expr)  # valid PromQL, no variable left
            if query.must_have_data:
                assert result, f"{path.name}: {query.title} shows no data"

Variable values default to :data:`DEFAULT_VALUES`; a value is a string, a list of strings
(a multi-value selection) or :data:`ALL` (the "All" option, which becomes the variable's
``allValue``, ``.*`` on our dashboards). Custom variables default to their current value
in the dashboard. Grafana's built-in interval variables default to :data:`DEFAULT_BUILTINS`;
a query's "Min step" or its panel's "Min interval" raises them, as Grafana does. ``$1``
(a backreference in ``label_replace()``) is no variable and stays as it is.

``must_have_data`` says whether the query must return at least one series once
Prometheus has scraped the exporter (``--demo`` is enough) a few times within the rate
window. It is true for every panel and variable query except those listed in
:data:`MAY_BE_EMPTY` (empty is a normal state for them), and false for annotations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "grafana" / "dashboards"

# Grafana's value for the "All" option of a variable.
ALL = "$__all"

DEFAULT_VALUES: Mapping[str, str | Sequence[str]] = {
    "job": "elevenlabs-exporter",
    "workspace": ALL,
    "product_type": ALL,
}

DEFAULT_BUILTINS: Mapping[str, str] = {
    "__rate_interval": "4m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# Per dashboard uid, the panels whose queries may legitimately return nothing: a title
# stands for all of a panel's queries, "title [refId]" for one of them. Every other
# series the dashboards read exists from the exporter's first poll (error counters and
# downward revisions at 0), and the alert state falls back to -1 (rules not loaded).
MAY_BE_EMPTY: Mapping[str, frozenset[str]] = {
    # The plan's limit beside a budget: only workspaces with budget_credits have one.
    "elevenlabs-credits": frozenset({"Cycle credit allowance [B]"}),
}

QuerySource = Literal["panel", "variable", "annotation"]


@dataclass(frozen=True)
class DashboardQuery:
    """One query of a dashboard, ready to send to Prometheus."""

    dashboard: str  # the dashboard's uid
    source: QuerySource
    title: str  # panel title, variable name or annotation name
    panel_id: int | None  # None for variable and annotation queries
    ref_id: str  # the target's refId; the variable or annotation name otherwise
    expr: str  # PromQL with every variable substituted
    instant: bool  # Grafana runs it as an instant query (else as a range query)
    must_have_data: bool
    label: str | None = None  # label_values() variables: the label whose values are listed


def load_dashboards(directory: Path = DASHBOARD_DIR) -> dict[Path, dict[str, Any]]:
    """Every ``*.json`` dashboard in `directory`, parsed, by path."""
    return {
        path: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


# A name starting with a digit is never a variable: "$1" in label_replace() is PromQL's
# regex backreference, and Grafana leaves names it does not know as they are.
_VARIABLE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_]\w*)(?::(?P<format>[^}]*))?\}"
    r"|\[\[(?P<bracketed>[A-Za-z_]\w*)\]\]|\$(?P<plain>[A-Za-z_]\w*)"
)
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# Characters Grafana's Prometheus data source escapes in multi-value regex matches.
_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]])")


def duration_seconds(duration: str) -> float:
    """Seconds of a Prometheus duration such as ``1h30m``."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def variable_names(text: str) -> set[str]:
    """Names of the variables `text` refers to (``$x``, ``${x}``, ``${x:fmt}``, ``[[x]]``)."""
    return {
        match.group("braced") or match.group("bracketed") or match.group("plain")
        for match in _VARIABLE.finditer(text)
    }


def _quote_in_string(value: str) -> str:
    """Escape a value for the inside of a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _format_value(variable: Mapping[str, Any], value: str | Sequence[str]) -> str:
    """The text Grafana's Prometheus data source puts in a query for `value`."""
    if value == ALL or (not isinstance(value, str) and list(value) == [ALL]):
        if variable.get("allValue"):
            return str(variable["allValue"])
        raise ValueError(f"variable {variable['name']!r} has no allValue for All")
    if isinstance(value, str):
        value = [value]
    if not (variable.get("multi") or variable.get("includeAll")):
        if len(value) != 1:
            raise ValueError(f"variable {variable['name']!r} takes a single value")
        return _quote_in_string(value[0])
    escaped = [_quote_in_string(_REGEX_SPECIAL.sub(r"\\\1", item)) for item in value]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(text: str, replacements: Mapping[str, str]) -> str:
    """Replace every variable reference in `text`; an unknown name or a format is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bracketed") or match.group("plain")
        if match.group("format"):
            raise ValueError(f"variable format in {match.group(0)!r} is not supported")
        if name not in replacements:
            raise KeyError(f"undefined variable ${name} in {text!r}")
        return replacements[name]

    return _VARIABLE.sub(replace, text)


def variable_replacements(
    dashboard: Mapping[str, Any],
    values: Mapping[str, str | Sequence[str]] | None = None,
    builtins: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The text of every dashboard and built-in variable for the given values."""
    chosen = {**DEFAULT_VALUES, **(values or {})}
    replacements = {**DEFAULT_BUILTINS, **(builtins or {})}
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable["name"]
        if variable["type"] == "datasource":
            continue  # only ever used as a data source uid, never inside a query
        if name in chosen:
            value = chosen[name]
        elif variable["type"] in ("custom", "constant", "interval", "textbox"):
            value = variable.get("current", {}).get("value", variable.get("query", ""))
        else:
            raise KeyError(f"no value given for variable ${name}")
        replacements[name] = _format_value(variable, value)
    return replacements


def format_duration(seconds: float) -> str:
    """A Prometheus duration for `seconds`, in the largest unit that divides it."""
    for unit in ("w", "d", "h", "m", "s"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{int(seconds // _UNIT_SECONDS[unit])}{unit}"
    return f"{int(seconds * 1000)}ms"


def _query_replacements(
    panel: Mapping[str, Any], query: Mapping[str, Any], replacements: dict[str, str]
) -> dict[str, str]:
    """The built-in intervals of one query, raised as Grafana raises them.

    The panel's min interval raises the request's interval. Without a min step (the
    query's ``interval``) that is ``$__interval``, and ``$__rate_interval`` is at least
    that. With one, ``$__interval`` is at least the min step instead, and Grafana takes
    the min step for the scrape interval: ``$__rate_interval`` is at least the request's
    interval plus the min step, and four times the min step.
    """
    step, minimum = query.get("interval"), panel.get("interval")
    if not (step or minimum):
        return replacements
    result = dict(replacements)
    default = duration_seconds(result["__interval"])
    requested = max(default, _seconds(minimum, replacements)) if minimum else default
    rate = max(duration_seconds(result["__rate_interval"]), requested)
    interval = requested
    if step:
        scrape = _seconds(step, replacements)
        interval = max(default, scrape)
        rate = max(rate, requested + scrape, 4 * scrape)
    result["__interval"] = format_duration(interval)
    result["__rate_interval"] = format_duration(rate)
    result["__interval_ms"] = str(int(interval * 1000))
    return result


def _seconds(interval: Any, replacements: Mapping[str, str]) -> float:
    return duration_seconds(substitute(str(interval), replacements))


def _listed(panel: Mapping[str, Any], target: Mapping[str, Any], titles: Collection[str]) -> bool:
    """Whether the panel, or this one of its queries, is among `titles`."""
    title = panel.get("title", "")
    return title in titles or f"{title} [{target.get('refId', '')}]" in titles


_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<selector>.+)\s*,\s*)?(?P<label>\w+)\s*\)\s*$"
)


def _variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query", "")
    if isinstance(query, Mapping):
        query = query.get("query", "")
    return str(query)


def dashboard_queries(
    dashboard: Mapping[str, Any],
    values: Mapping[str, str | Sequence[str]] | None = None,
    builtins: Mapping[str, str] | None = None,
    may_be_empty: Collection[str] | None = None,
) -> list[DashboardQuery]:
    """Every panel, variable and annotation query of `dashboard`, substituted.

    `values` overrides :data:`DEFAULT_VALUES` and `builtins` overrides
    :data:`DEFAULT_BUILTINS` (keys without the ``$``); `may_be_empty` (panel titles, or
    ``"title [refId]"`` for one query) overrides the dashboard's entry in :data:`MAY_BE_EMPTY`. A
    ``label_values(selector, label)`` variable query becomes its series selector (what
    Grafana asks Prometheus for) with `label` naming the label. Hidden targets are left
    out, as Grafana leaves them out.
    """
    uid = str(dashboard.get("uid", ""))
    if may_be_empty is None:
        may_be_empty = MAY_BE_EMPTY.get(uid, frozenset())
    replacements = variable_replacements(dashboard, values, builtins)
    queries: list[DashboardQuery] = []

    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] != "query":
            continue
        query = _variable_query(variable)
        match = _LABEL_VALUES.match(query)
        if match is None:
            raise ValueError(f"variable ${variable['name']}: unsupported query {query!r}")
        selector = match.group("selector") or '{__name__=~".+"}'
        queries.append(
            DashboardQuery(
                dashboard=uid,
                source="variable",
                title=variable["name"],
                panel_id=None,
                ref_id=variable["name"],
                expr=substitute(selector.strip(), replacements),
                instant=True,
                must_have_data=True,
                label=match.group("label"),
            )
        )

    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("hide") or "expr" not in target:
                continue
            query_replacements = _query_replacements(panel, target, replacements)
            queries.append(
                DashboardQuery(
                    dashboard=uid,
                    source="panel",
                    title=panel.get("title", ""),
                    panel_id=panel.get("id"),
                    ref_id=target.get("refId", ""),
                    expr=substitute(target["expr"], query_replacements),
                    instant=bool(target.get("instant")) and not target.get("range"),
                    must_have_data=not _listed(panel, target, may_be_empty),
                )
            )

    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" not in annotation:
            continue  # e.g. Grafana's built-in annotations
        queries.append(
            DashboardQuery(
                dashboard=uid,
                source="annotation",
                title=annotation.get("name", ""),
                panel_id=None,
                ref_id=annotation.get("name", ""),
                expr=substitute(annotation["expr"], replacements),
                instant=False,
                must_have_data=False,
            )
        )
    return queries
