"""Usage of workspaces billed in currency rather than credits.

For such workspaces the credits endpoint answers with an error, and
``POST /v1/workspace/analytics/usage`` reports ``total_cost`` (in the workspace's
currency) and ``total_charge_count`` per whole UTC day. The same revision-safe
ledger turns them into counters: yesterday and today stay revisable (today's bucket
fills as the day goes on), older days are settled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError
from exporter.api.parse import UsageRow
from exporter.core.ledger import Ledger

DAY = 86400
_MARKERS = ("currency", "cost", "fiat")


def looks_cost_billed(error: ApiError) -> bool:
    """Whether a credits-endpoint error says the workspace is billed in currency.

    The status and wording are undocumented, so this reads the error's code and
    message for the words ElevenLabs uses for it; anything else stays an error.
    """
    text = f"{error.code or ''} {error}".lower()
    return error.reason == "client_error" and any(marker in text for marker in _MARKERS)


class CostTracker:
    """Cost and charge-count counters of one workspace, from daily buckets."""

    def __init__(
        self, anchor: int, cycle_start: int | None, group_by: tuple[str, ...] = ("product_type",)
    ) -> None:
        self.group_by = group_by
        self.cost = self._ledger(anchor, cycle_start)
        self.charges = self._ledger(anchor, cycle_start)

    def _ledger(self, anchor: int, cycle_start: int | None) -> Ledger:
        return Ledger(
            anchor=anchor,
            bucket=DAY,
            lookback=2 * DAY,
            cycle_start=cycle_start,
            label_names=self.group_by,
            coarse=DAY,
        )

    @property
    def anchor(self) -> int:
        """The start of the first counted day."""
        return self.cost.anchor

    async def poll(self, client: ElevenLabsClient, now: float) -> tuple[int, int]:
        """Read and apply one poll's windows; returns (requests, rows). All or nothing."""
        # Plan to the end of today: today's bucket is read as it fills, like any
        # revisable bucket; both ledgers hold the same coverage, so one plan serves both.
        plan = self.cost.plan(now + DAY - 1)
        fetched: list[tuple[list[UsageRow], list[UsageRow]]] = []
        for windows in (plan.revisable, plan.settled, plan.cycle_only):
            cost_rows: list[UsageRow] = []
            count_rows: list[UsageRow] = []
            for window in windows:
                cost, count = await client.cost_usage(
                    window.start, window.end, window.interval, self.group_by
                )
                cost_rows += cost
                count_rows += count
            fetched.append((cost_rows, count_rows))
        self.cost.apply(plan, fetched[0][0], fetched[1][0], fetched[2][0])
        self.charges.apply(plan, fetched[0][1], fetched[1][1], fetched[2][1])
        rows = sum(len(c) + len(n) for c, n in fetched)
        return len(plan.windows), rows

    def start_cycle(self, cycle_start: int) -> None:
        """A new billing cycle began (with a fixed count_from)."""
        self.cost.start_cycle(cycle_start)
        self.charges.start_cycle(cycle_start)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state of both ledgers."""
        return {"cost": self.cost.to_state(), "charges": self.charges.to_state()}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> CostTracker:
        """Rebuild from persisted state; raise ValueError when it does not fit."""
        try:
            cost = Ledger.from_state(data["cost"], lookback=2 * DAY)
            charges = Ledger.from_state(data["charges"], lookback=2 * DAY)
        except (KeyError, TypeError) as err:
            raise ValueError(f"malformed cost state: {err}") from None
        tracker = cls(cost.anchor, cost.cycle_start, cost.label_names)
        cost.coarse = charges.coarse = DAY
        tracker.cost, tracker.charges = cost, charges
        return tracker
