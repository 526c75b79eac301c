"""The real exporter process against a fault-injecting simulated API.

One exporter process polls the in-test simulator every second. Each case scripts a
fault, then asserts: the process stays alive, /metrics answers 200 within 100 ms
during the fault, the right reason is counted, elevenlabs_up is 0, and after the
fault clears the counters equal the simulator's ground truth exactly. Finally every
captured byte is searched for the API key.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from contract import REASONS
from prometheus_client.parser import text_string_to_metric_families
from support import ExporterProcess, http_get, run_exporter

from exporter.simulator import Fault, SimState, Simulator, cycle_bounds

# Deliberately not shaped like an ElevenLabs key: only the configured-secret redaction
# can catch it.
KEY = "el-test-key-3f9a2c71e0b84d56"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(exporter: ExporterProcess) -> tuple[Samples, float]:
    started = time.perf_counter()
    status, body = http_get(exporter.url + "/metrics")
    elapsed = time.perf_counter() - started
    assert status == 200
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out, elapsed


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset({"workspace": "main", **labels}.items())), 0.0)


def credits(samples: Samples) -> dict[str, float]:
    return {
        dict(k[1])["product_type"]: v
        for k, v in samples.items()
        if k[0] == "elevenlabs_credits_used_total" and v
    }


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    # A little behind real time, so the simulated minutes that are still filling in lie
    # inside the exporter's lookback (which runs on the real clock); each case moves it
    # on by 15 s, staying behind real time for the whole module.
    frozen = (time.time() // 60) * 60 - 5 * 60
    simulator = Simulator(SimState(api_key=KEY, frozen_at=frozen)).start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def exporter(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    tmp = tmp_path_factory.mktemp("faults")
    config = tmp / "config.yml"
    config.write_text(
        "poll_interval: 1s\nsubscription_interval: 1s\nrequest_timeout: 1s\nmax_retries: 1\n"
        "lookback: 10m\n"
        f"state_file: {tmp / 'state.json'}\n"
        f"workspaces:\n  - name: main\n    api_key_env: MAIN_KEY\n    base_url: {sim.url}\n"
    )
    with run_exporter(["--config.file", str(config)], tmp, env={"MAIN_KEY": KEY}) as process:
        process.wait_ready(timeout=30)
        yield process


def truth(sim: Simulator) -> dict[str, float]:
    start, _ = cycle_bounds(sim.state.now())
    end = int(time.time() // 60) * 60 + 3600
    return {k: v for k, v in sim.state.truth(start - start % 60, end).items() if v}


def wait_for(exporter: ExporterProcess, check: Any, timeout: float = 30.0) -> Samples:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert exporter.process.poll() is None, exporter.log()
        samples, _ = scrape(exporter)
        if check(samples):
            return samples
        time.sleep(0.2)
    raise AssertionError(f"condition not reached in {timeout}s:\n{exporter.log()[-3000:]}")


def recover_and_check_exact(sim: Simulator, exporter: ExporterProcess) -> None:
    sim.state.faults.clear()
    sim.state.scenario = "normal"
    cleared = time.time()
    samples = wait_for(
        exporter,
        lambda s: (
            value(s, "elevenlabs_up") == 1
            and value(s, "elevenlabs_exporter_last_success_timestamp_seconds", endpoint="usage")
            > cleared
        ),
    )
    assert credits(samples) == truth(sim)


CASES: list[tuple[str, list[dict[str, Any]], str, str]] = [
    (
        "429 with retry-after",
        [{"status": 429, "headers": {"retry-after": "1"}}],
        "usage",
        "rate_limited",
    ),
    (
        "429 with retry-after-ms",
        [{"status": 429, "headers": {"retry-after-ms": "300"}}],
        "usage",
        "rate_limited",
    ),
    (
        "429 with x-ratelimit-reset",
        [{"status": 429, "headers": {"x-ratelimit-reset": "1"}}],
        "usage",
        "rate_limited",
    ),
    (
        "429 without headers",
        [{"status": 429, "body": '{"detail":{"code":"system_busy"}}'}],
        "usage",
        "rate_limited",
    ),
    ("500 run", [{"status": 500}], "usage", "server_error"),
    ("502 run", [{"status": 502, "action": "html"}], "subscription", "server_error"),
    ("503 run", [{"status": 503, "endpoint": "*"}], "usage", "server_error"),
    ("slower than the timeout", [{"delay": 2.5}], "usage", "timeout"),
    ("connection reset", [{"action": "reset"}], "usage", "network"),
    ("truncated JSON", [{"action": "truncate"}], "usage", "bad_response"),
    (
        "HTML login page with 200",
        [{"action": "html", "status": 200}],
        "subscription",
        "bad_response",
    ),
    ("missing credits column", [{"action": "drop_column"}], "usage", "bad_response"),
    ("key revoked mid-run", [], "usage", "auth"),
    ("permission missing", [], "usage", "permission"),
    (
        "422 validation error",
        [{"status": 422, "body": '{"detail":[{"loc":["body","start_time"],"msg":"bad"}]}'}],
        "usage",
        "client_error",
    ),
]


def test_every_poll_error_reason_has_a_fault_case() -> None:
    """The cases below script a fault for every reason of the contract, and only those."""
    assert {reason for _, _, _, reason in CASES} == set(REASONS)


@pytest.mark.parametrize(("name", "faults", "endpoint", "reason"), CASES, ids=[c[0] for c in CASES])
def test_fault_is_counted_survived_and_recovered_exactly(
    sim: Simulator,
    exporter: ExporterProcess,
    name: str,
    faults: list[dict[str, Any]],
    endpoint: str,
    reason: str,
) -> None:
    """During the fault: alive, /metrics within 100 ms, the reason counted, up 0. After it: up 1
    and counters equal the ground truth, including usage that happened meanwhile."""
    before, _ = scrape(exporter)
    counted = value(
        before, "elevenlabs_exporter_poll_errors_total", endpoint=endpoint, reason=reason
    )
    if name == "key revoked mid-run":
        sim.state.scenario = "key-rejected"
    elif name == "permission missing":
        sim.state.scenario = "missing-permission"
    for spec in faults:
        sim.state.faults.append(Fault(**{"endpoint": endpoint, "times": -1, **spec}))
    sim.state.frozen_at = sim.state.now() + 15  # usage goes on during the fault

    latencies = []
    deadline = time.monotonic() + 40
    while True:
        assert time.monotonic() < deadline, exporter.log()[-3000:]
        assert exporter.process.poll() is None
        samples, elapsed = scrape(exporter)
        latencies.append(elapsed)
        if (
            value(
                samples, "elevenlabs_exporter_poll_errors_total", endpoint=endpoint, reason=reason
            )
            > counted
        ):
            break
        time.sleep(0.1)
    samples = wait_for(exporter, lambda s: value(s, "elevenlabs_up") == 0)
    for _ in range(5):
        latencies.append(scrape(exporter)[1])
    # Scrapes answer from memory during the fault: typically within 100 ms. On a shared,
    # noisy 2-core machine a single scrape can be delayed by other processes, so the bound
    # holds for the median and only a scrape that hangs (a second) fails outright; the
    # benchmark measures the latency distribution properly.
    assert statistics.median(latencies) < 0.1, latencies
    assert max(latencies) < 1.0, latencies
    assert credits(samples)  # the last good values are still exported
    recover_and_check_exact(sim, exporter)


@pytest.mark.parametrize("action", ["reorder", "extra_column", "nulls"])
def test_harmless_table_drift_is_read_correctly(
    sim: Simulator, exporter: ExporterProcess, action: str
) -> None:
    """Reordered columns, an extra column and null display values are normal: no error,
    up stays 1, counters stay exact."""
    before, _ = scrape(exporter)
    errors = sum(v for k, v in before.items() if k[0] == "elevenlabs_exporter_poll_errors_total")
    sim.state.faults.append(Fault(endpoint="usage", times=3, action=action))
    sim.state.frozen_at = sim.state.now() + 15
    deadline = time.monotonic() + 20
    while any(f.times for f in sim.state.faults) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [f for f in sim.state.faults if f.times]
    samples = wait_for(exporter, lambda s: credits(s) == truth(sim))
    after = sum(v for k, v in samples.items() if k[0] == "elevenlabs_exporter_poll_errors_total")
    assert after == errors
    assert value(samples, "elevenlabs_up") == 1


def test_missing_permission_is_named_in_the_log(sim: Simulator, exporter: ExporterProcess) -> None:
    """The log says which permission the key lacks, as the API names it."""
    assert "workspace_analytics_full_read" in exporter.log()
    assert '"missing_permission"' in exporter.log()


def test_key_never_leaks(sim: Simulator, exporter: ExporterProcess, tmp_path: Path) -> None:
    """After every fault above, and an error body that echoes the key, the key appears in
    no log line, no exposition, no landing page and no --config.check output."""
    sim.state.faults.append(
        Fault(
            endpoint="usage",
            times=2,
            status=401,
            body=f'{{"detail":{{"status":"invalid_api_key","message":"Invalid API key: {KEY}"}}}}',
        )
    )
    wait_for(
        exporter,
        lambda s: (
            value(s, "elevenlabs_exporter_poll_errors_total", endpoint="usage", reason="auth") >= 2
        ),
    )
    recover_and_check_exact(sim, exporter)
    assert "Invalid API key" in exporter.log()
    texts = [
        exporter.log(),
        exporter.metrics(),
        http_get(exporter.url + "/")[1].decode(),
        http_get(exporter.url + "/readyz")[1].decode(),
    ]
    config = tmp_path / "check.yml"
    config.write_text(f"workspaces:\n  - name: a\n    api_key: {KEY}\n")
    import subprocess
    import sys

    check = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.file", str(config), "--config.check"],
        capture_output=True,
        text=True,
        check=False,
    )
    texts += [check.stdout, check.stderr]
    for text in texts:
        assert KEY not in text
    assert statistics.mean(len(t) for t in texts) > 0
