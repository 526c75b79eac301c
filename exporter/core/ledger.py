"""Exact counter increments from usage buckets that ElevenLabs keeps revising.

The usage endpoint answers credits per (bucket, label set). Recent buckets are
incomplete and grow as data arrives. The ledger turns the answers into increments
that never count a bucket twice and are never negative:

* every poll re-reads every bucket still inside the lookback (the *revisable*
  buckets) and keeps, per bucket, the highest value seen (``hwm``), the value last
  seen (``last``) and the largest shortfall of ``last`` below ``hwm`` (``short``);
* a value above ``hwm`` adds the difference to the ``used`` increment; a value below
  it adds any growth of the shortfall to the ``down`` increment, never subtracting;
* a revisable bucket missing from an answer that covered it was revised to 0;
* buckets that leave the lookback are folded: their entries are dropped (their
  credits were already handed out as increments), so memory is bounded by the
  lookback;
* usage older than the lookback that was never read (the first seeding since the
  anchor, or an outage longer than the lookback) is read once, in coarse buckets,
  as *settled* usage and handed out as it is.

The ledger keeps no totals: :meth:`Ledger.apply` returns the increments and the
:class:`~exporter.core.router.SeriesRouter` adds them up, the one place each counter
is accumulated. Once the API's data stops changing, the sum of the ``used``
increments is ``Σ hwm`` over all buckets since the anchor, and when no bucket rose
again after falling the sum of ``down`` is ``Σ (hwm - final)``.

``cycle`` is a gauge of the API's current view of the billing cycle: Σ ``last``
over the buckets since the cycle start (it may go down when the API revises down).

With ``read_current`` the plan ends at the next bucket boundary after ``now``, so the
current, still-growing bucket is read like any other revisable bucket and usage
shows up within one poll. With ``keep_history`` the ledger also keeps what the
window gauges need (:mod:`exporter.core.history`): folded buckets and settled usage
summed per hour for a week, read back from the API where the anchor is younger than
a week or a restart lost it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.api.parse import Labels, UsageRow
from exporter.core.history import History, first_hour
from exporter.core.live import Live, Series
from exporter.core.windows import COARSE_SECONDS, Window, coarse_windows, fine_windows, floor_to


@dataclass(frozen=True)
class ReadPlan:
    """The requests one poll must make, and where the ledger stands after it."""

    end: int
    fold_at: int
    revisable: tuple[Window, ...] = ()
    settled: tuple[Window, ...] = ()
    cycle_only: tuple[Window, ...] = ()
    history: tuple[Window, ...] = ()  # read for the window history only, never counted
    full: bool = True  # re-reads the whole lookback (else only its recent part)

    @property
    def windows(self) -> tuple[Window, ...]:
        """Every window of the plan, in the order they should be requested."""
        return self.revisable + self.settled + self.cycle_only + self.history


@dataclass
class Increments:
    """What one apply added, per raw label set: to the counter and to the downward
    counter. Every label set the answer held is present, at 0 if nothing was added,
    so that its series exist from the first time it was seen."""

    used: dict[Labels, float] = field(default_factory=dict)
    down: dict[Labels, float] = field(default_factory=dict)

    def add(self, labels: Labels, used: float = 0.0, down: float = 0.0) -> None:
        """Add to one label set's increments (creating both at 0)."""
        self.used[labels] = self.used.get(labels, 0.0) + used
        self.down[labels] = self.down.get(labels, 0.0) + down


def _add(target: dict[Labels, float], labels: Labels, amount: float) -> None:
    target[labels] = target.get(labels, 0.0) + amount


