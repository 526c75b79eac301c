"""The health collector: ``elevenlabs_up``, each endpoint's last success, build info."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.metrics.families import Snapshots


class HealthCollector(Collector):
    """Builds the health families from the loops' snapshots."""

    def __init__(self, source: Snapshots) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        """Nothing: families are only known at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield up, the last successes and the build info."""
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
        for snap in self._source().values():
            up.add_metric([snap.name], 1 if snap.up else 0)
            for endpoint, stamp in sorted(snap.last_success.items()):
                last.add_metric([snap.name, endpoint], stamp)
        yield up
        yield last
        build = GaugeMetricFamily(
            "elevenlabs_exporter_build_info",
            "Always 1; the version label says which elevenlabs-exporter is running.",
            labels=["version"],
        )
        build.add_metric([__version__], 1)
        yield build
