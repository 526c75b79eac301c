"""The simulator's answers to the two usage-table endpoints (credits and cost).

The real tables are column-oriented: ``columns``, ``column_types`` and
``column_units`` in parallel, rows as lists, credits as strings, ISO timestamps,
display-name columns appended for some id columns, and only buckets with usage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from exporter.simulator.model import COST_PER_CREDIT, DIMENSIONS, DISPLAY_COLUMNS

if TYPE_CHECKING:
    from exporter.simulator.model import SimState


def usage_answer(
    state: SimState, request: dict[str, Any], *, cost: bool = False
) -> tuple[int, dict[str, Any]]:
    """Answer a usage query like the real endpoint (status, body).

    ``cost`` answers the cost-billed sibling endpoint: whole UTC days or weeks only,
    ``total_cost`` in USD and ``total_charge_count``.
    """

    def invalid(field: str, message: str) -> tuple[int, dict[str, Any]]:
        return 422, {"detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}]}

    try:
        start_ms, end_ms = int(request["start_time"]), int(request["end_time"])
        interval = int(request.get("interval_seconds") or (0 if cost else 60))
    except (KeyError, TypeError, ValueError):
        return invalid("start_time", "field required")
    group_by = list(request.get("group_by") or [])
    unknown = [g for g in group_by if g != "product_type" and g not in DIMENSIONS]
    if unknown:
        return invalid("group_by", f"not simulated: {unknown}")
    if cost and interval not in (86400, 604800):
        return invalid("interval_seconds", "must be 86400 or 604800")
    if interval < 60 or interval % 60 or start_ms >= end_ms or start_ms < 1577836800000:
        return invalid("interval_seconds", "invalid range or interval")
    filters = request.get("filters") or []
    for item in filters:
        if (
            not isinstance(item, dict)
            or item.get("operation") not in ("in", "not_in", "eq", "neq")
            or not isinstance(item.get("values"), list)
        ):
            return invalid("filters", "invalid filter")
    now = state.now()
    start, end = start_ms // 1000, end_ms // 1000
    # Filters may name columns that are not grouped: group by them too, then fold.
    filter_columns = [f["column"] for f in filters if f["column"] not in group_by]
    unknown = [c for c in filter_columns if c != "product_type" and c not in DIMENSIONS]
    if unknown:
        return invalid("filters", f"not simulated: {unknown}")
    columns_used = group_by + filter_columns
    rows: list[list[Any]] = []
    bucket = start - start % interval
    while bucket < end:
        sums: dict[tuple[str, ...], float] = {}
        for key, value in state.breakdown(
            max(bucket, start), min(bucket + interval, end), columns_used, now
        ).items():
            values = dict(zip(columns_used, key, strict=True))
            if all(_matches(values[f["column"]], f) for f in filters):
                grouped = tuple(values[g] for g in group_by)
                sums[grouped] = sums.get(grouped, 0.0) + value
        for key, value in sums.items():
            if cost:
                rows.append([_iso(bucket), *key, f"{value * COST_PER_CREDIT:.6f}", int(value * 2)])
            else:
                displays = [
                    state.display(g, v)
                    for g, v in zip(group_by, key, strict=True)
                    if g in DISPLAY_COLUMNS
                ]
                rows.append([_iso(bucket), *key, _credits(value), *displays])
        bucket += interval
    if cost:
        return 200, {
            "columns": ["timestamp", *group_by, "total_cost", "total_charge_count"],
            "column_types": ["DateTime", *(["String"] * len(group_by)), "Float", "Int"],
            "column_units": ["s", *([""] * len(group_by)), "usd", None],
            "rows": rows,
        }
    displays = [DISPLAY_COLUMNS[g] for g in group_by if g in DISPLAY_COLUMNS]
    return 200, {
        "columns": ["timestamp", *group_by, "credits_used", *displays],
        "column_types": [
            "DateTime",
            *(["String"] * len(group_by)),
            "Float",
            *(["String"] * len(displays)),
        ],
        "column_units": ["s", *([""] * len(group_by)), "credits", *([""] * len(displays))],
        "rows": rows,
    }


def _matches(value: str, item: dict[str, Any]) -> bool:
    values = [str(v) for v in item["values"]]
    operation = item["operation"]
    if operation in ("in", "eq"):
        return value in values
    return value not in values


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _credits(value: float) -> str:
    return f"{value:.1f}"
