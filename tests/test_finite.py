"""No exported sample can ever be NaN, infinite or negative, whatever the API answers.

A property test over the whole path a value takes: answers with any numbers at all
(huge, tiny, negative, NaN, infinite, as numbers or strings) go through the real
parser, which refuses implausible ones whole, as a poll does; accepted rows go into
ledgers and routers (``Counted``: credits with a bounded dimension, cost, character
stats), which are restarted through their state at random; and after every poll
every collector's every sample is read from a real registry.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from exporter.api.errors import ApiError
from exporter.api.parse import MAX_VALUE, Subscription, UsageRow, parse_usage
from exporter.core.counted import Counted
from exporter.core.ledger import Ledger
from exporter.core.router import SeriesRouter
from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.polling.charstats import CharacterStatsPart
from exporter.polling.cost import CostPart
from exporter.polling.credits import CreditsPart
from exporter.polling.subscription import SubscriptionPart
from exporter.runtime import build_registry

BUCKET = 60
LOOKBACK = 600
ANCHOR = 1_700_000_040
COLUMNS = ["timestamp", "product_type", "voice_id", "credits_used"]
DIMENSIONS = ("product_type", "voice_id")

# Accepted extremes, and numbers that must be refused.
EXTREMES = [0.0, 5e-324, 1e-300, 0.5, 1e6, 1e11, MAX_VALUE, MAX_VALUE / 2]
HOSTILE = [-1.0, -5e-324, MAX_VALUE * 1.0000001, 1e308, float("inf"), float("nan")]
accepted = st.one_of(st.sampled_from(EXTREMES), st.floats(min_value=0, max_value=MAX_VALUE))
# Mostly plausible values (so that many answers are applied), sometimes anything at all.
number = st.one_of(
    accepted,
    accepted,
    accepted,
    st.sampled_from(HOSTILE),
    st.floats(allow_nan=True, allow_infinity=True),
)
cell = st.one_of(number, number.map(repr), number.map(str))
row = st.tuples(
    st.integers(0, 3 * LOOKBACK // BUCKET),  # buckets back from now
    st.sampled_from(["text_to_speech", "dubbing"]),
    st.sampled_from(["v1", "v2", "v3", "v4"]),
    cell,
)
poll = st.fixed_dictionaries(
    {
        "advance": st.integers(1, 2 * LOOKBACK // BUCKET),  # beyond the lookback: an outage
        "rows": st.lists(row, max_size=12),
        "restart": st.booleans(),
    }
)


def answer(rows: list[tuple[int, str, str, Any]], now: int) -> dict[str, Any]:
    return {
        "columns": COLUMNS,
        "rows": [[now - (back + 1) * BUCKET, p, v, value] for back, p, v, value in rows],
    }


def read(plan_windows: Any, body: dict[str, Any]) -> list[UsageRow]:
    """What the parser accepts of the answer for each window (all or nothing)."""
    out: list[UsageRow] = []
    for window in plan_windows:
        out += parse_usage(
            body, DIMENSIONS, start=window.start, end=window.end, interval=window.interval
        ).rows
    return out


def by_product(rows: list[UsageRow]) -> list[UsageRow]:
    """The rows with the product only, for the counters without a dimension."""
    return [UsageRow(r.bucket, r.labels[:1], r.credits) for r in rows]


def restart(counted: Counted) -> Counted:
    state = json.loads(json.dumps(counted.to_state()))
    ledger = Ledger.from_state(state["ledger"], lookback=LOOKBACK)
    router = SeriesRouter(DIMENSIONS, {"voice_id": 2})
    router.restore(state["router"])
    return Counted(ledger, router)


def every_sample(counted: Counted, plain: Counted) -> list[tuple[str, float]]:
    """Every sample of every collector, for parts built from these counters."""
    snapshots = SnapshotStore(["w"])
    registry, telemetry = build_registry(snapshots, character_stats=True)
    subscription = Subscription("pro", "active", MAX_VALUE, MAX_VALUE, 2**33, "usd")
    snapshots.publish(
        WorkspaceSnapshot.of(
            "w",
            CreditsPart(
                DIMENSIONS,
                dict(counted.total),
                dict(counted.down),
                counted.router.gauge(counted.ledger.cycle),
            ),
            CostPart(dict(plain.total), dict(plain.down), "usd"),
            CharacterStatsPart(
                counters={
                    "request_count": dict(plain.total),
                    "tts_characters": dict(plain.total),
                    "minutes_used": dict(plain.total),  # exported in seconds: × 60
                },
                gauges={"ttfb_avg": MAX_VALUE, "ttfb_p95": MAX_VALUE, "concurrency": MAX_VALUE},
                gauge_bucket=ANCHOR,
                last_success=float(ANCHOR),
            ),
            SubscriptionPart(subscription, 2**33, 2**33),
            up=True,
            ready=True,
        )
    )
    telemetry.register_workspace("w")
    return [(s.name, s.value) for family in registry.collect() for s in family.samples]


@settings(max_examples=150, deadline=None)
@given(st.lists(poll, min_size=1, max_size=15))
def test_no_exported_sample_is_ever_nan_infinite_or_negative(polls: list[dict[str, Any]]) -> None:
    """Answers with any numbers: implausible ones are refused whole, accepted ones add up
    to finite, non-negative counters and gauges, across outages and restarts, and every
    sample every collector exports stays finite and non-negative."""
    now = ANCHOR + LOOKBACK
    counted = Counted(
        Ledger(
            anchor=ANCHOR,
            bucket=BUCKET,
            lookback=LOOKBACK,
            cycle_start=ANCHOR,
            label_names=DIMENSIONS,
        ),
        SeriesRouter(DIMENSIONS, {"voice_id": 2}),
    )
    plain = Counted.plain(Ledger(anchor=ANCHOR, bucket=BUCKET, lookback=LOOKBACK))
    refused = 0
    for step in polls:
        now += step["advance"] * BUCKET
        plan = counted.ledger.plan(now)
        body = answer(step["rows"], now)
        try:
            revisable, settled = read(plan.revisable, body), read(plan.settled, body)
            cycle_only = read(plan.cycle_only, body)
        except ApiError as err:
            if err.reason != "bad_response":
                raise
            refused += 1
        else:
            counted.apply(plan, revisable, settled, cycle_only)
            plain_plan = plain.ledger.plan(now)
            plain.apply(
                plain_plan,
                [
                    type(r)(r.bucket, r.labels[:1], r.credits)
                    for r in read(plain_plan.revisable, body)
                ],
                [
                    type(r)(r.bucket, r.labels[:1], r.credits)
                    for r in read(plain_plan.settled, body)
                ],
            )
        if step["restart"]:
            counted = restart(counted)
        event(f"applied {len(polls) - refused} of {len(polls)} polls")
        for name, value in every_sample(counted, plain):
            assert math.isfinite(value), (name, value)
            assert value >= 0, (name, value)


def test_two_rows_of_1e308_can_no_longer_reach_infinity() -> None:
    """The issue's case: two rows of "1e308" in different buckets are refused, where they
    used to add up to +Inf (and then NaN)."""
    body = {
        "columns": COLUMNS,
        "rows": [[ANCHOR, "tts", "v", "1e308"], [ANCHOR + 60, "tts", "v", "1e308"]],
    }
    with pytest.raises(ApiError) as caught:
        parse_usage(body, DIMENSIONS, start=ANCHOR, end=ANCHOR + 600, interval=60)
    assert caught.value.reason == "bad_response"
