"""The poll loop of one workspace: the only caller of the API client.

Each poll reads the subscription (credits, limit, cycle), then the usage windows
the ledger plans, one request at a time (never two in flight for one workspace),
applies them all or nothing, and publishes a fresh snapshot. A failure is logged,
counted and leaves the last good values in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from exporter.api.backoff import next_poll_delay
from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError, missing_permission
from exporter.api.parse import Subscription, UsageRow
from exporter.config import Config, KeySource, Secret, WorkspaceConfig
from exporter.core.cycle import Cycle, cycle_of, is_new_cycle
from exporter.core.ledger import Ledger, ReadPlan
from exporter.core.router import SeriesRouter
from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.core.state import StateStore
from exporter.polling.cost import CostTracker, looks_cost_billed
from exporter.polling.source import ENDPOINTS, PollTelemetry

Clock = Callable[[], float]


class WorkspacePoller:
    """Polls one workspace and publishes its snapshots."""

    def __init__(
        self,
        *,
        workspace: str,
        base_url: str,
        client: ElevenLabsClient,
        config: Config,
        snapshots: SnapshotStore,
        telemetry: PollTelemetry,
        log: Any,
        state: StateStore | None = None,
        clock: Clock = time.time,
        settings: WorkspaceConfig | None = None,
        seed_limiter: asyncio.Semaphore | None = None,
    ) -> None:
        self.workspace = workspace
        self.base_url = base_url
        self.client = client
        self.config = config
        self.snapshots = snapshots
        self.telemetry = telemetry
        self.log = log.bind(workspace=workspace)
        self.state = state
        self.clock = clock
        # Without settings: grouped by product_type only, the global poll interval.
        self.settings = settings or WorkspaceConfig(
            workspace, Secret(""), KeySource("config"), base_url
        )
        self.group_by = self.settings.group_by
        self.poll_interval = self.settings.poll_interval or config.poll_interval
        self.ledger: Ledger | None = None
        self.router = self._new_router()
        self.names: dict[tuple[str, str], str] = {}
        self.cost: CostTracker | None = None  # set once the workspace proves cost-billed
        self.subscription: Subscription | None = None
        self.cycle: Cycle | None = None
        self.last_success: dict[str, float] = dict.fromkeys(ENDPOINTS, 0.0)
        self.up = False
        self.ready = False
        self.failures = 0  # consecutive polls with at least one failed endpoint
        self.last_error: ApiError | None = None
        self._rng = random.Random()
        # Large reads (seeding a cycle, recovering an outage) hold every row until they
        # apply; sharing this limit keeps many workspaces from holding them all at once.
        self.seed_limiter = seed_limiter or asyncio.Semaphore(1)
        telemetry.register_workspace(workspace)

    # One poll ------------------------------------------------------------------

    async def poll_once(self) -> bool:
        """Poll every endpoint once; True when all succeeded."""
        self.last_error = None
        sub_ok = await self._poll_subscription()
        usage_ok = await self._poll_usage()
        self.up = sub_ok and usage_ok
        self.failures = 0 if self.up else self.failures + 1
        self.publish()
        return self.up

    def _failed(self, endpoint: str, err: ApiError, started: float, **extra: Any) -> None:
        self.last_error = err
        self.telemetry.poll_failed(self.workspace, endpoint, err.reason)
        fields: dict[str, Any] = {
            "endpoint": endpoint,
            "outcome": "error",
            "reason": err.reason,
            "error": str(err),
            "duration_seconds": round(time.perf_counter() - started, 3),
            **extra,
        }
        if err.status is not None:
            fields["status"] = err.status
        if err.reason == "permission":
            permission = missing_permission(str(err))
            if permission:
                fields["missing_permission"] = permission
        self.log.warning("poll failed", **fields)

    async def _poll_subscription(self) -> bool:
        started = time.perf_counter()
        try:
            subscription = await self.client.subscription()
        except ApiError as err:
            self._failed("subscription", err, started)
            return False
        self.subscription = subscription
        cycle = cycle_of(subscription, self.clock())
        if is_new_cycle(self.cycle, cycle):
            self._enter_cycle(cycle)
        else:
            # Same cycle; keep the first start seen but follow the reset time.
            assert self.cycle is not None
            self.cycle = Cycle(self.cycle.start, cycle.reset, cycle.known)
        self.last_success["subscription"] = self.clock()
        self.log.info(
            "poll",
            endpoint="subscription",
            outcome="ok",
            rows=1,
            duration_seconds=round(time.perf_counter() - started, 3),
        )
        return True

    def _enter_cycle(self, cycle: Cycle) -> None:
        previous, self.cycle = self.cycle, cycle
        if previous is not None:
            self.log.info("billing cycle changed", cycle_start=cycle.start, cycle_reset=cycle.reset)
        if self.cost is not None:
            if self.config.count_from is None:
                self.cost = CostTracker(cycle.start - cycle.start % 86400, cycle.start)
            else:
                self.cost.start_cycle(cycle.start)
        if self.ledger is None:
            return
        if self.config.count_from is None:
            # The counter is anchored at the cycle start: it restarts from zero.
            self.ledger = self._new_ledger(cycle.start, cycle.start)
        else:
            self.ledger.start_cycle(cycle.start)

    def _new_router(self) -> SeriesRouter:
        caps = {name: self.settings.cap(name) for name in self.group_by}
        return SeriesRouter(self.group_by, caps, self.settings.allow)

    def _new_ledger(self, anchor: int, cycle_start: int | None) -> Ledger:
        self.router = self._new_router()
        return Ledger(
            anchor=anchor,
            bucket=self.config.bucket,
            lookback=self.config.lookback,
            cycle_start=cycle_start,
            label_names=self.group_by,
        )

    def _ensure_ledger(self) -> Ledger | None:
        if self.ledger is not None:
            return self.ledger
        cycle_start = self.cycle.start if self.cycle is not None else None
        if self.config.count_from is not None:
            anchor = int(self.config.count_from.timestamp())
        elif cycle_start is not None:
            anchor = cycle_start
        else:
            return None  # the anchor comes from the subscription, which has not answered
        fresh = self._new_ledger(anchor, cycle_start)
        self.ledger = self._restore(fresh)
        return self.ledger

    def _restore(self, fresh: Ledger) -> Ledger:
        """Resume the persisted ledger of this anchor, or raise the fresh one to it."""
        stored = self.state.get(self.workspace) if self.state is not None else None
        if stored is None:
            return fresh
        same_origin = (
            stored.get("base_url") == self.base_url
            and isinstance(stored.get("ledger"), dict)
            and stored["ledger"].get("anchor") == fresh.anchor
        )
        if not same_origin:
            self.log.info("state is for another anchor or host, seeding from the API")
            return fresh
        try:
            restored = Ledger.from_state(stored["ledger"], lookback=self.config.lookback)
        except ValueError as err:
            self.log.warning(
                "state for this workspace unusable, seeding from the API", error=str(err)
            )
            return fresh
        if restored.bucket != fresh.bucket or restored.label_names != fresh.label_names:
            self.log.info("bucket or dimensions changed since the state was written, reseeding")
            if restored.label_names == fresh.label_names:
                fresh.floor_at(restored.total, restored.down)
            return fresh
        if fresh.cycle_start is not None:
            restored.start_cycle(fresh.cycle_start)
        if isinstance(stored.get("router"), dict):
            try:
                self.router.restore(stored["router"])
            except ValueError as err:
                self.log.warning("series state unusable, rebuilt from the ledger", error=str(err))
                self.router = self._new_router()
        self.log.info("resumed from state", covered_until=restored.covered_until)
        return restored

    async def _fetch(self, plan: ReadPlan) -> tuple[list[UsageRow], list[UsageRow], list[UsageRow]]:
        results: tuple[list[UsageRow], list[UsageRow], list[UsageRow]] = ([], [], [])
        for target, windows in zip(
            results, (plan.revisable, plan.settled, plan.cycle_only), strict=True
        ):
            for window in windows:
                table = await self.client.usage_table(
                    window.start, window.end, window.interval, self.group_by, self.settings.filters
                )
                target.extend(table.rows)
                self.names.update(table.names)
        return results

    async def _poll_usage(self) -> bool:
        ledger = self._ensure_ledger()
        if ledger is None:
            return False
        if self.cost is not None:
            return await self._poll_cost()
        started = time.perf_counter()
        plan = ledger.plan(self.clock())
        heavy = bool(plan.settled or plan.cycle_only)
        try:
            if heavy:
                async with self.seed_limiter:
                    plan = ledger.plan(self.clock())  # the clock moved while waiting
                    revisable, settled, cycle_only = await self._fetch(plan)
            else:
                revisable, settled, cycle_only = await self._fetch(plan)
        except ApiError as err:
            if looks_cost_billed(err):
                self.log.info(
                    "workspace is billed in currency: reading the cost endpoint", error=str(err)
                )
                self._start_cost(ledger)
                return await self._poll_cost()
            self._failed("usage", err, started, requests_planned=len(plan.windows))
            return False
        if self.ledger is not ledger:  # the cycle changed meanwhile; this plan is moot
            return False
        ledger.apply(plan, revisable, settled, cycle_only)
        self.router.update(
            ledger.total, ledger.down, ledger.cycle if ledger.cycle_known else ledger.total
        )
        self.last_success["usage"] = self.clock()
        self.ready = True
        if self.state is not None:
            self.state.put(
                self.workspace,
                {
                    "base_url": self.base_url,
                    "ledger": ledger.to_state(),
                    "router": self.router.to_state(),
                },
            )
        self.log.info(
            "poll",
            endpoint="usage",
            outcome="ok",
            requests=len(plan.windows),
            rows=len(revisable) + len(settled) + len(cycle_only),
            live_entries=ledger.live_entries,
            duration_seconds=round(time.perf_counter() - started, 3),
        )
        return True

    def _start_cost(self, ledger: Ledger) -> None:
        stored = self.state.get(self.workspace) if self.state is not None else None
        anchor = ledger.anchor - ledger.anchor % 86400
        if stored and isinstance(stored.get("cost"), dict):
            try:
                restored = CostTracker.from_state(stored["cost"])
            except ValueError as err:
                self.log.warning("cost state unusable, seeding from the API", error=str(err))
            else:
                if restored.anchor == anchor:
                    self.cost = restored
                    return
        self.cost = CostTracker(anchor, ledger.cycle_start, self.group_by[:1])

    async def _poll_cost(self) -> bool:
        assert self.cost is not None
        started = time.perf_counter()
        try:
            requests, rows = await self.cost.poll(self.client, self.clock())
        except ApiError as err:
            self._failed("usage", err, started)
            return False
        self.last_success["usage"] = self.clock()
        self.ready = True
        if self.state is not None:
            self.state.put(
                self.workspace, {"base_url": self.base_url, "cost": self.cost.to_state()}
            )
        self.log.info(
            "poll",
            endpoint="usage",
            billing="currency",
            outcome="ok",
            requests=requests,
            rows=rows,
            duration_seconds=round(time.perf_counter() - started, 3),
        )
        return True

    # Publishing ------------------------------------------------------------------

    def snapshot(self) -> WorkspaceSnapshot:
        """The workspace's current values as an immutable snapshot."""
        ledger = self.ledger
        cycle = self.cycle if self.cycle is not None and self.cycle.known else None
        return WorkspaceSnapshot(
            name=self.workspace,
            label_names=self.group_by,
            credits=dict(self.router.total) if ledger else {},
            downward=dict(self.router.down) if ledger else {},
            cycle=self.router.gauge(ledger.cycle) if ledger and ledger.cycle_known else None,
            names=self._exported_names(),
            cost=dict(self.cost.cost.total) if self.cost else None,
            charges=dict(self.cost.charges.total) if self.cost else None,
            currency=(self.subscription.currency if self.subscription else None) or "unknown",
            subscription=self.subscription,
            cycle_reset=cycle.reset if cycle else None,
            cycle_length=cycle.length if cycle else None,
            up=self.up,
            last_success=dict(self.last_success),
            ready=self.ready,
        )

    def _exported_names(self) -> dict[tuple[str, str], str]:
        """Display names of the values that have series of their own (bounded by the caps)."""
        shown: set[tuple[str, str]] = set()
        for labels in self.router.total:
            shown.update(zip(self.group_by, labels, strict=True))
        return {key: name for key, name in self.names.items() if key in shown}

    def publish(self) -> None:
        """Swap in a fresh snapshot."""
        self.snapshots.publish(self.snapshot())

    # The loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll_interval`` (with a little jitter) until ``stop`` is set."""
        self.publish()
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:  # a bug must not kill the loop: log it and keep serving
                self.log.exception("poll crashed")
            delay = next_poll_delay(self.poll_interval, self.failures, self.last_error, self._rng)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
