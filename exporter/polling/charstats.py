"""Request, latency and concurrency statistics from ``GET /v1/usage/character-stats``.

ElevenLabs' usage page shows request counts, time to first byte and concurrency next
to credits. Only the character-stats endpoint serves them, and it is deprecated
upstream, so this is a separate, opt-in part (``character_stats: true`` per
workspace) that can fail or disappear without touching the credits ledger:

* its own poller, polling no more often than every 60 s, one request at a time;
* counters (requests, TTS characters, audio seconds) kept by the same revision-safe
  :class:`~exporter.ledger.Ledger` as credits, in hour buckets, from the start of the
  billing cycle (else from start-up), re-reading the last few hours every poll;
* gauges (time to first byte, concurrency) holding the last complete hour's value;
* its own immutable snapshots, store (with a version for the exposition cache) and
  collector, with ``elevenlabs_exporter_character_stats_last_success_timestamp_seconds``
  as its freshness signal. Its failures are counted under
  ``elevenlabs_exporter_poll_errors_total{endpoint="character_stats"}`` and never
  touch ``elevenlabs_up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol

from exporter.api.backoff import next_poll_delay
from exporter.api.charstats import Series
from exporter.api.errors import ApiError, missing_permission
from exporter.api.parse import Labels, UsageRow, bad
from exporter.config import Config, WorkspaceConfig
from exporter.core.ledger import Ledger, ReadPlan, Window
from exporter.core.snapshot import WorkspaceSnapshot
from exporter.polling.source import PollTelemetry

ENDPOINT = "character_stats"  # the endpoint label of the request and poll-error metrics
BUCKET = 3600  # hour buckets: the finest interval the endpoint documents by name
# Hours re-read by every poll. The endpoint documents no settling time; the re-read is
# one request per metric whatever its length, so a generous lookback costs only rows.
LOOKBACK = 6 * 3600
MIN_INTERVAL = 60.0  # a deprecated endpoint: never polled more often than this
# The API metrics read: counters kept by a ledger, gauges of the last complete hour.
COUNTER_METRICS = ("request_count", "tts_characters", "minutes_used")
GAUGE_METRICS = ("ttfb_avg", "ttfb_p95", "concurrency")


class CharacterStatsSource(Protocol):
    """What the poller needs from the API client (``ElevenLabsClient`` provides it)."""

    async def character_stats(
        self, start_ms: int, end_ms: int, metric: str, bucket_seconds: int, breakdown: str
    ) -> Series:
        """Values per key and bucket start (Unix ms) for ``[start_ms, end_ms)``."""
        ...


@dataclass(frozen=True)
class CharacterStatsSnapshot:
    """Everything exported for one workspace, in the API's units (the collector converts).

    ``counters`` maps an API metric to its totals per label set (``(product_type,)``);
    ``gauges`` maps an API metric to the last complete hour's value.
    """

    name: str
    counters: Mapping[str, Mapping[Labels, float]] = field(default_factory=dict)
    gauges: Mapping[str, float] = field(default_factory=dict)
    gauge_bucket: int | None = None  # Unix seconds: the hour the gauges describe
    up: bool = False
    last_success: float = 0.0


class CharacterStatsStore:
    """The latest snapshot per workspace, swapped whole; ``version`` counts publishes
    so that the cached exposition re-renders after a poll."""

    def __init__(self, workspaces: tuple[str, ...] | list[str] = ()) -> None:
        self._lock = threading.Lock()
        self._current: Mapping[str, CharacterStatsSnapshot] = MappingProxyType(
            {name: CharacterStatsSnapshot(name) for name in workspaces}
        )
        self.version = 0

    def publish(self, snapshot: CharacterStatsSnapshot) -> None:
        """Swap in a workspace's new snapshot (one writer per workspace)."""
        with self._lock:
            updated = dict(self._current)
            updated[snapshot.name] = snapshot
            self._current = MappingProxyType(updated)
            self.version += 1

    def current(self) -> Mapping[str, CharacterStatsSnapshot]:
        """The latest snapshots, by workspace name (a read-only view)."""
        return self._current


# Polling ----------------------------------------------------------------------------


