"""What every poll source shares: the endpoints it reports under and where failures go."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

# The endpoint label values every workspace reports from start-up.
ENDPOINTS = ("usage", "subscription")


class PollTelemetry(Protocol):
    """Where failed polls are counted (the exporter's telemetry provides it)."""

    def register_workspace(self, workspace: str, endpoints: Iterable[str] = ENDPOINTS) -> None:
        """Create every error series of the workspace's endpoints at 0."""
        ...

    def poll_failed(self, workspace: str, endpoint: str, reason: str) -> None:
        """Count one failed poll of an endpoint."""
        ...
