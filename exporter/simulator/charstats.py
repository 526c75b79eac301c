"""The simulator's ``GET /v1/usage/character-stats`` (deprecated upstream).

Request, latency and concurrency figures per UTC hour, derived from the credits
model so that they move with it.
"""

from __future__ import annotations

import math
from typing import Any

from exporter.simulator.model import COST_PER_CREDIT, SimState, unit

SPEECH_PRODUCTS = ("conversational_ai", "speech_to_text", "dubbing", "voice_changer")
STATS_METRICS = (
    "credits",
    "tts_characters",
    "minutes_used",
    "request_count",
    "ttfb_avg",
    "ttfb_p95",
    "fiat_units_spent",
    "concurrency",
    "concurrency_average",
)
_STATS_INTERVALS = {"hour": 3600, "day": 86400, "week": 604800}


def hour_stats(state: SimState, product: int | None, hour: int, now: float) -> dict[str, float]:
    """Every character-stats metric of one UTC hour (``hour`` = Unix seconds // 3600),
    for one product or, with ``None``, for the whole workspace (key ``All``).

    Requests ≈ credits / 150, TTS characters = the credits of text_to_speech, minutes
    = credits / 1000 for speech products; time to first byte 250-450 ms, slower when
    busier, p95 = 2.2 × average; concurrency 1-8. An hour without requests is all 0.
    """
    start = hour * 3600
    if product is None:
        parts = [hour_stats(state, p, hour, now) for p in range(len(state.products))]
        active = [p for p in parts if p["request_count"]]
        totals = {
            m: sum(p[m] for p in parts)
            for m in ("credits", "tts_characters", "minutes_used", "request_count")
        }
        if not active:
            return {**dict.fromkeys(STATS_METRICS, 0.0), **totals}
        avg = sum(p["ttfb_avg"] * p["request_count"] for p in active) / totals["request_count"]
        peak = max(p["concurrency"] for p in active) + len(active) // 3
        return {
            **totals,
            "ttfb_avg": round(avg, 1),
            "ttfb_p95": round(2.2 * avg, 1),
            "fiat_units_spent": totals["credits"] * COST_PER_CREDIT,
            "concurrency": float(min(8, peak)),
            "concurrency_average": min(8.0, sum(p["concurrency_average"] for p in active)),
        }
    name = state.products[product]
    credits = state.credits(product, start, start + 3600, now)
    requests = float(math.ceil(credits / 150))
    stats = dict.fromkeys(STATS_METRICS, 0.0)
    stats.update(
        credits=credits,
        request_count=requests,
        fiat_units_spent=credits * COST_PER_CREDIT,
        tts_characters=credits if name == "text_to_speech" else 0.0,
        minutes_used=credits / 1000 if name in SPEECH_PRODUCTS else 0.0,
    )
    if requests:
        load = max(0.0, math.sin(math.pi * (hour % 24 - 6) / 16))  # the credits' daily rhythm
        avg = round(250 + 150 * load + 50 * unit(state.seed, product, hour, 211), 1)
        peak = min(8, 1 + int(7 * load * unit(state.seed, product, hour, 212) + 0.5))
        stats.update(
            ttfb_avg=avg,
            ttfb_p95=round(2.2 * avg, 1),
            concurrency=float(peak),
            concurrency_average=round(peak * (0.3 + 0.3 * unit(state.seed, product, hour, 9)), 2),
        )
    return stats


def character_stats(state: SimState, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
    """Answer ``GET /v1/usage/character-stats`` like the real endpoint (status, body).

    Buckets of ``aggregation_bucket_size`` seconds (whole hours), else of
    ``aggregation_interval`` (hour, day, week or cumulative; default day); each time
    is its bucket's start in ms, the first clipped to ``start_unix``. Breakdowns
    ``none`` (key ``All``) and ``product_type`` (products with any non-zero value).
    Over several hours counts add up, latency averages weigh by requests, peaks and
    p95 take the highest hour.
    """

    def arg(name: str, default: str | None = None) -> str | None:
        return query.get(name, [default])[0]

    def invalid(name: str, message: str) -> tuple[int, dict[str, Any]]:
        return 422, {"detail": [{"loc": ["query", name], "msg": message, "type": "value_error"}]}

    try:
        start, end = int(arg("start_unix") or "") // 1000, int(arg("end_unix") or "") // 1000
    except ValueError:
        return invalid("start_unix", "field required")
    metric, breakdown = arg("metric", "credits"), arg("breakdown_type", "none")
    if metric not in STATS_METRICS:
        return invalid("metric", f"unknown metric {metric!r}")
    if breakdown not in ("none", "product_type"):
        return invalid("breakdown_type", f"not simulated: {breakdown!r}")
    interval = arg("aggregation_interval", "day") or "day"
    size_arg = arg("aggregation_bucket_size")
    size = int(size_arg) if size_arg and size_arg.isdigit() else _STATS_INTERVALS.get(interval, 0)
    if interval == "cumulative" and not size_arg:
        size = -(-end // 3600) * 3600  # one bucket from the start to the end
    if size <= 0 or size % 3600 or start >= end:
        return invalid("aggregation_bucket_size", "invalid range or bucket size (whole hours)")
    now = state.now()
    keys: list[int | None] = [None] if breakdown == "none" else list(range(len(state.products)))
    times: list[int] = []
    usage: dict[int | None, list[float]] = {key: [] for key in keys}
    bucket = start - start % size
    while bucket < end:
        first, last = max(bucket, start), min(bucket + size, end)
        times.append(first * 1000)
        for key in keys:
            hours = [hour_stats(state, key, h, now) for h in range(first // 3600, -(-last // 3600))]
            usage[key].append(_combine(metric, hours))
        bucket += size
    named = {
        ("All" if key is None else state.products[key]): values
        for key, values in usage.items()
        if key is None or any(values)
    }
    return 200, {"time": times, "usage": named}


def _combine(metric: str, hours: list[dict[str, float]]) -> float:
    """One bucket's value of a metric from the values of its hours."""
    if len(hours) <= 1:
        return hours[0][metric] if hours else 0.0
    if metric in ("ttfb_p95", "concurrency"):
        return max(h[metric] for h in hours)
    if metric in ("ttfb_avg", "concurrency_average"):
        requests = sum(h["request_count"] for h in hours)
        weighted = sum(h[metric] * h["request_count"] for h in hours)
        return round(weighted / requests, 2) if requests else 0.0
    return sum(h[metric] for h in hours)
