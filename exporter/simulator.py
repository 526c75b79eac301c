"""A simulated ElevenLabs API, served over loopback HTTP.

``--demo`` runs it inside the exporter so a newcomer sees real-looking metrics with
no key, and the tests run it as the exporter's upstream. It answers like the real
API: credits as strings, ISO timestamps, an appended display column, rows only for
buckets with usage, a daily and weekly rhythm over seven products with occasional
bursts, recent minutes that arrive incomplete and grow (so the exporter sees real
revisions), and a subscription whose ``character_count`` is the usage since the
cycle start.

Under ``/_sim/`` it offers what tests need: a frozen clock, injected revisions,
scripted faults, the ground truth and a log of the requests received.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from exporter.cycle import months_before

# product_type -> (average credits per minute at peak-free baseline, display name)
PRODUCTS: dict[str, tuple[float, str]] = {
    "text_to_speech": (9.0, "Text to Speech"),
    "conversational_ai": (5.0, "Agents Platform"),
    "speech_to_text": (2.0, "Speech to Text"),
    "dubbing": (1.2, "Dubbing"),
    "sound_effects": (0.8, "Sound Effects"),
    "voice_changer": (0.6, "Voice Changer"),
    "music": (0.5, "Music"),
}
_PRODUCT_INDEX = {name: i for i, name in enumerate(PRODUCTS)}
MODELS = ("eleven_multilingual_v2", "eleven_flash_v2_5", "eleven_turbo_v2_5", "scribe_v1")
USERS = ("ada", "grace", "linus", "margaret", "ken", "barbara")
SOURCES = ("api", "web", "sdk")
REGIONS = ("us", "eu")
# Dimensions the simulator can group by, and the display column the API appends for them.
DIMENSIONS = ("voice_id", "model", "user_id", "hashed_xi_api_key", "request_source", "region")
DISPLAY_COLUMNS = {
    "product_type": "product_type_label",
    "voice_id": "voice_name",
    "user_id": "user_label",
}
COST_PER_CREDIT = 0.0001  # USD, for the cost-billed scenario
_MASK = (1 << 64) - 1
CYCLE_DAY, CYCLE_TIME = 7, (9, 13, 27)  # the cycle resets on the 7th at 09:13:27 UTC
USAGE_PATH = "/v1/workspace/analytics/query/usage-by-product-over-time"
SUBSCRIPTION_PATH = "/v1/user/subscription"
SCENARIOS = (
    "normal",
    "quota-nearly-exhausted",
    "key-rejected",
    "missing-permission",
    "cost-billed",
)
COST_USAGE_PATH = "/v1/workspace/analytics/usage"


def _mix(value: int) -> int:
    """splitmix64: a fast, well-spread deterministic hash."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _unit(*parts: int) -> float:
    value = 0
    for part in parts:
        value = _mix(value ^ part)
    return (value >> 11) / float(1 << 53)


