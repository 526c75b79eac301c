"""The workspace poll loop (exporter/polling/loop.py) with fake sources and a fake clock.

What the loop promises whatever the source: sources of one workspace poll one after
another in their order, never two at once; up, readiness and each endpoint's last
success follow from the sources' results; every failure is counted under its own
endpoint and reason; sources poll on their own intervals, back off after transient
failures and never sooner than a retry header asked; a crashing source never stops
the loop.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from exporter.api.errors import ApiError
from exporter.core.snapshot import SnapshotStore
from exporter.log import get_logger
from exporter.polling.loop import WorkspaceLoop
from exporter.polling.source import Outcome, Source

LOG = get_logger()


@dataclass
class Clock:
    """A clock that only moves when told."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Telemetry:
    """Records registrations and failures like the exporter's telemetry."""

    endpoints: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def register_workspace(self, workspace: str, endpoints: Iterable[str] = ()) -> None:
        self.endpoints.extend(endpoints)

    def poll_failed(self, workspace: str, endpoint: str, reason: str) -> None:
        self.failures.append((endpoint, reason))


@dataclass(frozen=True)
class Part:
    """A fake source's published part."""

    name: str
    polls: int


class Fake(Source):
    """A source whose results are scripted; it records when it ran and overlaps."""

    in_flight: ClassVar[int] = 0  # shared by every fake: how many polls run now
    peak: ClassVar[int] = 0
    order: ClassVar[list[str]] = []  # names in the order their polls began

    def __init__(
        self,
        name: str,
        endpoint: str,
        clock: Clock,
        *,
        every: float = 60.0,
        required: bool = True,
        readiness: bool = False,
        results: Sequence[object] | None = None,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.required = required
        self.readiness = readiness
        self.reports_freshness = required
        self.clock = clock
        self.every = every
        self.results = list(results or [])
        self.polled_at: list[float] = []

    def interval(self) -> float:
        return self.every

    async def poll(self, now: float) -> Outcome | None:
        Fake.in_flight += 1
        Fake.peak = max(Fake.peak, Fake.in_flight)
        Fake.order.append(self.name)
        try:
            await asyncio.sleep(0)  # let any other poll run if the loop allowed it
            self.polled_at.append(now)
            result = self.results.pop(0) if self.results else "ok"
            if isinstance(result, BaseException):
                raise result
            return None if result is None else Outcome(requests=1, rows=2)
        finally:
            Fake.in_flight -= 1

    def part(self, last_success: float) -> Part:
        return Part(self.name, len(self.polled_at))


def loop_of(*sources: Source, clock: Clock, telemetry: Telemetry | None = None) -> WorkspaceLoop:
    return WorkspaceLoop(
        "main",
        sources,
        snapshots=SnapshotStore(["main"]),
        telemetry=telemetry or Telemetry(),
        log=LOG,
        clock=clock,
        rng=random.Random(3),
    )


async def run_rounds(loop: WorkspaceLoop, clock: Clock, until: float) -> list[float]:
    """Run the loop on the fake clock until ``until``; returns the waits it asked for."""
    stop = asyncio.Event()
    waits: list[float] = []

    async def wait(_: asyncio.Event, seconds: float) -> None:
        waits.append(seconds)
        clock.now += max(seconds, 0.001)
        if clock.now >= until:
            stop.set()

    loop._wait = wait
    await loop.run(stop)
    return waits


async def test_sources_poll_in_order_and_never_two_at_once() -> None:
    """One round polls every source in its order, one at a time, even with sources of
    different kinds sharing the workspace (the promise: one request in flight)."""
    clock = Clock()
    a, b, c = (Fake(n, n, clock) for n in ("subscription", "usage", "character_stats"))
    Fake.peak, Fake.order = 0, []
    loop = loop_of(a, b, c, clock=clock)
    await run_rounds(loop, clock, clock.now + 600)
    assert Fake.peak == 1
    assert len(a.polled_at) == len(b.polled_at) == len(c.polled_at) >= 9
    assert Fake.order == ["subscription", "usage", "character_stats"] * len(a.polled_at)


async def test_up_and_ready_follow_the_required_and_readiness_sources() -> None:
    """up needs every required source's last poll to have succeeded; an optional one may
    fail; ready waits for the readiness source's first success and then stays."""
    clock = Clock()
    sub = Fake("s", "subscription", clock, results=["ok", ApiError("server_error", "x"), "ok"])
    usage = Fake("u", "usage", clock, readiness=True, results=[None, "ok", "ok"])
    extra = Fake("c", "character_stats", clock, required=False, results=[ApiError("auth", "no")])
    loop = loop_of(sub, usage, extra, clock=clock)
    assert not await loop.poll_once()  # usage could not poll yet
    assert not loop.ready
    clock.now += 60
    assert not await loop.poll_once()  # the subscription failed
    assert loop.ready
    clock.now += 60
    assert await loop.poll_once()  # the optional source failed in round 1 only
    snapshot = loop.snapshot()
    assert snapshot.up
    assert snapshot.ready
    assert snapshot.last_success == {"subscription": clock.now, "usage": clock.now}


async def test_failures_are_counted_per_endpoint_and_reason() -> None:
    """Each failed poll counts once under its source's endpoint and the error's reason;
    waiting and succeeding count nothing."""
    clock = Clock()
    telemetry = Telemetry()
    sub = Fake("s", "subscription", clock, results=[ApiError("rate_limited", "429")])
    usage = Fake("u", "usage", clock, results=[None, ApiError("bad_response", "x")])
    loop = loop_of(sub, usage, clock=clock, telemetry=telemetry)
    assert telemetry.endpoints == ["usage", "subscription"]  # as the exposition lists them
    await loop.poll_once()
    await loop.poll_once()
    await loop.poll_once()
    assert telemetry.failures == [("subscription", "rate_limited"), ("usage", "bad_response")]


async def test_sources_keep_their_own_intervals() -> None:
    """A source polled every 60 s and one every 300 s: over an hour the first polls about
    60 times and the second about 12, with equal-interval sources kept together."""
    clock = Clock()
    fast = Fake("f", "usage", clock)
    also_fast = Fake("g", "subscription", clock)
    slow = Fake("s", "character_stats", clock, every=300, required=False)
    loop = loop_of(also_fast, fast, slow, clock=clock)
    await run_rounds(loop, clock, clock.now + 3600)
    assert 56 <= len(fast.polled_at) <= 64
    assert fast.polled_at == also_fast.polled_at
    assert 11 <= len(slow.polled_at) <= 13


async def test_transient_failures_back_off_and_retry_headers_are_honoured() -> None:
    """Consecutive transient failures space a source's polls out up to 8x its interval,
    never sooner than a retry header asked; a rejected key keeps the normal interval."""
    clock = Clock()
    busy = [ApiError("server_error", "503") for _ in range(6)]
    flaky = Fake("u", "usage", clock, results=busy)
    waits = await run_rounds(loop_of(flaky, clock=clock), clock, clock.now + 3 * 3600)
    gaps = [b - a for a, b in zip(flaky.polled_at, flaky.polled_at[1:], strict=False)]
    assert 57 <= gaps[0] <= 63  # the first failure: normal interval
    assert 114 <= gaps[1] <= 126
    assert 456 <= gaps[4] <= 504  # capped at 8x
    assert 57 <= gaps[-1] <= 63  # recovered
    assert waits

    clock = Clock()
    limited = Fake("u", "usage", clock, results=[ApiError("rate_limited", "429", retry_after=900)])
    await run_rounds(loop_of(limited, clock=clock), clock, clock.now + 1000)
    assert limited.polled_at[1] - limited.polled_at[0] >= 900

    clock = Clock()
    rejected = Fake("u", "usage", clock, results=[ApiError("auth", "401")] * 5)
    await run_rounds(loop_of(rejected, clock=clock), clock, clock.now + 600)
    gaps = [b - a for a, b in zip(rejected.polled_at, rejected.polled_at[1:], strict=False)]
    assert all(57 <= gap <= 63 for gap in gaps)


async def test_a_crashing_source_never_stops_the_loop() -> None:
    """An unexpected exception in one source is logged; the others keep polling and the
    crashed one is tried again at its next turn."""
    clock = Clock()
    broken = Fake("b", "character_stats", clock, required=False, results=[RuntimeError("bug")])
    usage = Fake("u", "usage", clock)
    loop = loop_of(usage, broken, clock=clock)
    await run_rounds(loop, clock, clock.now + 300)
    assert len(usage.polled_at) >= 4
    assert len(broken.polled_at) >= 4


async def test_parts_of_every_active_source_are_published() -> None:
    """The snapshot holds each active source's part under its type; an inactive source's
    part is left out."""
    clock = Clock()
    usage = Fake("u", "usage", clock)
    snapshots = SnapshotStore(["main"])
    loop = WorkspaceLoop(
        "main", [usage], snapshots=snapshots, telemetry=Telemetry(), log=LOG, clock=clock
    )
    assert snapshots.current()["main"].part(Part) == Part("u", 0)  # published at start-up
    await loop.poll_once()
    assert snapshots.current()["main"].part(Part) == Part("u", 1)
    usage.active = lambda: False  # type: ignore[method-assign]
    await loop.poll_once()
    assert snapshots.current()["main"].part(Part) is None


async def test_a_source_polls_at_the_moment_it_names_before_its_interval() -> None:
    """The subscription knows when the cycle resets: polled every 300 s, it still polls
    a few seconds after that moment, so a new cycle is seen at once."""
    clock = Clock()
    reset = clock.now + 130.0
    sub = Fake("s", "subscription", clock, every=300)
    sub.due_by = lambda: reset  # type: ignore[method-assign]
    await run_rounds(loop_of(sub, clock=clock), clock, clock.now + 700)
    assert sub.polled_at[1] == reset
    assert 285 <= sub.polled_at[2] - sub.polled_at[1] <= 315  # then its interval again


class Log:
    """A logger that records (level, event, fields); bind returns itself."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, object]]] = []

    def bind(self, **_: object) -> Log:
        return self

    def __getattr__(self, level: str) -> object:
        def record(event: str, **fields: object) -> None:
            self.records.append((level, event, fields))

        return record


def missing(permission: str) -> ApiError:
    """The 401 ElevenLabs answers a key that lacks a permission, as the client raises it."""
    return ApiError(
        "permission",
        "HTTP 401 missing_permissions: The API key you used is missing the permission "
        f"{permission} to execute this operation.",
        status=401,
        code="missing_permissions",
    )


async def test_an_optional_sources_permission_failure_is_logged_once_per_episode() -> None:
    """A key lacking a permission an optional source needs: every failed poll is counted,
    but only the first of a run of permission failures is a warning (naming the
    permission); after a success the next one warns again. A required source's every
    permission failure stays a warning."""
    clock = Clock()
    telemetry = Telemetry()
    optional = Fake(
        "limits",
        "groups",
        clock,
        required=False,
        results=[missing("workspace_read")] * 3 + ["ok", missing("workspace_read")],
    )
    required = Fake("subscription", "subscription", clock, results=[missing("user_read")] * 2)
    log = Log()
    loop = WorkspaceLoop(
        "main",
        [required, optional],
        snapshots=SnapshotStore(["main"]),
        telemetry=telemetry,
        log=log,
        clock=clock,
    )
    for _ in range(5):
        await loop.poll_once()
    assert telemetry.failures.count(("groups", "permission")) == 4
    assert telemetry.failures.count(("subscription", "permission")) == 2
    failed = [(lvl, f["endpoint"]) for lvl, event, f in log.records if event == "poll failed"]
    assert failed == [
        ("warning", "subscription"),
        ("warning", "groups"),
        ("warning", "subscription"),
        ("debug", "groups"),
        ("debug", "groups"),
        ("warning", "groups"),  # after the success in round 4
    ]
    first = next(f for lvl, e, f in log.records if e == "poll failed" and f["endpoint"] == "groups")
    assert first["missing_permission"] == "workspace_read"
    assert "logged once" in str(first["note"])
