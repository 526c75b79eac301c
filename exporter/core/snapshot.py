"""Immutable snapshots: what the pollers publish and the collector reads.

A poller builds a new :class:`WorkspaceSnapshot` after every poll and swaps it in;
a scrape reads whatever is current without locks or I/O, so it never waits on the API.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.api.parse import Labels, Subscription


@dataclass(frozen=True)
class WorkspaceSnapshot:
    """Everything the collector exports for one workspace."""

    name: str
    label_names: tuple[str, ...] = ("product_type",)
    credits: Mapping[Labels, float] = field(default_factory=dict)
    downward: Mapping[Labels, float] = field(default_factory=dict)
    cycle: Mapping[Labels, float] | None = None
    subscription: Subscription | None = None
    cycle_reset: int | None = None
    cycle_length: int | None = None
    up: bool = False
    last_success: Mapping[str, float] = field(default_factory=dict)
    ready: bool = False
    names: Mapping[tuple[str, str], str] = field(default_factory=dict)
    cost: Mapping[Labels, float] | None = None  # cost-billed workspaces only
    charges: Mapping[Labels, float] | None = None
    currency: str = "unknown"


class SnapshotStore:
    """Holds the latest snapshot of every workspace; replaced whole on each publish."""

    def __init__(self, workspaces: list[str] | tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._current: Mapping[str, WorkspaceSnapshot] = MappingProxyType(
            {name: WorkspaceSnapshot(name) for name in workspaces}
        )
        self.version = 0

    def publish(self, snapshot: WorkspaceSnapshot) -> None:
        """Swap in a workspace's new snapshot (one writer per workspace)."""
        with self._lock:
            updated = dict(self._current)
            updated[snapshot.name] = snapshot
            self._current = MappingProxyType(updated)
            self.version += 1

    def current(self) -> Mapping[str, WorkspaceSnapshot]:
        """The latest snapshots, by workspace name (a read-only view)."""
        return self._current

    def ready(self) -> tuple[bool, list[str]]:
        """Whether every workspace has completed a first successful poll; the laggards."""
        waiting = [name for name, snap in self._current.items() if not snap.ready]
        return (not waiting, waiting)
