"""The subscription collector: the plan's credits, limit, cycle, voice slots, overage,
limit extension and open invoices.

A value the API did not send, or sent in a form that cannot be read, is left out (its
gauge is absent for the workspace), never guessed; "unlimited" is a boolean gauge
beside an absent limit, never +Inf.
"""

from __future__ import annotations

from typing import cast

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.core.snapshot import WorkspaceSnapshot
from exporter.metrics.families import POLLED, SnapshotCollector
from exporter.polling.subscription import SubscriptionPart


def _gauge(name: str, help_text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text + " " + POLLED, labels=labels or ["workspace"])


def _flag(value: bool | None) -> float | None:
    """A boolean as 1 or 0; None stays None (the gauge is left out)."""
    return None if value is None else float(value)


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
            "Professional voice clone slots in use in this workspace "
            "(professional_voice_slots_used_in_workspace).",
        )
        pro_limit = _gauge(
            "elevenlabs_subscription_professional_voice_slots_limit",
            "Professional voice clone slots the plan allows.",
        )
        pro_group = _gauge(
            "elevenlabs_subscription_billing_group_professional_voice_slots_used",
            "Professional voice clone slots in use across every workspace of the billing "
            "group under consolidated billing, else in this workspace "
            "(professional_voice_slots_used).",
        )
        overage = _gauge(
            "elevenlabs_subscription_overage_amount",
            "Usage-based overage of the current billing period so far, in the currency of "
            "the currency label (current_overage; ElevenLabs sends the amount as a string).",
            ["workspace", "currency"],
        )
        extension = _gauge(
            "elevenlabs_subscription_credits_extension_limit",
            "Credits the usage may exceed the plan's limit by (max_credit_limit_extension); "
            '0 means usage-based billing is off. Absent when it is "unlimited" (see '
            "elevenlabs_subscription_credits_extension_unlimited).",
        )
        unlimited = _gauge(
            "elevenlabs_subscription_credits_extension_unlimited",
            '1 if max_credit_limit_extension is "unlimited" (usage-based billing without a '
            "cap), 0 if it is a number.",
        )
        invoices = _gauge(
            "elevenlabs_subscription_has_open_invoices",
            "1 if the subscription has open (unpaid) invoices (has_open_invoices), else 0.",
        )
        return [
            used,
            limit,
            reset,
            length,
            info,
            voices,
            voices_limit,
            pro,
            pro_limit,
            pro_group,
            overage,
            extension,
            unlimited,
            invoices,
        ]

    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """One workspace's subscription gauges, once its plan was read."""
        part = snap.part(SubscriptionPart)
        if part is None:
            return
        gauges = cast("list[GaugeMetricFamily]", families)
        used, limit, reset, length, info, voices, voices_limit, pro, pro_limit = gauges[:9]
        pro_group, overage, extension, unlimited, invoices = gauges[9:]
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
            (pro, sub.professional_voice_slots_used_in_workspace),
            (pro_limit, sub.professional_voice_limit),
            (pro_group, sub.professional_voice_slots_used),
            (extension, sub.credit_limit_extension),
            (unlimited, _flag(sub.credit_limit_extension_unlimited)),
            (invoices, _flag(sub.has_open_invoices)),
        ):
            if value is not None:
                family.add_metric([snap.name], value)
        if sub.overage_amount is not None and sub.overage_currency is not None:
            overage.add_metric([snap.name, sub.overage_currency], sub.overage_amount)
