"""One workspace's past usage, summed per step as the live series would have shown it.

The backfill's file holds, per product, the counter that counts from the exporter's
anchor (each billing-cycle start, or ``count_from``) and the gauge that counts from
each cycle start. Both are running totals that restart at an anchor, so reading a
period means reading it in steps, plus what came between the anchor in force at
``--since`` and ``--since``, plus the part of each step an anchor cuts off.
:class:`Accumulator` keeps exactly that, as compact float arrays (8 bytes per step
and series), while the rows stream past; :class:`Anchors` says where the series
restart; :func:`read_history` plans and makes the requests.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from exporter.api.client import ElevenLabsClient
from exporter.api.parse import Labels, UsageRow
from exporter.config import Config, WorkspaceConfig
from exporter.core.windows import Window, coarse_windows, fine_windows
from exporter.flags import UsageError
from exporter.tools.dates import HOUR, MINUTE, When, floor_to, iso, resolve_period
from exporter.tools.periods import cycle_starts, read_plan, read_windows
from exporter.tools.progress import Progress

# Prometheus keeps the last ~3h in its head block; backfilled blocks must not overlap it
# ("it is not safe to backfill data from the last 3 hours", Prometheus storage docs).
HEAD_BLOCK = 3 * HOUR
COUNTER = "elevenlabs_credits_used"
GAUGE = "elevenlabs_cycle_credits_used"


@dataclass
class Anchors:
    """Times a cumulative series restarts from 0 at: cycle starts, or count_from.

    ``before`` is the last one at or before ``--since`` (None: the series is 0
    until the first of ``inside``); ``inside`` are those later, up to ``--until``.
    """

    before: int | None
    inside: tuple[int, ...]

    @classmethod
    def of(cls, times: Iterable[int], since: int, until: int) -> Anchors:
        """Split anchor times around the period."""
        ordered = sorted(set(times))
        before = max((t for t in ordered if t <= since), default=None)
        return cls(before, tuple(t for t in ordered if since < t <= until))


@dataclass
class Accumulator:
    """One workspace's credits per step of ``[since, until)``, and what anchors need.

    ``steps[labels][k]`` holds the credits of ``[since + k*step, since + (k+1)*step)``;
    ``pre[a]`` the credits from an anchor ``a`` before the period up to ``since``;
    ``partial[b]`` the credits of the step containing an anchor ``b`` that come
    before ``b``. A bucket the API reports as negative is not subtracted: counters
    never go down (the live exporter treats usage it reads as settled the same way).
    """

    since: int
    until: int
    step: int
    pre_anchors: tuple[int, ...] = ()
    inside_anchors: tuple[int, ...] = ()
    steps: dict[Labels, array[float]] = field(default_factory=dict)
    pre: dict[int, dict[Labels, float]] = field(default_factory=dict)
    partial: dict[int, dict[Labels, float]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Steps in the period."""
        return (self.until - self.since) // self.step

    def add(self, row: UsageRow) -> None:
        """A row read from ``[since, until)``."""
        if row.credits <= 0 or not self.since <= row.bucket < self.until:
            return
        series = self.steps.get(row.labels)
        if series is None:
            series = self.steps[row.labels] = array("d", bytes(8 * self.count))
        series[(row.bucket - self.since) // self.step] += row.credits
        for anchor in self.inside_anchors:
            if floor_to(anchor, self.step) <= row.bucket < anchor:
                target = self.partial.setdefault(anchor, {})
                target[row.labels] = target.get(row.labels, 0.0) + row.credits

    def add_pre(self, row: UsageRow) -> None:
        """A row read from before ``since``, for the anchors there."""
        if row.credits <= 0 or row.bucket >= self.since:
            return
        for anchor in self.pre_anchors:
            if row.bucket >= anchor:
                target = self.pre.setdefault(anchor, {})
                target[row.labels] = target.get(row.labels, 0.0) + row.credits

    def label_sets(self, anchors: Anchors) -> list[Labels]:
        """Every label set with usage the series of ``anchors`` can show."""
        found = set(self.steps)
        if anchors.before is not None:
            found.update(self.pre.get(anchors.before, {}))
        for anchor in anchors.inside:
            found.update(self.partial.get(anchor, {}))
        return sorted(found)

    def samples(self, labels: Labels, anchors: Anchors) -> Iterator[tuple[int, float]]:
        """``(time, credits since the anchor)`` at every step, ``--since`` to ``--until``
        inclusive, plus one at each anchor inside the period that is off the grid.

        At an anchor's own time the series still shows the whole of the ending cycle
        and restarts with the next sample: ``increase()`` then loses nothing to the
        reset (a 0 at the anchor would drop the credits of the step before it).
        """
        steps = self.steps.get(labels)
        base: float | None = None  # value = running total - base; None: 0 until an anchor
        if anchors.before is not None:
            base = -self.pre.get(anchors.before, {}).get(labels, 0.0)
        record_at: dict[int, list[int]] = {}
        for anchor in anchors.inside:
            index = (floor_to(anchor, self.step) - self.since) // self.step
            record_at.setdefault(index, []).append(anchor)
        at_anchor: dict[int, float] = {}  # running total at each anchor's time
        pending = list(anchors.inside)
        total = 0.0

        def since_anchor(value: float) -> float:
            return 0.0 if base is None else max(value - base, 0.0)

        for k in range(self.count + 1):
            at = self.since + k * self.step
            if k and steps is not None:
                total += steps[k - 1]
            for anchor in record_at.get(k, ()):
                at_anchor[anchor] = total + self.partial.get(anchor, {}).get(labels, 0.0)
            while pending and pending[0] < at:
                anchor = pending.pop(0)
                if (anchor - self.since) % self.step:
                    yield anchor, since_anchor(at_anchor[anchor])
                base = at_anchor[anchor]
            yield at, since_anchor(total)


@dataclass
class WorkspaceHistory:
    """What one workspace contributes to the file."""

    workspace: str
    accumulator: Accumulator
    counter: Anchors
    cycle: Anchors | None  # None: the cycle gauge is left out


def main_windows(since: int, until: int, step: int, breaks: Sequence[int]) -> list[Window]:
    """Hour buckets (a week per request) when steps are hours, else minute buckets (a
    day per request); minute buckets around ``breaks`` so no bucket straddles one."""
    if step >= HOUR:
        return coarse_windows(since, until, MINUTE, breaks)
    return fine_windows(since, until, MINUTE)


async def read_history(
    client: ElevenLabsClient,
    ws: WorkspaceConfig,
    config: Config,
    *,
    since: When,
    until: When,
    step: int,
    now: float,
    cycle_gauge: bool,
    err: TextIO,
    quiet: bool,
) -> WorkspaceHistory:
    """Read the subscription (for the cycles), then the period and what precedes it
    back to the anchor in force at ``--since``."""
    what = "counts from --since" if config.count_from is None else "counts from count_from"
    _, cycle = await read_plan(
        client, since, until, now, err, left_out=f"the counter {what} and {GAUGE} is left out"
    )
    cycle_start = floor_to(cycle.start, MINUTE) if cycle is not None else None
    start, end = resolve_period(since, until, step, cycle_start)
    check_recent(end, until, now)

    starts = cycle_starts(cycle, start, end) if cycle is not None else []
    starts = [floor_to(t, config.bucket) for t in starts]
    if config.count_from is not None:
        counter = Anchors.of([floor_to(config.count_from.timestamp(), config.bucket)], start, end)
    elif cycle is not None:
        counter = Anchors.of(starts, start, end)
    else:
        counter = Anchors(start, ())
    gauge: Anchors | None = None
    if cycle_gauge and cycle is not None:
        if cycle.known:
            gauge = Anchors.of(starts, start, end)
        else:
            print(
                f"note: workspace {ws.name}: the subscription gives no reset time, so the "
                f"billing cycles are unknown and {GAUGE} is left out",
                file=err,
            )
    if ws.group_by != ("product_type",):
        print(
            f"note: workspace {ws.name}: backfill writes product_type only; the exporter's "
            f"extra dimensions ({', '.join(ws.group_by[1:])}) are not backfilled",
            file=err,
        )

    anchor_sets = [a for a in (counter, gauge) if a is not None]
    before = sorted({a.before for a in anchor_sets if a.before is not None and a.before < start})
    inside = sorted({t for a in anchor_sets for t in a.inside})
    acc = Accumulator(start, end, step, tuple(before), tuple(inside))
    pre_windows = coarse_windows(before[0], start, MINUTE, before) if before else []
    windows = main_windows(start, end, step, inside)
    progress = Progress(err, f"workspace {ws.name}", len(pre_windows) + len(windows), quiet=quiet)
    filters: Sequence[Mapping[str, Any]] = ws.filters
    await read_windows(client, pre_windows, acc.add_pre, filters=filters, progress=progress)
    await read_windows(client, windows, acc.add, filters=filters, progress=progress)
    return WorkspaceHistory(ws.name, acc, counter, gauge)


def check_recent(end: int, until: When, now: float) -> None:
    """Refuse to write samples Prometheus may still hold in its head block."""
    if end > now - HEAD_BLOCK:
        raise UsageError(
            until.flag,
            f"{iso(end)} is later than 3 hours ago; Prometheus still holds that time in "
            "its head block, which backfilled blocks must not overlap: backfill up to "
            "when the exporter started (the default is 3h ago)",
        )
