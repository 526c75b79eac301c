"""The poll loop of one workspace: its sources, one after another, on their schedules.

Every source of a workspace runs in this one task, so a workspace never has two
requests in flight. The loop is the same for every source: it decides when each is
due (its interval, with jitter, spaced out after consecutive transient failures and
never sooner than a retry header asked), counts and logs each failure the same way,
keeps each endpoint's last success, derives ``elevenlabs_up`` and readiness, and
publishes a fresh snapshot after every round. A failure leaves the source's last
good part in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from exporter.api.backoff import poll_delay
from exporter.api.errors import ApiError, missing_permission
from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.polling.source import ENDPOINTS, Outcome, PollTelemetry, Source

Clock = Callable[[], float]
Wait = Callable[[asyncio.Event, float], Awaitable[None]]
# Sources due within this share of their interval after a round begins poll in that
# round (a source that is nearly due is not worth a wake-up of its own).
_SLACK = 0.1


@dataclass
class SourceStatus:
    """What the loop knows about one source."""

    last_success: float = 0.0
    ok: bool = False  # the last poll that ran succeeded
    ran: bool = False  # a poll ran at all (not just waited)
    failures: int = 0  # consecutive failed polls
    last_error: ApiError | None = None
    due: float = 0.0


class WorkspaceLoop:
    """Polls one workspace's sources and publishes its snapshots."""

    def __init__(
        self,
        name: str,
        sources: Sequence[Source],
        *,
        snapshots: SnapshotStore,
        telemetry: PollTelemetry,
        log: Any,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        wait: Wait | None = None,
    ) -> None:
        self.name = name
        self.sources = list(sources)
        self.snapshots = snapshots
        self.telemetry = telemetry
        self.log = log.bind(workspace=name)
        self.clock = clock
        self._rng = rng or random.Random()
        self._wait = wait or _wait
        self.status = {id(source): SourceStatus() for source in self.sources}
        # usage and subscription first, then the optional endpoints, as they are exported.
        endpoints = [e for e in ENDPOINTS if any(s.endpoint == e for s in self.sources)]
        endpoints += [s.endpoint for s in self.sources if s.endpoint not in endpoints]
        telemetry.register_workspace(name, dict.fromkeys(endpoints))
        self.publish()  # every source's series exist from start-up, before its first poll

    def _active(self) -> list[Source]:
        return [s for s in self.sources if s.active()]

    @property
    def up(self) -> bool:
        """Whether the last poll of every required, active source succeeded."""
        return all(self.status[id(s)].ok for s in self._active() if s.required)

    @property
    def ready(self) -> bool:
        """Whether every source that gates readiness has succeeded once."""
        return all(self.status[id(s)].last_success > 0 for s in self._active() if s.readiness)

    # Polling ---------------------------------------------------------------------

    async def poll_once(self) -> bool:
        """Poll every active source once, in order, and publish; True when all required
        sources succeeded."""
        for source in self.sources:
            if source.active():  # a source may activate another (billing mode)
                await self._poll(source)
        self.publish()
        return self.up

    async def poll_source(self, source: Source) -> bool:
        """Poll one source now and publish; True unless it failed."""
        await self._poll(source)
        self.publish()
        status = self.status[id(source)]
        return status.ok or not status.ran

    async def _poll(self, source: Source) -> None:
        status = self.status[id(source)]
        started = time.perf_counter()
        try:
            outcome = await source.poll(self.clock())
        except ApiError as err:
            previous = status.last_error
            status.ok, status.ran, status.last_error = False, True, err
            status.failures += 1
            self._failed(source, err, started, previous)
            self.publish()  # up goes to 0 now, not after the round's other sources
            return
        status.last_error = None
        if outcome is None:
            return
        status.ok, status.ran, status.failures = True, True, 0
        status.last_success = self.clock()
        self._succeeded(source, outcome, started)

    def _succeeded(self, source: Source, outcome: Outcome, started: float) -> None:
        self.log.info(
            "poll",
            endpoint=source.endpoint,
            outcome="ok",
            requests=outcome.requests,
            rows=outcome.rows,
            **outcome.fields,
            duration_seconds=round(time.perf_counter() - started, 3),
        )

    def _failed(
        self, source: Source, err: ApiError, started: float, previous: ApiError | None = None
    ) -> None:
        """Count the failure and log it. A permission failure of an optional source that
        repeats the previous poll's is logged at debug level: the key lacks a permission
        the workspace can do without, and one warning says so until a poll succeeds."""
        self.telemetry.poll_failed(self.name, source.endpoint, err.reason)
        fields: dict[str, Any] = {
            "endpoint": source.endpoint,
            "outcome": "error",
            "reason": err.reason,
            "error": str(err),
            "duration_seconds": round(time.perf_counter() - started, 3),
        }
        if err.status is not None:
            fields["status"] = err.status
        if err.reason == "permission":
            permission = missing_permission(str(err))
            if permission:
                fields["missing_permission"] = permission
            if not source.required:
                if previous is not None and previous.reason == "permission":
                    self.log.debug("poll failed", **fields)
                    return
                fields["note"] = (
                    "optional endpoint: elevenlabs_up and the other endpoints' metrics are "
                    "unaffected; logged once until a poll of it succeeds"
                )
        self.log.warning("poll failed", **fields)

    # Publishing --------------------------------------------------------------------

    def snapshot(self) -> WorkspaceSnapshot:
        """The workspace's current values as an immutable snapshot."""
        parts: dict[type, object] = {}
        last_success: dict[str, float] = {}
        for source in self.sources:
            status = self.status[id(source)]
            if source.reports_freshness:
                stamp = last_success.get(source.endpoint, 0.0)
                last_success[source.endpoint] = max(stamp, status.last_success)
            if source.active():
                part = source.part(status.last_success)
                if part is not None:
                    parts[type(part)] = part
        return WorkspaceSnapshot(
            name=self.name,
            up=self.up,
            ready=self.ready,
            last_success=MappingProxyType(last_success),
            parts=MappingProxyType(parts),
        )

    def publish(self) -> None:
        """Swap in a fresh snapshot."""
        self.snapshots.publish(self.snapshot())

    # The loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll each source when it is due until ``stop`` is set."""
        self.publish()
        while not stop.is_set():
            began = self.clock()
            # One jitter per round: sources of equal intervals that poll together stay
            # together, while workspaces (and exporters) drift apart.
            jitter = self._rng.uniform(0.95, 1.05)
            for source in self.sources:
                status = self.status[id(source)]
                if not source.active() or status.due > began + _SLACK * source.interval():
                    continue
                try:
                    await self._poll(source)
                except Exception:  # a bug must not kill the loop: log it and keep serving
                    self.log.exception("poll crashed", endpoint=source.endpoint)
                every = (
                    source.interval() if status.ok or not status.ran else source.retry_interval()
                )
                status.due = began + poll_delay(every, status.failures, status.last_error, jitter)
                hint = source.due_by()
                if hint is not None and status.ok and began < hint < status.due:
                    status.due = hint
            self.publish()
            pending = [self.status[id(s)].due for s in self._active()]
            await self._wait(stop, max(0.0, min(pending, default=began + 60.0) - self.clock()))


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds`` or until ``stop`` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
