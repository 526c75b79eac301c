"""Measurements that drive a real workspace loop in-process with an injected clock.

The poller, its real API client and the simulated API all run in this process: the
simulator serves its model on a loopback port from a thread, its clock is frozen and
moved by hand, and the poller's clock is the simulator's. So a simulated week runs in
a minute: requests and rows per poll as history grows through a billing cycle, and
what the ledger holds after a week of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from exporter.api.client import ElevenLabsClient
from exporter.config import Config, KeySource, Secret, WorkspaceConfig
from exporter.core.ledger import Ledger
from exporter.core.snapshot import SnapshotStore
from exporter.core.state import StateStore
from exporter.metrics.telemetry import Telemetry
from exporter.polling.credits import CreditsSource
from exporter.polling.loop import WorkspaceLoop
from exporter.polling.workspace import workspace_loop
from exporter.simulator import SimState, Simulator, cycle_bounds

# A fixed 31-day simulated cycle (2026-10-07 09:13:27 UTC to 2026-11-07), so every run
# reads the same data.
CYCLE_START = cycle_bounds(datetime(2026, 10, 20, tzinfo=UTC).timestamp())[0]
DAY = 86_400


@dataclass
class CaptureLog:
    """A logger that keeps the fields of each ``poll`` line and drops everything else."""

    polls: list[dict[str, Any]] = field(default_factory=list)

    def bind(self, **_: Any) -> CaptureLog:
        return self

    def info(self, event: str, *_: Any, **fields: Any) -> None:
        if event == "poll":
            self.polls.append(fields)

    def _drop(self, *_: Any, **__: Any) -> None:
        return None

    warning = error = exception = debug = _drop


@dataclass
class Rig:
    """One workspace's poller against an in-process simulator."""

    state: SimState
    poller: WorkspaceLoop
    log: CaptureLog
    store: StateStore

    @property
    def ledger(self) -> Ledger | None:
        """The credits ledger of the workspace, once seeded."""
        source = next(s for s in self.poller.sources if isinstance(s, CreditsSource))
        return source.ledger

    def requests(self) -> int:
        """API requests the simulator has answered so far."""
        with self.state.lock:
            return len(self.state.requests)

    def rows(self) -> int:
        """Usage rows the poller has logged so far."""
        return sum(int(p.get("rows", 0)) for p in self.log.polls if p.get("endpoint") == "usage")

    def forget_requests(self) -> None:
        """Drop the simulator's request log (it grows with every request)."""
        with self.state.lock:
            self.state.requests.clear()


@contextlib.asynccontextmanager
async def rig(now: float) -> AsyncIterator[Rig]:
    """A simulator frozen at ``now`` and a default-config poller reading it over HTTP."""
    state = SimState(frozen_at=now)
    sim = Simulator(state).start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            workspace = WorkspaceConfig("main", Secret("demo"), KeySource("demo"), sim.url)
            config = Config(workspaces=(workspace,))
            telemetry = Telemetry(CollectorRegistry())
            log = CaptureLog()
            store = StateStore(None, log)  # keeps each poll's state, as the exporter does
            client = ElevenLabsClient(
                workspace="main",
                base_url=sim.url,
                api_key=lambda: "demo",
                http=http,
                telemetry=telemetry,
            )
            poller = workspace_loop(
                workspace,
                config,
                client,
                snapshots=SnapshotStore(["main"]),
                telemetry=telemetry,
                log=log,
                clock=state.now,
                state=store,
            )
            yield Rig(state, poller, log, store)
    finally:
        sim.stop()


async def _history_point(day: float, polls: int, step: int) -> dict[str, Any]:
    async with rig(CYCLE_START + day * DAY) as r:
        started = time.perf_counter()
        ok = await r.poller.poll_once()
        seed_seconds = time.perf_counter() - started
        seed_requests, seed_rows = r.requests(), r.rows()
        per_poll_requests: list[int] = []
        per_poll_rows: list[int] = []
        poll_seconds: list[float] = []
        for _ in range(polls):
            r.state.frozen_at = r.state.now() + step
            before_requests, before_rows = r.requests(), r.rows()
            started = time.perf_counter()
            ok = await r.poller.poll_once() and ok
            poll_seconds.append(time.perf_counter() - started)
            per_poll_requests.append(r.requests() - before_requests)
            per_poll_rows.append(r.rows() - before_rows)
        assert r.ledger is not None
        live = r.ledger.live_entries
    return {
        "day": day,
        "ok": ok,
        "seed_requests": seed_requests,
        "seed_rows": seed_rows,
        "seed_ms": seed_seconds * 1000,
        "polls": polls,
        "step": step,
        "poll_requests_min": min(per_poll_requests),
        "poll_requests_max": max(per_poll_requests),
        "poll_requests_mean": statistics.fmean(per_poll_requests),
        "poll_rows_mean": statistics.fmean(per_poll_rows),
        "poll_rows_max": max(per_poll_rows),
        "hour_requests": sum(per_poll_requests) * 3600 / (polls * step),
        "hour_rows": sum(per_poll_rows) * 3600 / (polls * step),
        "poll_ms_median": statistics.median(poll_seconds) * 1000,
        "live_entries": live,
    }


