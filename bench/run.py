"""The elevenlabs-exporter benchmark: one command, the same measurements every time.

    .venv/bin/python bench/run.py            # full run, about 10 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # shorter points, about 4 minutes

It starts the real exporter (``python -m exporter``) against the simulated API
(``python -m exporter.simulator``), loads it from a separate process, and prints a
markdown report: scrape throughput and latency as ratios to a bare
``prometheus_client`` server with the same series measured in the same run, memory,
API requests per poll as history grows, start-up time, and one poll cycle over many
workspaces. Machines are shared and noisy: read ratios, not absolute figures.
Everything listens on 127.0.0.1; every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import inprocess
import pressure
import prometheus_client
from procs import (
    PYTHON,
    REPO,
    ProcessSet,
    Simulator,
    cpu_seconds,
    http,
    memory_kib,
    run_loadgen,
    start_baseline,
    start_exporter,
    start_simulator,
    write_config,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator import cycle_bounds

SECTIONS = ("requests", "week", "startup", "scrape", "memory", "cycle", "hostile")
SLOW_API_DELAY = 5.0
CYCLE_API_DELAY = 0.05
POLL_INTERVAL = 60.0


@dataclass
class Options:
    """What to run and how long; the defaults are the full run."""

    sections: tuple[str, ...] = SECTIONS
    duration: float = 5.0  # seconds per load point
    threads: int = 8
    scrape_sizes: tuple[int, ...] = (100, 1_000, 10_000)
    scrape_workspaces: tuple[int, ...] = ()  # set: these workspace counts, no calibration
    scrape_poll_interval: str = "15s"
    memory_workspaces: tuple[int, ...] = (1, 10, 100, 1_000)
    cycle_workspaces: int = 1_000
    max_concurrent: int = 4  # the exporter's default max_concurrent_requests
    history_days: tuple[float, ...] = (1, 7, 15, 30)
    history_polls: int = 60
    week_days: float = 7
    week_step: int = 300
    startup_repeats: int = 3
    quick: bool = False

    @classmethod
    def quick_run(cls) -> Options:
        """Shorter points and fewer repeats; memory up to 100 workspaces, and the
        1,000-workspace cycle restarts from copies of one seeded workspace."""
        return cls(
            duration=1.5,
            memory_workspaces=(1, 10, 100),
            week_step=1800,
            startup_repeats=1,
            history_polls=30,
            quick=True,
        )


@dataclass
class Report:
    """Results as they are measured, rendered as markdown at the end."""

    env: dict[str, str] = field(default_factory=dict)
    scrape: list[dict[str, Any]] = field(default_factory=list)
    memory: list[dict[str, Any]] = field(default_factory=list)
    week: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    startup: dict[str, Any] | None = None
    cycle: dict[str, Any] | None = None
    hostile: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def progress(message: str) -> None:
    """One progress line on stderr (the report goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Expositions ---------------------------------------------------------------------


def count_series(text: str) -> int:
    """Samples in a text exposition."""
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def mirror_spec(text: str) -> list[list[object]]:
    """The exposition's samples as a static-gauge spec for bench/baseline.py."""
    by_name: dict[str, tuple[list[str], list[list[object]]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names, rows = by_name.setdefault(sample.name, (list(sample.labels), []))
            rows.append([*(sample.labels[n] for n in names), sample.value])
    return [[name, names, rows] for name, (names, rows) in by_name.items()]


def render_query(text: str) -> str:
    """A ``name[]`` query naming every family of the exposition.

    The exporter serves pre-rendered bytes until its data changes, and renders
    ``name[]``-filtered scrapes afresh: naming every family makes each scrape cost a
    full render, which is what a Prometheus scraping every 15-60 s pays as soon as a
    poll has finished since its previous scrape.
    """
    names = sorted({family.name for family in text_string_to_metric_families(text)})
    return "?" + "&".join(f"name[]={quote(name)}" for name in names)


def api_latency(text: str) -> dict[str, float]:
    """Mean API request duration per endpoint, from the exporter's own histogram."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "elevenlabs_exporter_api_request_duration_seconds":
            continue
        for sample in family.samples:
            endpoint = sample.labels.get("endpoint", "")
            if sample.name.endswith("_sum"):
                sums[endpoint] = sums.get(endpoint, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[endpoint] = counts.get(endpoint, 0.0) + sample.value
    return {k: sums[k] / counts[k] for k in sums if counts.get(k)}


def timed_scrape(url: str, gzip: bool, query: str = "") -> float:
    """Seconds for one scrape (plain text, or with Prometheus' gzip Accept-Encoding)."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    started = time.perf_counter()
    status, _ = http(url + "/metrics" + query, headers=headers, timeout=120)
    assert status == 200
    return time.perf_counter() - started


def stamp(item: dict[str, Any]) -> float:
    """The Unix time of a JSON log line."""
    return datetime.fromisoformat(str(item["timestamp"]).replace("Z", "+00:00")).timestamp()


# Sections --------------------------------------------------------------------------


class Bench:
    """One benchmark run: its processes, scratch directory, options and report."""

    def __init__(self, options: Options, procs: ProcessSet, workdir: Path) -> None:
        self.options = options
        self.procs = procs
        self.workdir = workdir
        self.report = Report()
        self._sim: Simulator | None = None
        self._per_workspace: int | None = None
        self._states: dict[int, Path] = {}  # workspaces -> config whose state is seeded
        self._state_of: dict[Path, Path] = {}  # config -> its state file
        self._counter = 0

    def path(self, stem: str) -> Path:
        """A fresh file name in the scratch directory."""
        self._counter += 1
        return self.workdir / f"{self._counter:02d}-{stem}"

    @property
    def sim(self) -> Simulator:
        """The shared simulator (real-time clock), started on first use."""
        if self._sim is None:
            self._sim = start_simulator(self.procs, self.workdir)
            progress(f"simulator at {self._sim.url}")
        return self._sim

    def run(self) -> Report:
        """Run the selected sections in a fixed order."""
        self.report.env = environment()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("requests", self.requests_vs_history),
            ("week", self.ledger_week),
            ("startup", self.startup),
            ("scrape", self.scrape),
            ("memory", self.memory),
            ("cycle", self.poll_cycle),
            ("hostile", self.hostile),
        ]
        for name, step in steps:
            if name in self.options.sections:
                started = time.monotonic()
                step()
                progress(f"{name}: done in {time.monotonic() - started:.0f}s")
        return self.report

    # 7. A burst of scrapers, and scrapes while large answers parse -------------------

    def hostile(self) -> None:
        progress("hostile: a burst of 64 scrapers, and scrapes while 15 MiB answers parse")
        self.report.hostile = pressure.measure(
            self.procs, self.sim, self.path, self.options.duration
        )

    # 4. Requests vs history (in-process) -----------------------------------------

    def requests_vs_history(self) -> None:
        progress("requests per poll vs history (in-process)")
        self.report.history = inprocess.requests_vs_history(
            self.options.history_days, self.options.history_polls, int(POLL_INTERVAL)
        )

    # 3b. The ledger after a week (in-process) -------------------------------------

    def ledger_week(self) -> None:
        progress(f"a simulated week of polls every {self.options.week_step}s (in-process)")
        self.report.week = inprocess.ledger_week(self.options.week_days, self.options.week_step)

    # 5. Start-up to ready, seeding a full cycle -----------------------------------

    def startup(self) -> None:
        repeats = self.options.startup_repeats
        progress(f"start-up: --help baseline and {repeats} cold start(s) seeding a full cycle")
        helps = []
        for _ in range(max(3, repeats)):
            started = time.perf_counter()
            subprocess.run(
                [PYTHON, "-m", "exporter", "--help"],
                cwd=REPO,
                check=True,
                capture_output=True,
                timeout=60,
            )
            helps.append(time.perf_counter() - started)
        # The last complete cycle: freeze the simulator two minutes before it reset, so
        # ~30 days of usage lie behind it. The exporter's own clock is real time, so it
        # reads from that cycle's start up to now.
        frozen = cycle_bounds(time.time())[0] - 120
        sim = start_simulator(self.procs, self.workdir, frozen_at=frozen)
        cycle_start = cycle_bounds(frozen)[0]
        colds: list[dict[str, Any]] = []
        state = self.path("startup-state.json")
        try:
            # One untimed start first: it fills the simulator's caches of past hours,
            # so the timed starts measure the exporter, not the simulator's arithmetic.
            self._start_once(sim, self.path("startup-warmup-state.json"))
            for _ in range(repeats):
                state = self.path("startup-state.json")
                colds.append(self._start_once(sim, state))
            warm = self._start_once(sim, state)
        finally:
            self.procs.stop(sim.proc)
        self.report.startup = {
            "help_s": statistics.median(helps),
            "cold": colds,
            "cold_s": statistics.median(c["ready_s"] for c in colds),
            "warm": warm,
            "frozen_at": frozen,
            "cycle_start": cycle_start,
            "days_with_usage": (frozen - cycle_start) / 86400,
            "days_read": (time.time() - cycle_start) / 86400,
        }

    def _start_once(self, sim: Simulator, state: Path) -> dict[str, Any]:
        config = write_config(self.path("startup.yaml"), sim.url, 1, state_file=state)
        exporter = start_exporter(self.procs, config, self.path("startup.log"))
        try:
            ready = exporter.wait_ready(120)
            lines = exporter.log_lines()
            rss = memory_kib(exporter.pid)
        finally:
            self.procs.stop(exporter.proc)
        listening = next(i for i in lines if i.get("event") == "listening")
        usage = next(i for i in lines if i.get("event") == "poll" and i.get("endpoint") == "usage")
        return {
            "ready_s": ready,
            "listening_s": stamp(listening) - exporter.started,
            "requests": int(usage.get("requests", 0)) + 1,
            "rows": int(usage.get("rows", 0)),
            "usage_poll_s": float(usage.get("duration_seconds", 0.0)),
            "rss_kib": rss.get("VmRSS", 0),
            "hwm_kib": rss.get("VmHWM", 0),
        }

    # 1 + 2. Scrape throughput and latency ----------------------------------------

    def series_per_workspace(self) -> int:
        """Series one workspace adds to the exposition (from a one-workspace exporter)."""
        if self._per_workspace is None:
            config = write_config(self.path("calibrate.yaml"), self.sim.url, 1, state_file=None)
            exporter = start_exporter(self.procs, config, self.path("calibrate.log"))
            try:
                exporter.wait_ready(120)
                one = count_series(exporter.metrics())
            finally:
                self.procs.stop(exporter.proc)
            self._per_workspace = max(1, one - 1)  # build_info is not per workspace
        return self._per_workspace

    def scrape(self) -> None:
        if self.options.scrape_workspaces:
            sizes = [(0, n) for n in self.options.scrape_workspaces]
        else:
            per_ws = self.series_per_workspace()
            sizes = [(t, max(1, round((t - 1) / per_ws))) for t in self.options.scrape_sizes]
        for target, workspaces in sizes:
            progress(f"scrape: ~{target or '?'} series = {workspaces} workspace(s)")
            self._scrape_size(target, workspaces)

    def _load(self, url: str, pid: int, threads: int, plain: bool = False) -> dict[str, Any]:
        extra = ("--plain",) if plain else ()
        cpu = cpu_seconds(pid)
        result = run_loadgen("scrape", url, threads, self.options.duration, *extra)
        result["cpu_s"] = cpu_seconds(pid) - cpu
        return result

    def _scrape_size(self, target: int, workspaces: int) -> None:
        opts = self.options
        sim = self.sim
        config = write_config(
            self.path(f"scrape-{workspaces}.yaml"),
            sim.url,
            workspaces,
            state_file=self.path(f"scrape-{workspaces}-state.json"),
            poll_interval=opts.scrape_poll_interval,
            request_timeout=f"{SLOW_API_DELAY * 2:g}s",
        )
        exporter = start_exporter(self.procs, config, self.path(f"scrape-{workspaces}.log"))
        bare: dict[str, tuple[int, str]] = {}
        try:
            exporter.wait_ready(120 + workspaces)
            text = exporter.metrics()
            series = count_series(text)
            spec = self.path(f"baseline-{workspaces}.json")
            spec.write_text(json.dumps(mirror_spec(text)))
            for kind in ("gauges", "families"):
                proc, url = start_baseline(
                    self.procs, spec, self.path(f"baseline-{kind}-{workspaces}.log"), kind
                )
                bare[kind] = (proc.pid, url)
                status, body = http(url)
                assert status == 200
                if count_series(body.decode()) != series:
                    raise RuntimeError(f"baseline {kind} serves other series than the exporter")
            metrics_url = exporter.url + "/metrics"
            render_url = metrics_url + render_query(text)
            status, body = http(render_url)
            if status != 200 or count_series(body.decode()) != series:
                raise RuntimeError("a name[] scrape naming every family is not the full exposition")
            servers = {
                **bare,
                "exporter": (exporter.pid, metrics_url),
                "render": (exporter.pid, render_url),
            }
            results: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in servers}
            # While a bare server is loaded the exporter only polls: its background CPU.
            idle_cpu = cpu_seconds(exporter.pid)
            idle_seconds = 0.0
            for point, threads, plain in (
                ("n", opts.threads, False),
                ("one", 1, False),
                ("plain", 1, True),
            ):
                for kind, (pid, url) in servers.items():
                    results[kind][point] = self._load(url, pid, threads, plain)
                    if kind == "gauges" and point == "n":
                        idle_seconds = results[kind][point]["seconds"]
                        idle_rate = (cpu_seconds(exporter.pid) - idle_cpu) / idle_seconds
            # The API now takes 5 s per answer; measure once a poll is waiting on it.
            before = sim.request_count()
            sim.faults({"endpoint": "*", "times": -1, "delay": SLOW_API_DELAY})
            try:
                interval = float(opts.scrape_poll_interval.rstrip("s"))
                in_flight = sim.wait_for_requests(before, timeout=interval * 1.2 + 5)
                for key, source in (("slow", "exporter"), ("slow_render", "render")):
                    pid, url = servers[source]
                    results[key] = {
                        "n": self._load(url, pid, opts.threads),
                        "one": self._load(url, pid, 1),
                        "plain": self._load(url, pid, 1, plain=True),
                    }
                slow_requests = sim.request_count() - before
            finally:
                sim.clear_faults()
        finally:
            self.procs.stop(exporter.proc)
            for pid, _ in bare.values():
                self.procs.stop_pid(pid)
        for key in ("exporter", "render", "slow", "slow_render"):
            for result in results[key].values():
                result["cpu_s"] = max(0.0, result["cpu_s"] - idle_rate * result["seconds"])
        self.report.scrape.append(
            {
                "target": target,
                "workspaces": workspaces,
                "series": series,
                "bytes": len(text.encode()),
                "idle_cpu_rate": idle_rate,
                **results,
                "slow_in_flight": in_flight,
                "slow_api_requests": slow_requests,
            }
        )

    # 3. Memory -----------------------------------------------------------------------

    def memory(self) -> None:
        for workspaces in self.options.memory_workspaces:
            progress(f"memory: {workspaces} workspace(s)")
            self.report.memory.append(self._memory_point(workspaces))

    def _memory_point(self, workspaces: int) -> dict[str, Any]:
        state = self.path(f"memory-{workspaces}-state.json")
        config = write_config(
            self.path(f"memory-{workspaces}.yaml"), self.sim.url, workspaces, state_file=state
        )
        exporter = start_exporter(self.procs, config, self.path(f"memory-{workspaces}.log"))
        try:
            ready = exporter.wait_ready(120 + workspaces * 0.5)
            at_ready = memory_kib(exporter.pid)
            text = exporter.metrics()
            query = render_query(text)
            plain = [timed_scrape(exporter.url, gzip=False) for _ in range(3)]
            gzipped = [timed_scrape(exporter.url, gzip=True) for _ in range(3)]
            render_plain = [timed_scrape(exporter.url, False, query) for _ in range(3)]
            render_gzip = [timed_scrape(exporter.url, True, query) for _ in range(3)]
            # One Prometheus-like scraper, back to back, as served: polls keep changing
            # the data, so this shows what re-rendering and state writes cost a scrape.
            steady = run_loadgen("scrape", exporter.url + "/metrics", 1, self.options.duration)
            after = memory_kib(exporter.pid)
        finally:
            self.procs.stop(exporter.proc)  # SIGTERM: the state file is flushed
        self._states[workspaces] = config
        self._state_of[config] = state
        return {
            "workspaces": workspaces,
            "series": count_series(text),
            "ready_s": ready,
            "rss_ready_kib": at_ready.get("VmRSS", 0),
            "rss_after_kib": after.get("VmRSS", 0),
            "hwm_kib": after.get("VmHWM", 0),
            "scrape_plain_ms": statistics.median(plain) * 1000,
            "scrape_gzip_ms": statistics.median(gzipped) * 1000,
            "render_plain_ms": statistics.median(render_plain) * 1000,
            "render_gzip_ms": statistics.median(render_gzip) * 1000,
            "steady": steady,
            "state_file_bytes": state.stat().st_size if state.exists() else 0,
        }

    # 6. One poll cycle over many workspaces ----------------------------------------

    def _replicated_state(self, workspaces: int) -> Path:
        """A config and state file of ``workspaces`` copies of one seeded workspace.

        Seeding a thousand workspaces from the simulator takes minutes; their state
        would be identical anyway (one simulated account), so one is seeded and copied.
        """
        progress(f"poll cycle: seeding one workspace, copying its state {workspaces} times")
        one = self._states.get(1)
        if one is None:
            self._memory_point(1)
            one = self._states[1]
        seeded = json.loads(self._state_of[one].read_text())
        entry = seeded["workspaces"]["ws0000"]
        seeded["workspaces"] = {f"ws{i:04d}": entry for i in range(workspaces)}
        state = self.path(f"cycle-{workspaces}-state.json")
        state.write_text(json.dumps(seeded))
        config = write_config(
            self.path(f"cycle-{workspaces}.yaml"), self.sim.url, workspaces, state_file=state
        )
        self._state_of[config] = state
        return config

    def poll_cycle(self) -> None:
        opts = self.options
        workspaces = opts.cycle_workspaces
        config = self._states.get(workspaces)
        seeded = config is not None
        if config is None:
            config = self._replicated_state(workspaces)
        progress(f"poll cycle: restarting {workspaces} workspaces with {CYCLE_API_DELAY}s API")
        sim = self.sim
        sim.faults({"endpoint": "*", "times": -1, "delay": CYCLE_API_DELAY})
        try:
            exporter = start_exporter(self.procs, config, self.path(f"cycle-{workspaces}.log"))
            try:
                exporter.wait_listening(120)
                exporter_cpu, sim_cpu = cpu_seconds(exporter.pid), cpu_seconds(sim.proc.pid)
                ready = exporter.wait_ready(300 + workspaces * 0.5)
                exporter_cpu = cpu_seconds(exporter.pid) - exporter_cpu
                sim_cpu = cpu_seconds(sim.proc.pid) - sim_cpu
                rss = memory_kib(exporter.pid)
                text = exporter.metrics()
                lines = exporter.log_lines()
            finally:
                self.procs.stop(exporter.proc)
            progress("poll cycle: the simulator's own capacity")
            capacity_delayed = run_loadgen("api", sim.url, opts.max_concurrent, opts.duration * 2)
        finally:
            sim.clear_faults()
        capacity_raw = run_loadgen("api", sim.url, opts.max_concurrent, opts.duration * 2)
        listening = stamp(next(i for i in lines if i.get("event") == "listening"))
        first_usage: dict[str, dict[str, Any]] = {}
        first_sub: dict[str, dict[str, Any]] = {}
        for item in lines:
            if item.get("event") != "poll":
                continue
            target = first_usage if item.get("endpoint") == "usage" else first_sub
            target.setdefault(str(item.get("workspace")), item)
        requests = sum(int(i.get("requests", 1)) for i in first_usage.values()) + len(first_sub)
        per_ws = requests / max(1, len(first_usage))
        done = max(stamp(i) for i in first_usage.values())
        cycle_s = done - listening
        ideal_s = per_ws * workspaces * CYCLE_API_DELAY / opts.max_concurrent
        self.report.cycle = {
            "workspaces": workspaces,
            "state": "seeded from the API" if seeded else "copies of one seeded workspace",
            "polled": len(first_usage),
            "requests_per_workspace": per_ws,
            "cycle_s": cycle_s,
            "ready_s": ready,
            "ideal_s": ideal_s,
            "api_latency": api_latency(text),
            "rss_kib": rss.get("VmRSS", 0),
            "exporter_cpu_s": exporter_cpu,
            "sim_cpu_s": sim_cpu,
            "sim_rps_delayed": capacity_delayed["rps"],
            "sim_rps_raw": capacity_raw["rps"],
            "sim_bound_s": per_ws * workspaces / capacity_delayed["rps"]
            if capacity_delayed["rps"]
            else 0.0,
            "usage_poll_s_median": statistics.median(
                float(i.get("duration_seconds", 0.0)) for i in first_usage.values()
            ),
        }


def environment() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "exporter"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": (commit or "unknown")
        + (" with uncommitted changes in exporter/" if dirty else ""),
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "prometheus_client": prometheus_client.__version__
        if hasattr(prometheus_client, "__version__")
        else _dist_version("prometheus_client"),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


# Rendering -------------------------------------------------------------------------------


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _mb(kib: float) -> str:
    return f"{kib / 1024:,.1f} MB"


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}×" if base else "n/a"


@dataclass
class Target:
    """One target with its measured value and verdict."""

    name: str
    measured: str
    passed: bool | None  # None: not measured in this run


def targets(report: Report) -> list[Target]:
    """The seven targets, judged on this run's figures."""
    out: list[Target] = []
    scrape = min(report.scrape, key=lambda s: abs(s["series"] - 1000), default=None)
    if scrape is not None:
        bare = max(scrape["gauges"]["n"]["rps"], 1e-9)
        ratio = scrape["render"]["n"]["rps"] / bare
        served = scrape["exporter"]["n"]["rps"] / bare
        out.append(
            Target(
                f"/metrics throughput ≥ 0.9× bare (static Gauges) at ~1,000 series "
                f"({scrape['series']:,}), rendering every scrape (as served in brackets)",
                f"{ratio:.2f}× ({served:.2f}×)",
                ratio >= 0.9,
            )
        )
        p99 = scrape["slow_render"]["one"]["p99_ms"]
        served_p99 = scrape["slow"]["one"]["p99_ms"]
        out.append(
            Target(
                "p99 scrape latency < 10 ms at ~1,000 series while the API takes 5 s, "
                "one scraper, rendering every scrape (as served in brackets)",
                f"{p99:.1f} ms ({served_p99:.1f} ms)",
                p99 < 10,
            )
        )
    else:
        out.append(Target("/metrics throughput ≥ 0.9× bare at ~1,000 series", "-", None))
        out.append(Target("p99 scrape latency < 10 ms at ~1,000 series, API slow", "-", None))
    mem = next((m for m in report.memory if m["workspaces"] == 100), None)
    if mem is not None:
        worst = max(mem["rss_ready_kib"], mem["rss_after_kib"])
        out.append(
            Target("resident memory < 80 MB at 100 workspaces", _mb(worst), worst < 80 * 1024)
        )
    else:
        out.append(Target("resident memory < 80 MB at 100 workspaces", "-", None))
    if report.history:
        lows = {h["poll_requests_min"] for h in report.history}
        highs = {h["poll_requests_max"] for h in report.history}
        flat = len(lows | highs) == 1
        days = ", ".join(f"{h['day']:g}" for h in report.history)
        out.append(
            Target(
                f"requests per poll independent of history (days {days})",
                f"{min(lows)}–{max(highs)} per poll",
                flat,
            )
        )
    else:
        out.append(Target("requests per poll independent of history", "-", None))
    if report.cycle is not None:
        c = report.cycle
        out.append(
            Target(
                f"one poll cycle over {c['workspaces']:,} workspaces well inside 60 s (≤ 45 s)",
                f"{c['cycle_s']:.1f} s",
                c["cycle_s"] <= 45,
            )
        )
    else:
        out.append(Target("one poll cycle over 1,000 workspaces ≤ 45 s", "-", None))
    burst_name = f"{pressure.BURST_CLIENTS} scrapers connecting at once all answered < 1 s"
    parse_name = "median scrape latency < 5 ms while 15 MiB answers parse"
    if report.hostile is not None:
        h = report.hostile
        worst = max(h["burst"]["worst_round_max_ms"], default=0.0)
        out.append(
            Target(
                f"{burst_name} (slowest of {h['burst']['rounds']} bursts; p50 in brackets)",
                f"{worst:,.0f} ms ({h['burst']['p50_ms']:,.0f} ms)",
                worst < 1000 and not h["burst"]["errors"],
            )
        )
        out.append(
            Target(
                f"{parse_name} (idle in brackets)",
                f"{h['during_median_ms']:.1f} ms ({h['idle_median_ms']:.1f} ms)",
                h["during_scrapes"] > 0 and h["during_median_ms"] < 5,
            )
        )
    else:
        out.append(Target(burst_name, "-", None))
        out.append(Target(parse_name, "-", None))
    return out


def render(report: Report, options: Options) -> str:
    """The report as markdown."""
    env = report.env
    lines = [
        f"Benchmark of elevenlabs-exporter {env.get('commit', '')}, "
        f"{'quick' if options.quick else 'full'} run, {env.get('date', '')}: "
        f"{env.get('cpus', '?')} CPUs ({env.get('cpu', '?')}), shared; Python "
        f"{env.get('python', '?')}, prometheus_client {env.get('prometheus_client', '?')}.",
        "",
    ]
    lines += ["### Targets", "", "| target | measured | result |", "|---|---|---|"]
    for target in targets(report):
        verdict = {True: "PASS", False: "FAIL", None: "not run"}[target.passed]
        lines.append(f"| {target.name} | {target.measured} | {verdict} |")
    lines.append("")
    if report.scrape:
        lines += _render_scrape(report, options)
    if report.memory:
        lines += _render_memory(report)
    if report.week is not None:
        lines += _render_week(report.week)
    if report.history:
        lines += _render_history(report)
    if report.startup is not None:
        lines += _render_startup(report.startup)
    if report.cycle is not None:
        lines += _render_cycle(report.cycle, options)
    if report.hostile is not None:
        lines += _render_hostile(report.hostile)
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines).rstrip() + "\n"


