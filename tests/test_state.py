"""The state file survives kills and damage, and a simulated week stays exact and small."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from support import credits_of

from exporter.api.errors import ApiError
from exporter.api.parse import Subscription, UsageTable, parse_subscription, parse_usage
from exporter.config import Config, KeySource, Secret, WorkspaceConfig
from exporter.core.snapshot import SnapshotStore
from exporter.core.state import STATE_VERSION, StateStore
from exporter.log import get_logger
from exporter.polling.loop import WorkspaceLoop
from exporter.polling.workspace import workspace_loop
from exporter.simulator import SimState, cycle_bounds
from exporter.simulator.tables import usage_answer

LOG = get_logger()
START = 1_795_621_020.0  # 2026-11-25T15:37Z, a Wednesday afternoon, mid-cycle in the simulator

WRITER = """
import sys
from pathlib import Path
from exporter.core.state import write_atomically
path = Path(sys.argv[1])
n = 0
while True:
    n += 1
    # Large enough that a write takes a while, each version distinguishable.
    write_atomically(path, (('{"n": %d, "pad": "' % n) + 'x' * 400000 + '"}').encode())
"""


def test_kill_9_during_writes_leaves_a_whole_file(tmp_path: Path) -> None:
    """However a writer is killed mid-write, the file is the old or the new version whole,
    never a torn mixture."""
    path = tmp_path / "state.json"
    path.write_text('{"n": 0, "pad": "' + "x" * 400000 + '"}')
    for _ in range(15):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        time.sleep(random.uniform(0.05, 0.3))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        data = json.loads(path.read_text())
        assert data["n"] >= 0
        assert len(data["pad"]) == 400000


class SimClient:
    """The simulator's answers without HTTP, for a fast week-long run."""

    def __init__(self, state: SimState, fail_rate: float, rng: random.Random) -> None:
        self.state, self.fail_rate, self.rng = state, fail_rate, rng
        self.down = False
        self.requests = 0

    def _maybe_fail(self) -> None:
        self.requests += 1
        if self.down or self.rng.random() < self.fail_rate:
            raise ApiError(self.rng.choice(["server_error", "timeout", "rate_limited"]), "fault")

    async def subscription(self) -> Subscription:
        self._maybe_fail()
        return parse_subscription(self.state.subscription())

    async def usage_table(
        self,
        start: int,
        end: int,
        interval: int,
        group_by: tuple[str, ...] = ("product_type",),
        filters: Any = (),
    ) -> UsageTable:
        self._maybe_fail()
        request = {
            "start_time": start * 1000,
            "end_time": end * 1000,
            "interval_seconds": interval,
            "group_by": list(group_by),
        }
        _, body = usage_answer(self.state, request)
        return parse_usage(body, group_by, start=start, end=end, interval=interval)


def make_poller(
    state: SimState, client: Any, store: StateStore | None = None, lookback: int = 7200
) -> WorkspaceLoop:
    workspace = WorkspaceConfig("main", Secret("demo"), KeySource("demo"), "http://sim")
    config = Config(workspaces=(workspace,), lookback=lookback)
    from exporter.metrics.telemetry import Telemetry

    return workspace_loop(
        workspace,
        config,
        client,
        snapshots=SnapshotStore(["main"]),
        telemetry=Telemetry(CollectorRegistry()),
        log=LOG,
        clock=state.now,
        state=store,
    )


