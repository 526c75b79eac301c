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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.api.parse import MAX_VALUE, Labels, UsageRow
from exporter.core.windows import COARSE_SECONDS, Window, coarse_windows, fine_windows, floor_to


@dataclass(frozen=True)
class ReadPlan:
    """The requests one poll must make, and where the ledger stands after it."""

    end: int
    fold_at: int
    revisable: tuple[Window, ...] = ()
    settled: tuple[Window, ...] = ()
    cycle_only: tuple[Window, ...] = ()

    @property
    def windows(self) -> tuple[Window, ...]:
        """Every window of the plan, in the order they should be requested."""
        return self.revisable + self.settled + self.cycle_only


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


@dataclass(slots=True)
class _Entry:
    hwm: float = 0.0
    short: float = 0.0
    last: float = 0.0


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
    _live: dict[int, dict[Labels, _Entry]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.anchor = floor_to(self.anchor, self.bucket)
        if self.covered_until < 0:
            self.covered_until = self.settled_until = self.anchor
        if self.cycle_start is not None:
            self.cycle_start = floor_to(self.cycle_start, self.bucket)
            self.cycle_pending = self.cycle_pending or self.cycle_start < self.anchor

    @property
    def live_entries(self) -> int:
        """How many (bucket, label set) entries are held: bounded by the lookback."""
        return sum(len(v) for v in self._live.values())

    def plan(self, now: float) -> ReadPlan:
        """The windows to read at ``now``: bucket-aligned, ending at the last whole bucket."""
        end = max(floor_to(now, self.bucket), self.covered_until)
        if end <= self.anchor:
            return ReadPlan(end=self.covered_until, fold_at=self.settled_until)
        fold_at = max(self.anchor, end - self.lookback, self.settled_until)
        revisable: list[Window] = []
        settled: list[Window] = []
        if self.covered_until >= fold_at:
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
        return ReadPlan(end, fold_at, tuple(revisable), tuple(settled), tuple(cycle_only))

    def start_cycle(self, cycle_start: int) -> None:
        """A new billing cycle began: rebuild the cycle gauge (the counters go on)."""
        cycle_start = floor_to(cycle_start, self.bucket)
        if cycle_start == self.cycle_start:
            return
        self.cycle_start = cycle_start
        if cycle_start >= self.settled_until:
            # Every bucket of the new cycle is still held: rebuild from the entries.
            self.cycle = {}
            for bucket, entries in self._live.items():
                if bucket >= cycle_start:
                    for labels, entry in entries.items():
                        _add(self.cycle, labels, entry.last)
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
        self._revise_all(plan, revisable, out)
        self.covered_until = max(self.covered_until, plan.end)
        self.settled_until = max(self.settled_until, plan.fold_at)
        for bucket in [b for b in self._live if b < self.settled_until]:
            del self._live[bucket]
        return out

    def _rebuild_cycle(self, cycle_only: Sequence[UsageRow]) -> None:
        self.cycle = {}
        for row in cycle_only:
            if self._in_cycle(row.bucket) and row.bucket < self.settled_until:
                _add(self.cycle, row.labels, row.credits)
        for bucket, entries in self._live.items():
            if self._in_cycle(bucket):
                for labels, entry in entries.items():
                    _add(self.cycle, labels, entry.last)
        self.cycle_pending = False

    def _revise_all(self, plan: ReadPlan, revisable: Sequence[UsageRow], out: Increments) -> None:
        seen: dict[tuple[int, Labels], float] = {}
        for row in revisable:
            key = (row.bucket, row.labels)
            seen[key] = seen.get(key, 0.0) + row.credits
        for bucket, entries in self._live.items():
            if any(w.start <= bucket < w.end for w in plan.revisable):
                for labels in entries:
                    seen.setdefault((bucket, labels), 0.0)  # gone from the answer: revised to 0
        for (bucket, labels), value in seen.items():
            if bucket < self.anchor:
                continue
            entries = self._live.setdefault(bucket, {})
            found = entries.get(labels)
            if found is None:
                if value == 0:
                    if not entries:
                        del self._live[bucket]
                    continue
                found = entries[labels] = _Entry()
            self._revise(bucket, labels, found, value, out)

    def _revise(
        self, bucket: int, labels: Labels, entry: _Entry, value: float, out: Increments
    ) -> None:
        grown = max(value - entry.hwm, 0.0)
        entry.hwm = max(entry.hwm, value)
        shortfall = entry.hwm - value
        fallen = max(shortfall - entry.short, 0.0)
        entry.short = max(entry.short, shortfall)
        out.add(labels, used=grown, down=fallen)
        if self._in_cycle(bucket):
            _add(self.cycle, labels, value - entry.last)
        entry.last = value

    # Persistence ---------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume exactly, as JSON-ready data (no totals: the
        router persists those)."""
        return {
            "anchor": self.anchor,
            "bucket": self.bucket,
            "lookback": self.lookback,
            "cycle_start": self.cycle_start,
            "label_names": list(self.label_names),
            "covered_until": self.covered_until,
            "settled_until": self.settled_until,
            "cycle_pending": self.cycle_pending,
            "cycle": [[list(k), v] for k, v in sorted(self.cycle.items())],
            "live": [
                [bucket, list(labels), e.hwm, e.short, e.last]
                for bucket, entries in sorted(self._live.items())
                for labels, e in sorted(entries.items())
            ],
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any], *, lookback: int) -> Ledger:
        """Rebuild a ledger; raise ValueError on anything malformed or implausible.

        A state file is checked by value, not only by type, since whatever it holds
        becomes counters: times are whole seconds from 1970 to :data:`MAX_TIME`, the
        bucket from a second to a week; ``anchor <= settled_until <= covered_until``,
        no more than the ledger's lookback apart; every bucket held lies between them;
        every bucket's amounts are finite and from 0 to
        :data:`~exporter.api.parse.MAX_VALUE` (what an answer may hold), consistent
        (``last <= hwm``, ``short <= hwm``), and the cycle's sums from 0 to
        :data:`MAX_TOTAL`.
        """
        try:
            names = tuple(str(n) for n in data["label_names"])

            def labels_of(raw: Any) -> Labels:
                if not isinstance(raw, list) or len(raw) != len(names):
                    raise ValueError("label set of the wrong width")
                return tuple(str(x) for x in raw)

            cycle_start = data["cycle_start"]
            pending = data["cycle_pending"]
            if not isinstance(pending, bool):
                raise ValueError(f"expected true or false, got {pending!r}")
            bucket = _int(data["bucket"], 1, MAX_BUCKET)
            written_lookback = _int(data["lookback"], bucket, MAX_LOOKBACK)
            ledger = cls(
                anchor=_int(data["anchor"]),
                bucket=bucket,
                lookback=lookback,
                cycle_start=None if cycle_start is None else _int(cycle_start),
                label_names=names,
                cycle={labels_of(k): _number(v, MAX_TOTAL) for k, v in data["cycle"]},
                covered_until=_int(data["covered_until"]),
                settled_until=_int(data["settled_until"]),
                cycle_pending=pending,
            )
            for at, labels, hwm, short, last in data["live"]:
                entry = _Entry(_number(hwm), _number(short), _number(last))
                if entry.last > entry.hwm or entry.short > entry.hwm:
                    raise ValueError(
                        f"entry inconsistent: hwm {hwm!r}, short {short!r}, last {last!r}"
                    )
                at = _int(at)
                if not ledger.settled_until <= at < ledger.covered_until:
                    raise ValueError(f"bucket {at} outside the buckets still held")
                ledger._live.setdefault(at, {})[labels_of(labels)] = entry
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed ledger state: {err}") from None
        if not ledger.anchor <= ledger.settled_until <= ledger.covered_until:
            raise ValueError("malformed ledger state: inconsistent coverage")
        if ledger.covered_until - ledger.settled_until > written_lookback:
            raise ValueError("malformed ledger state: more held than its lookback")
        return ledger


# Bounds of a plausible ledger state: times (Unix seconds, up to the year 3058), bucket
# widths (up to a week) and lookbacks (up to a year). Sums over buckets (the cycle
# gauge, the exported counters) may pass the bound of one bucket: they are bounded at
# 2^53, where a float stops counting whole credits exactly, far beyond any workspace.
MAX_TOTAL = float(2**53)
MAX_TIME = 2**35
MAX_BUCKET = 7 * 86400
MAX_LOOKBACK = 366 * 86400


def _int(value: Any, low: int = 0, high: int = MAX_TIME) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range ({low} to {high})")
    return value


def _number(value: Any, bound: float = MAX_VALUE) -> float:
    """A plausible amount: finite, from 0 to ``bound`` (by default what one bucket of an
    answer may hold)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int) and not 0 <= value <= bound:
        raise ValueError(f"{value} is not a plausible amount")  # float() could overflow
    number = float(value)
    if not 0 <= number <= bound:  # NaN fails too
        raise ValueError(f"{number!r} is not a plausible amount")
    return number
