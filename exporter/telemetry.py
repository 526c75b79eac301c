"""The exporter's own metrics about its API calls and polls.

These are ordinary ``prometheus_client`` metrics on the exporter's registry: they
change as requests happen, and the library already makes them thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from exporter.errors import REASONS

ENDPOINTS = ("usage", "subscription")
# Request latency buckets: ElevenLabs answers in tens of ms to seconds; timeouts at 30s.
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Telemetry:
    """Request counts, request latency and poll errors, per workspace and endpoint."""

    def __init__(self, registry: CollectorRegistry) -> None:
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
