"""The exporter's own metrics about its API calls and polls, kept per workspace.

Request counts, request latency and poll errors change as requests happen, so they
are counted as they happen (under a lock: the poll loops and the scrape threads both
touch them) and rendered like every other family, one workspace at a time: a scrape
after one workspace's poll re-renders that workspace's requests only. The samples
are those the library's Counter and Histogram would give.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from exporter.api.errors import REASONS
from exporter.metrics.families import Token, WorkspaceCollector
from exporter.polling.source import ENDPOINTS

# Request latency buckets: ElevenLabs answers in tens of ms to seconds; timeouts at 30s.
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_LE = [floatToGoString(b) for b in (*_LATENCY_BUCKETS, float("inf"))]  # type: ignore[no-untyped-call]


class _Workspace:
    """One workspace's counts: requests by (endpoint, code), latency by endpoint,
    errors by (endpoint, reason), and the token replaced on every change."""

    __slots__ = ("durations", "errors", "requests", "token")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], float] = {}
        self.durations: dict[str, list[float]] = {}  # per bucket, then sum and count
        self.errors: dict[tuple[str, str], float] = {}
        self.token = Token()


class Telemetry:
    """Request counts, request latency and poll errors, per workspace and endpoint."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._workspaces: dict[str, _Workspace] = {}
        self.version = 0  # bumped on every change, so cached expositions know to re-render
        self.collector = TelemetryCollector(self)
        registry.register(self.collector)

    def _of(self, workspace: str) -> _Workspace:
        found = self._workspaces.get(workspace)
        if found is None:
            found = self._workspaces[workspace] = _Workspace()
        return found

    def _changed(self, counts: _Workspace) -> None:
        counts.token = Token()
        self.version += 1

    def register_workspace(self, workspace: str, endpoints: Iterable[str] = ENDPOINTS) -> None:
        """Create every error series at 0 so that increase() sees the first error."""
        with self._lock:
            counts = self._of(workspace)
            for endpoint in endpoints:
                for reason in REASONS:
                    counts.errors.setdefault((endpoint, reason), 0.0)
            self._changed(counts)

    def observe_request(self, workspace: str, endpoint: str, code: str, seconds: float) -> None:
        """Count one request and its latency."""
        with self._lock:
            counts = self._of(workspace)
            key = (endpoint, code)
            counts.requests[key] = counts.requests.get(key, 0.0) + 1
            histogram = counts.durations.get(endpoint)
            if histogram is None:
                histogram = counts.durations[endpoint] = [0.0] * (len(_LE) + 2)
            for index, bound in enumerate(_LATENCY_BUCKETS):
                if seconds <= bound:
                    histogram[index] += 1
                    break
            else:
                histogram[len(_LATENCY_BUCKETS)] += 1
            histogram[-2] += seconds
            histogram[-1] += 1
            self._changed(counts)

    def poll_failed(self, workspace: str, endpoint: str, reason: str) -> None:
        """Count one failed poll of an endpoint."""
        with self._lock:
            counts = self._of(workspace)
            key = (endpoint, reason)
            counts.errors[key] = counts.errors.get(key, 0.0) + 1
            self._changed(counts)

    def poll_errors(self, workspace: str, endpoint: str, reason: str) -> float:
        """How many polls of an endpoint failed for a reason (0 if none)."""
        with self._lock:
            counts = self._workspaces.get(workspace)
            return counts.errors.get((endpoint, reason), 0.0) if counts else 0.0

    def tokens(self) -> list[tuple[str, object]]:
        """Each workspace with the token of its current counts."""
        with self._lock:
            return [(name, counts.token) for name, counts in self._workspaces.items()]

    def fill(self, workspace: str, families: list[Metric]) -> None:
        """Add one workspace's samples (a consistent copy: taken under the lock)."""
        requests, durations, errors = families
        with self._lock:
            counts = self._workspaces.get(workspace)
            if counts is None:
                return
            request_items = list(counts.requests.items())
            histograms = [(e, list(h)) for e, h in counts.durations.items()]
            error_items = list(counts.errors.items())
        for (endpoint, code), value in request_items:
            cast(CounterMetricFamily, requests).add_metric([workspace, endpoint, code], value)
        for endpoint, histogram in histograms:
            cumulative, running = [], 0.0
            for le, count in zip(_LE, histogram[: len(_LE)], strict=True):
                running += count
                cumulative.append((le, running))
            cast(HistogramMetricFamily, durations).add_metric(
                [workspace, endpoint], cumulative, sum_value=histogram[-2]
            )
        for (endpoint, reason), value in error_items:
            cast(CounterMetricFamily, errors).add_metric([workspace, endpoint, reason], value)


class TelemetryCollector(WorkspaceCollector):
    """The request and poll-error families, one workspace at a time."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def families(self) -> list[Metric]:
        """Requests, request latency and poll errors, fresh."""
        return [
            CounterMetricFamily(
                "elevenlabs_exporter_api_requests",
                "Requests the exporter sent to the ElevenLabs API, by HTTP status code "
                '(code="error" when no HTTP answer arrived).',
                labels=["workspace", "endpoint", "code"],
            ),
            HistogramMetricFamily(
                "elevenlabs_exporter_api_request_duration_seconds",
                "Time the ElevenLabs API took to answer one request, in seconds.",
                labels=["workspace", "endpoint"],
            ),
            CounterMetricFamily(
                "elevenlabs_exporter_poll_errors",
                "Failed polls of an ElevenLabs endpoint, by reason (auth, permission, "
                "rate_limited, server_error, timeout, network, bad_response, client_error).",
                labels=["workspace", "endpoint", "reason"],
            ),
        ]

    def tokens(self) -> list[tuple[str, object]]:
        """Each workspace with the token of its current counts."""
        return self._telemetry.tokens()

    def fill(self, workspace: str, token: object, families: list[Metric]) -> None:
        """Add one workspace's samples."""
        self._telemetry.fill(workspace, families)
