"""What a poll source is, and the facts the sources of one workspace share.

A *source* reads one kind of data for one workspace: it plans its requests, fetches
them through the client, applies the answers all or nothing and publishes an
immutable *part* for its collector. The :class:`~exporter.polling.loop.WorkspaceLoop`
runs every source of a workspace one after another (so a workspace never has two
requests in flight) and owns what is the same for all of them: scheduling, backoff,
the failure count and log line, ``last_success`` and ``elevenlabs_up``, in the
manner of node_exporter's per-collector success. A new kind of data is a new source
and a collector for its part.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporter.api.parse import Subscription
from exporter.core.cycle import Cycle

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


@dataclass
class WorkspaceFacts:
    """What one source of a workspace learns and the others need.

    The subscription source sets the subscription and the billing cycle (the other
    sources anchor their counters at its start); the credits source sets ``billing``
    to ``cost`` when the workspace turns out to be billed in currency.
    """

    subscription: Subscription | None = None
    cycle: Cycle | None = None
    billing: str = "credits"


@dataclass
class Outcome:
    """What one successful poll of a source did, for its log line."""

    requests: int = 1
    rows: int = 0
    fields: dict[str, Any] = field(default_factory=dict)


class Source(ABC):
    """The interface every poll source implements (see the module docstring).

    ``endpoint`` is the label of its requests, errors and freshness. A ``required``
    source counts toward ``elevenlabs_up``; ``readiness`` sources must have succeeded
    once before ``/readyz`` answers 200; a source with ``reports_freshness`` has its
    last success exported by the health collector (others export their own).
    """

    endpoint: str = ""
    required: bool = True
    readiness: bool = False
    reports_freshness: bool = True

    @abstractmethod
    def interval(self) -> float:
        """Seconds between two polls of this source."""

    def active(self) -> bool:
        """Whether the source applies to the workspace now (e.g. its billing mode)."""
        return True

    def retry_interval(self) -> float:
        """Seconds before another try after a failed poll (then spaced out on repeated
        transient failures); a source with a long interval retries sooner."""
        return self.interval()

    def due_by(self) -> float | None:
        """A moment the source must poll at even if its interval has not passed (e.g. a
        billing-cycle reset known in advance); None when there is none."""
        return None

    @abstractmethod
    async def poll(self, now: float) -> Outcome | None:
        """Read and apply once, all or nothing; raise ApiError on failure.

        None means the source could not poll yet (it waits for a fact another source
        provides) or handed over to another source: neither success nor failure.
        """

    @abstractmethod
    def part(self, last_success: float) -> object | None:
        """The immutable part for this source's collector (None: nothing to export)."""
