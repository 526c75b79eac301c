"""The deprecated ``GET /v1/usage/character-stats``: its query and its answer.

ElevenLabs' usage page shows request counts, time to first byte and concurrency next
to credits; only this endpoint serves them. This module builds a request's query
parameters and reads the answer defensively; polling and exporting live elsewhere.
"""

from __future__ import annotations

import math
from typing import Any

from exporter.api.parse import bad, label_value, to_amount, to_epoch_seconds, to_number

# aggregation_interval names for bucket sizes, sent alongside aggregation_bucket_size.
_INTERVAL_NAMES = {3600: "hour", 86400: "day", 604800: "week"}
Series = dict[str, list[tuple[int, float]]]


def _to_ms(value: Any) -> int:
    """Unix milliseconds from epoch milliseconds, epoch seconds or an ISO string."""
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        return to_epoch_seconds(value) * 1000
    number = to_number(value, "character_stats: time")
    # Milliseconds from 1973 on are larger than any plausible epoch-seconds value.
    return math.floor(number if abs(number) >= 1e11 else number * 1000)


def parse_character_stats(body: Any) -> Series:
    """``{"time": [ms, ...], "usage": {key: [value, ...]}}`` as key -> [(ms, value)].

    Read defensively: times may be milliseconds (as documented), seconds or ISO
    strings; values may be numbers or numeric strings, null is 0; keys (products,
    ``All``, anything new) pass through as they are, an empty key as ``unknown``. A
    list whose length differs from ``time`` cannot be lined up, and a value that is not
    a plausible amount (see :mod:`exporter.api.parse`) rejects the answer: both are
    ``bad_response``.
    """
    if not isinstance(body, dict):
        raise bad("character_stats: expected a JSON object")
    times, usage = body.get("time"), body.get("usage")
    if not isinstance(times, list):
        raise bad("character_stats: missing or malformed 'time'")
    if not isinstance(usage, dict):
        raise bad("character_stats: missing or malformed 'usage'")
    stamps = [_to_ms(t) for t in times]
    series: Series = {}
    for key, values in usage.items():
        name = label_value(key)
        if not isinstance(values, list):
            raise bad(f"character_stats: usage {name!r} is not a list")
        if len(values) != len(stamps):
            raise bad(
                f"character_stats: usage {name!r} has {len(values)} values for {len(stamps)} times"
            )
        if name in series:
            raise bad(f"character_stats: usage key {name!r} appears twice")
        series[name] = [
            (stamp, 0.0 if value is None else to_amount(value, f"character_stats: {name}"))
            for stamp, value in zip(stamps, values, strict=True)
        ]
    return series


def character_stats_query(
    start_ms: int, end_ms: int, metric: str, bucket_seconds: int, breakdown: str
) -> dict[str, str]:
    """The query parameters of one request.

    ``include_workspace_metrics`` is on so that the figures cover the whole workspace,
    like the credits the usage endpoint reports. ``aggregation_bucket_size`` sets the
    bucket; the named ``aggregation_interval`` goes along where one fits.
    """
    query = {
        "start_unix": str(start_ms),
        "end_unix": str(end_ms),
        "metric": metric,
        "breakdown_type": breakdown,
        "include_workspace_metrics": "true",
        "aggregation_bucket_size": str(bucket_seconds),
    }
    if bucket_seconds in _INTERVAL_NAMES:
        query["aggregation_interval"] = _INTERVAL_NAMES[bucket_seconds]
    return query
