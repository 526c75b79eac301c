"""The credits source: exact credit counters from the usage-by-product table.

Each poll reads the windows the ledger plans (the lookback re-read, plus settled
history where it was never read), applies them all or nothing and persists the
ledger and the exported counters in the state file. The anchor is that of every
counting source (:mod:`exporter.polling.counting`).

A workspace billed in currency answers the credits endpoint with an error; when that
error says so, this source hands over to the cost source for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError
from exporter.api.parse import Labels, UsageRow
from exporter.config import Config, WorkspaceConfig
from exporter.core.counted import Counted
from exporter.core.history import WINDOWS
from exporter.core.ledger import Ledger, ReadPlan
from exporter.core.router import SeriesRouter
from exporter.core.state import WorkspaceState
from exporter.polling.cost import looks_cost_billed
from exporter.polling.counting import CountingSource
from exporter.polling.source import Outcome, WorkspaceFacts

Rows = tuple[list[UsageRow], list[UsageRow], list[UsageRow], list[UsageRow]]


@dataclass(frozen=True)
class CreditsPart:
    """What the usage collector exports for one workspace."""

    label_names: tuple[str, ...] = ("product_type",)
    credits: Mapping[Labels, float] = field(default_factory=dict)
    downward: Mapping[Labels, float] = field(default_factory=dict)
    cycle: Mapping[Labels, float] | None = None
    names: Mapping[tuple[str, str], str] = field(default_factory=dict)
    # product_type -> window label -> credits attributed to it by bucket time
    windows: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    budget: float | None = None  # the workspace's own allowance per cycle (config)


class CreditsSource(CountingSource):
    """Credits per product (and opt-in dimension) for one workspace."""

    state_key = "credits"

    def __init__(
        self,
        workspace: WorkspaceConfig,
        config: Config,
        client: ElevenLabsClient,
        facts: WorkspaceFacts,
        *,
        log: Any,
        clock: Callable[[], float],
        state: WorkspaceState | None = None,
        seed_limiter: asyncio.Semaphore | None = None,
    ) -> None:
        super().__init__(workspace, config, client, facts, log=log, state=state)
        self.clock = clock
        # Large reads (seeding a cycle, recovering an outage) hold every row until they
        # apply; sharing this limit keeps many workspaces from holding them all at once.
        self.seed_limiter = seed_limiter or asyncio.Semaphore(1)
        self.counted: Counted | None = None
        self.names: dict[tuple[str, str], str] = {}

    @property
    def ledger(self) -> Ledger | None:
        """The ledger, once the anchor is known."""
        return self.counted.ledger if self.counted else None

    def active(self) -> bool:
        """Until the workspace proves billed in currency."""
        return self.facts.billing == "credits"

    # Counters and their anchor -----------------------------------------------------

    def _new(self, anchor: int, cycle_start: int | None) -> Counted:
        ws = self.workspace
        caps = {name: ws.cap(name) for name in ws.group_by}
        ledger = Ledger(
            anchor=anchor,
            bucket=self.config.bucket,
            lookback=self.config.lookback,
            cycle_start=cycle_start,
            label_names=ws.group_by,
            read_current=self.config.current_bucket,
            recent=self.config.recent,
            reread_every=self.config.reread_interval,
            keep_history=True,
        )
        return Counted(ledger, SeriesRouter(ws.group_by, caps, ws.allow))

    def _sync(self) -> Counted | None:
        """Create the counters once the anchor is known; follow a new billing cycle."""
        if self.counted is None:
            start = self.first_anchor()
            if start is not None:
                self.counted = self._restore(self._new(*start))
        elif (cycle_start := self.new_cycle()) is not None:
            if self.restarts_at_cycle:
                self.counted = self._new(cycle_start, cycle_start)
            else:
                self.counted.ledger.start_cycle(cycle_start)
        return self.counted

    def _restore(self, fresh: Counted) -> Counted:
        """Resume the persisted counters of this anchor, or raise the fresh ones to them."""
        stored = self.state.get(self.state_key) if self.state is not None else None
        if stored is None:
            return fresh
        ledger_state, router_state = stored.get("ledger"), stored.get("router")
        if not isinstance(ledger_state, dict) or ledger_state.get("anchor") != fresh.ledger.anchor:
            self.log.info("state is for another anchor or host, seeding from the API")
            return fresh
        try:
            ledger = Ledger.from_state(
                ledger_state,
                lookback=self.config.lookback,
                read_current=self.config.current_bucket,
                keep_history=True,
            )
            ledger.recent, ledger.reread_every = self.config.recent, self.config.reread_interval
            if not isinstance(router_state, dict):
                raise ValueError("malformed router state: missing")
        except ValueError as err:
            self.log.warning(
                "state for this workspace unusable, seeding from the API", error=str(err)
            )
            return fresh
        if ledger.bucket != fresh.ledger.bucket or ledger.label_names != fresh.ledger.label_names:
            self.log.info("bucket or dimensions changed since the state was written, reseeding")
            if ledger.label_names == fresh.ledger.label_names:
                self._restore_router(fresh.router, router_state, totals=False)
            return fresh
        if not self._restore_router(fresh.router, router_state, totals=True):
            return fresh
        if fresh.ledger.cycle_start is not None:
            ledger.start_cycle(fresh.ledger.cycle_start)
        self.log.info("resumed from state", covered_until=ledger.covered_until)
        return Counted(ledger, fresh.router)

    def _restore_router(
        self, router: SeriesRouter, data: Mapping[str, Any], *, totals: bool
    ) -> bool:
        try:
            router.restore(data, totals=totals)
        except ValueError as err:
            self.log.warning("series state unusable, seeding from the API", error=str(err))
            return False
        return True

    # Polling ---------------------------------------------------------------------

    async def _fetch(self, plan: ReadPlan) -> Rows:
        results: Rows = ([], [], [], [])
        groups = (plan.revisable, plan.settled, plan.cycle_only, plan.history)
        for target, windows in zip(results, groups, strict=True):
            for window in windows:
                table = await self.client.usage_table(
                    window.start,
                    window.end,
                    window.interval,
                    self.workspace.group_by,
                    self.workspace.filters,
                )
                target.extend(table.rows)
                self.names.update(table.names)
        return results

    async def poll(self, now: float) -> Outcome | None:
        """Read the planned windows and apply them, or hand over to the cost source."""
        counted = self._sync()
        if counted is None:
            return None
        plan = counted.ledger.plan(now)
        try:
            if plan.settled or plan.cycle_only or plan.history:
                async with self.seed_limiter:
                    plan = counted.ledger.plan(self.clock())  # time passed while waiting
                    rows = await self._fetch(plan)
            else:
                rows = await self._fetch(plan)
        except ApiError as err:
            if looks_cost_billed(err):
                self.log.info(
                    "workspace is billed in currency: reading the cost endpoint", error=str(err)
                )
                self.facts.billing = "cost"
                return None
            raise
        counted.apply(plan, *rows)
        if self.state is not None:
            self.state.put(self.state_key, counted.to_state())
        return Outcome(
            requests=len(plan.windows),
            rows=sum(len(r) for r in rows),
            fields={"live_entries": counted.ledger.live_entries},
        )

    def part(self, last_success: float) -> CreditsPart:
        """The exported counters, the cycle gauge and the display names."""
        counted = self.counted
        budget = self.workspace.budget_credits
        if counted is None:
            return CreditsPart(self.workspace.group_by, budget=budget)
        ledger, router = counted.ledger, counted.router
        shown: set[tuple[str, str]] = set()
        for labels in router.total:
            shown.update(zip(self.workspace.group_by, labels, strict=True))
        return CreditsPart(
            label_names=self.workspace.group_by,
            credits=dict(router.total),
            downward=dict(router.down),
            cycle=router.gauge(ledger.cycle) if ledger.cycle_known else None,
            names={key: name for key, name in self.names.items() if key in shown},
            windows=ledger.window_sums(WINDOWS),
            budget=budget,
        )
