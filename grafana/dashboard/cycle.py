"""The rows about the billing cycle: where it stands, and how fast the credits go."""

from __future__ import annotations

from dashboard.layout import Grid, Json
from dashboard.panels import (
    DASHED,
    DOTTED,
    NO_FILL,
    UNSTACKED,
    fixed_color,
    override,
    special_mapping,
    stat,
    target,
    thresholds,
    timeseries,
    value_mappings,
)
from dashboard.queries import (
    ALLOWANCE,
    BUDGET,
    CRITICAL_RUNWAY_SECONDS,
    CYCLE_ELAPSED_SHARE,
    LEFT,
    LIMIT,
    PACE_WINDOWS,
    PROD,
    PROJECTION_WINDOWS,
    QUOTA_PERCENT,
    SECONDS_TO_RESET,
    SECONDS_TO_RESET_AHEAD,
    USED,
    WARNING_RUNWAY_SECONDS,
    joined,
    lasting_pace,
    pace,
    projected,
    runway,
    spend_rate,
)

ALLOWANCE_WORDS = (
    "The allowance is the workspace's own budget (budget_credits) where configured, else "
    "the plan's cycle limit; a workspace with neither (a limit of 0) has none and shows "
    "no value here."
)
PROJECTION_WORDS = (
    f"at the pace of the last {joined(PROJECTION_WINDOWS)} (credits by when they were "
    "used, elevenlabs_window_credits_used), the paces ElevenLabsCreditsExhaustedBeforeReset "
    "reads: used so far plus that pace times the time left. Shorter windows follow the "
    "time of day (an afternoon peak projected over 6h overshoots); the 'Pace against "
    "what is left' panel shows them."
)
# Runways this long or longer read as "a year or more" (no spend lasts forever).
RUNWAY_CAP_SECONDS = 365 * 86400
PER_HOUR = 3600


def billing_cycle_row(grid: Grid) -> None:
    """Where the cycle stands: the numbers ElevenLabs bills by, and where they are headed."""
    grid.row("This billing cycle")
    grid.add(*cycle_stats(), w=4, h=4)
    grid.add(*projection_stats(), w=6, h=4)
    grid.add(runway_stat(), w=12, h=4)


def cycle_stats() -> list[Json]:
    """Used, allowance, left, share used, share of the cycle gone, time to the reset."""
    return [
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
            "Cycle credit allowance",
            f"Credits the workspace may use this billing cycle. {ALLOWANCE_WORDS} Where a "
            "budget is set, the plan's limit is shown beside it.",
            [
                target(ALLOWANCE, "{{workspace}}"),
                target(f"{LIMIT} and on (workspace) {BUDGET}", "{{workspace}} plan limit", "B"),
            ],
            unit="locale",
            decimals=0,
        ),
        stat(
            "Credits left",
            "Credits left of the allowance this cycle (allowance minus used, never below 0). "
            + ALLOWANCE_WORDS,
            [target(LEFT, "{{workspace}}")],
            unit="locale",
            decimals=0,
        ),
        stat(
            "Share of allowance used",
            "Credits used this cycle as a share of the allowance. Orange from 90% and red "
            "from 98%, where ElevenLabsCreditQuotaNearlyExhausted warns and pages.",
            [target(f"100 * {USED} / {ALLOWANCE}", "{{workspace}}")],
            unit="percent",
            decimals=1,
            color_thresholds=thresholds(
                "green", *zip(QUOTA_PERCENT, ("orange", "red"), strict=True)
            ),
        ),
        stat(
            "Share of cycle elapsed",
            "How much of the billing cycle has passed (from its length and the time to the "
            "reset): beside the share of the allowance used, whether use runs ahead of time.",
            [target(f"100 * {CYCLE_ELAPSED_SHARE}", "{{workspace}}")],
            unit="percent",
            decimals=0,
            graph=False,
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
    ]


def projection_targets(share: bool) -> list[Json]:
    """The projection at the reset from each projection window, in credits or percent."""
    return [
        target(
            f"100 * ({projected(window)}) / {ALLOWANCE}" if share else projected(window),
            f"{{{{workspace}}}} at {window} pace",
            chr(ord("A") + index),
        )
        for index, window in enumerate(PROJECTION_WINDOWS)
    ]


def projection_stats() -> list[Json]:
    """Where the cycle ends up at the reset, in credits and as a share of the allowance."""
    return [
        stat(
            "Projected use at reset",
            "Credits this cycle will have used at the next reset if spending goes on "
            + PROJECTION_WORDS,
            projection_targets(share=False),
            unit="locale",
            decimals=0,
            text_mode="value_and_name",
        ),
        stat(
            "Projected share of allowance at reset",
            "The projected use at reset as a share of the allowance; above 100% what is left "
            f"runs out before the reset. Projected {PROJECTION_WORDS} Above 100% at both "
            "paces is where ElevenLabsCreditsExhaustedBeforeReset fires.",
            projection_targets(share=True),
            unit="percent",
            decimals=0,
            color_thresholds=thresholds("green", (80.0, "orange"), (100.0, "red")),
            text_mode="value_and_name",
        ),
    ]


