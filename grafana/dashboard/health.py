"""The rows about trust: what Prometheus alerts on, and whether the exporter works."""

from __future__ import annotations

from dashboard.layout import Grid, Json
from dashboard.panels import (
    override,
    stat,
    target,
    thresholds,
    timeseries,
    value_mappings,
)
from dashboard.queries import (
    ALERT_NAMES,
    JOB,
    STALE_AFTER_SECONDS,
    WS,
    alert_state_expr,
)

REPO_URL = "https://github.com/elevenlabs-exporter/elevenlabs-exporter"
RUNBOOK_URL = f"{REPO_URL}/blob/main/docs/runbook.md"

UP_MAPPINGS = value_mappings({"0": ("Failing", "red"), "1": ("OK", "green")})
# What the alert-state tiles show for the values of alert_state_expr().
ALERT_STATES = {
    "-1": ("Rules not loaded", "#8e8e8e"),
    "0": ("OK", "green"),
    "1": ("Pending", "yellow"),
    "2": ("Firing", "red"),
}


def runbook_link(alertname: str) -> str:
    """The runbook section of an alert."""
    return f"{RUNBOOK_URL}#{alertname.lower()}"


def alerts_row(grid: Grid) -> None:
    """What Prometheus is alerting on, and the subscription's plan and other limits."""
    grid.row("Alerts and subscription")
    grid.add(alert_state_panel(), w=12, h=6)
    grid.add(
        plan_stat(),
        slots_stat(
            "Voice slots",
            "Voice slots in use and the plan's limit, per workspace.",
            "elevenlabs_subscription_voice_slots",
        ),
        slots_stat(
            "Professional voice slots",
            "Professional voice clone slots in use and the plan's limit, per workspace.",
            "elevenlabs_subscription_professional_voice_slots",
        ),
        w=4,
        h=6,
    )


def alert_state_panel() -> Json:
    """One tile per contract alert, each linking to its runbook section, so the way from
    "firing" to "what to do" is one click."""
    ref_ids = [chr(ord("A") + index) for index in range(len(ALERT_NAMES))]
    panel = stat(
        "Alert state",
        "State of each ElevenLabs alert in Prometheus (ALERTS) for the selected workspaces "
        "(alerts without a workspace, such as the exporter being down, count for every "
        "selection): OK, Pending or Firing. Rules not loaded: this Prometheus does not "
        "evaluate the project's rules (their marker series elevenlabs:alert_rules_loaded "
        "is missing), so no alert could fire. Click a tile for the alert's runbook. Firing "
        "alerts also appear as red annotations on the time series.",
        [
            target(alert_state_expr(name), name, ref)
            for ref, name in zip(ref_ids, ALERT_NAMES, strict=True)
        ],
        unit="none",
        decimals=0,
        color_thresholds=thresholds(
            ALERT_STATES["-1"][1], (0.0, "green"), (1.0, "yellow"), (2.0, "red")
        ),
        mappings=value_mappings(ALERT_STATES),
        text_mode="value_and_name",
        graph=False,
        color_mode="background",
    )
    panel["fieldConfig"]["overrides"] = [
        override(
            ref,
            (
                "links",
                [{"targetBlank": True, "title": f"Runbook: {name}", "url": runbook_link(name)}],
            ),
        )
        for ref, name in zip(ref_ids, ALERT_NAMES, strict=True)
    ]
    return panel


def plan_stat() -> Json:
    """The plan's tier and status as text, since they explain the limit."""
    return stat(
        "Plan",
        "The subscription tier and its status, per workspace (elevenlabs_subscription_info).",
        [
            target(
                "max by (workspace, tier, status, billing_period) "
                f"(elevenlabs_subscription_info{{{WS}}})",
                "{{tier}} ({{status}}, {{billing_period}})",
            )
        ],
        unit="none",
        decimals=0,
        text_mode="name",
        graph=False,
    )


def slots_stat(title: str, description: str, metric: str) -> Json:
    """Slots of a kind in use beside the plan's limit; `metric` lacks `_used`/`_limit`."""
    return stat(
        title,
        description,
        [
            target(f"max by (workspace) ({metric}_used{{{WS}}})", "{{workspace}} used"),
            target(f"max by (workspace) ({metric}_limit{{{WS}}})", "{{workspace}} limit", "B"),
        ],
        unit="none",
        decimals=0,
        text_mode="value_and_name",
        graph=False,
    )


