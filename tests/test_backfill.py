"""``elevenlabs-exporter backfill``: the file promtool turns into blocks, and what a real
Prometheus then answers about the backfilled history.

The simulator's clock is frozen two and a half days after a billing-cycle reset
(2026-11-07 09:13:27 UTC), and the backfilled period runs across that reset, so the
counter's restart at the cycle start is covered. Expected values come from the
simulator's ground truth.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import free_port

from exporter.simulator import Fault, SimState, Simulator
from exporter.tools import backfill

NOW = 1_794_225_600.0  # 2026-11-09T12:00:00Z, in the simulated cycle that began on the 7th
SINCE, UNTIL = "2026-11-06T00:00:00Z", "2026-11-09T00:00:00Z"
PREVIOUS_CYCLE = "2026-10-07T09:13:00Z"  # cycle starts, rounded down to the minute
CYCLE = "2026-11-07T09:13:00Z"
INSTANCE = "backfill-test:9142"
SECRET = "sk_backfill_test_0123456789abcdef"  # noqa: S105 - a fake key, to prove it never prints
SAMPLE_RE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+) (\d+)")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def ts(text: str) -> int:
    """Unix seconds of an RFC 3339 UTC time."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=NOW)).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def sim(shared_sim: Simulator) -> Simulator:
    """The module's simulator, back to its normal state with an empty request log."""
    state = shared_sim.state
    with state.lock:
        state.requests.clear()
        state.faults.clear()
        state.scenario = "normal"
    return shared_sim


def write_config(tmp_path: Path, sim: Simulator, **top: Any) -> Path:
    path = tmp_path / "config.yml"
    workspace = {"name": "main", "api_key": "demo", "base_url": sim.url}
    path.write_text(yaml.safe_dump({**top, "workspaces": [workspace]}), encoding="utf-8")
    return path


def run(config: Path, *args: str, clock: float = NOW + 86400) -> tuple[int, str, str]:
    """The backfill in-process: (status, stdout, stderr). The clock is a day after the
    simulator's, so the period is well before Prometheus's head block."""
    out, err = io.StringIO(), io.StringIO()
    code = backfill.main(
        ["--config.file", str(config), *args], clock=lambda: clock, stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


Series = dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]


def parse_openmetrics(text: str) -> dict[str, tuple[str, Series]]:
    """Families in file order as name -> (type, series -> samples), checking on the way
    what promtool relies on: one TYPE per family, families not interleaved, each
    series' samples together and in time order, and ``# EOF`` last."""
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    families: dict[str, tuple[str, Series]] = {}
    current = ""
    finished: set[tuple[tuple[str, str], ...]] = set()
    previous: tuple[tuple[str, str], ...] | None = None
    for line in lines[:-1]:
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in families, f"family {name} twice"
            families[name] = (kind, {})
            current = name
            continue
        if line.startswith("# HELP "):
            continue
        match = SAMPLE_RE.fullmatch(line)
        assert match, line
        sample_name, labels_text, value, stamp = match.groups()
        kind, series = families[current]
        assert sample_name == (current + "_total" if kind == "counter" else current)
        key = (("__name__", sample_name), *sorted(LABEL_RE.findall(labels_text)))
        if key != previous:
            assert key not in finished, f"series {key} is not contiguous"
            if previous is not None:
                finished.add(previous)
            previous = key
        samples = series.setdefault(key, [])
        assert not samples or samples[-1][0] < int(stamp), f"{key} out of order"
        samples.append((int(stamp), float(value)))
    return families


def by_product(series: Series) -> dict[str, list[tuple[int, float]]]:
    return {dict(key)["product_type"]: samples for key, samples in series.items()}


def value_at(samples: list[tuple[int, float]], at: int) -> float:
    return dict(samples)[at]


