"""Load generator, run as its own process so it never shares the server's GIL.

Four modes, each printing one JSON object on stdout:

* ``scrape``: ``--threads`` threads GET one URL back to back for ``--duration``
  seconds, one new TCP connection per request (``Connection: close``), with the
  request headers Prometheus sends (OpenMetrics preferred, gzip accepted) unless
  ``--plain``. Reports requests/s and latency percentiles (connect to last byte).
* ``api``: ``--threads`` keep-alive connections replay one steady-state poll against
  the simulated API (the subscription, then two hours of minute buckets) for
  ``--duration`` seconds: the simulator's own capacity, as the exporter would use it.
* ``burst``: ``--threads`` clients connect at the same instant, one scrape each, for
  ``--rounds`` rounds: what a crowd of scrapers waits (the listen backlog at work).
* ``arrivals``: a scrape starts every ``--interval`` seconds for ``--duration``
  seconds whether or not the previous ones were answered, as scrapers arrive; reports
  each scrape's wall-clock start and latency, to line them up with the exporter's log.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# What Prometheus 2.x/3.x sends by default when scraping a target.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
USAGE_PATH = "/v1/workspace/analytics/query/usage-by-product-over-time"
SUBSCRIPTION_PATH = "/v1/user/subscription"
MAX_REQUESTS_PER_THREAD = 1_000_000  # a bound on every loop, far above any real rate


@dataclass
class Tally:
    """What the threads measured; each thread appends to its own lists."""

    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def merge(self, latencies: list[float], sizes: list[int], errors: int) -> None:
        with self.lock:
            self.latencies.extend(latencies)
            self.sizes.extend(sizes)
            self.errors += errors


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def scrape_request(host: str, port: int, path: str, plain: bool) -> bytes:
    """The raw HTTP request of one scrape."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if not plain:
        lines += [f"Accept: {PROMETHEUS_ACCEPT}", "Accept-Encoding: gzip"]
    lines += ["User-Agent: elevenlabs-exporter-bench", "", ""]
    return "\r\n".join(lines).encode()


def one_scrape(host: str, port: int, request: bytes, timeout: float) -> tuple[float, int, int]:
    """(seconds, status, bytes received) for one request on a fresh connection."""
    started = time.perf_counter()
    chunks: list[bytes] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            chunks.append(data)
    elapsed = time.perf_counter() - started
    raw = b"".join(chunks)
    status = int(raw[9:12]) if raw.startswith(b"HTTP/1.") and len(raw) >= 12 else 0
    header_end = raw.find(b"\r\n\r\n")
    return elapsed, status, len(raw) - header_end - 4 if header_end >= 0 else 0


def run_scrapes(url: str, threads: int, duration: float, plain: bool) -> dict[str, Any]:
    """Scrape ``url`` from ``threads`` threads for ``duration`` seconds."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = scrape_request(host, port, target, plain)
    tally = Tally()
    for _ in range(3):  # warm up: first imports, first snapshot rendering
        one_scrape(host, port, request, 30.0)
    start_gate = threading.Barrier(threads + 1)
    deadline = 0.0

    def worker() -> None:
        latencies: list[float] = []
        sizes: list[int] = []
        errors = 0
        start_gate.wait()
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if time.perf_counter() >= deadline:
                break
            try:
                elapsed, status, size = one_scrape(host, port, request, 30.0)
            except OSError:
                errors += 1
                continue
            if status != 200:
                errors += 1
                continue
            latencies.append(elapsed)
            sizes.append(size)
        tally.merge(latencies, sizes, errors)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    began = time.perf_counter()
    deadline = began + duration
    start_gate.wait()
    for thread in workers:
        thread.join(duration + 60)
    elapsed = time.perf_counter() - began
    return _summary(tally, elapsed)


def _summary(tally: Tally, elapsed: float) -> dict[str, float]:
    count = len(tally.latencies)
    return {
        "requests": count,
        "errors": tally.errors,
        "seconds": round(elapsed, 3),
        "rps": count / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(tally.latencies, 0.50) * 1000,
        "p99_ms": percentile(tally.latencies, 0.99) * 1000,
        "max_ms": max(tally.latencies, default=0.0) * 1000,
        "bytes": sum(tally.sizes) / count if count else 0.0,
    }


def run_api(url: str, threads: int, duration: float, api_key: str) -> dict[str, float]:
    """Replay steady-state polls (subscription + 2 h of minute buckets) on keep-alive."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tally = Tally()
    deadline = time.perf_counter() + duration
    began = time.perf_counter()

    def worker() -> None:
        latencies: list[float] = []
        errors = 0
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            for index in range(MAX_REQUESTS_PER_THREAD):
                if time.perf_counter() >= deadline:
                    break
                started = time.perf_counter()
                try:
                    if index % 2 == 0:
                        conn.request("GET", SUBSCRIPTION_PATH, headers={"xi-api-key": api_key})
                    else:
                        end = int(time.time()) // 60 * 60
                        body = json.dumps(
                            {
                                "start_time": (end - 7200) * 1000,
                                "end_time": end * 1000,
                                "interval_seconds": 60,
                                "group_by": ["product_type"],
                            }
                        )
                        conn.request(
                            "POST",
                            USAGE_PATH,
                            body=body,
                            headers={"xi-api-key": api_key, "content-type": "application/json"},
                        )
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    errors += 1
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                    continue
                if response.status != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
        finally:
            conn.close()
        tally.merge(latencies, [], errors)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(duration + 60)
    return _summary(tally, time.perf_counter() - began)