def requests_vs_history(
    days: tuple[float, ...] = (1, 7, 15, 30), polls: int = 60, step: int = 60
) -> list[dict[str, Any]]:
    """Seeding cost and per-poll cost at several points of one billing cycle.

    For each day, a fresh poller seeds at ``CYCLE_START + day`` and then polls
    ``polls`` times, ``step`` seconds apart (the default: an hour of 60 s polls).
    """
    return [asyncio.run(_history_point(day, polls, step)) for day in days]


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it references (each object counted once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(item, seen) for item in obj)
    elif hasattr(obj, "__dict__"):
        size += deep_size(vars(obj), seen)
    for name in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, name):
            size += deep_size(getattr(obj, name), seen)
    return size


async def _week(days: float, step: int, traced_hours: float) -> dict[str, Any]:
    # A week in the middle of the cycle; seeding reads its first ten days.
    async with rig(CYCLE_START + 10 * DAY) as r:
        return await _run_week(r, days, step, traced_hours)


async def _run_week(r: Rig, days: float, step: int, traced_hours: float) -> dict[str, Any]:
    poller = r.poller
    await poller.poll_once()
    peak_entries = 0
    polls = int(days * DAY // step)
    traced_from = polls - max(1, int(traced_hours * 3600 // step))
    started = time.perf_counter()
    requests = r.requests()
    for index in range(polls):
        if index == traced_from:
            # Tracing slows every allocation tenfold, so only the last hours are traced:
            # longer than the lookback, so every bucket the ledger still holds was
            # allocated while tracing.
            tracemalloc.start()
        r.state.frozen_at = r.state.now() + step
        await poller.poll_once()
        assert r.ledger is not None
        peak_entries = max(peak_entries, r.ledger.live_entries)
        requests += r.requests()
        r.forget_requests()
        r.log.polls.clear()
    elapsed = time.perf_counter() - started
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The poller's side only: the simulator and the HTTP machinery are left out.
    ours = snapshot.filter_traces(
        [
            tracemalloc.Filter(True, "*/exporter/*"),
            tracemalloc.Filter(False, "*/exporter/simulator.py"),
        ]
    )
    by_file: dict[str, int] = {}
    for stat in ours.statistics("filename"):
        name = stat.traceback[0].filename.rsplit("/", 1)[-1]
        by_file[name] = by_file.get(name, 0) + stat.size
    assert r.ledger is not None
    seen: set[int] = set()
    return {
        "days": days,
        "step": step,
        "polls": polls,
        "seconds": elapsed,
        "requests": requests,
        "live_entries": r.ledger.live_entries,
        "live_entries_max": peak_entries,
        "ledger_bytes": deep_size(r.ledger, seen),
        # What the state-file copy and the snapshot add beyond the ledger (they share
        # its numbers and label tuples).
        "state_bytes": deep_size(r.store._pieces.get("main"), seen),
        "snapshot_bytes": deep_size(poller.snapshot(), seen),
        "traced_hours": (polls - traced_from) * step / 3600,
        "traced_current": current,
        "traced_peak": peak,
        "exporter_live_bytes": sum(by_file.values()),
        "exporter_live_by_file": dict(sorted(by_file.items(), key=lambda kv: -kv[1])),
    }


def ledger_week(days: float = 7, step: int = 300, traced_hours: float = 3) -> dict[str, Any]:
    """One workspace polled every ``step`` seconds for ``days`` simulated days.

    Reports the ledger's live entries, the deep size of the ledger, of the state the
    exporter keeps for the state file and of the published snapshot, and what
    tracemalloc sees still allocated by the exporter's modules at the end.
    """
    return asyncio.run(_week(days, step, traced_hours))
