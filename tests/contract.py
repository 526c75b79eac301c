"""The contract of the design (metrics, poll-error reasons, endpoints, alerts), stated
once for the tests.

Rules, dashboards, the client and the exposition are checked against these lists,
independently of the code that produces the metrics; ``test_contract.py`` ties them to
the copies the code and the artefacts keep. Histograms are listed by their base name.
"""

from __future__ import annotations

CONTRACT_METRICS = frozenset(
    {
        "elevenlabs_credits_used_total",
        "elevenlabs_credits_downward_revision_total",
        "elevenlabs_cycle_credits_used",
        "elevenlabs_window_credits_used",
        "elevenlabs_budget_credits",
        "elevenlabs_subscription_credits_used",
        "elevenlabs_subscription_credits_limit",
        "elevenlabs_subscription_cycle_reset_timestamp_seconds",
        "elevenlabs_subscription_cycle_length_seconds",
        "elevenlabs_subscription_info",
        "elevenlabs_subscription_voice_slots_used",
        "elevenlabs_subscription_voice_slots_limit",
        "elevenlabs_subscription_professional_voice_slots_used",
        "elevenlabs_subscription_professional_voice_slots_limit",
        "elevenlabs_up",
        "elevenlabs_exporter_last_success_timestamp_seconds",
        "elevenlabs_exporter_api_requests_total",
        "elevenlabs_exporter_api_request_duration_seconds",
        "elevenlabs_exporter_poll_errors_total",
        "elevenlabs_exporter_build_info",
        # Per-key and per-group credit limits (opt-in per workspace: key_limits,
        # group_limits), which ElevenLabsAPIKeyCreditLimitNearlyExhausted and
        # ElevenLabsGroupCreditLimitNearlyExhausted and the dashboard read.
        "elevenlabs_api_key_credits_used",
        "elevenlabs_api_key_credits_limit",
        "elevenlabs_api_key_disabled",
        "elevenlabs_group_credits_used",
        "elevenlabs_group_credits_limit",
        "elevenlabs_group_credits_unlimited",
    }
)
HISTOGRAMS = frozenset({"elevenlabs_exporter_api_request_duration_seconds"})
# Every series name a query may select: histograms by their _bucket, _sum and _count.
SERIES_NAMES = (CONTRACT_METRICS - HISTOGRAMS) | {
    f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")
}

# The `reason` label values of elevenlabs_exporter_poll_errors_total, in the design's order.
REASONS = (
    "auth",
    "permission",
    "rate_limited",
    "server_error",
    "timeout",
    "network",
    "bad_response",
    "client_error",
)
# The `endpoint` label values every workspace has from start-up (last_success, poll errors).
ENDPOINTS = ("usage", "subscription")

# The alerting contract (v2): each row of the design's alert table, as (alert, severity);
# an alert with two severities has two rows.
ALERTS = (
    ("ElevenLabsCreditBurnRate", "critical"),
    ("ElevenLabsCreditBurnRate", "warning"),
    ("ElevenLabsCreditsExhaustedBeforeReset", "warning"),
    ("ElevenLabsCreditSpike", "warning"),
    ("ElevenLabsCreditQuotaNearlyExhausted", "warning"),
    ("ElevenLabsCreditQuotaNearlyExhausted", "critical"),
    ("ElevenLabsExporterDown", "warning"),
    ("ElevenLabsAPIPollingFailing", "warning"),
    ("ElevenLabsUsageDataStale", "warning"),
    ("ElevenLabsAPIKeyRejected", "critical"),
    ("ElevenLabsAPIKeyCreditLimitNearlyExhausted", "warning"),
    ("ElevenLabsAPIKeyCreditLimitNearlyExhausted", "critical"),
    ("ElevenLabsGroupCreditLimitNearlyExhausted", "warning"),
    ("ElevenLabsGroupCreditLimitNearlyExhausted", "critical"),
)
# Every alert name once, in the table's order.
ALERT_NAMES = tuple(dict.fromkeys(name for name, _ in ALERTS))
# The severities each alert may carry.
ALERT_SEVERITIES = {
    name: frozenset(severity for other, severity in ALERTS if other == name) for name in ALERT_NAMES
}