def run_bursts(url: str, clients: int, rounds: int) -> dict[str, Any]:
    """``clients`` scrapes starting at the same instant, ``rounds`` times."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = scrape_request(host, port, parts.path or "/", plain=False)
    tally = Tally()
    worst: list[float] = []
    began = time.perf_counter()
    for _ in range(rounds):
        gate = threading.Barrier(clients)
        round_tally = Tally()

        def worker(gate: threading.Barrier = gate, into: Tally = round_tally) -> None:
            gate.wait()
            try:
                elapsed, status, size = one_scrape(host, port, request, 30.0)
            except OSError:
                into.merge([], [], 1)
                return
            into.merge([elapsed], [size], 0 if status == 200 else 1)

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(60)
        worst.append(max(round_tally.latencies, default=0.0))
        tally.merge(round_tally.latencies, round_tally.sizes, round_tally.errors)
        time.sleep(0.2)
    summary: dict[str, Any] = dict(_summary(tally, time.perf_counter() - began))
    summary["rounds"] = rounds
    summary["worst_round_max_ms"] = [round(w * 1000, 1) for w in worst]
    return summary


def run_arrivals(url: str, threads: int, duration: float, interval: float) -> dict[str, Any]:
    """A scrape every ``interval`` seconds, answered or not, for ``duration`` seconds."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = scrape_request(host, port, parts.path or "/", plain=False)
    scrapes: list[tuple[float, float]] = []
    errors = 0
    lock = threading.Lock()

    def one(at: float) -> None:
        nonlocal errors
        try:
            elapsed, status, _ = one_scrape(host, port, request, 30.0)
        except OSError:
            status, elapsed = 0, 0.0
        with lock:
            if status == 200:
                scrapes.append((at, elapsed))
            else:
                errors += 1

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        began = time.perf_counter()
        for index in range(MAX_REQUESTS_PER_THREAD):
            due = began + index * interval
            if due - began >= duration:
                break
            time.sleep(max(0.0, due - time.perf_counter()))
            pool.submit(one, time.time())
    return {"errors": errors, "scrapes": sorted(scrapes)}


def main(argv: list[str] | None = None) -> int:
    """Run one measurement and print its JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["scrape", "api", "burst", "arrivals"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--plain", action="store_true", help="no Accept or gzip headers")
    parser.add_argument("--api-key", default="demo")
    parser.add_argument("--rounds", type=int, default=5, help="bursts (burst mode)")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds (arrivals)")
    args = parser.parse_args(argv)
    result: dict[str, Any]
    if args.mode == "scrape":
        result = run_scrapes(args.url, args.threads, args.duration, args.plain)
    elif args.mode == "burst":
        result = run_bursts(args.url, args.threads, args.rounds)
    elif args.mode == "arrivals":
        result = run_arrivals(args.url, args.threads, args.duration, args.interval)
    else:
        result = run_api(args.url, args.threads, args.duration, args.api_key)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
