"""The character-stats source: requests, latency and concurrency (opt-in, deprecated API).

ElevenLabs' usage page shows request counts, time to first byte and concurrency next
to credits. Only ``GET /v1/usage/character-stats`` serves them, and it is deprecated
upstream, so this source is opt-in (``character_stats: true`` per workspace) and can
fail or disappear without touching the credits:

* polled no more often than every 60 s, after the subscription in the same round, so
  it knows the billing cycle whenever the subscription answered;
* counters (requests, TTS characters, audio seconds) kept by the same revision-safe
  ledger as credits, in hour buckets, from the start of the billing cycle (else from
  start-up), re-reading the last few hours every poll;
* gauges (time to first byte, concurrency) holding the last complete hour's value;
* not required: its failures count under
  ``elevenlabs_exporter_poll_errors_total{endpoint="character_stats"}`` and never set
  ``elevenlabs_up`` to 0; its collector exports its own freshness signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.api.client import ElevenLabsClient
from exporter.api.parse import Labels, UsageRow, bad
from exporter.config import Config, WorkspaceConfig
from exporter.core.counted import Counted
from exporter.core.ledger import Ledger, ReadPlan
from exporter.core.windows import Window, floor_to
from exporter.polling.source import Outcome, Source, WorkspaceFacts

BUCKET = 3600  # hour buckets: the finest interval the endpoint documents by name
# Hours re-read by every poll. The endpoint documents no settling time; the re-read is
# one request per metric whatever its length, so a generous lookback costs only rows.
LOOKBACK = 6 * 3600
MIN_INTERVAL = 60.0  # a deprecated endpoint: never polled more often than this
# The API metrics read: counters kept by a ledger, gauges of the last complete hour.
COUNTER_METRICS = ("request_count", "tts_characters", "minutes_used")
GAUGE_METRICS = ("ttfb_avg", "ttfb_p95", "concurrency")


@dataclass(frozen=True)
class CharacterStatsPart:
    """Everything exported for one workspace, in the API's units (the collector converts).

    ``counters`` maps an API metric to its totals per label set (``(product_type,)``);
    ``gauges`` maps an API metric to the last complete hour's value.
    """

    counters: Mapping[str, Mapping[Labels, float]] = field(default_factory=dict)
    gauges: Mapping[str, float] = field(default_factory=dict)
    gauge_bucket: int | None = None  # Unix seconds: the hour the gauges describe
    last_success: float = 0.0


def poll_interval(config: Config, workspace: WorkspaceConfig) -> float:
    """The workspace's poll interval, but never under a minute."""
    return max(MIN_INTERVAL, workspace.poll_interval or config.poll_interval)


class CharacterStatsSource(Source):
    """Reads every character-stats metric of one workspace, all or nothing."""

    endpoint = "character_stats"
    required = False
    reports_freshness = False

    def __init__(self, client: ElevenLabsClient, facts: WorkspaceFacts, interval: float) -> None:
        self.client = client
        self.facts = facts
        self._interval = max(MIN_INTERVAL, interval)
        self.counters: dict[str, Counted] = {}
        self.gauges: dict[str, float] = {}
        self.gauge_bucket: int | None = None

    def interval(self) -> float:
        """The workspace's poll interval, but never under a minute."""
        return self._interval

    def anchor(self) -> int | None:
        """The start of the billing cycle the subscription source found, if known."""
        cycle = self.facts.cycle
        return cycle.start if cycle is not None and cycle.known else None

    def _sync_anchor(self, now: float) -> None:
        """Start the counters, or restart them when a new billing cycle began.

        Counting starts at the cycle start when it is known, else at start-up. The
        anchor only moves forward: a cycle start learnt after start-up would add a
        false burst of history to counters already exported.
        """
        known = self.anchor()
        current = next(iter(self.counters.values())).ledger.anchor if self.counters else None
        if known is None and current is not None:
            return  # still no cycle: keep counting from start-up
        anchor = floor_to(known if known is not None else now, BUCKET)
        if current is not None and anchor <= current:
            return
        self.counters = {
            metric: Counted.plain(Ledger(anchor=anchor, bucket=BUCKET, lookback=LOOKBACK))
            for metric in COUNTER_METRICS
        }

    async def _rows(self, metric: str, window: Window) -> list[UsageRow]:
        series = await self.client.character_stats(
            window.start * 1000, window.end * 1000, metric, window.interval, "product_type"
        )
        rows: dict[tuple[int, Labels], float] = {}
        for key, points in series.items():
            for stamp, value in points:
                bucket = floor_to(stamp // 1000, window.interval)
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

    async def poll(self, now: float) -> Outcome:
        """Per counter metric the windows its ledger plans, then one request per gauge;
        everything applies together once every request succeeded."""
        self._sync_anchor(now)
        requests = 0
        reads: list[tuple[Counted, ReadPlan, list[UsageRow], list[UsageRow]]] = []
        for metric in COUNTER_METRICS:
            counted = self.counters[metric]
            plan = counted.ledger.plan(now)
            revisable: list[UsageRow] = []
            settled: list[UsageRow] = []
            for target, windows in ((revisable, plan.revisable), (settled, plan.settled)):
                for window in windows:
                    target.extend(await self._rows(metric, window))
                    requests += 1
            reads.append((counted, plan, revisable, settled))
        end = floor_to(now, BUCKET)
        gauges: dict[str, float] = {}
        for metric in GAUGE_METRICS:
            value = await self._gauge(metric, end - BUCKET, end)
            requests += 1
            if value is not None:
                gauges[metric] = value
        for counted, plan, revisable, settled in reads:
            counted.apply(plan, revisable, settled)
        self.gauges, self.gauge_bucket = gauges, end - BUCKET
        rows = sum(len(r) + len(s) for _, _, r, s in reads) + len(gauges)
        return Outcome(requests=requests, rows=rows)

    def part(self, last_success: float) -> CharacterStatsPart:
        """The counters, the gauges and when they were last read."""
        return CharacterStatsPart(
            counters=MappingProxyType(
                {m: MappingProxyType(dict(c.total)) for m, c in self.counters.items()}
            ),
            gauges=MappingProxyType(dict(self.gauges)),
            gauge_bucket=self.gauge_bucket,
            last_success=last_success,
        )
