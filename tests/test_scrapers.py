"""The real exporter process against a hostile crowd of scrapers.

``python -m exporter --demo`` on 127.0.0.1: a burst of clients connecting at once, clients
that open connections and never finish their request (slowloris), and requests whose
line or headers are too long. Scrapes keep being answered fast; oversized requests get
414 and 431.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import ExporterProcess, http_get, run_exporter

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    with run_exporter(["--demo"], tmp_path_factory.mktemp("scrapers")) as process:
        process.wait_ready(timeout=30)
        yield process


def timed_scrape(exporter: ExporterProcess) -> float:
    started = time.perf_counter()
    status, _ = http_get(exporter.url + "/metrics", timeout=30)
    assert status == 200
    return time.perf_counter() - started


def test_64_concurrent_scrapers_all_answer_within_a_second(exporter: ExporterProcess) -> None:
    """64 clients connecting at the same instant are all answered well under a second: the
    listen backlog holds them all (socketserver's default of 5 made the kernel drop
    connection attempts, which clients retry only after a second)."""

    def one(barrier: threading.Barrier) -> float:
        barrier.wait()
        return timed_scrape(exporter)

    for _ in range(3):
        barrier = threading.Barrier(64)
        with ThreadPoolExecutor(64) as pool:
            latencies = sorted(pool.map(one, [barrier] * 64))
        assert latencies[-1] < 1.0, f"p50 {latencies[32]:.3f}s, max {latencies[-1]:.3f}s"


def test_slowloris_connections_do_not_slow_normal_scrapes(exporter: ExporterProcess) -> None:
    """50 connections that send half a request and then nothing: each holds only its own
    thread, and normal scrapes meanwhile answer as fast as ever."""
    port = exporter.port
    idle = statistics.median(timed_scrape(exporter) for _ in range(10))
    stalled = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            stalled.append(sock)
        latencies = [timed_scrape(exporter) for _ in range(20)]
    finally:
        for sock in stalled:
            sock.close()
    assert max(latencies) < 1.0, latencies
    assert statistics.median(latencies) < idle + 0.05, (idle, latencies)


def status_of(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = sock.recv(200)
    return int(answer.split()[1])


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: y\r\n" % i for i in range(150))
            + b"\r\n",
            431,
        ),
    ],
    ids=["request line of 70 kB", "header line of 70 kB", "150 headers"],
)
def test_oversized_requests_are_refused(
    exporter: ExporterProcess, request_bytes: bytes, status: int
) -> None:
    """A request line or header beyond 64 KiB, or more than 100 headers: 414 or 431, and
    the exporter goes on serving."""
    assert status_of(exporter.port, request_bytes) == status
    assert timed_scrape(exporter) < 1.0
