"""The Prometheus collector: fresh metric families from the latest snapshots.

It never performs I/O and never waits on the API: every value comes from the last
poll (the Prometheus guidelines allow this caching for slow, rate-limited APIs;
``elevenlabs_exporter_last_success_timestamp_seconds`` says how fresh it is).
Families are rebuilt at every scrape, so label sets that vanish, vanish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.core.snapshot import WorkspaceSnapshot

POLLED = "Values come from the last successful poll of the ElevenLabs API, not from the scrape."


class UsageCollector(Collector):
    """Builds every contract metric from the snapshots returned by ``source``."""

    def __init__(self, source: Callable[[], Mapping[str, WorkspaceSnapshot]]) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        """Nothing: families are only known at scrape time (and registering stays I/O-free)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the families for the current snapshots."""
        snapshots = list(self._source().values())
        yield from self._usage(snapshots)
        yield from self._subscription(snapshots)
        yield from self._health(snapshots)
        build = GaugeMetricFamily(
            "elevenlabs_exporter_build_info",
            "Always 1; the version label says which elevenlabs-exporter is running.",
            labels=["version"],
        )
        build.add_metric([__version__], 1)
        yield build

    def _usage(self, snapshots: Iterable[WorkspaceSnapshot]) -> Iterator[Metric]:
        # One family per metric even when workspaces group by different dimensions:
        # a second family of the same name would make the exposition invalid.
        used = CounterMetricFamily(
            "elevenlabs_credits_used",
            "Credits used since the anchor (count_from; by default the start of the "
            "current billing cycle, where it restarts from 0), per product (and per opt-in "
            'dimension, values beyond the cap folded into "other"). Late upward '
            "revisions of recent buckets are added; downward ones are not subtracted. " + POLLED,
            labels=[],
        )
        down = CounterMetricFamily(
            "elevenlabs_credits_downward_revision",
            "Credits the ElevenLabs API later revised away from buckets already counted "
            "in elevenlabs_credits_used_total (which never decreases). " + POLLED,
            labels=[],
        )
        cycle = GaugeMetricFamily(
            "elevenlabs_cycle_credits_used",
            "Credits used since the current billing cycle began, per product, as the "
            "API reports them now (it can go down if the API revises usage down). " + POLLED,
            labels=[],
        )
        names = GaugeMetricFamily(
            "elevenlabs_dimension_info",
            "Always 1; maps a dimension value (an id such as a voice_id) to the display "
            "name the API gives it, for values that have series of their own. " + POLLED,
            labels=["workspace", "dimension", "value", "name"],
        )
        for snap in snapshots:
            for family, suffix, values in (
                (used, "_total", snap.credits),
                (down, "_total", snap.downward),
                (cycle, "", snap.cycle or {}),
            ):
                for labels, value in sorted(values.items()):
                    label_map = {
                        "workspace": snap.name,
                        **dict(zip(snap.label_names, labels, strict=True)),
                    }
                    family.add_sample(family.name + suffix, label_map, value)
            for (dimension, id_value), shown in sorted(snap.names.items()):
                names.add_metric([snap.name, dimension, id_value, shown], 1)
        yield used
        yield down
        yield cycle
        yield names
        yield from self._cost(snapshots)

    def _cost(self, snapshots: Iterable[WorkspaceSnapshot]) -> Iterator[Metric]:
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
        for snap in snapshots:
            for labels, value in sorted((snap.cost or {}).items()):
                cost.add_metric([snap.name, labels[0], snap.currency], value)
            for labels, value in sorted((snap.charges or {}).items()):
                charges.add_metric([snap.name, labels[0]], value)
        yield cost
        yield charges

    def _subscription(self, snapshots: Iterable[WorkspaceSnapshot]) -> Iterator[Metric]:
        def gauge(name: str, help_text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, help_text + " " + POLLED, labels=labels or ["workspace"])

        used = gauge(
            "elevenlabs_subscription_credits_used",
            "Credits used in the current billing cycle according to the subscription "
            "(character_count).",
        )
        limit = gauge(
            "elevenlabs_subscription_credits_limit",
            "Credits the plan includes per billing cycle (character_limit).",
        )
        reset = gauge(
            "elevenlabs_subscription_cycle_reset_timestamp_seconds",
            "Unix time in seconds when the credits next reset (next_character_count_reset_unix).",
        )
        length = gauge(
            "elevenlabs_subscription_cycle_length_seconds",
            "Length of the current billing cycle in seconds (reset time minus cycle start).",
        )
        info = gauge(
            "elevenlabs_subscription_info",
            "Always 1; labels describe the subscription (tier, status, currency, billing period).",
            ["workspace", "tier", "status", "currency", "billing_period"],
        )
        voices = gauge("elevenlabs_subscription_voice_slots_used", "Voice slots in use.")
        voices_limit = gauge(
            "elevenlabs_subscription_voice_slots_limit", "Voice slots the plan allows."
        )
        pro = gauge(
            "elevenlabs_subscription_professional_voice_slots_used",
            "Professional voice clone slots in use.",
        )
        pro_limit = gauge(
            "elevenlabs_subscription_professional_voice_slots_limit",
            "Professional voice clone slots the plan allows.",
        )
        for snap in snapshots:
            sub = snap.subscription
            if sub is None:
                continue
            used.add_metric([snap.name], sub.credits_used)
            limit.add_metric([snap.name], sub.credits_limit)
            if snap.cycle_reset is not None:
                reset.add_metric([snap.name], snap.cycle_reset)
            if snap.cycle_length is not None:
                length.add_metric([snap.name], snap.cycle_length)
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
        yield from (used, limit, reset, length, info, voices, voices_limit, pro, pro_limit)

    def _health(self, snapshots: Iterable[WorkspaceSnapshot]) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "elevenlabs_up",
            "1 if the last poll of every ElevenLabs endpoint of this workspace succeeded, else 0.",
            labels=["workspace"],
        )
        last = GaugeMetricFamily(
            "elevenlabs_exporter_last_success_timestamp_seconds",
            "Unix time in seconds of the last successful poll of an endpoint (0 before the first).",
            labels=["workspace", "endpoint"],
        )
        for snap in snapshots:
            up.add_metric([snap.name], 1 if snap.up else 0)
            for endpoint, stamp in sorted(snap.last_success.items()):
                last.add_metric([snap.name, endpoint], stamp)
        yield up
        yield last
