"""Opt-in dimensions: bounded series, exact sums, readable names, several workspaces."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import credits_part, http_get, run_exporter, sim_poller

from exporter.core.router import OTHER
from exporter.core.state import StateStore
from exporter.log import get_logger
from exporter.simulator import Fault, SimState, Simulator, cycle_bounds

START = 1_795_621_020.0  # 2026-11-25T15:37Z, a Wednesday afternoon, mid-cycle in the simulator
LOG = get_logger()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=START, voices=500)).start()
    yield simulator
    simulator.stop()


def period(sim: Simulator) -> tuple[int, int]:
    start, _ = cycle_bounds(sim.state.now())
    return start - start % 60, int(sim.state.now() // 60) * 60 + 60  # the minute under way


async def test_500_voices_capped_at_20_sum_to_the_truth(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """With 500 voices and a cap of 20, at most 21 voice values are exported (20 + other),
    every series only grows, and the sum over all of them equals the true total."""
    p = sim_poller(sim, http, group_by=("product_type", "voice_id"), max_values={"voice_id": 20})
    previous: dict[tuple[str, ...], float] = {}
    for _ in range(4):
        assert await p.poll_once()
        snapshot = credits_part(p)
        voices = {labels[1] for labels in snapshot.credits}
        assert len(voices) <= 21
        assert OTHER in voices
        truth = sum(sim.state.truth(*period(sim)).values())
        assert sum(snapshot.credits.values()) == truth
        assert all(snapshot.credits.get(k, 0.0) >= v for k, v in previous.items())
        previous = dict(snapshot.credits)
        sim.state.frozen_at = sim.state.now() + 300
    truth_voices = {k[0] for k in sim.state.truth_by(*period(sim), ["voice_id"])}
    assert len(truth_voices) > 100  # the cap really had work to do


async def test_allowlist_keeps_only_the_listed_values(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """An allowlist exports exactly the listed values (plus other), exactly."""
    allow = frozenset({"voice0000", "voice0001"})
    p = sim_poller(sim, http, group_by=("product_type", "voice_id"), allow={"voice_id": allow})
    await p.poll_once()
    snapshot = credits_part(p)
    assert {labels[1] for labels in snapshot.credits} <= allow | {OTHER}
    truth = sim.state.truth_by(*period(sim), ["voice_id"])
    exported: dict[str, float] = {}
    for (_, voice), value in snapshot.credits.items():
        exported[voice] = exported.get(voice, 0.0) + value
    for voice in allow:
        assert exported.get(voice, 0.0) == truth.get((voice,), 0.0)


async def test_display_names_map_ids_to_names(sim: Simulator, http: httpx.AsyncClient) -> None:
    """Display columns become an id-to-name map, only for values with their own series."""
    p = sim_poller(sim, http, group_by=("product_type", "voice_id"), max_values={"voice_id": 5})
    await p.poll_once()
    names = credits_part(p).names
    voices = {k[1]: v for k, v in names.items() if k[0] == "voice_id"}
    assert 0 < len(voices) <= 5
    assert all(name == f"Voice {int(voice[5:])}" for voice, name in voices.items())
    assert names[("product_type", "text_to_speech")] == "Text to Speech"


async def test_changing_dimensions_neither_corrupts_nor_doubles(
    sim: Simulator, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Restarting with other dimensions starts the new label sets from the exact totals
    (the old series vanish); nothing is counted twice."""
    store = StateStore(tmp_path / "state.json", LOG)
    first = sim_poller(sim, http, store)
    await first.poll_once()
    store.flush()
    sim.state.frozen_at = sim.state.now() + 600
    reloaded = StateStore(tmp_path / "state.json", LOG)
    reloaded.load()
    second = sim_poller(sim, http, reloaded, group_by=("product_type", "model"))
    await second.poll_once()
    per_product: dict[str, float] = {}
    for (product, _), value in credits_part(second).credits.items():
        per_product[product] = per_product.get(product, 0.0) + value
    truth = {k: v for k, v in sim.state.truth(*period(sim)).items() if v}
    assert {k: v for k, v in per_product.items() if v} == truth


async def test_filters_are_passed_through(sim: Simulator, http: httpx.AsyncClient) -> None:
    """A region filter counts only that region's credits."""
    p = sim_poller(sim, http, filters=({"column": "region", "operation": "in", "values": ["eu"]},))
    await p.poll_once()
    truth = sim.state.truth_by(*period(sim), ["product_type", "region"])
    expected = {(product,): v for (product, region), v in truth.items() if region == "eu"}
    assert {k: v for k, v in credits_part(p).credits.items() if v} == expected


def test_one_failing_workspace_never_affects_another(tmp_path: Path) -> None:
    """Two workspaces, one answering 500 for the whole test: the other's metrics are exact
    and fresh, and only the failing one reports elevenlabs_up 0."""
    now = (time.time() // 60) * 60 - 120
    good = Simulator(SimState(frozen_at=now)).start()
    bad = Simulator(SimState(frozen_at=now)).start()
    bad.state.faults.append(Fault(endpoint="*", times=-1, status=500))
    config = tmp_path / "config.yml"
    config.write_text(
        "poll_interval: 1s\nmax_retries: 1\nstate_file: null\nworkspaces:\n"
        f"  - {{name: good, api_key: demo, base_url: '{good.url}'}}\n"
        f"  - {{name: bad, api_key: demo, base_url: '{bad.url}', poll_interval: 2s}}\n"
    )
    try:
        with run_exporter(["--config.file", str(config)], tmp_path) as exporter:
            exporter.wait_listening()
            deadline = time.monotonic() + 30
            while True:
                values = {}
                for family in text_string_to_metric_families(exporter.metrics()):
                    for s in family.samples:
                        values[(s.name, frozenset(s.labels.items()))] = s.value
                up = {
                    dict(k[1])["workspace"]: v for k, v in values.items() if k[0] == "elevenlabs_up"
                }
                fresh = values.get(
                    (
                        "elevenlabs_exporter_last_success_timestamp_seconds",
                        frozenset({("workspace", "good"), ("endpoint", "usage")}),
                    ),
                    0,
                )
                if up.get("good") == 1 and time.time() - fresh < 5:
                    break
                assert time.monotonic() < deadline, exporter.log()[-2000:]
                time.sleep(0.3)
            assert up["bad"] == 0
            good_credits = {
                dict(k[1])["product_type"]: v
                for k, v in values.items()
                if k[0] == "elevenlabs_credits_used_total"
                and dict(k[1])["workspace"] == "good"
                and v
            }
            start, _ = cycle_bounds(now)
            truth = {k: v for k, v in good.state.truth(start - start % 60, int(now)).items() if v}
            assert good_credits == truth
            assert http_get(exporter.url + "/readyz")[0] == 503
    finally:
        good.stop()
        bad.stop()
