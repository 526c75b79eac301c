"""The real workspace loop and client over loopback HTTP against the simulator.

The simulator's clock is frozen and shared with the loop, so each test decides
when time passes; the ground truth comes from the simulator itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from support import credits_of, credits_part, sim_poller

from exporter.core.state import STATE_VERSION, StateStore
from exporter.log import get_logger
from exporter.polling.loop import WorkspaceLoop
from exporter.simulator import SimState, Simulator, cycle_bounds

# 2026-11-25T15:37:00Z: a Wednesday afternoon, 18 days into the simulated cycle.
START = 1_795_621_020.0
LOG = get_logger()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=START)).start()
    yield simulator
    simulator.stop()


def truth(sim: Simulator) -> dict[str, float]:
    """What the simulated API says was used from the cycle start to now: the current
    minute so far included, as the exporter reads the bucket under way."""
    start, _ = cycle_bounds(sim.state.now())
    end = int(sim.state.now() // 60) * 60 + 60
    return {k: v for k, v in sim.state.truth(start - start % 60, end).items() if v}


def counters(loop: WorkspaceLoop) -> dict[str, float]:
    counted = credits_of(loop).counted
    assert counted is not None
    return {labels[0]: v for labels, v in counted.total.items() if v}


def advance(sim: Simulator, seconds: float) -> None:
    sim.state.frozen_at = sim.state.now() + seconds


async def test_seeded_counters_equal_the_ground_truth(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """At start-up the counters hold every credit since the cycle start, exactly, for
    every product, and stay exact as minutes pass and recent buckets fill in."""
    poller = sim_poller(sim, http)
    assert await poller.poll_once()
    assert len(counters(poller)) >= 5
    assert counters(poller) == truth(sim)
    for _ in range(8):
        advance(sim, 60)
        assert await poller.poll_once()
        assert counters(poller) == truth(sim)
    snapshot = poller.snapshot()
    assert snapshot.up
    assert snapshot.ready
    cycle = credits_part(poller).cycle
    assert cycle is not None
    assert {k[0]: v for k, v in cycle.items() if v} == truth(sim)


async def test_late_revision_raises_the_counter_by_exactly_its_size(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """A +x revision of a bucket inside the lookback adds exactly x by the next re-read
    of the whole lookback (every reread_interval, 10 minutes); a -y revision adds
    nothing and shows up in the downward-revision counter."""
    poller = sim_poller(sim, http)
    await poller.poll_once()
    minute = int(sim.state.now() // 60) - 30
    sim.state.adjustments[(3, minute)] = 7.5  # product 3 is dubbing
    advance(sim, 600)
    await poller.poll_once()
    assert counters(poller) == truth(sim)
    assert credits_of(poller).counted.down[("dubbing",)] == 0.0
    sim.state.adjustments[(3, minute)] = 7.5 - 2.0
    advance(sim, 600)
    await poller.poll_once()
    expected = truth(sim)
    expected["dubbing"] += 2.0  # the counter keeps what it counted
    assert counters(poller) == expected
    assert credits_of(poller).counted.down[("dubbing",)] == 2.0


async def test_between_full_rereads_a_poll_reads_only_the_recent_minutes(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """After seeding, a poll re-reads the last 10 minutes (the minute under way
    included); the whole two-hour lookback is re-read once every 10 minutes. Over an
    hour of polls that is well under a quarter of the rows of re-reading the lookback
    every poll, and the counters stay exact."""
    poller = sim_poller(sim, http)
    await poller.poll_once()
    sim.state.requests.clear()
    spans = []
    for _ in range(60):
        advance(sim, 60)
        assert await poller.poll_once()
        spans += [
            (r["body"]["end_time"] - r["body"]["start_time"]) // 1000
            for r in sim.state.requests
            if r["endpoint"] == "usage"
        ]
        sim.state.requests.clear()
    assert counters(poller) == truth(sim)
    assert spans.count(600) == 54  # the recent 10 minutes
    assert len(spans) == 60
    every_poll = 60 * (7200 + 60)
    assert sum(spans) * 4 < every_poll


@pytest.mark.parametrize("downtime", [20 * 60, 5 * 3600])
async def test_restart_with_state_file_loses_nothing_and_doubles_nothing(
    sim: Simulator, http: httpx.AsyncClient, tmp_path: Path, downtime: int
) -> None:
    """Stop the exporter, let usage happen (shorter and longer than the lookback), start
    it again from its state file: the total is exact, it never went down, and no
    request re-read the cycle from its start."""
    state = StateStore(tmp_path / "state.json", LOG)
    first = sim_poller(sim, http, state)
    await first.poll_once()
    assert state.flush()
    last_exported = counters(first)

    advance(sim, downtime)
    sim.state.requests.clear()
    reloaded = StateStore(tmp_path / "state.json", LOG)
    reloaded.load()
    second = sim_poller(sim, http, reloaded)
    await second.poll_once()
    assert counters(second) == truth(sim)
    assert all(counters(second)[k] >= v for k, v in last_exported.items())
    cycle_start, _ = cycle_bounds(sim.state.now())
    starts = [
        r["body"]["start_time"] // 1000 for r in sim.state.requests if r["endpoint"] == "usage"
    ]
    assert starts
    assert min(starts) > cycle_start + 3600


async def test_restart_without_state_reseeds_exactly(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Without a state file a restart re-reads the cycle and still ends exact."""
    first = sim_poller(sim, http)
    await first.poll_once()
    advance(sim, 3600)
    second = sim_poller(sim, http)
    await second.poll_once()
    assert counters(second) == truth(sim)