def health_row(grid: Grid) -> None:
    """Whether the numbers above can be trusted: polling, scraping, errors and latency."""
    grid.row("Exporter health")
    grid.add(
        up_stat(
            "ElevenLabs polling",
            "Whether the last poll of every ElevenLabs endpoint succeeded, per workspace "
            "(elevenlabs_up). Failing for 15 minutes fires ElevenLabsAPIPollingFailing.",
            target(f"min by (workspace) (elevenlabs_up{{{WS}}})", "{{workspace}}"),
        ),
        up_stat(
            "Exporter scrape",
            "Whether Prometheus can scrape the exporter, per instance (up). Down or absent "
            "for 10 minutes fires ElevenLabsExporterDown.",
            target(f"min by (instance) (up{{{JOB}}})", "{{instance}}"),
        ),
        stat(
            "Exporter version",
            "The version of the running exporter (elevenlabs_exporter_build_info).",
            [
                target(
                    f"max by (version) (elevenlabs_exporter_build_info{{{JOB}}})",
                    "{{version}}",
                )
            ],
            unit="none",
            decimals=0,
            text_mode="name",
            graph=False,
        ),
        stat(
            "Credits revised downward",
            "Credits the ElevenLabs usage data later revised away within the time range. "
            "The exporter never lowers its counter for them; it counts them here. Usually 0.",
            [
                target(
                    f"sum(increase(elevenlabs_credits_downward_revision_total{{{WS}}}[$__range]))",
                    "revised downward",
                    instant=True,
                )
            ],
            unit="locale",
            decimals=0,
            graph=False,
        ),
        w=6,
        h=4,
    )
    grid.add(*polling_panels(), *api_request_panels(), w=12, h=8)


def up_stat(title: str, description: str, query: Json) -> Json:
    """A red or green tile per series of a 0/1 health query, readable at a glance."""
    return stat(
        title,
        description,
        [query],
        unit="none",
        decimals=0,
        color_thresholds=thresholds("red", (1.0, "green")),
        mappings=UP_MAPPINGS,
        graph=False,
        color_mode="background",
    )


def polling_panels() -> list[Json]:
    """How stale the data is and why polls fail: the first look when an alert fires."""
    return [
        timeseries(
            "Age of last successful poll",
            "Time since the last successful poll of each endpoint, per workspace. It grows "
            "while polls fail; the dashed line at 15 minutes is where "
            "ElevenLabsUsageDataStale fires for the usage endpoint.",
            [
                target(
                    "time() - max by (workspace, endpoint) "
                    f"(elevenlabs_exporter_last_success_timestamp_seconds{{{WS}}} > 0)",
                    "{{workspace}} {{endpoint}}",
                )
            ],
            unit="s",
            decimals=0,
            color_thresholds=thresholds("transparent", (float(STALE_AFTER_SECONDS), "red")),
        ),
        timeseries(
            "Poll errors by reason",
            "Failed polls per minute by reason (auth, permission, rate_limited, server_error, "
            "timeout, network, bad_response, client_error), over all selected workspaces and "
            "endpoints. Auth or permission errors on every poll for 10 minutes fire "
            "ElevenLabsAPIKeyRejected; a single rejected poll does not.",
            [
                target(
                    "sum by (reason) "
                    f"(rate(elevenlabs_exporter_poll_errors_total{{{WS}}}[$__rate_interval])) "
                    "* 60",
                    "{{reason}}",
                )
            ],
            unit="count:errors/min",
            decimals=2,
            legend_calcs=("max",),
        ),
    ]


def api_request_panels() -> list[Json]:
    """How the ElevenLabs API answers: slow or refused requests explain failing polls."""
    return [
        timeseries(
            "API request latency",
            "How long the ElevenLabs API took to answer, per endpoint: median and 99th "
            "percentile over $__rate_interval, from the exporter's request histogram.",
            [
                target(
                    f"histogram_quantile({quantile}, sum by (endpoint, le) "
                    "(rate(elevenlabs_exporter_api_request_duration_seconds_bucket"
                    f"{{{WS}}}[$__rate_interval])))",
                    f"{{{{endpoint}}}} p{label}",
                    ref_id,
                )
                for ref_id, quantile, label in (("A", "0.5", "50"), ("B", "0.99", "99"))
            ],
            unit="s",
            decimals=2,
        ),
        timeseries(
            "API requests by status code",
            "Requests per minute the exporter sent to the ElevenLabs API, by endpoint and "
            'HTTP status code (code="error" when no HTTP answer arrived).',
            [
                target(
                    "sum by (endpoint, code) "
                    f"(rate(elevenlabs_exporter_api_requests_total{{{WS}}}[$__rate_interval])) "
                    "* 60",
                    "{{endpoint}} {{code}}",
                )
            ],
            unit="count:requests/min",
            decimals=2,
        ),
    ]
