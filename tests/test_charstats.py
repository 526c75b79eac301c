"""Request, latency and concurrency statistics from the deprecated character-stats endpoint.

The client's parsing runs against respx; the source, collector and wiring run over
loopback against the simulator in a real workspace loop, with the simulator's clock
frozen and shared, so each test decides when time passes and takes the truth from
the simulator's own model.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import respx
from prometheus_client import generate_latest
from support import run_exporter

from exporter.api.client import ElevenLabsClient
from exporter.api.errors import REASONS, ApiError
from exporter.api.paths import CHARACTER_STATS_PATH
from exporter.config import Config, KeySource, Secret, WorkspaceConfig
from exporter.core.cycle import Cycle
from exporter.core.snapshot import SnapshotStore
from exporter.log import get_logger
from exporter.metrics.charstats import COUNTERS, GAUGES
from exporter.polling.charstats import (
    COUNTER_METRICS,
    GAUGE_METRICS,
    MIN_INTERVAL,
    CharacterStatsSource,
    poll_interval,
)
from exporter.polling.workspace import workspace_loop
from exporter.runtime import build_registry
from exporter.simulator import Fault, SimState, Simulator, cycle_bounds, hour_stats

BASE = "https://api.example.test"
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000
# 2026-11-20T15:37:00Z: a weekday afternoon, 13 days into the simulated cycle.
START = 1_795_621_020.0
LOG = get_logger()
PROMTOOL = "/usr/bin/promtool"


# The client ---------------------------------------------------------------------------


async def fetch(body: Any, metric: str = "request_count") -> dict[str, list[tuple[int, float]]]:
    with respx.mock(assert_all_called=True) as mock:
        mock.get(BASE + CHARACTER_STATS_PATH).respond(200, json=body)
        async with httpx.AsyncClient() as http:
            client = ElevenLabsClient(workspace="w", base_url=BASE, api_key=lambda: "k", http=http)
            return await client.character_stats(
                T0_MS, T0_MS + 2 * HOUR_MS, metric, 3600, "product_type"
            )


async def test_client_reads_string_numbers_ms_times_and_unknown_keys() -> None:
    """Values as numbers or numeric strings (null as 0), times in ms, and breakdown
    keys nobody documented pass through, lined up with ``time``."""
    series = await fetch(
        {
            "time": [T0_MS, str(T0_MS + HOUR_MS)],
            "usage": {
                "text_to_speech": ["12.5", 3],
                "holo_deck": [None, "0.25"],
                "": [1, 2],
            },
        }
    )
    assert series == {
        "text_to_speech": [(T0_MS, 12.5), (T0_MS + HOUR_MS, 3.0)],
        "holo_deck": [(T0_MS, 0.0), (T0_MS + HOUR_MS, 0.25)],
        "unknown": [(T0_MS, 1.0), (T0_MS + HOUR_MS, 2.0)],
    }


async def test_client_turns_second_and_iso_times_into_milliseconds() -> None:
    """The documented unit is ms; seconds (as in the docs' curl example) and ISO strings
    are recognised and converted, so buckets land on the same instants."""
    series = await fetch(
        {"time": [T0_MS // 1000, "2026-01-01T01:00:00Z"], "usage": {"All": [1, 2]}}
    )
    assert series == {"All": [(T0_MS, 1.0), (T0_MS + HOUR_MS, 2.0)]}


async def test_client_sends_the_query_in_ms_with_the_bucket_and_the_key() -> None:
    """A GET with start/end in ms, the metric, the breakdown, the bucket as seconds and
    as the named interval, workspace-wide figures, and the key header."""
    with respx.mock() as mock:
        route = mock.get(BASE + CHARACTER_STATS_PATH).respond(200, json={"time": [], "usage": {}})
        async with httpx.AsyncClient() as http:
            client = ElevenLabsClient(workspace="w", base_url=BASE, api_key=lambda: "k", http=http)
            assert (
                await client.character_stats(T0_MS, T0_MS + HOUR_MS, "ttfb_p95", 3600, "none") == {}
            )
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.headers["xi-api-key"] == "k"
    assert {k: v[0] for k, v in parse_qs(urlparse(str(request.url)).query).items()} == {
        "start_unix": str(T0_MS),
        "end_unix": str(T0_MS + HOUR_MS),
        "metric": "ttfb_p95",
        "breakdown_type": "none",
        "include_workspace_metrics": "true",
        "aggregation_bucket_size": "3600",
        "aggregation_interval": "hour",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"time": [T0_MS, T0_MS + HOUR_MS], "usage": {"All": [1]}},  # shorter than time
        {"time": [T0_MS], "usage": {"All": [1, 2]}},  # longer than time
        {"time": [T0_MS], "usage": {"All": ["lots"]}},
        {"time": [T0_MS], "usage": {"All": ["nan"]}},
        {"time": ["yesterday"], "usage": {"All": [1]}},
        {"time": [T0_MS], "usage": {"All": 1}},
        {"time": [T0_MS], "usage": [[1]]},
        {"usage": {"All": [1]}},
        ["not", "an", "object"],
    ],
)
async def test_client_rejects_what_cannot_be_lined_up_as_bad_response(body: Any) -> None:
    """Mismatched list lengths, unreadable numbers or times and wrong shapes raise
    bad_response rather than guessing which value belongs to which bucket."""
    with pytest.raises(ApiError) as caught:
        await fetch(body)
    assert caught.value.reason == "bad_response"


# Pieces ---------------------------------------------------------------------------------


def test_poll_interval_is_never_under_a_minute() -> None:
    """The workspace's interval wins over the global one, but the deprecated endpoint is
    never polled more often than every 60 s."""
    fast = WorkspaceConfig("a", Secret("k"), KeySource("config"), poll_interval=15)
    slow = WorkspaceConfig("b", Secret("k"), KeySource("config"), poll_interval=300)
    default = WorkspaceConfig("c", Secret("k"), KeySource("config"))
    config = Config(workspaces=(fast, slow, default), poll_interval=30)
    assert poll_interval(config, fast) == MIN_INTERVAL == 60
    assert poll_interval(config, slow) == 300
    assert poll_interval(config, default) == 60
    assert poll_interval(Config(workspaces=(default,), poll_interval=120), default) == 120


def test_collector_exports_exactly_the_metrics_the_source_reads() -> None:
    """Every API metric the source reads has an exported family, and no family waits for
    a metric that is never read."""
    assert tuple(spec.metric for spec in COUNTERS) == COUNTER_METRICS
    assert tuple(spec.metric for spec in GAUGES) == GAUGE_METRICS


def test_nothing_is_registered_when_no_workspace_opts_in() -> None:
    """Without character_stats: true anywhere the exposition has none of these families
    and the workspace's loop has no character-stats source."""
    snapshots = SnapshotStore(["main"])
    registry, telemetry = build_registry(snapshots)
    ws = WorkspaceConfig("main", Secret("k"), KeySource("config"))
    loop = workspace_loop(
        ws,
        Config(workspaces=(ws,)),
        object(),  # type: ignore[arg-type]  # never called: nothing is polled here
        snapshots=snapshots,
        telemetry=telemetry,
        log=LOG,
        clock=time.time,
    )
    assert not any(isinstance(s, CharacterStatsSource) for s in loop.sources)
    text = generate_latest(registry).decode()
    assert "elevenlabs_requests_total" not in text
    assert "character_stats" not in text


# Against the simulator -------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=START)).start()
    yield simulator
    simulator.stop()


async def no_sleep(_: float) -> None:
    return None


class Setup:
    """A registry with every collector and one opted-in workspace's loop: its
    subscription, credits and character-stats sources share one client."""

    def __init__(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        self.sim = sim
        self.snapshots = SnapshotStore(["main"])
        self.registry, self.telemetry = build_registry(self.snapshots, character_stats=True)
        ws = WorkspaceConfig(
            "main", Secret("demo"), KeySource("demo"), sim.url, character_stats=True
        )
        config = Config(workspaces=(ws,), state_file=None)
        client = ElevenLabsClient(
            workspace="main",
            base_url=sim.url,
            api_key=lambda: "demo",
            http=http,
            telemetry=self.telemetry,
            limiter=asyncio.Semaphore(4),
            clock=sim.state.now,
            sleep=no_sleep,
        )
        self.loop = workspace_loop(
            ws,
            config,
            client,
            snapshots=self.snapshots,
            telemetry=self.telemetry,
            log=LOG,
            clock=sim.state.now,
        )
        self.source = next(s for s in self.loop.sources if isinstance(s, CharacterStatsSource))
        self.facts = self.source.facts

    async def core(self) -> bool:
        """One round of the whole loop; True when the required sources succeeded."""
        return bool(await self.loop.poll_once())

    async def stats(self) -> bool:
        """One poll of the character-stats source alone; True when it succeeded."""
        return await self.loop.poll_source(self.source)

    def know_cycle(self, start: int | None) -> None:
        """Tell the source the billing cycle, as the subscription source would."""
        self.facts.cycle = None if start is None else Cycle(start, start + 30 * 86400)

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"workspace": "main", **labels})

    def counters(self, metric: str) -> dict[str, float]:
        counted = self.source.counters[metric]
        return {labels[0]: v for labels, v in counted.total.items() if v}


