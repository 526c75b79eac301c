"""The credits collector: counters, downward revisions, the cycle gauge, display names.

It never performs I/O and never waits on the API: every value comes from the last
poll (the Prometheus guidelines allow this caching for slow, rate-limited APIs;
``elevenlabs_exporter_last_success_timestamp_seconds`` says how fresh it is).
Families are rebuilt at every scrape, so label sets that vanish, vanish.
"""

from __future__ import annotations

from typing import cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.core.snapshot import WorkspaceSnapshot
from exporter.metrics.families import POLLED, SnapshotCollector
from exporter.polling.credits import CreditsPart


class UsageCollector(SnapshotCollector):
    """Builds the credit families from each workspace's :class:`CreditsPart`."""

    def families(self) -> list[Metric]:
        """Credits, downward revisions, the cycle gauge, windows, budget, display names.

        One family per metric even when workspaces group by different dimensions: a
        second family of the same name would make the exposition invalid.
        """
        return [
            CounterMetricFamily(
                "elevenlabs_credits_used",
                "Credits used since the anchor (count_from; by default the start of the "
                "current billing cycle, where it restarts from 0), per product (and per "
                'opt-in dimension, values beyond the cap folded into "other"). Late upward '
                "revisions of recent buckets are added; downward ones are not subtracted. "
                + POLLED,
                labels=[],
            ),
            CounterMetricFamily(
                "elevenlabs_credits_downward_revision",
                "Credits the ElevenLabs API later revised away from buckets already counted "
                "in elevenlabs_credits_used_total (which never decreases). " + POLLED,
                labels=[],
            ),
            GaugeMetricFamily(
                "elevenlabs_cycle_credits_used",
                "Credits used since the current billing cycle began, per product, as the "
                "API reports them now (it can go down if the API revises usage down). " + POLLED,
                labels=[],
            ),
            GaugeMetricFamily(
                "elevenlabs_window_credits_used",
                "Credits ElevenLabs attributes to the last window (5m, 30m, 1h, 6h, 1d, 7d) "
                "by bucket time, the current bucket included, per product, as the API "
                "reports them now: usage that arrives late lands in the window it belongs "
                "to. Exact to the bucket within the lookback, to the hour beyond it; frozen "
                "at the last successful poll while polls fail. " + POLLED,
                labels=["workspace", "product_type", "window"],
            ),
            GaugeMetricFamily(
                "elevenlabs_budget_credits",
                "The workspace's own credit allowance per billing cycle, from the config "
                "(budget_credits); absent when not configured. The alerts use it instead of "
                "the plan's limit where it is set.",
                labels=["workspace"],
            ),
            GaugeMetricFamily(
                "elevenlabs_dimension_info",
                "Always 1; maps a dimension value (an id such as a voice_id) to the display "
                "name the API gives it, for values that have series of their own. " + POLLED,
                labels=["workspace", "dimension", "value", "name"],
            ),
        ]

    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """One workspace's credit samples."""
        part = snap.part(CreditsPart)
        if part is None:
            return
        used, down, cycle, windows, budget, names = families
        for family, suffix, values in (
            (used, "_total", part.credits),
            (down, "_total", part.downward),
            (cycle, "", part.cycle or {}),
        ):
            for labels, value in sorted(values.items()):
                label_map = {
                    "workspace": snap.name,
                    **dict(zip(part.label_names, labels, strict=True)),
                }
                family.add_sample(family.name + suffix, label_map, value)
        gauges = cast("list[GaugeMetricFamily]", [windows, budget, names])
        for product, sums in sorted(part.windows.items()):
            for window, value in sums.items():
                gauges[0].add_metric([snap.name, product, window], value)
        if part.budget is not None:
            gauges[1].add_metric([snap.name], part.budget)
        for (dimension, id_value), shown in sorted(part.names.items()):
            gauges[2].add_metric([snap.name, dimension, id_value, shown], 1)