async def test_failed_poll_keeps_last_values_and_recovers_exactly(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """A failing API leaves the last values in place with up=0, counts the reason, and
    the first good poll afterwards brings the counters back to exact."""
    poller = sim_poller(sim, http)
    await poller.poll_once()
    good = counters(poller)
    sim.state.scenario = "key-rejected"
    advance(sim, 600)
    assert not await poller.poll_once()
    snapshot = poller.snapshot()
    assert not snapshot.up
    assert counters(poller) == good
    errors = poller.telemetry.poll_errors("main", "usage", "auth")
    assert errors == 1.0
    sim.state.scenario = "normal"
    advance(sim, 3 * 3600)  # longer than the lookback
    assert await poller.poll_once()
    assert counters(poller) == truth(sim)


async def test_cycle_rollover_restarts_the_counter_from_the_new_cycle(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """When the billing cycle resets, the default counter restarts at the new cycle's
    usage (a counter reset Prometheus handles), and stays exact."""
    poller = sim_poller(sim, http)
    await poller.poll_once()
    _, reset = cycle_bounds(sim.state.now())
    sim.state.frozen_at = reset + 20 * 60
    await poller.poll_once()
    assert counters(poller) == truth(sim)
    assert sum(counters(poller).values()) < 20 * 60 * 100


async def test_state_file_is_valid_json_with_a_version(
    sim: Simulator, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The state file names its format and version and holds the workspace's ledger."""
    state = StateStore(tmp_path / "state.json", LOG)
    await sim_poller(sim, http, state).poll_once()
    state.flush()
    data = json.loads((tmp_path / "state.json").read_text())
    assert data["format"] == "elevenlabs-exporter-state"
    assert data["version"] == STATE_VERSION == 2
    assert data["workspaces"]["main"]["base_url"] == sim.url


async def test_large_answers_parsed_in_the_worker_count_exactly(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Usage answers padded to 2 MiB with zero-credit rows (parsed in the worker process,
    above the 256 KiB inline limit) give exactly the counters of plain answers."""
    from exporter.simulator import Fault

    poller = sim_poller(sim, http)
    sim.state.faults.append(Fault(endpoint="usage", times=-1, pad_bytes=2 * 1024 * 1024))
    assert await poller.poll_once()
    advance(sim, 120)
    assert await poller.poll_once()
    sim.state.faults.clear()
    assert counters(poller) == truth(sim)


@pytest.mark.parametrize("count_from_days", [3, 40])
async def test_restart_with_state_reads_no_further_back_than_the_lookback(
    sim: Simulator, http: httpx.AsyncClient, tmp_path: Path, count_from_days: int
) -> None:
    """With a fixed count_from (after the cycle start, or long before it), a restart
    from the state file asks for nothing older than the lookback before the last
    poll: neither the cycle nor the time before the anchor is read again."""
    anchor = datetime.fromtimestamp(START - count_from_days * 86400, UTC)
    state = StateStore(tmp_path / "state.json", LOG)
    first = sim_poller(sim, http, state, config={"count_from": anchor})
    assert await first.poll_once()
    assert state.flush()
    last_poll = sim.state.now()
    advance(sim, 600)
    sim.state.requests.clear()
    reloaded = StateStore(tmp_path / "state.json", LOG)
    reloaded.load()
    second = sim_poller(sim, http, reloaded, config={"count_from": anchor})
    assert await second.poll_once()
    starts = [
        r["body"]["start_time"] // 1000 for r in sim.state.requests if r["endpoint"] == "usage"
    ]
    assert starts
    assert min(starts) >= last_poll - 7200 - 60
