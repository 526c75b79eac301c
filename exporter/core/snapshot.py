"""Immutable snapshots: what the poll loops publish and the collectors read.

A workspace's loop builds a new :class:`WorkspaceSnapshot` after every poll and swaps
it in; a scrape reads whatever is current without locks or I/O, so it never waits
on the API. A snapshot holds the workspace's health and one immutable *part* per
poll source, keyed by the part's type: the collector of a source asks for its own
part type and knows nothing of the others.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True)
class WorkspaceSnapshot:
    """One workspace's health and the parts its sources published."""

    name: str
    up: bool = False
    ready: bool = False
    # Unix time of the last successful poll per endpoint whose freshness the health
    # collector exports (0 before the first).
    last_success: Mapping[str, float] = field(default_factory=dict)
    parts: Mapping[type, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, *parts: object, **fields: Any) -> WorkspaceSnapshot:
        """A snapshot holding ``parts`` (each under its own type) and ``fields``."""
        return cls(name, parts=MappingProxyType({type(p): p for p in parts}), **fields)

    def part(self, kind: type[T]) -> T | None:
        """The part of type ``kind``, if the workspace has that source."""
        return cast("T | None", self.parts.get(kind))


class SnapshotStore:
    """Holds the latest snapshot of every workspace; replaced whole on each publish.

    ``version`` counts publishes, so a cached exposition knows when to re-render.
    """

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
