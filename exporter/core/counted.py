"""A ledger and the router that adds up its increments: one set of exact counters.

Credits, cost, charges and the character-stats counters are all kept this way: the
ledger decides what each answer adds, the router accumulates and exports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.api.parse import Labels, UsageRow
from exporter.core.ledger import Increments, Ledger, ReadPlan
from exporter.core.router import SeriesRouter


@dataclass
class Counted:
    """One ledger's counters (see the module docstring)."""

    ledger: Ledger
    router: SeriesRouter

    @classmethod
    def plain(cls, ledger: Ledger) -> Counted:
        """Counters exported per raw label set (no bounded dimensions)."""
        return cls(ledger, SeriesRouter(ledger.label_names))

    def apply(
        self,
        plan: ReadPlan,
        revisable: Sequence[UsageRow] = (),
        settled: Sequence[UsageRow] = (),
        cycle_only: Sequence[UsageRow] = (),
        history: Sequence[UsageRow] = (),
    ) -> Increments:
        """Apply one poll's rows to the ledger and add what they contribute."""
        increments = self.ledger.apply(plan, revisable, settled, cycle_only, history)
        _clamp_drift(self.ledger.cycle)
        # Values earn their own series by their credits this cycle (else this poll's).
        ranking = self.ledger.cycle if self.ledger.cycle_known else increments.used
        self.router.add(increments, ranking)
        return increments

    @property
    def total(self) -> Mapping[Labels, float]:
        """The exported counter per label set."""
        return self.router.total

    @property
    def down(self) -> Mapping[Labels, float]:
        """The exported downward-revision counter per label set."""
        return self.router.down

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state of both halves."""
        return {"ledger": self.ledger.to_state(), "router": self.router.to_state()}


def _clamp_drift(cycle: dict[Labels, float]) -> None:
    """Set cycle sums that floating-point drift took below zero back to 0.

    The ledger keeps the cycle gauge by adding each revision's difference, and float
    addition is not associative: a bucket of 1e12 and one of 0.1 both revised to 0
    leave about -2e-5, not 0. A sum of usage is never below zero, and a state file
    holding one is refused as implausible, so drift is cut off where it arises.
    """
    for labels, value in cycle.items():
        if value < 0:
            cycle[labels] = 0.0
