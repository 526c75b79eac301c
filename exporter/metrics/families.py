"""What every collector shares: the HELP sentence on cached values, and the shape that
lets a scrape re-render only the workspaces whose data changed.

A :class:`WorkspaceCollector` says which families it yields (:meth:`families`, fresh
and empty, always the same and in the same order) and adds one workspace's samples
to them (:meth:`fill`). Its :meth:`tokens` name each workspace with an object that
is replaced whenever that workspace's samples may change (a published snapshot is
one). ``collect()`` fills the families with every workspace in turn, so the library
sees ordinary collectors; the exposition cache renders each workspace's share of
each family once per token and joins the shares, which gives the same bytes.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.core.snapshot import WorkspaceSnapshot

POLLED = "Values come from the last successful poll of the ElevenLabs API, not from the scrape."

Snapshots = Callable[[], Mapping[str, WorkspaceSnapshot]]


class Token:
    """A marker replaced whenever a workspace's samples may have changed (weakly
    referenceable, so a cache of rendered chunks never keeps it alive)."""

    __slots__ = ("__weakref__",)


class WorkspaceCollector(Collector):
    """A collector whose every sample belongs to one workspace (see the module docstring)."""

    def describe(self) -> list[Metric]:
        """Nothing: families are only known at scrape time (and registering stays I/O-free)."""
        return []

    @abstractmethod
    def families(self) -> list[Metric]:
        """The families this collector yields, fresh and without samples."""

    @abstractmethod
    def tokens(self) -> list[tuple[str, object]]:
        """Each workspace, in exposition order, with an object replaced on every change."""

    @abstractmethod
    def fill(self, workspace: str, token: object, families: list[Metric]) -> None:
        """Add the samples of ``workspace`` (as of ``token``) to ``families``."""

    def collect(self) -> Iterator[Metric]:
        """Every family, filled with every workspace's samples."""
        families = self.families()
        for workspace, token in self.tokens():
            self.fill(workspace, token, families)
        yield from families


class SnapshotCollector(WorkspaceCollector):
    """A workspace collector reading the published snapshots: a snapshot is replaced
    (never changed) on every publish, so it is its own token."""

    def __init__(self, source: Snapshots) -> None:
        self._source = source

    def tokens(self) -> list[tuple[str, object]]:
        """Each workspace with its current snapshot."""
        return list(self._source().items())

    def fill(self, workspace: str, token: object, families: list[Metric]) -> None:
        """Add the samples of the snapshot ``token``."""
        assert isinstance(token, WorkspaceSnapshot)
        self.add(token, families)

    @abstractmethod
    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """Add one workspace's samples from its snapshot."""