class Prometheus:
    """A real Prometheus on loopback, answering instant queries."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str, at: int) -> dict[str, float]:
        """``product_type -> value`` of an instant query at ``at``."""
        params = urllib.parse.urlencode({"query": expr, "time": str(at)})
        url = f"{self.url}/api/v1/query?{params}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            body = json.load(response)
        assert body["status"] == "success", body
        return {r["metric"]["product_type"]: float(r["value"][1]) for r in body["data"]["result"]}

    def series_labels(self, expr: str, at: int) -> list[dict[str, str]]:
        """The label sets an instant query returns."""
        params = urllib.parse.urlencode({"query": expr, "time": str(at)})
        url = f"{self.url}/api/v1/query?{params}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            body = json.load(response)
        return [r["metric"] for r in body["data"]["result"]]


@contextmanager
def prometheus_on(data_dir: Path, workdir: Path) -> Iterator[Prometheus]:
    """A real Prometheus serving ``data_dir`` (it scrapes nothing) until the block ends."""
    binary = shutil.which("prometheus")
    assert binary, "the prometheus binary must be on PATH (scripts/apt-packages.txt)"
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1m"}}), encoding="utf-8")
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                "--storage.tsdb.retention.time=10y",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline, "prometheus did not become ready"
                time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.e2e
def test_promtool_blocks_hold_the_ground_truth_in_a_real_prometheus(
    sim: Simulator, tmp_path: Path
) -> None:
    """The real CLI writes three days of history across a billing-cycle reset; promtool
    accepts the file; a real Prometheus on the blocks answers, at the exact sample
    times, the simulator's credits since the cycle start in force (the counter restarts
    after the cycle start like the live one), and increase() over the whole range,
    reset included, and over its last hour equals the credits used in them exactly."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool must be on PATH (scripts/apt-packages.txt)"
    config = write_config(tmp_path, sim)
    om_file = tmp_path / "history.om"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELEVENLABS")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "backfill",
            "--config.file",
            str(config),
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--label",
            f"instance={INSTANCE}",
            "-o",
            str(om_file),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "wrote " in result.stderr

    data_dir = tmp_path / "data"
    blocks = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om_file), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert blocks.returncode == 0, blocks.stdout + blocks.stderr

    since, until, cycle = ts(SINCE), ts(UNTIL), ts(CYCLE)
    truth = sim.state.truth
    counter = 'elevenlabs_credits_used_total{job="elevenlabs-exporter"}'
    gauge = 'elevenlabs_cycle_credits_used{job="elevenlabs-exporter"}'

    def nonzero(values: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in values.items() if v}

    with prometheus_on(data_dir, tmp_path) as prom:
        labels = prom.series_labels(counter, until)
        assert len(labels) == 7
        assert all(
            (m["workspace"], m["instance"], m["job"]) == ("main", INSTANCE, "elevenlabs-exporter")
            for m in labels
        )
        assert prom.query(counter, until) == nonzero(truth(cycle, until))
        assert prom.query(gauge, until) == nonzero(truth(cycle, until))
        assert prom.query(counter, since) == nonzero(truth(ts(PREVIOUS_CYCLE), since))
        assert prom.query(counter, cycle - 60) == nonzero(truth(ts(PREVIOUS_CYCLE), cycle - 60))
        assert prom.query(counter, cycle) == nonzero(truth(ts(PREVIOUS_CYCLE), cycle))
        assert nonzero(prom.query(counter, cycle + 60)) == nonzero(truth(cycle, cycle + 60))
        whole = prom.query(f"increase({counter}[3d])", until)
        assert whole == pytest.approx(nonzero(truth(since, until)), rel=1e-12)
        last_hour = prom.query(f"increase({counter}[1h])", until)
        expected = truth(until - 3600, until)
        assert last_hour == pytest.approx({k: expected[k] for k in last_hour}, rel=1e-12)
        assert sum(last_hour.values()) == pytest.approx(sum(expected.values()), rel=1e-12)


