"""The exporter as a user runs it: a real process serving its HTTP endpoints.

Flags, --config.check and exit codes are pinned in-process in test_cli.py.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from support import http_get, run_exporter

from exporter.simulator import SimState, Simulator


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def test_demo_serves_products_subscription_and_up_within_ten_seconds(tmp_path: Path) -> None:
    """`--demo` becomes ready within 10 s and serves counters for at least five products,
    the subscription gauges and elevenlabs_up 1."""
    with run_exporter(["--demo"], tmp_path) as exporter:
        assert exporter.wait_ready(timeout=10) < 10
        values = samples(exporter.metrics())
    products = {
        dict(labels)["product_type"]
        for name, labels in values
        if name == "elevenlabs_credits_used_total"
    }
    assert len(products) >= 5
    assert values[("elevenlabs_up", frozenset({("workspace", "default")}))] == 1
    for name in (
        "elevenlabs_subscription_credits_used",
        "elevenlabs_subscription_credits_limit",
        "elevenlabs_subscription_cycle_reset_timestamp_seconds",
        "elevenlabs_subscription_cycle_length_seconds",
    ):
        assert values[(name, frozenset({("workspace", "default")}))] > 0


def test_live_exposition_passes_promtool_and_negotiates_formats(tmp_path: Path) -> None:
    """promtool check metrics reports nothing on the live exposition; OpenMetrics is
    served when asked for, and gzip when accepted."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is required"
    with run_exporter(["--demo"], tmp_path) as exporter:
        exporter.wait_ready()
        text = exporter.metrics()
        status, om = http_get(
            exporter.url + "/metrics",
            headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        )
        _, zipped = http_get(exporter.url + "/metrics", headers={"Accept-Encoding": "gzip"})
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert (lint.stdout + lint.stderr).strip() == ""
    assert status == 200
    assert om.decode().rstrip().endswith("# EOF")
    assert gzip.decompress(zipped).decode().count("elevenlabs_up") >= 1


def test_health_ready_landing_and_unknown_paths(tmp_path: Path) -> None:
    """/healthz is 200 at once, / links the endpoints, unknown paths are 404."""
    with run_exporter(["--demo"], tmp_path) as exporter:
        exporter.wait_ready()
        assert http_get(exporter.url + "/healthz")[0] == 200
        status, body = http_get(exporter.url + "/")
        assert status == 200
        assert b'href="/metrics"' in body
        assert http_get(exporter.url + "/nope")[0] == 404


def test_readyz_is_503_until_the_first_successful_poll(tmp_path: Path) -> None:
    """With the key rejected, the process serves but never becomes ready."""
    up = ("elevenlabs_up", frozenset({("workspace", "default")}))
    auth = (
        "elevenlabs_exporter_poll_errors_total",
        frozenset({("workspace", "default"), ("endpoint", "subscription"), ("reason", "auth")}),
    )
    with run_exporter(["--demo", "--demo.scenario", "key-rejected"], tmp_path) as exporter:
        exporter.wait_listening(timeout=10)
        # Until the first poll has failed (instead of sleeping a fixed 1.5 s and hoping).
        deadline = time.monotonic() + 10
        while samples(exporter.metrics()).get(auth, 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        status, body = http_get(exporter.url + "/readyz")
        assert status == 503
        assert b"default" in body
        values = samples(exporter.metrics())
    assert values[up] == 0
    assert values[auth] >= 1


def test_sigterm_exits_zero_quickly_and_writes_state(tmp_path: Path) -> None:
    """SIGTERM stops polling, writes the state file and exits 0 within 5 seconds."""
    sim = Simulator(SimState()).start()
    state = tmp_path / "state.json"
    config = tmp_path / "config.yml"
    config.write_text(
        f"state_file: {state}\nworkspaces:\n"
        f"  - {{name: main, api_key: demo, base_url: '{sim.url}'}}\n"
    )
    try:
        with run_exporter(["--config.file", str(config)], tmp_path) as exporter:
            exporter.wait_ready()
            exporter.process.terminate()
            started = time.monotonic()
            code = exporter.process.wait(timeout=10)
            assert time.monotonic() - started < 5
    finally:
        sim.stop()
    assert code == 0
    assert json.loads(state.read_text())["workspaces"]["main"]["credits"]["router"]["total"]


def test_demo_never_writes_a_state_file(tmp_path: Path) -> None:
    """--demo keeps simulated usage out of the state file even when one is configured, so
    it can never replace a real workspace's saved ledger."""
    state = tmp_path / "state.json"
    with run_exporter(
        ["--demo"], tmp_path, env={"ELEVENLABS_EXPORTER_STATE_FILE": str(state)}
    ) as exporter:
        exporter.wait_ready()
        exporter.process.terminate()
        assert exporter.process.wait(timeout=10) == 0
    assert not state.exists()
