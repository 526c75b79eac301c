"""The collector of the opt-in character-stats figures (see :mod:`exporter.polling.charstats`).

Counters (requests, TTS characters, audio seconds) and last-hour gauges (time to
first byte, concurrency), converted to base units here, plus the part's own
freshness signal. Never any I/O.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import Config, WorkspaceConfig
from exporter.core.snapshot import WorkspaceSnapshot
from exporter.metrics.telemetry import Telemetry
from exporter.polling.charstats import (
    CharacterStatsPoller,
    CharacterStatsSnapshot,
    CharacterStatsSource,
    CharacterStatsStore,
    WorkspaceGate,
    cycle_anchor,
    poll_interval,
)

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


class CharacterStatsCollector(Collector):
    """Fresh families from the snapshots returned by ``source``; never any I/O."""

    def __init__(self, source: Callable[[], Mapping[str, CharacterStatsSnapshot]]) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        """Nothing: families are only known at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the counters, the gauges and the freshness of every workspace."""
        snapshots = sorted(self._source().values(), key=lambda s: s.name)
        for spec in COUNTERS:
            counter = CounterMetricFamily(
                spec.name, f"{spec.help} {POLLED}", labels=["workspace", "product_type"]
            )
            for snap in snapshots:
                for labels, value in sorted(snap.counters.get(spec.metric, {}).items()):
                    counter.add_metric([snap.name, *labels], spec.to_base(value))
            yield counter
        for spec in GAUGES:
            gauge = GaugeMetricFamily(spec.name, f"{spec.help} {POLLED}", labels=["workspace"])
            for snap in snapshots:
                if spec.metric in snap.gauges:
                    gauge.add_metric([snap.name], spec.to_base(snap.gauges[spec.metric]))
            yield gauge
        last = GaugeMetricFamily(
            "elevenlabs_exporter_character_stats_last_success_timestamp_seconds",
            "Unix time in seconds of the last successful poll of the deprecated "
            "GET /v1/usage/character-stats (0 before the first). Its failures never set "
            "elevenlabs_up to 0.",
            labels=["workspace"],
        )
        for snap in snapshots:
            last.add_metric([snap.name], snap.last_success)
        yield last


class CharacterStats:
    """The character-stats part of one exporter run: store, collector and pollers.

    The collector is registered only when some workspace opted in, so the exposition
    of everyone else is unchanged.
    """

    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry,
        telemetry: Telemetry,
        snapshots: Callable[[], Mapping[str, WorkspaceSnapshot]],
        log: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._clock = clock
        self._telemetry = telemetry
        self._snapshots = snapshots
        self._log = log
        opted = [ws.name for ws in config.workspaces if ws.character_stats]
        self.store = CharacterStatsStore(opted)
        self.pollers: list[CharacterStatsPoller] = []
        if opted:
            registry.register(CharacterStatsCollector(self.store.current))

    @property
    def version(self) -> int:
        """Changes whenever an exported character-stats value may have changed."""
        return self.store.version

    def limiter(self, workspace: WorkspaceConfig, shared: asyncio.Semaphore) -> asyncio.Semaphore:
        """The limiter for a workspace's client: a per-workspace gate when opted in."""
        return WorkspaceGate(shared) if workspace.character_stats else shared

    def add(self, workspace: WorkspaceConfig, client: CharacterStatsSource) -> None:
        """Create the poller of an opted-in workspace (others are ignored)."""
        if not workspace.character_stats:
            return
        self.pollers.append(
            CharacterStatsPoller(
                workspace=workspace.name,
                client=client,
                store=self.store,
                telemetry=self._telemetry,
                log=self._log,
                interval=poll_interval(self._config, workspace),
                anchor=cycle_anchor(self._snapshots, workspace.name),
                clock=self._clock,
            )
        )

    def tasks(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """Start one polling task per opted-in workspace."""
        return [
            asyncio.create_task(p.run(stop), name=f"character-stats-{p.workspace}")
            for p in self.pollers
        ]
