"""The health collector (``elevenlabs_up``, each endpoint's last success) and the build
info."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.core.snapshot import WorkspaceSnapshot
from exporter.metrics.families import SnapshotCollector


class HealthCollector(SnapshotCollector):
    """Builds the health families from the loops' snapshots."""

    def families(self) -> list[Metric]:
        """up and the last successes."""
        return [
            GaugeMetricFamily(
                "elevenlabs_up",
                "1 if the last poll of every ElevenLabs endpoint of this workspace "
                "succeeded, else 0.",
                labels=["workspace"],
            ),
            GaugeMetricFamily(
                "elevenlabs_exporter_last_success_timestamp_seconds",
                "Unix time in seconds of the last successful poll of an endpoint (0 before "
                "the first).",
                labels=["workspace", "endpoint"],
            ),
        ]

    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """One workspace's up and last successes."""
        up, last = cast("list[GaugeMetricFamily]", families)
        up.add_metric([snap.name], 1 if snap.up else 0)
        for endpoint, stamp in sorted(snap.last_success.items()):
            last.add_metric([snap.name, endpoint], stamp)


class BuildCollector(Collector):
    """``elevenlabs_exporter_build_info``: the version running."""

    def describe(self) -> list[Metric]:
        """Nothing: the registry stays I/O-free (and this is trivially cheap)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The one build-info sample."""
        build = GaugeMetricFamily(
            "elevenlabs_exporter_build_info",
            "Always 1; the version label says which elevenlabs-exporter is running.",
            labels=["version"],
        )
        build.add_metric([__version__], 1)
        yield build
