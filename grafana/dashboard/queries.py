"""The PromQL the panels share: selectors, the allowance and what is left of it, pace,
projections and alert states, in the words of the design's alerting contract (v2).

- **Allowance**: ``elevenlabs_budget_credits`` where set, else the plan's
  ``elevenlabs_subscription_credits_limit`` when > 0 (a workspace with neither has none).
- **Used**: ``elevenlabs_subscription_credits_used``; **left**: allowance − used.
- **Pace** over a window W: ``elevenlabs_window_credits_used{window=W}`` summed over
  products ÷ W, spend by when it happened (bucket time), so an outage's catch-up or a
  restart never looks like a burst.

Every query needs only the exporter's metrics, ``ALERTS`` and ``up``. The one series
of the project's rules a query reads, the marker ``elevenlabs:alert_rules_loaded``,
only tells "rules not loaded" from "OK"; without it the queries still answer.
"""

from __future__ import annotations

from collections.abc import Sequence

# The alert names of the contract, in the order the alert-state panel shows them.
ALERT_NAMES = (
    "ElevenLabsCreditBurnRate",
    "ElevenLabsCreditsExhaustedBeforeReset",
    "ElevenLabsCreditSpike",
    "ElevenLabsCreditQuotaNearlyExhausted",
    "ElevenLabsExporterDown",
    "ElevenLabsAPIPollingFailing",
    "ElevenLabsUsageDataStale",
    "ElevenLabsAPIKeyRejected",
    "ElevenLabsAPIKeyCreditLimitNearlyExhausted",
    "ElevenLabsGroupCreditLimitNearlyExhausted",
)
# The recording rule the project's rules carry (value 1) so that a missing rule file
# reads as such, not as "no alert".
RULES_LOADED = "elevenlabs:alert_rules_loaded"

# The windows of elevenlabs_window_credits_used that pace is read over, in seconds.
PACE_WINDOWS = {"1h": 3600, "6h": 21600, "1d": 86400, "7d": 604800}
# The paces the projection to the reset uses: the two ElevenLabsCreditsExhaustedBeforeReset
# reads. A shorter window follows the time of day (the 6h pace of an ordinary afternoon
# peak projects 154% of the allowance).
PROJECTION_WINDOWS = ("1d", "7d")
# How long what is left must last at the last hour's pace (critical) and at the last
# 6h's and day's pace (warning) for ElevenLabsCreditBurnRate to stay quiet.
CRITICAL_RUNWAY_SECONDS = 3 * 86400
WARNING_RUNWAY_SECONDS = 7 * 86400
# Share of the allowance at which ElevenLabsCreditQuotaNearlyExhausted warns and pages.
QUOTA_PERCENT = (90.0, 98.0)
# Age of the last successful poll at which the usage data counts as stale (15m).
STALE_AFTER_SECONDS = 900

# Selectors. `job` and `workspace` select the exporter and the workspaces;
# `product_type` narrows the per-product panels.
JOB = 'job=~"$job"'
WS = f'{JOB},workspace=~"$workspace"'
PROD = f'{WS},product_type=~"$product_type"'


def per_workspace(metric: str, condition: str = "") -> str:
    """One value per workspace. Each workspace is polled by one exporter; the max also
    collapses duplicates if two exporters ever poll the same one."""
    return f"max by (workspace) ({metric}{{{WS}}}{condition})"


USED = per_workspace("elevenlabs_subscription_credits_used")
LIMIT = per_workspace("elevenlabs_subscription_credits_limit")
BUDGET = per_workspace("elevenlabs_budget_credits", " > 0")
# The allowance, where it can divide: a limit of 0 is no allowance (no ratio, no +Inf).
ALLOWANCE = f"({BUDGET} or {per_workspace('elevenlabs_subscription_credits_limit', ' > 0')})"
LEFT = f"clamp_min({ALLOWANCE} - {USED}, 0)"
RESET = per_workspace("elevenlabs_subscription_cycle_reset_timestamp_seconds")
CYCLE_LENGTH = per_workspace("elevenlabs_subscription_cycle_length_seconds", " > 0")
SECONDS_TO_RESET = f"clamp_min({RESET} - time(), 0)"
# Only while the reset is ahead: "lasts until the reset" has no pace once it passed.
SECONDS_TO_RESET_AHEAD = f"({RESET} - time() > 0)"
CYCLE_ELAPSED_SHARE = f"clamp(1 - {SECONDS_TO_RESET} / {CYCLE_LENGTH}, 0, 1)"