def _render_scrape(report: Report, options: Options) -> list[str]:
    lines = [
        f"### /metrics under load ({options.threads} clients, new connection per request, "
        f"{options.duration:g} s per point, Prometheus' Accept and gzip headers)",
        "",
        f"| series (workspaces) | server | API | req/s, {options.threads} clients | × bare "
        f"| p50 / p99 ms, {options.threads} clients | p50 / p99 ms, 1 scraper "
        "| p50 ms, 1 scraper, no gzip | CPU ms per scrape | × bare |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in report.scrape:
        bare_rps = s["gauges"]["n"]["rps"]
        bare_cpu = s["gauges"]["n"]["cpu_s"] / max(1, s["gauges"]["n"]["requests"]) * 1000
        for label, key, api in (
            ("bare: static Gauges", "gauges", "-"),
            ("bare: pre-built families", "families", "-"),
            ("exporter, as served", "exporter", "normal"),
            ("exporter, rendering every scrape", "render", "normal"),
            ("exporter, as served", "slow", f"{SLOW_API_DELAY:g} s per answer"),
            ("exporter, rendering every scrape", "slow_render", f"{SLOW_API_DELAY:g} s per answer"),
        ):
            r = s[key]
            cpu = r["n"]["cpu_s"] / max(1, r["n"]["requests"]) * 1000
            errors = sum(r[p]["errors"] for p in ("n", "one", "plain"))
            lines.append(
                f"| {s['series']:,} ({s['workspaces']}) | {label} | {api} "
                f"| {_f(r['n']['rps'], 0)} | {_ratio(r['n']['rps'], bare_rps)} "
                f"| {_f(r['n']['p50_ms'])} / {_f(r['n']['p99_ms'])} "
                f"| {_f(r['one']['p50_ms'])} / {_f(r['one']['p99_ms'])} "
                f"| {_f(r['plain']['p50_ms'])} | {_f(cpu)} | {_ratio(cpu, bare_cpu)} |"
                + (f" {errors} errors" if errors else "")
            )
    lines.append("")
    for s in report.scrape:
        if not s["slow_in_flight"]:
            report.notes.append(
                f"{s['series']} series: no poll reached the slowed API before the slow-API "
                "points; those rows show an idle poller."
            )
    return lines


def _render_memory(report: Report) -> list[str]:
    lines = [
        "### Resident memory of the exporter (VmRSS)",
        "",
        "| workspaces | series | ready after | RSS at ready | RSS after scraping "
        "| peak RSS | scrape as served, plain / gzip | rendering scrape, plain / gzip "
        "| 1 scraper back to back, p50 / p99 | state file |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in sorted(report.memory, key=lambda m: m["workspaces"]):
        lines.append(
            f"| {m['workspaces']:,} | {m['series']:,} | {_f(m['ready_s'])} s "
            f"| {_mb(m['rss_ready_kib'])} | {_mb(m['rss_after_kib'])} | {_mb(m['hwm_kib'])} "
            f"| {_f(m['scrape_plain_ms'])} / {_f(m['scrape_gzip_ms'])} ms "
            f"| {_f(m['render_plain_ms'])} / {_f(m['render_gzip_ms'])} ms "
            f"| {_f(m['steady']['p50_ms'])} / {_f(m['steady']['p99_ms'])} ms "
            f"| {m['state_file_bytes'] / 1024:,.0f} KiB |"
        )
    return [*lines, ""]


def _render_week(w: dict[str, Any]) -> list[str]:
    by_file = ", ".join(f"{k} {v / 1024:,.0f} KiB" for k, v in w["exporter_live_by_file"].items())
    return [
        f"### One workspace's ledger after a simulated week (in-process, a poll every "
        f"{w['step']} s, {w['polls']:,} polls)",
        "",
        "| live entries (end / max) | ledger | + its state-file copy | + snapshot "
        f"| still allocated by exporter modules (tracemalloc, last {w['traced_hours']:g} h) "
        "| tracemalloc peak |",
        "|---|---|---|---|---|---|",
        f"| {w['live_entries']:,} / {w['live_entries_max']:,} "
        f"| {w['ledger_bytes'] / 1024:,.0f} KiB | {w['state_bytes'] / 1024:,.0f} KiB "
        f"| {w['snapshot_bytes'] / 1024:,.1f} KiB | {w['exporter_live_bytes'] / 1024:,.0f} KiB "
        f"({by_file}) | {w['traced_peak'] / 1024:,.0f} KiB |",
        "",
    ]


def _render_history(report: Report) -> list[str]:
    lines = [
        "### API requests and rows as history grows (in-process, 60 s polls, "
        f"{report.history[0]['polls']} polls after seeding)",
        "",
        "| day of cycle | seeding: requests / rows | requests per poll (min–max) "
        "| rows per poll (mean / max) | requests per hour | rows per hour "
        "| ms per poll, simulator included |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in report.history:
        lines.append(
            f"| {h['day']:g} | {h['seed_requests']} / {h['seed_rows']:,} "
            f"| {h['poll_requests_min']}–{h['poll_requests_max']} "
            f"| {_f(h['poll_rows_mean'], 0)} / {h['poll_rows_max']:,} "
            f"| {_f(h['hour_requests'], 0)} | {_f(h['hour_rows'], 0)} "
            f"| {_f(h['poll_ms_median'])} |"
        )
    return [*lines, ""]


def _render_startup(s: dict[str, Any]) -> list[str]:
    cold, warm = s["cold"][-1], s["warm"]
    return [
        "### Start-up to /readyz 200",
        "",
        "| what | time | × `--help` | API requests / rows |",
        "|---|---|---|---|",
        f"| `python -m exporter --help` (imports, no work) | {_f(s['help_s'], 2)} s | 1.00× | - |",
        f"| cold start, seeding the last full cycle ({s['days_with_usage']:.0f} days of usage, "
        f"{s['days_read']:.0f} days read), median of {len(s['cold'])} "
        f"| {_f(s['cold_s'], 2)} s | {_ratio(s['cold_s'], s['help_s'])} "
        f"| {cold['requests']} / {cold['rows']:,} |",
        f"| restart with the state file | {_f(warm['ready_s'], 2)} s "
        f"| {_ratio(warm['ready_s'], s['help_s'])} | {warm['requests']} / {warm['rows']:,} |",
        "",
    ]


def _render_cycle(c: dict[str, Any], options: Options) -> list[str]:
    latency = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(c["api_latency"].items()))
    return [
        f"### One poll cycle over {c['workspaces']:,} workspaces, API answering in "
        f"{CYCLE_API_DELAY * 1000:.0f} ms, max_concurrent_requests {options.max_concurrent} "
        f"(restart with a state file: {c['state']})",
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests per workspace per poll | {c['requests_per_workspace']:.2f} |",
        f"| ideal: requests × {c['workspaces']:,} × {CYCLE_API_DELAY * 1000:.0f} ms ÷ "
        f"{options.max_concurrent} | {_f(c['ideal_s'])} s |",
        f"| measured: start of polling to the last workspace's poll done (log) "
        f"| {_f(c['cycle_s'])} s ({_ratio(c['cycle_s'], c['ideal_s'])} ideal) |",
        f"| process start to /readyz 200 | {_f(c['ready_s'])} s |",
        f"| CPU used meanwhile: exporter / simulator "
        f"| {_f(c['exporter_cpu_s'])} s / {_f(c['sim_cpu_s'])} s |",
        f"| mean API request time seen by the exporter | {latency} |",
        f"| simulator capacity, {options.max_concurrent} keep-alive connections, "
        f"{CYCLE_API_DELAY * 1000:.0f} ms delay | {_f(c['sim_rps_delayed'])} req/s "
        f"(ideal {options.max_concurrent / CYCLE_API_DELAY:.0f}) |",
        f"| simulator-bound cycle (requests ÷ that capacity) | {_f(c['sim_bound_s'])} s |",
        f"| simulator capacity without delay | {_f(c['sim_rps_raw'])} req/s |",
        f"| RSS after the cycle | {_mb(c['rss_kib'])} |",
        f"| median usage poll duration (semaphore waits included) "
        f"| {_f(c['usage_poll_s_median'])} s |",
        "",
    ]


def _render_hostile(h: dict[str, Any]) -> list[str]:
    burst = h["burst"]
    rounds = ", ".join(f"{ms:,.0f}" for ms in burst["worst_round_max_ms"])
    return [
        "### A burst of scrapers, and scrapes while large answers parse",
        "",
        "| measure | value |",
        "|---|---|",
        f"| {pressure.BURST_CLIENTS} clients connecting at once, {burst['rounds']} times: "
        f"p50 / p99 / slowest | {_f(burst['p50_ms'])} / {_f(burst['p99_ms'])} / "
        f"{_f(burst['max_ms'])} ms |",
        f"| slowest scrape of each burst | {rounds} ms |",
        f"| scrapes arriving every 10 ms, API answering normally: median | "
        f"{_f(h['idle_median_ms'])} ms |",
        f"| usage polls reading and parsing a 15 MiB answer (median duration) | "
        f"{h['parse_polls']} ({_f(h['parse_poll_s'], 2)} s) |",
        f"| scrapes arriving during those polls: count, median / p99 / slowest | "
        f"{h['during_scrapes']}, {_f(h['during_median_ms'])} / {_f(h['during_p99_ms'])} / "
        f"{_f(h['during_max_ms'])} ms |",
        f"| failed scrapes | {h['errors']} |",
        "",
    ]


# Command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    """Options from the command line."""
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark elevenlabs-exporter against its simulator (loopback only).",
    )
    parser.add_argument("--quick", action="store_true", help="shorter points (~5 minutes)")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    parser.add_argument("--duration", type=float, help="seconds per load point")
    parser.add_argument("--threads", type=int, help="concurrent scrape clients")
    parser.add_argument("--scrape-sizes", help="target series counts, e.g. 100,1000,10000")
    parser.add_argument(
        "--scrape-workspaces", help="workspace counts instead of --scrape-sizes, e.g. 1,13"
    )
    parser.add_argument("--scrape-poll-interval", help="poll interval of the scraped exporters")
    parser.add_argument("--memory-workspaces", help="workspace counts, e.g. 1,10,100,1000")
    parser.add_argument("--cycle-workspaces", type=int, help="workspaces in the poll cycle")
    parser.add_argument("--history-days", help="days into the cycle, e.g. 1,7,15,30")
    parser.add_argument("--history-polls", type=int, help="polls after seeding, per day")
    parser.add_argument("--week-days", type=float, help="simulated days of the ledger run")
    parser.add_argument("--week-step", type=int, help="seconds between its polls")
    parser.add_argument("--startup-repeats", type=int, help="cold starts to take the median of")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    options = Options.quick_run() if args.quick else Options()
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")
    options.sections = sections

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.split(",") if x.strip())

    if args.duration is not None:
        options.duration = args.duration
    if args.threads is not None:
        options.threads = args.threads
    if args.scrape_sizes:
        options.scrape_sizes = ints(args.scrape_sizes)
    if args.scrape_workspaces:
        options.scrape_workspaces = ints(args.scrape_workspaces)
    if args.scrape_poll_interval:
        options.scrape_poll_interval = args.scrape_poll_interval
    if args.memory_workspaces:
        options.memory_workspaces = ints(args.memory_workspaces)
    if args.cycle_workspaces is not None:
        options.cycle_workspaces = args.cycle_workspaces
    if args.history_days:
        options.history_days = tuple(float(x) for x in args.history_days.split(","))
    if args.history_polls is not None:
        options.history_polls = args.history_polls
    if args.week_days is not None:
        options.week_days = args.week_days
    if args.week_step is not None:
        options.week_step = args.week_step
    if args.startup_repeats is not None:
        options.startup_repeats = args.startup_repeats
    return options, args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    options, args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="elevenlabs-bench-"))
    started = time.monotonic()
    ok = False
    try:
        with ProcessSet() as procs:
            bench = Bench(options, procs, workdir)
            report = bench.run()
        ok = True
    finally:
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            progress(f"scratch directory (logs, configs) kept at {workdir}")
    text = render(report, options)
    progress(f"finished in {time.monotonic() - started:.0f}s")
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(report.__dict__, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