def exact(poller: WorkspaceLoop, state: SimState) -> bool:
    start, _ = cycle_bounds(state.now())
    truth = {
        k: v
        for k, v in state.truth(start - start % 60, int(state.now() // 60) * 60 + 60).items()
        if v
    }
    counted = credits_of(poller).counted
    assert counted is not None
    return {k[0]: v for k, v in counted.total.items() if v} == truth


def damage_cases(good: bytes) -> dict[str, bytes | None]:
    data = json.loads(good)
    foreign = dict(data, version=99)
    not_ours = {"hello": "world"}
    broken_ledger = json.loads(good)
    broken_ledger["workspaces"]["main"]["credits"]["ledger"]["live"] = "nonsense"
    return {
        "missing": None,
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "garbage": bytes(range(256)) * 10,
        "foreign version": json.dumps(foreign).encode(),
        "not ours": json.dumps(not_ours).encode(),
        "malformed ledger": json.dumps(broken_ledger).encode(),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "empty", "truncated", "garbage", "foreign version", "not ours", "malformed ledger"],
)
async def test_bad_state_files_are_survived_by_reseeding(tmp_path: Path, case: str) -> None:
    """Each kind of bad state file is logged and ignored: the exporter reseeds from the
    API, ends exact, and writes a good file again."""
    state = SimState(frozen_at=START)
    path = tmp_path / "state.json"
    store = StateStore(path, LOG)
    first = make_poller(state, SimClient(state, 0.0, random.Random(1)), store)
    await first.poll_once()
    store.flush()
    damaged = damage_cases(path.read_bytes())[case]
    if damaged is None:
        path.unlink()
    else:
        path.write_bytes(damaged)
    state.frozen_at = START + 1800
    reloaded = StateStore(path, LOG)
    reloaded.load()
    client = SimClient(state, 0.0, random.Random(2))
    second = make_poller(state, client, reloaded)
    assert await second.poll_once()
    assert exact(second, state)
    assert reloaded.flush()
    assert json.loads(path.read_bytes())["version"] == STATE_VERSION


async def test_a_week_with_random_faults_stays_exact_and_bounded() -> None:
    """A simulated week of polls every 5 minutes, with one poll in eight failing and an
    eight-hour outage: totals end exact and the ledger never holds more than a lookback."""
    rng = random.Random(7)
    state = SimState(frozen_at=START)
    client = SimClient(state, 0.125, rng)
    lookback = 3600
    poller = make_poller(state, client, lookback=lookback)
    bound = (lookback // 60 + 5 + 1) * 7  # a lookback and one poll's advance, 7 products
    peak = 0
    for step in range(7 * 24 * 12):
        state.frozen_at = START + step * 300
        client.down = 1000 <= step < 1096  # eight hours down
        await poller.poll_once()
        counted = credits_of(poller).counted
        if counted is not None:
            peak = max(peak, counted.ledger.live_entries)
            assert len(counted.total) <= 7
    assert peak <= bound
    client.down, client.fail_rate = False, 0.0
    state.frozen_at = state.now() + 300
    assert await poller.poll_once()
    assert exact(poller, state)
    # A month of hour buckets costs far fewer requests than polls, and each poll is small.
    assert client.requests < 7 * 24 * 12 * 3


async def test_a_version_1_state_file_is_resumed_without_reseeding(tmp_path: Path) -> None:
    """A state file written before the counters were kept once (format version 1: the
    ledger's totals next to the router's) resumes: no request reaches back to the cycle
    start, and the counters go on from the exported totals, exact."""
    state = SimState(frozen_at=START)
    path = tmp_path / "state.json"
    store = StateStore(path, LOG)
    first = make_poller(state, SimClient(state, 0.0, random.Random(1)), store)
    await first.poll_once()
    store.flush()
    current = json.loads(path.read_bytes())
    credits = current["workspaces"]["main"]["credits"]
    ledger = dict(credits["ledger"], total=credits["router"]["total"])
    ledger["down"] = credits["router"]["down"]
    router = dict(credits["router"], routed_total=ledger["total"], routed_down=ledger["down"])
    old = {"base_url": "http://sim", "ledger": ledger, "router": router}
    path.write_text(
        json.dumps({"format": current["format"], "version": 1, "workspaces": {"main": old}})
    )
    state.frozen_at = START + 1800
    reloaded = StateStore(path, LOG)
    reloaded.load()
    client = RecordingClient(state, 0.0, random.Random(2))
    second = make_poller(state, client, reloaded)
    assert await second.poll_once()
    assert exact(second, state)
    cycle_start, _ = cycle_bounds(state.now())
    assert min(client.starts) > cycle_start + 3600
    assert reloaded.flush()
    assert json.loads(path.read_bytes())["version"] == STATE_VERSION


class RecordingClient(SimClient):
    """A SimClient that remembers where each usage request started."""

    def __init__(self, state: SimState, fail_rate: float, rng: random.Random) -> None:
        super().__init__(state, fail_rate, rng)
        self.starts: list[int] = []

    async def usage_table(
        self,
        start: int,
        end: int,
        interval: int,
        group_by: tuple[str, ...] = ("product_type",),
        filters: Any = (),
    ) -> UsageTable:
        self.starts.append(start)
        return await super().usage_table(start, end, interval, group_by, filters)
