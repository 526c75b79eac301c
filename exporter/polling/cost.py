"""The cost source: usage of workspaces billed in currency rather than credits.

For such workspaces the credits endpoint answers with an error, and
``POST /v1/workspace/analytics/usage`` reports ``total_cost`` (in the workspace's
currency) and ``total_charge_count`` per whole UTC day. The same revision-safe
ledger turns them into counters: yesterday and today stay revisable (today's bucket
fills as the day goes on), older days are settled. The counters persist under their
own entry of the state file, next to the credits ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exporter.api.errors import ApiError
from exporter.api.parse import Labels, UsageRow
from exporter.core.counted import Counted
from exporter.core.ledger import Ledger
from exporter.core.router import SeriesRouter
from exporter.polling.counting import CountingSource
from exporter.polling.source import Outcome

DAY = 86400
_MARKERS = ("currency", "cost", "fiat")
_KINDS = ("cost", "charges")


def looks_cost_billed(error: ApiError) -> bool:
    """Whether a credits-endpoint error says the workspace is billed in currency.

    The status and wording are undocumented, so this reads the error's code and
    message for the words ElevenLabs uses for it; anything else stays an error.
    """
    text = f"{error.code or ''} {error}".lower()
    return error.reason == "client_error" and any(marker in text for marker in _MARKERS)


@dataclass(frozen=True)
class CostPart:
    """What the cost collector exports for one workspace."""

    cost: Mapping[Labels, float]
    charges: Mapping[Labels, float]
    currency: str


class CostSource(CountingSource):
    """Cost and charge-count counters of one workspace, from daily buckets; its poll is
    the workspace's usage poll."""

    state_key = "cost"

    counters: dict[str, Counted] | None = None  # from the first poll after the switch

    @property
    def group_by(self) -> tuple[str, ...]:
        """By product only: the cost table's dimensions differ from the credits one's."""
        return self.workspace.group_by[:1]

    def active(self) -> bool:
        """Once the credits source found the workspace billed in currency."""
        return self.facts.billing == "cost"

    def _new(self, anchor: int, cycle_start: int | None) -> dict[str, Counted]:
        def counted() -> Counted:
            ledger = Ledger(
                anchor=anchor - anchor % DAY,  # whole days from the anchor's day
                bucket=DAY,
                lookback=2 * DAY,
                cycle_start=cycle_start,
                label_names=self.group_by,
                coarse=DAY,
            )
            return Counted(ledger, SeriesRouter(self.group_by))

        return {kind: counted() for kind in _KINDS}

    def _sync(self) -> dict[str, Counted] | None:
        """Create the counters once the anchor is known; follow a new billing cycle."""
        if self.counters is None:
            start = self.first_anchor()
            if start is not None:
                self.counters = self._restore(self._new(*start))
        elif (cycle_start := self.new_cycle()) is not None:
            if self.restarts_at_cycle:
                self.counters = self._new(cycle_start, cycle_start)
            else:
                for counted in self.counters.values():
                    counted.ledger.start_cycle(cycle_start)
        return self.counters

    def _restore(self, fresh: dict[str, Counted]) -> dict[str, Counted]:
        stored = self.state.get(self.state_key) if self.state is not None else None
        if stored is None:
            return fresh
        try:
            restored = {}
            for kind in _KINDS:
                part = stored[kind]
                ledger = Ledger.from_state(part["ledger"], lookback=2 * DAY)
                ledger.coarse = DAY
                router = SeriesRouter(ledger.label_names)
                router.restore(part["router"])
                restored[kind] = Counted(ledger, router)
        except (KeyError, TypeError, ValueError) as err:
            self.log.warning("cost state unusable, seeding from the API", error=str(err))
            return fresh
        if any(c.ledger.anchor != fresh["cost"].ledger.anchor for c in restored.values()):
            return fresh
        return restored

    async def poll(self, now: float) -> Outcome | None:
        """Read and apply one poll's windows, all or nothing."""
        counters = self._sync()
        if counters is None:
            return None
        # Plan to the end of today: today's bucket is read as it fills, like any
        # revisable bucket; both ledgers hold the same coverage, so one plan serves both.
        plan = counters["cost"].ledger.plan(now + DAY - 1)
        fetched: dict[str, list[list[UsageRow]]] = {kind: [] for kind in _KINDS}
        for windows in (plan.revisable, plan.settled, plan.cycle_only):
            cost_rows: list[UsageRow] = []
            count_rows: list[UsageRow] = []
            for window in windows:
                cost, count = await self.client.cost_usage(
                    window.start, window.end, window.interval, self.group_by
                )
                cost_rows += cost
                count_rows += count
            fetched["cost"].append(cost_rows)
            fetched["charges"].append(count_rows)
        for kind, counted in counters.items():
            counted.apply(plan, *fetched[kind])
        if self.state is not None:
            self.state.put(self.state_key, {k: c.to_state() for k, c in counters.items()})
        rows = sum(len(r) for parts in fetched.values() for r in parts)
        return Outcome(requests=len(plan.windows), rows=rows, fields={"billing": "currency"})

    def part(self, last_success: float) -> CostPart | None:
        """The cost and charge counters, with the subscription's currency."""
        if self.counters is None:
            return None
        subscription = self.facts.subscription
        return CostPart(
            cost=dict(self.counters["cost"].total),
            charges=dict(self.counters["charges"].total),
            currency=(subscription.currency if subscription else None) or "unknown",
        )
