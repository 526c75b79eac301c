"""The collector of the opt-in character-stats figures (see :mod:`exporter.polling.charstats`).

Counters (requests, TTS characters, audio seconds) and last-hour gauges (time to
first byte, concurrency), converted to base units here, plus the part's own
freshness signal. Registered only when some workspace opted in, so the exposition
of everyone else is unchanged. Never any I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.core.snapshot import WorkspaceSnapshot
from exporter.metrics.families import SnapshotCollector
from exporter.polling.charstats import CharacterStatsPart

# What is exported -----------------------------------------------------------------

POLLED = (
    "From GET /v1/usage/character-stats, which ElevenLabs has deprecated (opt-in per "
    "workspace with character_stats: true). Values come from the last successful poll "
    "of the API, not from the scrape."
)
COUNTED = (
    "Counted from hour buckets since the start of the hour in which the current billing "
    "cycle began (else the hour the exporter started), restarting from 0 at a new "
    "cycle; a bucket is counted once it is complete, and later upward revisions of the "
    "last hours are added."
)
LAST_HOUR = "Value of the last complete UTC hour, re-read at every poll."


def _same(value: float) -> float:
    return value


def _minutes_to_seconds(value: float) -> float:
    return value * 60


def _ms_to_seconds(value: float) -> float:
    return value / 1000


@dataclass(frozen=True)
class Family:
    """One exported family: the API metric it comes from and how to reach base units."""

    metric: str
    name: str
    help: str
    to_base: Callable[[float], float] = _same


COUNTERS = (
    Family(
        "request_count",
        "elevenlabs_requests",
        "Requests the workspace made to ElevenLabs, per product (metric request_count). " + COUNTED,
    ),
    Family(
        "tts_characters",
        "elevenlabs_tts_characters",
        "Characters of text converted to speech, per product (metric tts_characters). " + COUNTED,
    ),
    Family(
        "minutes_used",
        "elevenlabs_audio_seconds",
        "Seconds of audio processed, per product (metric minutes_used, in minutes, times "
        "60). " + COUNTED,
        _minutes_to_seconds,
    ),
)
GAUGES = (
    Family(
        "ttfb_avg",
        "elevenlabs_time_to_first_byte_average_seconds",
        "Average time to first byte of the workspace's requests, in seconds (metric "
        "ttfb_avg; converted on the assumption that the API reports milliseconds). " + LAST_HOUR,
        _ms_to_seconds,
    ),
    Family(
        "ttfb_p95",
        "elevenlabs_time_to_first_byte_p95_seconds",
        "95th percentile of the time to first byte of the workspace's requests, in seconds "
        "(metric ttfb_p95; converted on the assumption that the API reports "
        "milliseconds). " + LAST_HOUR,
        _ms_to_seconds,
    ),
    Family(
        "concurrency",
        "elevenlabs_concurrent_requests",
        "Concurrent requests of the workspace as the API's concurrency metric reports "
        "them (presumably the peak; a count, no unit). " + LAST_HOUR,
    ),
)


class CharacterStatsCollector(SnapshotCollector):
    """Fresh families from each opted-in workspace's :class:`CharacterStatsPart`."""

    def tokens(self) -> list[tuple[str, object]]:
        """Each workspace with its snapshot, by name."""
        return sorted(super().tokens(), key=lambda item: item[0])

    def families(self) -> list[Metric]:
        """The counters, the gauges and the part's own freshness."""
        counters: list[Metric] = [
            CounterMetricFamily(
                spec.name, f"{spec.help} {POLLED}", labels=["workspace", "product_type"]
            )
            for spec in COUNTERS
        ]
        gauges: list[Metric] = [
            GaugeMetricFamily(spec.name, f"{spec.help} {POLLED}", labels=["workspace"])
            for spec in GAUGES
        ]
        last = GaugeMetricFamily(
            "elevenlabs_exporter_character_stats_last_success_timestamp_seconds",
            "Unix time in seconds of the last successful poll of the deprecated "
            "GET /v1/usage/character-stats (0 before the first). Its failures never set "
            "elevenlabs_up to 0.",
            labels=["workspace"],
        )
        return [*counters, *gauges, last]

    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """One opted-in workspace's figures, in base units."""
        part = snap.part(CharacterStatsPart)
        if part is None:
            return
        counters = cast("list[CounterMetricFamily]", families[: len(COUNTERS)])
        gauges = cast("list[GaugeMetricFamily]", families[len(COUNTERS) :])
        for spec, counter in zip(COUNTERS, counters, strict=True):
            for labels, value in sorted(part.counters.get(spec.metric, {}).items()):
                counter.add_metric([snap.name, *labels], spec.to_base(value))
        for spec, gauge in zip(GAUGES, gauges, strict=False):
            if spec.metric in part.gauges:
                gauge.add_metric([snap.name], spec.to_base(part.gauges[spec.metric]))
        gauges[-1].add_metric([snap.name], part.last_success)