def advance(sim: Simulator, seconds: float) -> None:
    sim.state.frozen_at = sim.state.now() + seconds


def truth(sim: Simulator, metric: str, anchor: int) -> dict[str, float]:
    """The simulator's value of a metric per product, summed over the complete hours
    from the anchor's hour to now."""
    now = sim.state.now()
    hours = range(anchor // 3600, int(now // 3600))
    out = {}
    for index, name in enumerate(sim.state.products):
        total = sum(hour_stats(sim.state, index, hour, now)[metric] for hour in hours)
        if total:
            out[name] = total
    return out


async def test_counters_equal_the_simulators_truth_since_the_cycle_start(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Seeded at start-up from the billing cycle's start, requests, TTS characters and
    audio minutes equal the simulator's sums over every complete hour, and stay equal
    as hours pass; the exported families are in base units (minutes × 60)."""
    setup = Setup(sim, http)
    assert await setup.core()
    cycle_start, _ = cycle_bounds(sim.state.now())
    assert setup.source.anchor() == cycle_start
    for step in range(4):
        assert await setup.stats()
        for spec in COUNTERS:
            expected = truth(sim, spec.metric, cycle_start)
            assert expected
            assert setup.counters(spec.metric) == pytest.approx(expected, rel=1e-12)
        tts = truth(sim, "tts_characters", cycle_start)["text_to_speech"]
        exported = setup.value("elevenlabs_tts_characters_total", product_type="text_to_speech")
        assert exported == pytest.approx(tts, rel=1e-12)
        minutes = truth(sim, "minutes_used", cycle_start)["dubbing"]
        seconds = setup.value("elevenlabs_audio_seconds_total", product_type="dubbing")
        assert seconds == pytest.approx(minutes * 60, rel=1e-12)
        advance(sim, 1800 if step % 2 else 3600)
    assert setup.value("elevenlabs_up") == 1


async def test_late_revision_adds_its_delta_once_and_downward_never_subtracts(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """A +300 credit revision in the last complete hour raises TTS characters by exactly
    300 on the next poll; a later -100 leaves the counter where it was."""
    setup = Setup(sim, http)
    cycle_start, _ = cycle_bounds(sim.state.now())
    setup.know_cycle(cycle_start)
    await setup.stats()
    before = setup.counters("tts_characters")["text_to_speech"]
    minute = (int(sim.state.now() // 3600) * 3600 - 1800) // 60
    sim.state.adjustments[(0, minute)] = 300.0  # product 0 is text_to_speech
    await setup.stats()
    assert setup.counters("tts_characters")["text_to_speech"] == pytest.approx(before + 300)
    sim.state.adjustments[(0, minute)] = 200.0
    await setup.stats()
    assert setup.counters("tts_characters")["text_to_speech"] == pytest.approx(before + 300)
    assert setup.source.counters["tts_characters"].down[("text_to_speech",)] == 100.0


async def test_gauges_hold_the_latest_complete_hour_in_seconds(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Time to first byte (average and p95, ms converted to seconds) and concurrency are
    the whole workspace's values of the last complete hour, and move on with the clock."""
    setup = Setup(sim, http)
    for _ in range(3):
        assert await setup.stats()
        hour = int(sim.state.now() // 3600) - 1
        want = hour_stats(sim.state, None, hour, sim.state.now())
        assert 250 <= want["ttfb_avg"] <= 450
        assert setup.source.gauge_bucket == hour * 3600
        avg = setup.value("elevenlabs_time_to_first_byte_average_seconds")
        p95 = setup.value("elevenlabs_time_to_first_byte_p95_seconds")
        assert avg == pytest.approx(want["ttfb_avg"] / 1000)
        assert p95 == pytest.approx(want["ttfb_p95"] / 1000)
        assert setup.value("elevenlabs_concurrent_requests") == want["concurrency"]
        assert 1 <= want["concurrency"] <= 8
        advance(sim, 3 * 3600 + 600)


async def test_anchor_is_the_start_up_hour_until_a_later_cycle_begins(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """With the cycle unknown, counting starts at the start-up hour; a cycle start learnt
    later that lies before it changes nothing (no false burst of history); a new cycle
    restarts the counters from its start."""
    setup = Setup(sim, http)
    setup.know_cycle(None)
    started_hour = int(sim.state.now() // 3600) * 3600
    assert await setup.stats()
    assert setup.counters("request_count") == {}
    advance(sim, 2 * 3600)
    assert await setup.stats()
    assert setup.counters("request_count") == truth(sim, "request_count", started_hour)

    setup.know_cycle(cycle_bounds(sim.state.now())[0])  # learnt late, earlier than start-up
    advance(sim, 3600)
    assert await setup.stats()
    assert setup.counters("request_count") == truth(sim, "request_count", started_hour)

    _, reset = cycle_bounds(sim.state.now())
    sim.state.frozen_at = reset + 2 * 3600 + 60
    setup.know_cycle(reset)
    assert await setup.stats()
    assert setup.source.counters["request_count"].ledger.anchor == reset // 3600 * 3600
    assert setup.counters("request_count") == truth(sim, "request_count", reset)


async def test_a_500_counts_under_character_stats_and_leaves_up_at_1(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """When character-stats answers 500 (retries included), one poll error is counted
    under endpoint character_stats with reason server_error, the last values and their
    timestamp stay, and elevenlabs_up stays 1: the credits poll of the same round, on
    the same client, is unaffected."""
    setup = Setup(sim, http)
    assert await setup.core()  # the billing cycle is known from here on
    assert await setup.stats()
    good = setup.counters("request_count")
    stamp = setup.value("elevenlabs_exporter_character_stats_last_success_timestamp_seconds")
    assert stamp == START

    sim.state.faults.append(Fault(endpoint="character_stats", status=500, times=-1))
    advance(sim, 3600)
    assert await setup.core()  # the round's charstats poll fails, the required ones do not
    assert not setup.loop.status[id(setup.source)].ok
    errors = "elevenlabs_exporter_poll_errors_total"
    assert setup.value(errors, endpoint="character_stats", reason="server_error") == 1
    assert setup.value(errors, endpoint="usage", reason="server_error") == 0
    requests = "elevenlabs_exporter_api_requests_total"
    assert setup.value(requests, endpoint="character_stats", code="500") == 3  # 1 + 2 retries
    assert setup.value("elevenlabs_up") == 1
    assert setup.counters("request_count") == good
    assert (
        setup.value("elevenlabs_exporter_character_stats_last_success_timestamp_seconds") == stamp
    )
    assert setup.value("elevenlabs_exporter_last_success_timestamp_seconds", endpoint="usage") == (
        sim.state.now()
    )

    sim.state.faults.clear()
    assert await setup.stats()
    cycle_start, _ = cycle_bounds(sim.state.now())
    assert setup.counters("request_count") == truth(sim, "request_count", cycle_start)


def promtool_lint(text: str) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).exists(), "promtool (Debian package prometheus) is required"
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


async def test_error_series_exist_at_zero_and_the_exposition_passes_promtool(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """From start-up every poll-error reason of endpoint character_stats is exported at 0
    and the last-success timestamp at 0; after polls the whole exposition (core and
    character-stats families together) passes promtool check metrics."""
    setup = Setup(sim, http)
    errors = "elevenlabs_exporter_poll_errors_total"
    for reason in REASONS:
        assert setup.value(errors, endpoint="character_stats", reason=reason) == 0
    assert setup.value("elevenlabs_exporter_character_stats_last_success_timestamp_seconds") == 0
    before = promtool_lint(generate_latest(setup.registry).decode())
    assert (before.returncode, before.stdout, before.stderr) == (0, "", "")

    await setup.core()
    text = generate_latest(setup.registry).decode()
    for name in (
        "elevenlabs_requests_total",
        "elevenlabs_tts_characters_total",
        "elevenlabs_audio_seconds_total",
        "elevenlabs_time_to_first_byte_average_seconds",
        "elevenlabs_time_to_first_byte_p95_seconds",
        "elevenlabs_concurrent_requests",
        "elevenlabs_credits_used_total",
    ):
        assert f"\n{name}{{" in text
    lint = promtool_lint(text)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, "", "")


def test_exporter_process_serves_character_stats_for_an_opted_in_workspace(
    tmp_path: Path,
) -> None:
    """The real process with ``character_stats: true``: the statistics appear on
    /metrics after the first credits poll (the exposition cache sees them), the
    workspace stays up, and the live exposition passes promtool."""
    simulator = Simulator(SimState()).start()
    try:
        config = tmp_path / "config.yml"
        config.write_text(
            json.dumps(
                {
                    "state_file": None,
                    "workspaces": [
                        {
                            "name": "main",
                            "api_key": "demo",
                            "base_url": simulator.url,
                            "character_stats": True,
                        }
                    ],
                }
            )
        )
        with run_exporter(["--config.file", str(config)], tmp_path) as exporter:
            exporter.wait_ready()
            deadline = time.monotonic() + 30
            text = exporter.metrics()
            marker = (
                "elevenlabs_exporter_character_stats_last_success_timestamp_seconds"
                '{workspace="main"} 0.0'
            )
            while marker in text and time.monotonic() < deadline:
                time.sleep(0.2)
                text = exporter.metrics()
            assert marker not in text, exporter.log()
    finally:
        simulator.stop()
    assert 'elevenlabs_up{workspace="main"} 1.0' in text
    products = {
        line.split('product_type="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("elevenlabs_requests_total{")
    }
    assert len(products) >= 5
    assert 'elevenlabs_concurrent_requests{workspace="main"}' in text
    lint = promtool_lint(text)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, "", "")
