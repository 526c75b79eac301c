"""The metric contract of ../shared/design.md, restated once for the tests.

Rules, dashboards and the exposition are checked against this list, independently
of the code that produces the metrics. Histograms are listed by their base name.
"""

from __future__ import annotations

CONTRACT_METRICS = frozenset(
    {
        "elevenlabs_credits_used_total",
        "elevenlabs_credits_downward_revision_total",
        "elevenlabs_cycle_credits_used",
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
    }
)
HISTOGRAMS = frozenset({"elevenlabs_exporter_api_request_duration_seconds"})
# Every series name a query may select: histograms by their _bucket, _sum and _count.
SERIES_NAMES = (CONTRACT_METRICS - HISTOGRAMS) | {
    f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")
}