def poll_interval(config: Config, workspace: WorkspaceConfig) -> float:
    """The workspace's poll interval, but never under a minute."""
    return max(MIN_INTERVAL, workspace.poll_interval or config.poll_interval)


def cycle_anchor(
    source: Callable[[], Mapping[str, WorkspaceSnapshot]], workspace: str
) -> Callable[[], int | None]:
    """The start of the workspace's billing cycle as the credits poller last saw it.

    Read from its published snapshot (reset time minus cycle length), so this part
    sends no subscription requests of its own; None while the cycle is unknown.
    """

    def anchor() -> int | None:
        snap = source().get(workspace)
        if snap is None or snap.cycle_reset is None or snap.cycle_length is None:
            return None
        return snap.cycle_reset - snap.cycle_length

    return anchor


def _floor(value: float, step: int) -> int:
    return int(value // step) * step


class CharacterStatsPoller:
    """Polls the character-stats endpoint for one workspace and publishes snapshots.

    Every poll makes its requests one after another: per counter metric the windows
    its ledger plans (one request once seeded), then one request per gauge metric.
    The first failure ends the poll; it is counted and logged, the values already
    exported stay (a counter whose requests all succeeded before it keeps its update:
    each ledger is exact on its own), and the next poll re-reads whatever was missed.
    """

    def __init__(
        self,
        *,
        workspace: str,
        client: CharacterStatsSource,
        store: CharacterStatsStore,
        telemetry: PollTelemetry,
        log: Any,
        interval: float = MIN_INTERVAL,
        anchor: Callable[[], int | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.workspace = workspace
        self.client = client
        self.store = store
        self.telemetry = telemetry
        self.log = log.bind(workspace=workspace, endpoint=ENDPOINT)
        self.interval = max(MIN_INTERVAL, interval)
        self.anchor = anchor
        self.clock = clock
        self.ledgers: dict[str, Ledger] = {}
        self.gauges: dict[str, float] = {}
        self.gauge_bucket: int | None = None
        self.up = False
        self.last_success = 0.0
        self.failures = 0
        self.last_error: ApiError | None = None
        self._rng = random.Random()
        telemetry.register_workspace(workspace, [ENDPOINT])

    def _sync_anchor(self) -> None:
        """Start the ledgers, or restart them when a new billing cycle began.

        Counting starts at the cycle start when it is known, else at start-up. The
        anchor only moves forward: a cycle start learnt after start-up would add a
        false burst of history to counters already exported.
        """
        known = self.anchor()
        current = next(iter(self.ledgers.values())).anchor if self.ledgers else None
        if known is None and current is not None:
            return  # still no cycle: keep counting from start-up
        anchor = _floor(known if known is not None else self.clock(), BUCKET)
        if current is not None and anchor <= current:
            return
        if current is not None:
            self.log.info("billing cycle changed, counters restart", anchor=anchor)
        self.ledgers = {
            metric: Ledger(
                anchor=anchor, bucket=BUCKET, lookback=LOOKBACK, label_names=("product_type",)
            )
            for metric in COUNTER_METRICS
        }

    async def _rows(self, metric: str, window: Window) -> list[UsageRow]:
        series = await self.client.character_stats(
            window.start * 1000, window.end * 1000, metric, window.interval, "product_type"
        )
        rows: dict[tuple[int, Labels], float] = {}
        for key, points in series.items():
            for stamp, value in points:
                bucket = _floor(stamp // 1000, window.interval)
                if window.start <= bucket < window.end:
                    rows[(bucket, (key,))] = rows.get((bucket, (key,)), 0.0) + value
        return [UsageRow(bucket, labels, value) for (bucket, labels), value in rows.items()]

    async def _gauge(self, metric: str, start: int, end: int) -> float | None:
        series = await self.client.character_stats(start * 1000, end * 1000, metric, BUCKET, "none")
        points = series.get("All")
        if points is None and len(series) == 1:
            points = next(iter(series.values()))  # breakdown none under another key
        if points is None and series:
            raise bad(f"character_stats: no 'All' among {sorted(series)[:5]}")
        inside = [(s, v) for s, v in points or [] if start <= s // 1000 < end]
        return max(inside)[1] if inside else None

    async def _read(self, now: float) -> tuple[int, int]:
        requests = rows = 0
        for metric in COUNTER_METRICS:
            ledger = self.ledgers[metric]
            plan: ReadPlan = ledger.plan(now)
            revisable: list[UsageRow] = []
            settled: list[UsageRow] = []
            for target, windows in ((revisable, plan.revisable), (settled, plan.settled)):
                for window in windows:
                    target.extend(await self._rows(metric, window))
                    requests += 1
            ledger.apply(plan, revisable, settled)
            rows += len(revisable) + len(settled)
        end = _floor(now, BUCKET)
        gauges: dict[str, float] = {}
        for metric in GAUGE_METRICS:
            value = await self._gauge(metric, end - BUCKET, end)
            requests += 1
            if value is not None:
                gauges[metric] = value
                rows += 1
        self.gauges, self.gauge_bucket = gauges, end - BUCKET
        return requests, rows

    async def poll_once(self) -> bool:
        """Read every metric once; True when every request succeeded."""
        started = time.perf_counter()
        self.last_error = None
        self._sync_anchor()
        try:
            requests, rows = await self._read(self.clock())
        except ApiError as err:
            self.last_error, self.up = err, False
            self.failures += 1
            self.telemetry.poll_failed(self.workspace, ENDPOINT, err.reason)
            fields: dict[str, Any] = {"reason": err.reason, "error": str(err)}
            if err.status is not None:
                fields["status"] = err.status
            permission = missing_permission(str(err)) if err.reason == "permission" else None
            if permission:
                fields["missing_permission"] = permission
            self.log.warning(
                "poll failed",
                outcome="error",
                duration_seconds=round(time.perf_counter() - started, 3),
                **fields,
            )
            self.publish()
            return False
        self.up, self.failures = True, 0
        self.last_success = self.clock()
        self.log.info(
            "poll",
            outcome="ok",
            requests=requests,
            rows=rows,
            duration_seconds=round(time.perf_counter() - started, 3),
        )
        self.publish()
        return True

    def snapshot(self) -> CharacterStatsSnapshot:
        """The workspace's current values as an immutable snapshot."""
        return CharacterStatsSnapshot(
            name=self.workspace,
            counters=MappingProxyType(
                {m: MappingProxyType(dict(ledger.total)) for m, ledger in self.ledgers.items()}
            ),
            gauges=MappingProxyType(dict(self.gauges)),
            gauge_bucket=self.gauge_bucket,
            up=self.up,
            last_success=self.last_success,
        )

    def publish(self) -> None:
        """Swap in a fresh snapshot."""
        self.store.publish(self.snapshot())

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every interval (with jitter and backoff) until ``stop`` is set.

        The first poll waits up to one interval for the credits poller to learn the
        billing cycle, so the counters start at the cycle rather than at start-up.
        """
        self.publish()
        waited = 0.0
        while self.anchor() is None and waited < self.interval and not stop.is_set():
            await self._wait(stop, 1.0)
            waited += 1.0
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:  # a bug must not kill the loop: log it and keep serving
                self.log.exception("poll crashed")
            delay = next_poll_delay(self.interval, self.failures, self.last_error, self._rng)
            await self._wait(stop, delay)


# Wiring -------------------------------------------------------------------------------


class WorkspaceGate(asyncio.Semaphore):
    """One request in flight per workspace, within the shared cap across workspaces.

    An opted-in workspace has two pollers (credits and character stats) sharing one
    client; giving that client this gate as its limiter keeps the promise that a
    workspace never has two requests in flight.
    """

    def __init__(self, shared: asyncio.Semaphore) -> None:
        super().__init__(1)
        self._shared = shared

    async def acquire(self) -> Literal[True]:
        """Take this workspace's turn, then a slot of the shared cap."""
        await super().acquire()
        try:
            await self._shared.acquire()
        except BaseException:
            super().release()
            raise
        return True

    def release(self) -> None:
        """Give back the shared slot and this workspace's turn."""
        self._shared.release()
        super().release()
