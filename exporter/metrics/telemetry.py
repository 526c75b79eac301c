"""The exporter's own metrics about its API calls and polls.

These are ordinary ``prometheus_client`` metrics on the exporter's registry: they
change as requests happen, and the library already makes them thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.api.errors import REASONS
from exporter.polling.source import ENDPOINTS

# Request latency buckets: ElevenLabs answers in tens of ms to seconds; timeouts at 30s.
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _CachedFamilies(Collector):
    """Yields the telemetry families, rebuilt only when the telemetry changed.

    The library regenerates every child's samples on each collect; the values only
    change when a request or a poll error is counted.
    """

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._lock = threading.Lock()
        self._cached: tuple[int, list[Metric]] = (-1, [])

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        version = self._telemetry.version  # read first: a change meanwhile rebuilds next time
        cached_version, families = self._cached
        if cached_version != version:
            with self._lock:
                families = list(self._telemetry.own_registry.collect())
                self._cached = (version, families)
        return iter(families)


class Telemetry:
    """Request counts, request latency and poll errors, per workspace and endpoint."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # The metrics live in a registry of their own; the exporter's registry sees
        # them through a cache that rebuilds the families only after a change.
        self.own_registry = CollectorRegistry(auto_describe=False)
        registry.register(_CachedFamilies(self))
        registry = self.own_registry
        self.requests = Counter(
            "elevenlabs_exporter_api_requests",
            "Requests the exporter sent to the ElevenLabs API, by HTTP status code "
            '(code="error" when no HTTP answer arrived).',
            ["workspace", "endpoint", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "elevenlabs_exporter_api_request_duration_seconds",
            "Time the ElevenLabs API took to answer one request, in seconds.",
            ["workspace", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.poll_errors = Counter(
            "elevenlabs_exporter_poll_errors",
            "Failed polls of an ElevenLabs endpoint, by reason (auth, permission, "
            "rate_limited, server_error, timeout, network, bad_response, client_error).",
            ["workspace", "endpoint", "reason"],
            registry=registry,
        )
        self.version = 0  # bumped on every change, so cached expositions know to re-render

    def register_workspace(self, workspace: str, endpoints: Iterable[str] = ENDPOINTS) -> None:
        """Create every error series at 0 so that increase() sees the first error."""
        for endpoint in endpoints:
            for reason in REASONS:
                self.poll_errors.labels(workspace, endpoint, reason)
        self.version += 1

    def observe_request(self, workspace: str, endpoint: str, code: str, seconds: float) -> None:
        """Count one request and its latency."""
        self.requests.labels(workspace, endpoint, code).inc()
        self.duration.labels(workspace, endpoint).observe(seconds)
        self.version += 1

    def poll_failed(self, workspace: str, endpoint: str, reason: str) -> None:
        """Count one failed poll of an endpoint."""
        self.poll_errors.labels(workspace, endpoint, reason).inc()
        self.version += 1