def runway_stat() -> Json:
    """How long what is left lasts at each pace, in the alerts' own terms (days)."""
    return stat(
        "Runway at each pace",
        "How long the credits left last at the pace of the last "
        f"{joined(list(PACE_WINDOWS))} (by when they were used). Red under 3 days, orange "
        "under 7: ElevenLabsCreditBurnRate pages when the 1h runway is under 3 days and "
        "both the 1h and the 1d runway end before the reset ('Time until reset'); it warns "
        "when the 6h and the 1d runway are both under 7 days and end before the reset.",
        [
            target(runway(window, RUNWAY_CAP_SECONDS), f"{{{{workspace}}}} {window}", ref)
            for ref, window in zip("ABCD", PACE_WINDOWS, strict=True)
        ],
        unit="dtdurations",
        decimals=1,
        color_thresholds=thresholds(
            "red",
            (float(CRITICAL_RUNWAY_SECONDS), "orange"),
            (float(WARNING_RUNWAY_SECONDS), "green"),
        ),
        mappings=[
            *value_mappings({str(RUNWAY_CAP_SECONDS): ("a year or more", "green")}),
            special_mapping("nan", "nothing left", 1),
        ],
        text_mode="value_and_name",
        graph=False,
    )


def spend_row(grid: Grid) -> None:
    """How fast the credits go, against what is left, and the cycle so far."""
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
        pace_panel(),
        w=12,
        h=8,
    )
    grid.add(cycle_use_panel(), credits_per_bucket_panel(), w=12, h=9)


def pace_panel() -> Json:
    """The paces the spend alerts read, against the paces at which what is left lasts to
    the reset, 3 days and 7 days: above a line is where an alert's condition holds."""
    paces = [
        target(f"{pace(window)} * {PER_HOUR}", f"{{{{workspace}}}} {window} pace", ref)
        for ref, window in zip("ABCD", PACE_WINDOWS, strict=True)
    ]
    lines = [
        ("E", SECONDS_TO_RESET_AHEAD, "lasts until the reset", "red", DASHED),
        ("F", str(CRITICAL_RUNWAY_SECONDS), "lasts 3 days", "dark-red", DOTTED),
        ("G", str(WARNING_RUNWAY_SECONDS), "lasts 7 days", "orange", DOTTED),
    ]
    return timeseries(
        "Pace against what is left",
        "Credits per hour spent over the last 1h, 6h, 1d and 7d, by when they were used "
        "(elevenlabs_window_credits_used, so an outage's catch-up is no burst), per "
        "workspace, against the paces at which the credits left last exactly until the "
        "reset (dashed red), 3 days and 7 days (dotted). ElevenLabsCreditBurnRate pages "
        "when the 1h pace is above both the reset and the 3-day line and the 1d pace above "
        "the reset line; it warns when the 6h and the 1d pace are both above the reset and "
        "the 7-day line. ElevenLabsCreditsExhaustedBeforeReset fires when the 1d and the 7d "
        "pace are both above the reset line. Without an allowance only the paces show.",
        paces
        + [
            target(f"{lasting_pace(seconds)} * {PER_HOUR}", f"{{{{workspace}}}} {legend}", ref)
            for ref, seconds, legend, _, _ in lines
        ],
        unit="count:credits/h",
        decimals=1,
        fill=0,
        overrides=[
            override(ref, style, fixed_color(color), ("custom.lineWidth", 2))
            for ref, _, _, color, style in lines
        ],
    )


def cycle_use_panel() -> Json:
    """The cycle's use by product against the allowance and the projections, on one axis,
    so the gap between a projection and the allowance reads as the margin left."""
    projections = [
        target(f"sum({projected(window)})", f"projected at reset, {window} pace", ref)
        for ref, window in zip("CD", PROJECTION_WINDOWS, strict=True)
    ]
    return timeseries(
        "Cycle use against the allowance",
        "Credits used since the cycle began, stacked by product, against the allowance "
        f"(red) and the use projected at the reset {PROJECTION_WORDS} Summed over the "
        "selected workspaces; the projections cover all products.",
        [
            target(
                f"sum by (product_type) (elevenlabs_cycle_credits_used{{{PROD}}})",
                "{{product_type}}",
            ),
            target(f"sum({ALLOWANCE})", "allowance", "B"),
            *projections,
        ],
        unit="locale",
        decimals=0,
        stacked=True,
        fill=30,
        overrides=[
            override("B", UNSTACKED, NO_FILL, fixed_color("red"), ("custom.lineWidth", 2)),
            override("C", UNSTACKED, NO_FILL, DASHED, fixed_color("purple")),
            override("D", UNSTACKED, NO_FILL, DOTTED, fixed_color("purple")),
        ],
    )


def credits_per_bucket_panel() -> Json:
    """Bars of the credits per hour, day or week; the panel's min interval is the chosen
    bucket, so `$__interval` (and so each bar) is never shorter than one bucket. Its
    query has no min step: Grafana would take that for `$__interval` instead."""
    query = target(
        f"sum by (product_type) (increase(elevenlabs_credits_used_total{{{PROD}}}[$__interval]))",
        "{{product_type}}",
    )
    del query["interval"]
    panel = timeseries(
        "Credits per ${usage_bucket} by product",
        "Credits used in each ${usage_bucket} (the 'Usage per' variable: hour, day or week), "
        "stacked by product and summed over the selected workspaces. Each bar covers the "
        "interval that ends at its time; buckets are aligned to UTC.",
        [query],
        unit="locale",
        decimals=0,
        stacked=True,
        bars=True,
        legend_calcs=("sum",),
    )
    panel["interval"] = "$usage_bucket"
    return panel