def full_minute(product: int, minute: int, seed: int = 0) -> float:
    """Final credits of one product in one minute (a multiple of 0.5)."""
    base = list(PRODUCTS.values())[product][0]
    hour = (minute // 60) % 24
    rhythm = 0.3 + 1.6 * max(0.0, math.sin(math.pi * (hour - 6) / 16))  # busy 06-22 UTC
    weekday = (minute // 1440 + 3) % 7  # 0 = Monday
    weekly = 0.55 if weekday >= 5 else 1.0
    burst = 6.0 if _unit(seed, product, minute // 30, 77) < 0.012 else 1.0
    lam = base * rhythm * weekly * burst
    return math.floor(lam * 2 * _unit(seed, product, minute) * 2) / 2


@lru_cache(maxsize=65536)
def full_hour(product: int, hour: int, seed: int = 0) -> float:
    """Final credits of one product in one UTC hour."""
    start = hour * 60
    return sum(full_minute(product, m, seed) for m in range(start, start + 60))


def cycle_bounds(now: float) -> tuple[int, int]:
    """The simulated billing cycle ``[start, reset)`` containing ``now``."""
    moment = datetime.fromtimestamp(now, UTC)
    candidate = moment.replace(
        day=CYCLE_DAY, hour=CYCLE_TIME[0], minute=CYCLE_TIME[1], second=CYCLE_TIME[2], microsecond=0
    )
    if candidate > moment:
        candidate = months_before(candidate, 1)
    return int(candidate.timestamp()), int(months_before(candidate, -1).timestamp())


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``times`` matching requests (-1: forever)."""

    endpoint: str = "*"
    times: int = 1
    status: int | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: str | None = None  # "reset", "truncate", "html", "drop_column", "reorder", ...


class SimState:
    """The simulated account: usage model, clock, revisions, faults and logs."""

    def __init__(
        self,
        *,
        scenario: str = "normal",
        api_key: str | None = "demo",
        seed: int = 0,
        frozen_at: float | None = None,
        voices: int = 40,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose from {SCENARIOS}")
        self.lock = threading.Lock()
        self.scenario = scenario
        self.api_key = api_key
        self.seed = seed
        self.frozen_at = frozen_at
        self.adjustments: dict[tuple[int, int], float] = {}  # (product, minute) -> credits
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.limit_override: float | None = None
        self.products = list(PRODUCTS)
        self.voices = voices

    def dimension(self, name: str, product: int, minute: int) -> str:
        """The value of one dimension for a product's minute: all of that minute's
        credits go to one value, so every breakdown adds up to the product total."""
        u = _unit(self.seed, product, minute, DIMENSIONS.index(name) + 101)
        if name == "voice_id":
            return f"voice{int(self.voices * u**3):04d}"  # a few voices carry most usage
        if name == "model":
            return MODELS[int(len(MODELS) * u)]
        if name == "user_id":
            return f"u_{USERS[int(len(USERS) * u**2)]}"
        if name == "hashed_xi_api_key":
            return ("k_3f9a", "k_81c2", "k_e07d")[int(3 * u)]
        if name == "request_source":
            return SOURCES[int(len(SOURCES) * u)]
        return REGIONS[int(len(REGIONS) * u)]

    @staticmethod
    def display(name: str, value: str) -> str | None:
        """The display name the API appends for an id column."""
        if name == "product_type":
            return PRODUCTS[value][1] if value in PRODUCTS else value
        if name == "voice_id":
            return f"Voice {int(value[5:])}"
        if name == "user_id":
            return f"{value[2:].title()} ({value[2:]}@example.com)"
        return None

    def breakdown(
        self, start: int, end: int, group_by: list[str], now: float
    ) -> dict[tuple[str, ...], float]:
        """Visible credits in ``[start, end)`` per value of the ``group_by`` columns."""
        sums: dict[tuple[str, ...], float] = {}
        extra = [g for g in group_by if g != "product_type"]
        for index, name in enumerate(self.products):
            if not extra:
                value = self.credits(index, start, end, now)
                if value:
                    key: tuple[str, ...] = (name,) if group_by else ()
                    sums[key] = sums.get(key, 0.0) + value
                continue
            for minute in range(start // 60, end // 60):
                value = self.visible_minute(index, minute, now)
                if value:
                    key = tuple(
                        name if g == "product_type" else self.dimension(g, index, minute)
                        for g in group_by
                    )
                    sums[key] = sums.get(key, 0.0) + value
        return sums

    def truth_by(self, start: int, end: int, group_by: list[str]) -> dict[tuple[str, ...], float]:
        """Ground truth per label set, for tests of breakdowns."""
        return {k: v for k, v in self.breakdown(start, end, group_by, self.now()).items() if v}

    def now(self) -> float:
        """The simulated time: frozen when a test froze it, else real time."""
        return self.frozen_at if self.frozen_at is not None else time.time()

    def visible_minute(self, product: int, minute: int, now: float) -> float:
        """What the API shows now for one minute: recent minutes arrive incomplete."""
        age = now - (minute + 1) * 60
        if age < 0:
            return 0.0
        value = full_minute(product, minute, self.seed)
        if age < 60:
            value = math.floor(value * 0.6 * 2) / 2
        elif age < 180:
            value = math.floor(value * 0.9 * 2) / 2
        return value + self.adjustments.get((product, minute), 0.0)

    def credits(self, product: int, start: int, end: int, now: float) -> float:
        """Visible credits of one product in ``[start, end)`` (minute-aligned seconds)."""
        total = 0.0
        minute, last = start // 60, end // 60
        final_before = int(now // 60) - 4  # older minutes are complete: use cached hours
        while minute < last:
            if minute % 60 == 0 and minute + 60 <= min(last, final_before):
                total += full_hour(product, minute // 60, self.seed)
                if self.adjustments:
                    total += sum(
                        delta
                        for (p, m), delta in self.adjustments.items()
                        if p == product and minute <= m < minute + 60
                    )
                minute += 60
            else:
                total += self.visible_minute(product, minute, now)
                minute += 1
        return total

    def truth(self, start: int, end: int) -> dict[str, float]:
        """Ground truth: visible credits per product in ``[start, end)`` at the sim's now."""
        now = self.now()
        return {name: self.credits(i, start, end, now) for i, name in enumerate(self.products)}

    def subscription(self) -> dict[str, Any]:
        """The subscription body, consistent with the usage data."""
        now = self.now()
        start, reset = cycle_bounds(now)
        used = sum(self.truth(start - start % 60, int(now // 60) * 60).values())
        limit = 1_000_000.0
        if self.scenario == "quota-nearly-exhausted":
            if self.limit_override is None:
                self.limit_override = float(math.ceil(used / 0.985))
            limit = self.limit_override
        return {
            "tier": "pro",
            "status": "active",
            "character_count": int(used),
            "character_limit": int(limit),
            "max_credit_limit_extension": 0,
            "can_extend_character_limit": False,
            "next_character_count_reset_unix": reset,
            "currency": "usd",
            "billing_period": "monthly_period",
            "character_refresh_period": "monthly_period",
            "voice_slots_used": 12,
            "voice_limit": 160,
            "professional_voice_slots_used": 1,
            "professional_voice_limit": 2,
            "current_overage": {"amount": "0.00", "currency": "usd"},
        }

    def usage(self, request: dict[str, Any], *, cost: bool = False) -> tuple[int, dict[str, Any]]:
        """Answer a usage query like the real endpoint (status, body).

        ``cost`` answers the cost-billed sibling endpoint: whole UTC days or weeks only,
        ``total_cost`` in USD and ``total_charge_count``.
        """

        def invalid(field: str, message: str) -> tuple[int, dict[str, Any]]:
            return 422, {
                "detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}]
            }

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
        now = self.now()
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
            for key, value in self.breakdown(
                max(bucket, start), min(bucket + interval, end), columns_used, now
            ).items():
                values = dict(zip(columns_used, key, strict=True))
                if all(_matches(values[f["column"]], f) for f in filters):
                    grouped = tuple(values[g] for g in group_by)
                    sums[grouped] = sums.get(grouped, 0.0) + value
            for key, value in sums.items():
                if cost:
                    rows.append(
                        [_iso(bucket), *key, f"{value * COST_PER_CREDIT:.6f}", int(value * 2)]
                    )
                else:
                    displays = [
                        self.display(g, v)
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

    def take_fault(self, endpoint: str) -> Fault | None:
        """The next scripted fault for this endpoint, if any (consumed)."""
        with self.lock:
            for fault in self.faults:
                if fault.endpoint in ("*", endpoint) and fault.times != 0:
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
            self.faults = [f for f in self.faults if f.times != 0]
        return None


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


# GET /v1/usage/character-stats (deprecated upstream): request, latency and concurrency
# figures per UTC hour, derived from the credits model so that they move with it.
CHARACTER_STATS_PATH = "/v1/usage/character-stats"
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
        avg = round(250 + 150 * load + 50 * _unit(state.seed, product, hour, 211), 1)
        peak = min(8, 1 + int(7 * load * _unit(state.seed, product, hour, 212) + 0.5))
        stats.update(
            ttfb_avg=avg,
            ttfb_p95=round(2.2 * avg, 1),
            concurrency=float(peak),
            concurrency_average=round(peak * (0.3 + 0.3 * _unit(state.seed, product, hour, 9)), 2),
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


def _make_handler(state: SimState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle's algorithm the body waits
        # for the client's delayed ACK (40 ms on Linux) on every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(
            self,
            status: int,
            body: Any,
            headers: dict[str, str] | None = None,
            raw: bytes | None = None,
            content_type: str = "application/json",
        ) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else {}
            except ValueError:
                return None

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/_sim/"):
                self._control(method, url.path, parse_qs(url.query))
                return
            body = self._body() if method == "POST" else None
            endpoint = {
                USAGE_PATH: "usage",
                SUBSCRIPTION_PATH: "subscription",
                COST_USAGE_PATH: "cost_usage",
                CHARACTER_STATS_PATH: "character_stats",
            }.get(url.path)
            with state.lock:
                state.requests.append(
                    {"endpoint": endpoint or url.path, "body": body, "at": time.time()}
                )
            if endpoint is None:
                self._send(404, {"detail": "Not Found"})
                return
            if state.api_key is not None and self.headers.get("xi-api-key") != state.api_key:
                self._send(
                    401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
                )
                return
            if state.scenario == "key-rejected":
                self._send(
                    401, {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
                )
                return
            if state.scenario == "missing-permission" and endpoint == "usage":
                self._send(
                    401,
                    {
                        "detail": {
                            "status": "missing_permissions",
                            "message": "The API key you used is missing the permission "
                            "workspace_analytics_full_read to execute this operation.",
                        }
                    },
                )
                return
            if state.scenario == "cost-billed" and endpoint == "usage":
                self._send(
                    400,
                    {
                        "detail": {
                            "code": "workspace_billed_in_currency",
                            "message": "This workspace is billed in currency, not credits. Use "
                            "/v1/workspace/analytics/usage for its usage.",
                        }
                    },
                )
                return
            if state.scenario != "cost-billed" and endpoint == "cost_usage":
                self._send(
                    400,
                    {
                        "detail": {
                            "code": "workspace_billed_in_credits",
                            "message": "This workspace is billed in credits.",
                        }
                    },
                )
                return
            fault = state.take_fault(endpoint)
            if fault is not None and self._apply_fault(fault, endpoint, body):
                return
            self._answer(endpoint, body)

        def _answer(self, endpoint: str, body: Any) -> None:
            with state.lock:
                if endpoint == "subscription":
                    self._send(200, state.subscription())
                    return
                if endpoint == "character_stats":
                    self._send(*character_stats(state, parse_qs(urlparse(self.path).query)))
                    return
                if not isinstance(body, dict):
                    self._send(400, {"detail": {"code": "invalid_json", "message": "bad body"}})
                    return
                status, answer = state.usage(body, cost=endpoint == "cost_usage")
            self._send(status, answer)

        def _apply_fault(self, fault: Fault, endpoint: str, body: Any) -> bool:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.action == "reset":
                self.close_connection = True
                self.connection.close()
                return True
            if fault.action == "html":
                self._send(
                    fault.status or 502,
                    None,
                    raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                    content_type="text/html",
                )
                return True
            if fault.action in ("truncate", "drop_column", "reorder", "extra_column", "nulls"):
                with state.lock:
                    answer = (
                        state.subscription() if endpoint == "subscription" else state.usage(body)[1]
                    )
                if fault.action == "truncate":
                    data = json.dumps(answer).encode()
                    self._send(200, None, raw=data[: len(data) // 2])
                    return True
                self._send(200, _distort(answer, fault.action))
                return True
            if fault.status is not None:
                raw = fault.body.encode() if fault.body is not None else None
                self._send(
                    fault.status,
                    {"detail": {"status": "error", "message": "injected"}},
                    headers=fault.headers,
                    raw=raw,
                )
                return True
            return False  # a pure delay: answer normally

        def _control(self, method: str, path: str, query: dict[str, list[str]]) -> None:
            body = self._body() if method == "POST" else {}
            body = body if isinstance(body, dict) else {}
            with state.lock:
                if path == "/_sim/truth":
                    start = int(query.get("start", ["0"])[0])
                    end = int(query.get("end", [str(int(state.now()))])[0])
                    self._send(200, {"now": state.now(), "credits": state.truth(start, end)})
                elif path == "/_sim/clock" and method == "POST":
                    if body.get("real"):
                        state.frozen_at = None
                    elif "now" in body:
                        state.frozen_at = float(body["now"])
                    elif "advance" in body:
                        state.frozen_at = state.now() + float(body["advance"])
                    self._send(200, {"now": state.now()})
                elif path == "/_sim/revise" and method == "POST":
                    product = _PRODUCT_INDEX[body["product_type"]]
                    minute = int(body["timestamp"]) // 60
                    key = (product, minute)
                    state.adjustments[key] = state.adjustments.get(key, 0.0) + float(
                        body["credits"]
                    )
                    self._send(200, {"ok": True})
                elif path == "/_sim/faults" and method == "POST":
                    items = body.get("faults", [])
                    state.faults.extend(Fault(**item) for item in items)
                    self._send(200, {"queued": len(state.faults)})
                elif path == "/_sim/faults/clear" and method == "POST":
                    state.faults.clear()
                    self._send(200, {"queued": 0})
                elif path == "/_sim/scenario" and method == "POST":
                    state.scenario = str(body["name"])
                    self._send(200, {"scenario": state.scenario})
                elif path == "/_sim/requests":
                    self._send(200, {"requests": state.requests})
                else:
                    self._send(404, {"detail": "unknown control"})

    return Handler


def _distort(answer: dict[str, Any], action: str) -> dict[str, Any]:
    """A copy of a usage table drifted the way real tables drift."""
    columns = list(answer.get("columns", []))
    rows = [list(r) for r in answer.get("rows", [])]
    if not columns:
        return answer
    if action == "drop_column" and "credits_used" in columns:
        index = columns.index("credits_used")
        columns.pop(index)
        rows = [r[:index] + r[index + 1 :] for r in rows]
        return {"columns": columns, "rows": rows}
    if action == "reorder":
        order = list(reversed(range(len(columns))))
        return {
            "columns": [columns[i] for i in order],
            "rows": [[r[i] for i in order] for r in rows],
            "column_types": [answer["column_types"][i] for i in order],
            "column_units": [answer["column_units"][i] for i in order],
        }
    if action == "extra_column":
        return {
            "columns": [*columns, "model_name"],
            "rows": [[*r, "Multilingual v2"] for r in rows],
        }
    if action == "nulls" and "product_type_label" in columns:
        index = columns.index("product_type_label")
        return {"columns": columns, "rows": [[*r[:index], None, *r[index + 1 :]] for r in rows]}
    return answer


class Simulator:
    """The simulated API on a loopback port, in a background thread."""

    def __init__(
        self, state: SimState | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = state or SimState()
        self._server = ThreadingHTTPServer((host, port), _make_handler(self.state))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="simulator", daemon=True
        )

    def start(self) -> Simulator:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the simulator on its own (for tests and experiments)."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator", description="A simulated ElevenLabs API on loopback."
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", choices=SCENARIOS, default="normal")
    parser.add_argument("--api-key", default="demo", help="the key it accepts ('' for any)")
    parser.add_argument("--frozen-at", type=float, default=None, help="freeze the clock here")
    args = parser.parse_args(argv)
    sim = Simulator(
        SimState(scenario=args.scenario, api_key=args.api_key or None, frozen_at=args.frozen_at),
        port=args.port,
    )
    out(sim.url)
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        sim._server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
