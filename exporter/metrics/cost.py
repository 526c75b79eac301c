"""The cost collector: money and charges of workspaces billed in currency."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.metrics.families import POLLED, Snapshots
from exporter.polling.cost import CostPart


class CostCollector(Collector):
    """Builds the cost families from each workspace's :class:`CostPart`."""

    def __init__(self, source: Snapshots) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        """Nothing: families are only known at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the cost and charge counters."""
        cost = CounterMetricFamily(
            "elevenlabs_cost",
            "Money spent since the anchor by a workspace billed in currency rather than "
            "credits, per product, in the currency of the currency label (whole-day buckets "
            "of the cost usage endpoint; today's bucket fills as the day goes on). " + POLLED,
            labels=["workspace", "product_type", "currency"],
        )
        charges = CounterMetricFamily(
            "elevenlabs_charges",
            "Billable charges since the anchor of a workspace billed in currency, per "
            "product (total_charge_count). " + POLLED,
            labels=["workspace", "product_type"],
        )
        for snap in self._source().values():
            part = snap.part(CostPart)
            if part is None:
                continue
            for labels, value in sorted(part.cost.items()):
                cost.add_metric([snap.name, labels[0], part.currency], value)
            for labels, value in sorted(part.charges.items()):
                charges.add_metric([snap.name, labels[0]], value)
        yield cost
        yield charges
