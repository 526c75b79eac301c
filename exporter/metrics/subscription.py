"""The subscription collector: the plan's credits, limit, cycle and voice slots."""

from __future__ import annotations

from typing import cast

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.core.snapshot import WorkspaceSnapshot
from exporter.metrics.families import POLLED, SnapshotCollector
from exporter.polling.subscription import SubscriptionPart


def _gauge(name: str, help_text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text + " " + POLLED, labels=labels or ["workspace"])


class SubscriptionCollector(SnapshotCollector):
    """Builds the subscription families from each workspace's :class:`SubscriptionPart`."""

    def families(self) -> list[Metric]:
        """The plan's credits, limit, cycle, info and voice slots."""
        used = _gauge(
            "elevenlabs_subscription_credits_used",
            "Credits used in the current billing cycle according to the subscription "
            "(character_count).",
        )
        limit = _gauge(
            "elevenlabs_subscription_credits_limit",
            "Credits the plan includes per billing cycle (character_limit).",
        )
        reset = _gauge(
            "elevenlabs_subscription_cycle_reset_timestamp_seconds",
            "Unix time in seconds when the credits next reset (next_character_count_reset_unix).",
        )
        length = _gauge(
            "elevenlabs_subscription_cycle_length_seconds",
            "Length of the current billing cycle in seconds (reset time minus cycle start).",
        )
        info = _gauge(
            "elevenlabs_subscription_info",
            "Always 1; labels describe the subscription (tier, status, currency, billing period).",
            ["workspace", "tier", "status", "currency", "billing_period"],
        )
        voices = _gauge("elevenlabs_subscription_voice_slots_used", "Voice slots in use.")
        voices_limit = _gauge(
            "elevenlabs_subscription_voice_slots_limit", "Voice slots the plan allows."
        )
        pro = _gauge(
            "elevenlabs_subscription_professional_voice_slots_used",
            "Professional voice clone slots in use.",
        )
        pro_limit = _gauge(
            "elevenlabs_subscription_professional_voice_slots_limit",
            "Professional voice clone slots the plan allows.",
        )
        return [used, limit, reset, length, info, voices, voices_limit, pro, pro_limit]

    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """One workspace's subscription gauges, once its plan was read."""
        part = snap.part(SubscriptionPart)
        if part is None:
            return
        gauges = cast("list[GaugeMetricFamily]", families)
        used, limit, reset, length, info, voices, voices_limit, pro, pro_limit = gauges
        sub = part.subscription
        used.add_metric([snap.name], sub.credits_used)
        limit.add_metric([snap.name], sub.credits_limit)
        if part.cycle_reset is not None:
            reset.add_metric([snap.name], part.cycle_reset)
        if part.cycle_length is not None:
            length.add_metric([snap.name], part.cycle_length)
        info.add_metric(
            [snap.name, sub.tier, sub.status, sub.currency or "", sub.billing_period or ""], 1
        )
        for family, value in (
            (voices, sub.voice_slots_used),
            (voices_limit, sub.voice_limit),
            (pro, sub.professional_voice_slots_used),
            (pro_limit, sub.professional_voice_limit),
        ):
            if value is not None:
                family.add_metric([snap.name], value)