@dataclass
class Ledger:
    """The revision-safe bucket store of one workspace (see the module docstring)."""

    anchor: int
    bucket: int
    lookback: int
    cycle_start: int | None = None
    label_names: tuple[str, ...] = ("product_type",)
    coarse: int = COARSE_SECONDS  # bucket for settled history (a day for daily-only endpoints)
    cycle: dict[Labels, float] = field(default_factory=dict)
    covered_until: int = -1
    settled_until: int = -1
    cycle_pending: bool = False
    read_current: bool = False
    # None: every poll re-reads the whole lookback. Else every poll re-reads the last
    # ``recent`` seconds and the whole lookback once every ``reread_every`` seconds.
    recent: int | None = None
    reread_every: int = 0
    last_full: int = -1  # end of the last full re-read (-1: none yet in this run)
    keep_history: bool = False
    history: History | None = None
    history_gap: tuple[int, int] | None = None  # [start, end) still to read for it
    _live: Live = field(init=False)

    def __post_init__(self) -> None:
        self.anchor = floor_to(self.anchor, self.bucket)
        fresh = self.covered_until < 0
        if fresh:
            self.covered_until = self.settled_until = self.anchor
        self._live = Live(self.bucket, self.settled_until)
        if self.cycle_start is not None:
            self.cycle_start = floor_to(self.cycle_start, self.bucket)
            # A fresh ledger must read the cycle before its anchor once; a resumed one
            # says in its state whether that is still to do.
            if fresh and self.cycle_start < self.anchor:
                self.cycle_pending = True

    @property
    def live_entries(self) -> int:
        """How many (bucket, label set) entries are held: bounded by the lookback."""
        return len(self._live)

    def plan(self, now: float) -> ReadPlan:
        """The windows to read at ``now``: bucket-aligned, ending at the last whole bucket
        (with ``read_current``: at the end of the current one)."""
        last = floor_to(now, self.bucket) + (self.bucket if self.read_current else 0)
        if self.keep_history and self.history is None:
            self._start_view(last)
        end = max(last, self.covered_until)
        history = self._history_windows(now)
        if end <= self.anchor:
            return ReadPlan(end=self.covered_until, fold_at=self.settled_until, history=history)
        fold_at = max(end - self.lookback, self.settled_until)
        full = True
        revisable: list[Window] = []
        settled: list[Window] = []
        if self.covered_until >= fold_at and not self._full_read_due(end):
            # Between full re-reads: the recent buckets and whatever is new; nothing folds.
            start = max(self.settled_until, min(end - (self.recent or 0), self.covered_until))
            revisable += fine_windows(start, end, self.bucket)
            fold_at, full = self.settled_until, False
        elif self.covered_until >= fold_at:
            revisable += fine_windows(self.settled_until, end, self.bucket)
        else:
            # An outage (or the first seeding) longer than the lookback: re-read what was
            # still revisable, read the never-read gap once as settled, then the lookback.
            revisable += fine_windows(self.settled_until, self.covered_until, self.bucket)
            breaks = [self.cycle_start] if self.cycle_start is not None else []
            settled += coarse_windows(
                self.covered_until, fold_at, self.bucket, breaks, coarse=self.coarse
            )
            revisable += fine_windows(fold_at, end, self.bucket)
        cycle_only: list[Window] = []
        if self.cycle_pending and self.cycle_start is not None:
            cycle_only = coarse_windows(
                self.cycle_start, self.settled_until, self.bucket, coarse=self.coarse
            )
        return ReadPlan(
            end, fold_at, tuple(revisable), tuple(settled), tuple(cycle_only), history, full
        )

    def _full_read_due(self, end: int) -> bool:
        """Whether this poll re-reads the whole lookback (else only the recent part).

        Buckets fold only at a full re-read, right after it read them: a bucket that
        changed while only the recent part was read is still re-read before it folds,
        so the counters stay exact.
        """
        if self.recent is None or self.recent >= end - self.settled_until:
            return True
        return end - self.last_full >= self.reread_every

    def _start_view(self, last: int) -> None:
        """Start the window history (fresh, or resumed from a state without one).

        A ledger that has read nothing yet also keeps the lookback before its anchor
        (read like any revisable bucket, never counted), so that the short windows
        stay exact right after the anchor (a new cycle, a recent ``count_from``).
        What lies before that is read once, in coarse buckets, for the history only.
        """
        self.history = History.reaching(last)
        if self.covered_until == self.anchor and not self._live.series:
            view = max(floor_to(last - self.lookback, self.bucket), self.history.start)
            if view < self.anchor:
                self.settled_until = self.covered_until = view
                self._live = Live(self.bucket, view)
        gap = (self.history.start, self.settled_until)
        self.history_gap = gap if gap[0] < gap[1] else None

    def _history_windows(self, now: float) -> tuple[Window, ...]:
        """What the window history still needs read: from where the widest window
        reaches to where the ledger's own buckets begin, once."""
        if self.history_gap is None:
            return ()
        start, end = max(self.history_gap[0], first_hour(now)), self.history_gap[1]
        return tuple(coarse_windows(start, end, self.bucket)) if start < end else ()

    def start_cycle(self, cycle_start: int) -> None:
        """A new billing cycle began: rebuild the cycle gauge (the counters go on)."""
        cycle_start = floor_to(cycle_start, self.bucket)
        if cycle_start == self.cycle_start:
            return
        self.cycle_start = cycle_start
        if cycle_start >= self.settled_until:
            # Every bucket of the new cycle is still held: rebuild from the entries.
            self.cycle = self._held_since(cycle_start)
            self.cycle_pending = False
        else:
            self.cycle_pending = True

    @property
    def cycle_known(self) -> bool:
        """Whether the cycle gauge is complete (a cycle start is known and read)."""
        return self.cycle_start is not None and not self.cycle_pending

    def _in_cycle(self, bucket: int) -> bool:
        return self.cycle_start is not None and bucket >= self.cycle_start

    def apply(
        self,
        plan: ReadPlan,
        revisable: Sequence[UsageRow] = (),
        settled: Sequence[UsageRow] = (),
        cycle_only: Sequence[UsageRow] = (),
        history: Sequence[UsageRow] = (),
    ) -> Increments:
        """Take in the rows read for ``plan`` (all of them: a poll applies whole or not)
        and return what they add to the counters."""
        if plan.cycle_only and self.cycle_pending:
            self._rebuild_cycle(cycle_only)
        out = Increments()
        for row in settled:
            if row.bucket < self.anchor:
                continue
            if row.credits >= 0:
                out.add(row.labels, used=row.credits)
            else:
                out.add(row.labels, down=-row.credits)
            if self._in_cycle(row.bucket):
                _add(self.cycle, row.labels, row.credits)
            if self.history is not None:
                self.history.add(row.bucket, row.labels[0], row.credits)
        self._revise_all(plan, revisable, out)
        if plan.full:
            self.last_full = plan.end
        self.covered_until = max(self.covered_until, plan.end)
        self.settled_until = max(self.settled_until, plan.fold_at)
        self._fold()
        if self.history is not None:
            if plan.history:
                for row in history:
                    if row.bucket < self.settled_until:
                        self.history.add(row.bucket, row.labels[0], row.credits)
                self.history_gap = None
            self.history.trim(self.covered_until)
        return out

    def _fold(self) -> None:
        """Drop the buckets that left the lookback; the history keeps their sums."""
        for bucket, labels, last in self._live.rebase(self.settled_until):
            if self.history is not None:
                self.history.add(bucket, labels[0], last)

    def _held_since(self, start: int) -> dict[Labels, float]:
        """Σ last per label set over the held buckets from ``start`` on."""
        first = max(self._live.index(start), 0)
        return {labels: sum(s.last[first:]) for labels, s in self._live.series.items()}

    def window_sums(self, spans: Mapping[str, int]) -> dict[str, dict[str, float]]:
        """Per product, what each window ending where the ledger has read holds: the
        API's current values by bucket time (``spans``: window name to seconds).

        Inside the lookback this is exact to the bucket; beyond it the hourly history
        makes it exact to the hour. A window reaching past what is held while the
        history is still to be read is left out rather than understated. Between polls
        (and while they fail) nothing moves, as nothing new has been read.
        """
        history_ready = self.history is not None and self.history_gap is None
        starts = {
            name: self.covered_until - span
            for name, span in spans.items()
            if history_ready or self.covered_until - span >= self.settled_until
        }
        out: dict[str, dict[str, float]] = {}
        for name, start in starts.items():
            for labels, value in self._held_since(start).items():
                sums = out.setdefault(labels[0], dict.fromkeys(starts, 0.0))
                sums[name] += value
        if self.history is not None and history_ready:
            for name, start in starts.items():
                if start < self.settled_until:
                    for product, value in self.history.since(start).items():
                        sums = out.setdefault(product, dict.fromkeys(starts, 0.0))
                        sums[name] += value
        return out

    def _rebuild_cycle(self, cycle_only: Sequence[UsageRow]) -> None:
        self.cycle = {}
        for row in cycle_only:
            if self._in_cycle(row.bucket) and row.bucket < self.settled_until:
                _add(self.cycle, row.labels, row.credits)
        if self.cycle_start is not None:
            for labels, value in self._held_since(self.cycle_start).items():
                _add(self.cycle, labels, value)
        self.cycle_pending = False

    def _revise_all(self, plan: ReadPlan, revisable: Sequence[UsageRow], out: Increments) -> None:
        """Compare every bucket of the revisable windows with what the answer says (a
        bucket missing from it was revised to 0) and revise what changed."""
        seen: dict[Labels, dict[int, float]] = {}
        for row in revisable:
            values = seen.setdefault(row.labels, {})
            values[row.bucket] = values.get(row.bucket, 0.0) + row.credits
        first = self.anchor if not self.keep_history else self._live.base
        for labels in set(self._live.series) | set(seen):
            values = seen.get(labels, {})
            if labels not in self._live.series and not any(values.values()):
                continue  # nothing to hold: a label set seen only at 0
            series = self._live.of(labels, plan.end)
            for window in plan.revisable:
                for bucket in range(max(window.start, first), window.end, window.interval):
                    i = self._live.index(bucket)
                    value = values.get(bucket, 0.0)
                    if value != series.last[i]:
                        self._revise(bucket, labels, series, i, value, out)

    def _revise(
        self, bucket: int, labels: Labels, series: Series, i: int, value: float, out: Increments
    ) -> None:
        hwm, short, last = series.get(i)
        grown = max(value - hwm, 0.0)
        hwm = max(hwm, value)
        shortfall = hwm - value
        fallen = max(shortfall - short, 0.0)
        series.put(i, hwm, max(short, shortfall), value)
        if bucket >= self.anchor:  # before it: held for the windows only
            out.add(labels, used=grown, down=fallen)
        if self._in_cycle(bucket):
            _add(self.cycle, labels, value - last)

    # Persistence (the format lives in exporter.core.ledger_state) -------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume exactly, as JSON-ready data (no totals: the
        router persists those)."""
        from exporter.core.ledger_state import ledger_to_state

        return ledger_to_state(self)

    @classmethod
    def from_state(
        cls,
        data: Mapping[str, Any],
        *,
        lookback: int,
        read_current: bool = False,
        keep_history: bool = False,
    ) -> Ledger:
        """Rebuild a ledger; raise ValueError on anything malformed (see
        :func:`exporter.core.ledger_state.ledger_from_state`)."""
        from exporter.core.ledger_state import ledger_from_state

        return ledger_from_state(
            data, lookback=lookback, read_current=read_current, keep_history=keep_history
        )