@pytest.mark.parametrize("step", ["5m", "1h"])
def test_file_shape_anchor_at_count_from_and_bounded_requests(
    sim: Simulator, tmp_path: Path, step: str
) -> None:
    """With a fixed count_from the counter counts from it with no reset at the cycle
    start while the cycle gauge restarts there (with one extra sample at the cycle
    start, holding the whole ending cycle); one sample per step from --since to
    --until; the families and series are laid out as promtool needs; and the reads are
    bounded: hour buckets a week at a time for hour steps (minute buckets only around
    the cycle start), minute buckets a day at a time otherwise, one request at a time."""
    config = write_config(tmp_path, sim, count_from="2026-11-05T00:00:00Z")
    code, out, err = run(config, "--since", SINCE, "--until", UNTIL, "--step", step, "--quiet")
    assert code == 0, err
    families = parse_openmetrics(out)
    assert list(families) == ["elevenlabs_credits_used", "elevenlabs_cycle_credits_used"]
    assert families["elevenlabs_credits_used"][0] == "counter"
    assert families["elevenlabs_cycle_credits_used"][0] == "gauge"
    seconds = {"5m": 300, "1h": 3600}[step]
    since, until, cycle = ts(SINCE), ts(UNTIL), ts(CYCLE)
    times = list(range(since, until + 1, seconds))
    count_from = ts("2026-11-05T00:00:00Z")
    counters = by_product(families["elevenlabs_credits_used"][1])
    gauges = by_product(families["elevenlabs_cycle_credits_used"][1])
    assert set(counters) == set(gauges) == set(sim.state.products)
    for product, samples in counters.items():
        assert [t for t, _ in samples] == times
        values = [v for _, v in samples]
        assert values == sorted(values), "a counter from count_from never goes down"
        index = sim.state.products.index(product)
        now = sim.state.now()
        for at in (since, cycle - cycle % seconds, until):
            assert value_at(samples, at) == sim.state.credits(index, count_from, at, now)
        gauge = gauges[product]
        assert [t for t, _ in gauge] == sorted([*times, cycle])
        assert value_at(gauge, cycle) == sim.state.credits(index, ts(PREVIOUS_CYCLE), cycle, now)
        assert value_at(gauge, until) == sim.state.credits(index, cycle, until, now)
        after = cycle - cycle % seconds + seconds
        assert value_at(gauge, after) == sim.state.credits(index, cycle, after, now)
        before = cycle - cycle % seconds
        assert value_at(gauge, before) == sim.state.credits(index, ts(PREVIOUS_CYCLE), before, now)
    for key in families["elevenlabs_credits_used"][1]:
        labels = dict(key)
        assert labels["job"] == "elevenlabs-exporter"
        assert labels["workspace"] == "main"

    windows = [r["body"] for r in sim.state.requests if r["endpoint"] == "usage"]
    assert windows
    for body in windows:
        span = (body["end_time"] - body["start_time"]) // 1000
        assert body["start_time"] % (body["interval_seconds"] * 1000) == 0
        assert span % body["interval_seconds"] == 0
        if body["interval_seconds"] == 3600:
            assert span <= 7 * 86400
        else:
            assert body["interval_seconds"] == 60
            assert span <= 86400
    main_period = [b for b in windows if b["start_time"] >= since * 1000]
    if step == "1h":
        minute = [b for b in main_period if b["interval_seconds"] == 60]
        assert minute
        assert all(abs(b["start_time"] // 1000 - cycle) < 3600 for b in minute)
    else:
        assert all(b["interval_seconds"] == 60 for b in main_period)


def test_no_instance_label_is_noted_and_job_defaults(sim: Simulator, tmp_path: Path) -> None:
    """Without --label instance=... a note says the series will not continue the scraped
    ones; job defaults to the documented job name; extra labels reach every series."""
    config = write_config(tmp_path, sim)
    code, out, err = run(
        config, "--since", "2026-11-08T22:00:00Z", "--until", UNTIL, "--label", "env=prod"
    )
    assert code == 0, err
    assert err.startswith("note: no --label instance=...")
    families = parse_openmetrics(out)
    for _, series in families.values():
        for key in series:
            labels = dict(key)
            assert labels["job"] == "elevenlabs-exporter"
            assert labels["env"] == "prod"
            assert "instance" not in labels


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--since", "2026-11-09T00:00:00Z", "--until", "now"], "--until"),
        (["--since", "2026-11-09T00:00:00Z", "--until", "2h"], "--until"),
        (["--since", "2026-11-09T00:00:00Z", "--until", "2026-12-01"], "--until"),
        (["--since", "someday"], "--since"),
        (["--since", "2026-11-09", "--until", "2026-11-08"], "--since"),
        (["--since", "2d", "--step", "7m"], "--step"),
        (["--since", "2d", "--step", "90m"], "--step"),
        (["--since", "2d", "--label", "workspace=other"], "--label"),
        (["--since", "2d", "--label", "__name__=x"], "--label"),
        (["--since", "2d", "--label", "bad-name=x"], "--label"),
        (["--since", "2d", "--label", "instance"], "--label"),
    ],
)
def test_bad_flags_and_recent_periods_exit_2(
    sim: Simulator, tmp_path: Path, args: list[str], flag: str
) -> None:
    """A period reaching into the last 3 hours (Prometheus's head block) or the future,
    a bad date, step or label exits 2 with one line naming the flag, before any
    request, and writes no file."""
    config = write_config(tmp_path, sim)
    target = tmp_path / "out.om"
    code, out, err = run(config, *args, "-o", str(target), clock=NOW)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"flag error: {flag}: ")
    assert not target.exists()
    assert sim.state.requests == []


