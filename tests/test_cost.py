"""Workspaces billed in currency: detected from the credits endpoint, read from the
cost endpoint, exported as cost and charge counters."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from support import sim_poller

from exporter.api.errors import ApiError
from exporter.core.snapshot import SnapshotStore
from exporter.metrics.cost import CostCollector
from exporter.polling.cost import CostPart, looks_cost_billed
from exporter.simulator import COST_PER_CREDIT, SimState, Simulator, cycle_bounds

START = 1_795_621_020.0  # 2026-11-25T15:37Z, mid-cycle in the simulator
DAY = 86400


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=START, scenario="cost-billed")).start()
    yield simulator
    simulator.stop()


def daily_truth(sim: Simulator) -> tuple[dict[str, float], dict[str, float]]:
    """Cost and charge count per product since the day the cycle started, by day."""
    start, _ = cycle_bounds(sim.state.now())
    day = start - start % DAY
    cost: dict[str, float] = {}
    charges: dict[str, float] = {}
    while day < sim.state.now():
        for (product,), credits in sim.state.truth_by(day, day + DAY, ["product_type"]).items():
            cost[product] = cost.get(product, 0.0) + credits * COST_PER_CREDIT
            charges[product] = charges.get(product, 0.0) + int(credits * 2)
        day += DAY
    return cost, charges


async def test_cost_billed_workspace_is_detected_and_counted(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """The credits endpoint's currency-billing error switches the workspace to the cost
    endpoint: cost (with a currency label) and charges match the simulator, up is 1,
    and no poll error is counted for the switch."""
    poller = sim_poller(sim, http, workspace="shop")
    assert await poller.poll_once()
    for _ in range(3):
        sim.state.frozen_at = sim.state.now() + 3 * 3600  # through today into tomorrow
        assert await poller.poll_once()
    snapshot = poller.snapshot()
    assert snapshot.up
    cost, charges = daily_truth(sim)
    part = snapshot.part(CostPart)
    assert part is not None
    exported_cost = {labels[0]: v for labels, v in part.cost.items() if v}
    assert exported_cost.keys() == cost.keys()
    for product, value in cost.items():
        assert exported_cost[product] == pytest.approx(value, abs=1e-4)
    assert {labels[0]: v for labels, v in part.charges.items() if v} == charges
    errors = [
        s
        for m in poller.telemetry.collector.collect()
        for s in m.samples
        if s.name == "elevenlabs_exporter_poll_errors_total" and s.value
    ]
    assert errors == []

    registry = CollectorRegistry()
    store = SnapshotStore(["shop"])
    store.publish(snapshot)
    registry.register(CostCollector(store.current))
    text = generate_latest(registry).decode()
    assert (
        'elevenlabs_cost_total{currency="usd",product_type="text_to_speech",workspace="shop"}'
        in text
    )
    assert 'elevenlabs_charges_total{product_type="text_to_speech",workspace="shop"}' in text


def test_only_currency_billing_errors_switch_modes() -> None:
    """A validation error or a server error is not mistaken for currency billing."""
    assert looks_cost_billed(
        ApiError(
            "client_error",
            "HTTP 400 workspace_billed_in_currency: x",
            code="workspace_billed_in_currency",
        )
    )
    assert not looks_cost_billed(ApiError("client_error", "HTTP 422 body.start_time: bad"))
    assert not looks_cost_billed(ApiError("server_error", "HTTP 500 cost service down"))
