"""What the counting sources (credits, cost) share: their settings and their anchor.

Their counters start at ``count_from`` or, by default, at the start of the billing
cycle the subscription source found. With the default anchor a new cycle starts new
counters (a reset Prometheus handles); with a fixed ``count_from`` only the cycle
gauge restarts.
"""

from __future__ import annotations

from typing import Any

from exporter.api.client import ElevenLabsClient
from exporter.config import Config, WorkspaceConfig
from exporter.core.state import WorkspaceState
from exporter.polling.source import Source, WorkspaceFacts


class CountingSource(Source):
    """A source whose counters are anchored at ``count_from`` or the cycle start."""

    endpoint = "usage"
    readiness = True

    def __init__(
        self,
        workspace: WorkspaceConfig,
        config: Config,
        client: ElevenLabsClient,
        facts: WorkspaceFacts,
        *,
        log: Any,
        state: WorkspaceState | None = None,
    ) -> None:
        self.workspace = workspace
        self.config = config
        self.client = client
        self.facts = facts
        self.log = log
        self.state = state
        self._cycle_start: int | None = None  # the cycle start last acted upon

    def interval(self) -> float:
        """The workspace's poll interval."""
        return self.workspace.poll_interval or self.config.poll_interval

    @property
    def restarts_at_cycle(self) -> bool:
        """Whether a new cycle starts new counters (the default anchor)."""
        return self.config.count_from is None

    def first_anchor(self) -> tuple[int, int | None] | None:
        """``(anchor, cycle_start)`` to start counting from; None while unknown (the
        anchor is the cycle start, and the subscription has not answered yet)."""
        cycle = self.facts.cycle
        cycle_start = cycle.start if cycle is not None else None
        if self.config.count_from is not None:
            anchor = int(self.config.count_from.timestamp())
        elif cycle_start is not None:
            anchor = cycle_start
        else:
            return None
        self._cycle_start = cycle_start
        return anchor, cycle_start

    def new_cycle(self) -> int | None:
        """The start of a billing cycle that began since the last call, if any."""
        cycle = self.facts.cycle
        if cycle is None or cycle.start == self._cycle_start:
            return None
        self._cycle_start = cycle.start
        return cycle.start
