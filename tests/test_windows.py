"""The window gauges (``elevenlabs_window_credits_used``) against the simulator's truth.

A window W at the last poll holds the credits of the buckets from ``end - W`` to
``end``, where ``end`` is the end of the bucket under way: exact to the minute inside
the lookback, exact to the hour beyond it (from the hour nearest the window's start).
Late usage (a revision, an outage's catch-up) lands in the window it belongs to; a
restart, with or without the state file, rebuilds the windows; they stay frozen
while polls fail. The loop and client run over loopback against the simulator with
its clock frozen and shared.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import credits_part, run_exporter, sim_poller

from exporter.core.history import WINDOWS
from exporter.core.state import StateStore
from exporter.log import get_logger
from exporter.simulator import SimState, Simulator, cycle_bounds

START = 1_795_621_020.0  # 2026-11-25T15:37:00Z, a Wednesday afternoon, mid-cycle
LOOKBACK = 7200
LOG = get_logger()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=START)).start()
    yield simulator
    simulator.stop()


def truth(
    state: SimState, at: float, *, settled_until: float | None = None
) -> dict[str, dict[str, float]]:
    """Each window's credits per product at ``at``, as the exporter defines them."""
    end = int(at // 60) * 60 + 60
    held_from = end - LOOKBACK if settled_until is None else settled_until
    out: dict[str, dict[str, float]] = {}
    for name, span in WINDOWS.items():
        start = end - span
        if start < held_from:  # beyond the lookback: from the nearest hour
            start = int(start + 1800) // 3600 * 3600
        for product, value in state.truth(start, end).items():
            out.setdefault(product, {})[name] = value
    return {p: w for p, w in out.items() if any(w.values())}


def windows(loop: object) -> dict[str, dict[str, float]]:
    part = credits_part(loop)
    return {p: dict(w) for p, w in part.windows.items() if any(w.values())}


def approx(expected: dict[str, dict[str, float]]) -> object:
    return {p: pytest.approx(w, abs=1e-6) for p, w in expected.items()}


async def test_windows_equal_the_truth_and_move_with_the_minutes(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Seeded at start-up (the week before the poll read back), every window of every
    product equals the simulator's truth, and stays equal as minutes pass and the
    minutes under way fill in."""
    loop = sim_poller(sim, http)
    assert await loop.poll_once()
    assert windows(loop) == approx(truth(sim.state, sim.state.now()))
    assert len(windows(loop)) == 7
    for step in (20, 40, 60, 95, 300):
        sim.state.frozen_at = sim.state.now() + step
        assert await loop.poll_once()
        assert windows(loop) == approx(truth(sim.state, sim.state.now()))


async def test_a_revision_lands_in_its_own_window(sim: Simulator, http: httpx.AsyncClient) -> None:
    """+40 credits revised into a bucket 20 minutes back raise the 30m (and wider)
    windows by 40 at the next re-read of the lookback and leave the 5m window alone; a
    later -15 lowers them again (the windows show the API's current view, unlike the
    counter)."""
    loop = sim_poller(sim, http)
    await loop.poll_once()
    sim.state.frozen_at = sim.state.now() + 600  # the next poll re-reads the lookback
    minute = int(sim.state.now() // 60) - 20
    unrevised = truth(sim.state, sim.state.now())["dubbing"]
    sim.state.adjustments[(3, minute)] = 40.0  # product 3 is dubbing
    await loop.poll_once()
    after = windows(loop)["dubbing"]
    assert after["5m"] == pytest.approx(unrevised["5m"])
    for name in ("30m", "1h", "6h", "1d", "7d"):
        assert after[name] == pytest.approx(unrevised[name] + 40)
    sim.state.adjustments[(3, minute)] = 25.0
    await loop.poll_once()  # 20 minutes back: not among the recent minutes yet
    sim.state.frozen_at = sim.state.now() + 600
    await loop.poll_once()
    assert windows(loop) == approx(truth(sim.state, sim.state.now()))


async def test_an_outage_is_frozen_then_caught_up_by_bucket_time(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """While the API fails the windows stay at their last values; five hours later the
    first good poll puts the hours of the outage where they belong: the 5m window holds
    five minutes, not five hours, and every window equals the truth."""
    loop = sim_poller(sim, http)
    await loop.poll_once()
    frozen = windows(loop)
    sim.state.scenario = "key-rejected"
    for _ in range(3):
        sim.state.frozen_at = sim.state.now() + 600
        assert not await loop.poll_once()
        assert windows(loop) == frozen
    sim.state.scenario = "normal"
    sim.state.frozen_at = START + 5 * 3600
    assert await loop.poll_once()
    got = windows(loop)
    assert got == approx(truth(sim.state, sim.state.now()))
    tts = got["text_to_speech"]
    assert tts["5m"] < tts["1h"] / 6


async def test_a_restart_without_state_rebuilds_the_windows(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """A second exporter with no state file reads the week again and exports the same
    windows as the first one at the same moment."""
    first = sim_poller(sim, http)
    await first.poll_once()
    sim.state.frozen_at = sim.state.now() + 3 * 3600 + 17
    await first.poll_once()
    second = sim_poller(sim, http)
    assert await second.poll_once()
    assert windows(second) == approx(windows(first))
    assert windows(second) == approx(truth(sim.state, sim.state.now()))


async def test_a_restart_with_state_resumes_the_windows_without_reading_the_week(
    sim: Simulator, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """With the state file the windows come back from it: the next poll reads no
    further back than the lookback and every window is exact."""
    store = StateStore(tmp_path / "state.json", LOG)
    first = sim_poller(sim, http, store)
    await first.poll_once()
    assert store.flush()
    sim.state.frozen_at = sim.state.now() + 1800
    sim.state.requests.clear()
    reloaded = StateStore(tmp_path / "state.json", LOG)
    reloaded.load()
    second = sim_poller(sim, http, reloaded)
    assert await second.poll_once()
    starts = [
        r["body"]["start_time"] // 1000 for r in sim.state.requests if r["endpoint"] == "usage"
    ]
    assert min(starts) >= sim.state.now() - LOOKBACK - 1800
    assert windows(second) == approx(truth(sim.state, sim.state.now()))


async def test_windows_reach_back_before_a_cycle_that_just_began(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Ten minutes into a new cycle the counters restart, but the windows are about
    time: the 1h and wider windows still hold the end of the previous cycle, exactly."""
    _, reset = cycle_bounds(START)
    sim.state.frozen_at = reset + 600
    loop = sim_poller(sim, http)
    assert await loop.poll_once()
    got = windows(loop)
    assert got == approx(truth(sim.state, sim.state.now()))
    counted = sum(credits_part(loop).credits.values())
    assert sum(w["1h"] for w in got.values()) > counted > 0


def test_the_real_process_exports_windows_equal_to_the_truth(tmp_path: Path) -> None:
    """The exporter process, polling a frozen simulator, exports six windows per product
    and each equals the simulator's truth at the moment of its last usage poll."""
    frozen = (time.time() // 60) * 60 - 120
    sim = Simulator(SimState(frozen_at=frozen)).start()
    config = tmp_path / "config.yml"
    config.write_text(
        json.dumps(
            {
                "state_file": None,
                "poll_interval": "1h",
                "workspaces": [{"name": "main", "api_key": "demo", "base_url": sim.url}],
            }
        )
    )
    try:
        with run_exporter(["--config.file", str(config)], tmp_path) as exporter:
            exporter.wait_ready()
            text = exporter.metrics()
    finally:
        sim.stop()
    exported: dict[str, dict[str, float]] = {}
    series = 0
    polled_at = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "elevenlabs_window_credits_used":
                series += 1
                labels = sample.labels
                if sample.value:
                    product = exported.setdefault(labels["product_type"], {})
                    product[labels["window"]] = sample.value
            if (
                sample.name == "elevenlabs_exporter_last_success_timestamp_seconds"
                and sample.labels["endpoint"] == "usage"
            ):
                polled_at = sample.value
    assert len(exported) == 7
    assert series == 7 * len(WINDOWS)
    # The poll planned at a moment up to a few seconds before it succeeded.
    candidates = [truth(sim.state, at) for at in {polled_at, polled_at - 3}]
    filled = [{p: {n: v for n, v in w.items() if v} for p, w in c.items()} for c in candidates]
    assert any(exported == approx(c) for c in filled)