def spend_rate(window: str, selector: str = WS, by: str = "workspace") -> str:
    """Credits per second over `window` by arrival time (the counter), summed by `by`."""
    return f"sum by ({by}) (rate(elevenlabs_credits_used_total{{{selector}}}[{window}]))"


def window_credits(window: str, selector: str = WS, by: str = "workspace") -> str:
    """Credits of the last `window` by bucket time, summed over products by `by`."""
    labels = ", ".join(dict.fromkeys(("workspace", "product_type", by)))
    return (
        f"sum by ({by}) (max by ({labels}) "
        f'(elevenlabs_window_credits_used{{{selector},window="{window}"}}))'
    )


def pace(window: str) -> str:
    """Credits per second over `window` by bucket time, per workspace."""
    return f"{window_credits(window)} / {PACE_WINDOWS[window]}"


def projected(window: str) -> str:
    """Credits used at the reset if spending goes on at the pace of the last `window`.
    A workspace without usage in the window projects no more credits."""
    return f"{USED} + ({pace(window)} or {USED} * 0) * {SECONDS_TO_RESET}"


def lasting_pace(seconds: str) -> str:
    """The pace (credits per second) at which what is left lasts exactly `seconds`."""
    return f"{LEFT} / {seconds}"


def runway(window: str, cap_seconds: int) -> str:
    """How long what is left lasts at the pace of the last `window`, at most `cap_seconds`
    (no spend lasts forever); NaN where nothing is left and nothing is spent."""
    return f"clamp_max({LEFT} / ({pace(window)}), {cap_seconds})"


def alert_selector(alertname: str, state: str) -> str:
    """ALERTS of `alertname` in `state`, of the selected workspaces; alerts without a
    workspace label (the exporter down) belong to every selection."""
    return f'ALERTS{{alertname="{alertname}",alertstate="{state}",workspace=~"$workspace|"}}'


def alert_state_expr(alertname: str) -> str:
    """2 while `alertname` fires, 1 while it is pending, 0 otherwise where the project's
    rules are loaded, -1 where they are not (neither the marker nor the alert exists)."""
    firing = f"max({alert_selector(alertname, 'firing')}) * 2"
    pending = f"max({alert_selector(alertname, 'pending')})"
    loaded = f"max({RULES_LOADED}) * 0"
    return f"({firing}) or ({pending}) or ({loaded}) or vector(-1)"


def breakdown_sum(label: str) -> str:
    """Credits this cycle by the values of `label`, over series that carry it."""
    return f'sum by ({label}) (elevenlabs_cycle_credits_used{{{PROD},{label}!=""}})'


def display_names(label: str) -> str:
    """One display name per value of `label` (elevenlabs_dimension_info), as a series
    with that label and a `name` label, value 1."""
    info = f'elevenlabs_dimension_info{{{WS},dimension="{label}"}}'
    return (
        f"topk by ({label}) (1, max by ({label}, name) "
        f'(label_replace({info}, "{label}", "$1", "value", "(.*)")))'
    )


def top_breakdown(label: str, count: str) -> str:
    """The `count` values of `label` with the most credits this cycle, each with its
    display name where the exporter knows one."""
    top = f"topk({count}, {breakdown_sum(label)})"
    return f"{top} * on ({label}) group_left (name) {display_names(label)} or on ({label}) {top}"


def top_breakdown_share(label: str, count: str) -> str:
    """The same values' share, in percent, of the credits of every series carrying `label`."""
    total = f'sum(elevenlabs_cycle_credits_used{{{PROD},{label}!=""}})'
    return f"100 * topk({count}, {breakdown_sum(label)}) / scalar({total})"


def sort_desc(expr: str) -> str:
    """`expr` with its series largest first (instant queries only)."""
    return f"sort_desc({expr})"


def joined(parts: Sequence[str]) -> str:
    """`parts` as an English list: "a, b and c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