def test_api_failure_exits_1_and_writes_nothing(sim: Simulator, tmp_path: Path) -> None:
    """A rejected key exits 1 with one line naming the workspace and reason, without
    the key, and leaves neither the output file nor a partial one behind."""
    path = tmp_path / "config.yml"
    workspace = {"name": "main", "api_key": SECRET, "base_url": sim.url}
    path.write_text(yaml.safe_dump({"workspaces": [workspace]}), encoding="utf-8")
    target = tmp_path / "out.om"
    code, out, err = run(
        path,
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--label",
        f"instance={INSTANCE}",
        "-o",
        str(target),
    )
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: workspace main: auth: HTTP 401")
    assert SECRET not in err
    assert list(tmp_path.iterdir()) == [path]


def test_without_the_subscription_the_counter_counts_from_since(
    sim: Simulator, tmp_path: Path
) -> None:
    """A key that may not read the subscription still gets the history: the counter
    counts from --since (the cycle is unknown), and the cycle gauge is left out with a
    warning saying so."""
    body = json.dumps(
        {
            "detail": {
                "status": "missing_permissions",
                "message": "The API key you used is missing the permission user_read.",
            }
        }
    )
    sim.state.faults.append(Fault(endpoint="subscription", times=-1, status=401, body=body))
    config = write_config(tmp_path, sim)
    code, out, err = run(
        config, "--since", SINCE, "--until", UNTIL, "--step", "1h", "--label", "instance=x:1"
    )
    assert code == 0, err
    assert "warning: workspace main: cannot read the subscription" in err
    assert "elevenlabs_cycle_credits_used is left out" in err
    families = parse_openmetrics(out)
    assert list(families) == ["elevenlabs_credits_used"]
    since, until = ts(SINCE), ts(UNTIL)
    got = {
        k: value_at(v, until) for k, v in by_product(families["elevenlabs_credits_used"][1]).items()
    }
    assert got == {k: v for k, v in sim.state.truth(since, until).items() if v}
    assert all(
        value_at(v, since) == 0 for v in by_product(families["elevenlabs_credits_used"][1]).values()
    )
