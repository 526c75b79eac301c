"""The hostile section: a burst of scrapers, and scrapes while large answers parse.

Both against the real exporter and simulator processes. A burst is 64 clients
connecting at the same instant, five times: every one must be answered in well under
a second (a listen backlog too small for it makes the kernel drop connection attempts,
which clients retry after a second). For the parse, the simulator pads every usage
answer to 15 MiB with rows of zero credits (valid, under the 16 MiB cap, the same
totals) while the exporter polls every second, and scrapes arrive every 10 ms whether
or not the previous ones were answered, as scrapers do; the scrapes that arrived while
a usage poll was reading and parsing (from the exporter's own log) are the ones that
count. Their median is the figure: ``json.loads`` in the serving process held them for
up to 200 ms.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from procs import ProcessSet, Simulator, run_loadgen, start_exporter, write_config

BURST_CLIENTS = 64
PARSE_BYTES = 15 * 1024 * 1024


def _stamp(item: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(item["timestamp"]).replace("Z", "+00:00")).timestamp()


def measure(
    procs: ProcessSet, sim: Simulator, path: Callable[[str], Path], duration: float
) -> dict[str, Any]:
    """Burst latencies and scrape latency while large answers parse."""
    config = write_config(path("hostile.yaml"), sim.url, 1, state_file=None, poll_interval="1s")
    exporter = start_exporter(procs, config, path("hostile.log"))
    try:
        exporter.wait_ready(120)
        url = exporter.url + "/metrics"
        burst = run_loadgen("burst", url, BURST_CLIENTS, 0, "--rounds", "5")
        idle = run_loadgen("arrivals", url, 32, max(2.0, duration), "--interval", "0.01")
        sim.faults({"endpoint": "usage", "times": -1, "pad_bytes": PARSE_BYTES})
        try:
            loaded = run_loadgen("arrivals", url, 32, max(8.0, duration * 2), "--interval", "0.01")
        finally:
            sim.clear_faults()
        lines = exporter.log_lines()
    finally:
        procs.stop(exporter.proc)
    polls = [
        (_stamp(i) - float(i.get("duration_seconds", 0.0)), _stamp(i))
        for i in lines
        if i.get("event") == "poll" and i.get("endpoint") == "usage" and int(i.get("rows", 0)) > 0
    ]
    first, last = loaded["scrapes"][0][0], loaded["scrapes"][-1][0]
    windows = [(a, b) for a, b in polls if first <= b and a <= last and b - a > 0.05]
    during = [took for at, took in loaded["scrapes"] if any(a <= at <= b for a, b in windows)]
    idle_latencies = [took for _, took in idle["scrapes"]]
    return {
        "burst": burst,
        "idle_median_ms": statistics.median(idle_latencies) * 1000 if idle_latencies else 0.0,
        "parse_polls": len(windows),
        "parse_poll_s": statistics.median(b - a for a, b in windows) if windows else 0.0,
        "during_scrapes": len(during),
        "during_median_ms": statistics.median(during) * 1000 if during else 0.0,
        "during_p99_ms": sorted(during)[int(len(during) * 0.99)] * 1000 if during else 0.0,
        "during_max_ms": max(during, default=0.0) * 1000,
        "errors": burst["errors"] + idle["errors"] + loaded["errors"],
    }
