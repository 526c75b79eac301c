"""The exporter as a user runs it: a real process, flags, exit codes, HTTP endpoints."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import http_get, run_exporter

from exporter.simulator import SimState, Simulator

KEY = "sk_live_7f3a9c0e5b2d4f6a8c1e3b5d7f9a0c2e"


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=30,
        check=False,
        cwd=cwd,
    )


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
    with run_exporter(["--demo", "--demo.scenario", "key-rejected"], tmp_path) as exporter:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if http_get(exporter.url + "/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.5)
        status, body = http_get(exporter.url + "/readyz")
        assert status == 503
        assert b"default" in body
        values = samples(exporter.metrics())
    assert values[("elevenlabs_up", frozenset({("workspace", "default")}))] == 0
    auth = (
        "elevenlabs_exporter_poll_errors_total",
        frozenset({("workspace", "default"), ("endpoint", "subscription"), ("reason", "auth")}),
    )
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


def test_config_check_prints_no_secret(tmp_path: Path) -> None:
    """--config.check prints the effective config, names where keys come from, never them."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    config = tmp_path / "config.yml"
    config.write_text(
        "poll_interval: 90s\nworkspaces:\n"
        "  - name: main\n    api_key_env: MAIN_KEY\n"
        f"  - name: eu\n    api_key_file: {key_file}\n"
        "    base_url: https://api.eu.residency.elevenlabs.io\n"
        f"  - name: inline\n    api_key: {KEY}x\n"
    )
    result = run_cli("--config.file", str(config), "--config.check", env={"MAIN_KEY": KEY + "y"})
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stdout + result.stderr
    assert "from environment variable MAIN_KEY" in result.stdout
    assert "poll_interval: 90s" in result.stdout


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("poll_intervall: 60s\n", "poll_intervall"),
        ("poll_interval: soon\n", "poll_interval"),
        ("bucket: 7s\n", "bucket"),
        ("lookback: 90s\n", "lookback"),
        ("count_from: last tuesday\n", "count_from"),
        ("workspaces:\n  - name: a\n    api_key_env: NOPE\n", "workspaces[0].api_key_env"),
        ("workspaces:\n  - name: a\n    colour: red\n", "workspaces[0].colour"),
        (
            "workspaces:\n  - name: a\n    api_key: k\n    base_url: ftp://x\n",
            "workspaces[0].base_url",
        ),
        ("workspaces:\n  - {name: a, api_key: k}\n  - {name: a, api_key: k}\n", "workspaces"),
        ("[unclosed\n", "config.file"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, content: str, key: str
) -> None:
    """Every config mistake is one line on stderr naming the key; exit code 2; no traceback."""
    config = tmp_path / "config.yml"
    config.write_text(content)
    result = run_cli("--config.file", str(config), env={"ELEVENLABS_API_KEY": KEY})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{key}:" in lines[0]
    assert "Traceback" not in result.stderr


def test_no_key_and_no_config_says_what_to_do(tmp_path: Path) -> None:
    """Without a key the exporter explains the three ways to give one."""
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "ELEVENLABS_API_KEY" in result.stderr
    assert "--demo" in result.stderr


def test_bad_listen_address_exits_2() -> None:
    """A malformed --web.listen-address is a flag error, exit 2."""
    result = run_cli("--demo", "--web.listen-address", "localhost")
    assert result.returncode == 2
    assert "--web.listen-address" in result.stderr


def test_shard_flag_keeps_only_this_shards_workspaces(tmp_path: Path) -> None:
    """--shard i/n keeps exactly the workspaces hashed to shard i; across all shards each
    workspace appears once."""
    config = tmp_path / "config.yml"
    names = [f"client-{n}" for n in range(12)]
    config.write_text("workspaces:\n" + "".join(f"  - {{name: {n}, api_key: k}}\n" for n in names))
    seen: list[str] = []
    for index in range(3):
        result = run_cli("--config.file", str(config), "--config.check", "--shard", f"{index}/3")
        assert result.returncode == 0, result.stderr
        seen += [
            line.split(": ", 1)[1]
            for line in result.stdout.splitlines()
            if line.startswith("- name: ")
        ]
    assert sorted(seen) == sorted(names)
    bad = run_cli("--config.file", str(config), "--shard", "3/3")
    assert bad.returncode == 2
    assert "--shard" in bad.stderr
