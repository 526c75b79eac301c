"""The cost collector: money and charges of workspaces billed in currency."""

from __future__ import annotations

from typing import cast

from prometheus_client.core import CounterMetricFamily, Metric

from exporter.core.snapshot import WorkspaceSnapshot
from exporter.metrics.families import POLLED, SnapshotCollector
from exporter.polling.cost import CostPart


class CostCollector(SnapshotCollector):
    """Builds the cost families from each workspace's :class:`CostPart`."""

    def families(self) -> list[Metric]:
        """The cost and charge counters."""
        return [
            CounterMetricFamily(
                "elevenlabs_cost",
                "Money spent since the anchor by a workspace billed in currency rather than "
                "credits, per product, in the currency of the currency label (whole-day "
                "buckets of the cost usage endpoint; today's bucket fills as the day goes "
                "on). " + POLLED,
                labels=["workspace", "product_type", "currency"],
            ),
            CounterMetricFamily(
                "elevenlabs_charges",
                "Billable charges since the anchor of a workspace billed in currency, per "
                "product (total_charge_count). " + POLLED,
                labels=["workspace", "product_type"],
            ),
        ]

    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """One workspace's cost and charges."""
        part = snap.part(CostPart)
        if part is None:
            return
        cost, charges = cast("list[CounterMetricFamily]", families)
        for labels, value in sorted(part.cost.items()):
            cost.add_metric([snap.name, labels[0], part.currency], value)
        for labels, value in sorted(part.charges.items()):
            charges.add_metric([snap.name, labels[0]], value)
