"""Unit tests of the ledger's planning, revisions, cycles and persistence, with its
increments summed by a plain router as the exporter runs it."""

from __future__ import annotations

import itertools

import pytest

from exporter.api.parse import UsageRow
from exporter.core.counted import Counted
from exporter.core.ledger import Ledger, ReadPlan
from exporter.core.windows import Window, coarse_windows, fine_windows

TTS = ("text_to_speech",)
HOUR = 3600
DAY = 86400
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def rows(*items: tuple[int, float]) -> list[UsageRow]:
    return [UsageRow(bucket, TTS, credits) for bucket, credits in items]


def test_fine_windows_are_chunked_and_contiguous() -> None:
    """A long fine range is split into requests of at most a day of minute buckets."""
    windows = fine_windows(T0, T0 + 2 * DAY + 120, 60)
    assert [w.end - w.start for w in windows] == [DAY, DAY, 120]
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))


def test_coarse_windows_use_hours_inside_and_minutes_at_the_edges() -> None:
    """Seeding reads whole hours in hour buckets and the ragged edges in minute buckets,
    and no hour bucket straddles a break (the cycle start)."""
    start, end = T0 + 30 * 60, T0 + 10 * HOUR + 15 * 60
    windows = coarse_windows(start, end, 60, breaks=[T0 + 5 * HOUR + 120])
    assert windows[0] == Window(start, T0 + HOUR, 60)
    assert Window(T0 + HOUR, T0 + 5 * HOUR, HOUR) in windows
    assert Window(T0 + 5 * HOUR, T0 + 5 * HOUR + 120, 60) in windows
    assert windows[-1] == Window(T0 + 10 * HOUR, end, 60)
    covered = sum(w.end - w.start for w in windows)
    assert covered == end - start


def test_requests_per_poll_do_not_grow_with_history() -> None:
    """Seeding a whole month costs a handful of requests, and every later poll costs one,
    however much history lies behind it."""
    ledger = Ledger(anchor=T0, bucket=60, lookback=2 * HOUR, cycle_start=T0)
    seed = ledger.plan(T0 + 30 * DAY)
    assert len(seed.windows) <= 8
    ledger.apply(seed)
    for minute in range(1, 24 * 60):  # a day of polls, one a minute
        plan = ledger.plan(T0 + 30 * DAY + minute * 60)
        assert len(plan.windows) == 1
        ledger.apply(plan)


def test_late_upward_revision_adds_exactly_its_delta() -> None:
    """A bucket re-read with a larger value adds the difference, once."""
    counted = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    plan = counted.ledger.plan(T0 + 600)
    counted.apply(plan, rows((T0 + 300, 10.0)))
    plan = counted.ledger.plan(T0 + 660)
    counted.apply(plan, rows((T0 + 300, 17.5)))
    plan = counted.ledger.plan(T0 + 720)
    counted.apply(plan, rows((T0 + 300, 17.5)))
    assert counted.total[TTS] == 17.5
    assert counted.down[TTS] == 0.0


def test_downward_revision_is_counted_apart_and_never_subtracted() -> None:
    """A smaller value leaves the counter alone, feeds the downward counter, and lowers
    the cycle gauge (the API's current view)."""
    counted = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    counted.apply(counted.ledger.plan(T0 + 600), rows((T0 + 300, 10.0)))
    counted.apply(counted.ledger.plan(T0 + 660), rows((T0 + 300, 4.0)))
    assert counted.total[TTS] == 10.0
    assert counted.down[TTS] == 6.0
    assert counted.ledger.cycle[TTS] == 4.0


def test_bucket_missing_from_a_later_answer_was_revised_to_zero() -> None:
    """A revisable bucket absent from an answer that covered it counts as revised to 0."""
    counted = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    counted.apply(counted.ledger.plan(T0 + 600), rows((T0 + 300, 10.0)))
    counted.apply(counted.ledger.plan(T0 + 660), [])
    assert counted.total[TTS] == 10.0
    assert counted.down[TTS] == 10.0
    assert counted.ledger.cycle[TTS] == 0.0


def test_outage_longer_than_the_lookback_rereads_the_gap_once() -> None:
    """After an outage the plan re-reads what was revisable, reads the gap as settled,
    and reads the new lookback: the windows tile the time since the last coverage."""
    counted = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    counted.apply(counted.ledger.plan(T0 + 2 * HOUR))
    plan = counted.ledger.plan(T0 + 9 * HOUR)
    assert plan.revisable[0].start == T0 + HOUR
    spans = sorted((w.start, w.end) for w in plan.windows)
    assert spans[0][0] == T0 + HOUR
    assert spans[-1][1] == T0 + 9 * HOUR
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


def test_fixed_anchor_keeps_counting_across_a_cycle_and_rebuilds_the_cycle_gauge() -> None:
    """With count_from fixed, a new billing cycle leaves the counter alone and the cycle
    gauge restarts from the buckets of the new cycle."""
    counted = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    counted.apply(counted.ledger.plan(T0 + 600), rows((T0 + 60, 5.0), (T0 + 300, 7.0)))
    counted.ledger.start_cycle(T0 + 120)
    assert counted.ledger.cycle_known
    assert counted.ledger.cycle[TTS] == 7.0
    assert counted.total[TTS] == 12.0


def test_cycle_start_before_what_is_held_is_read_back() -> None:
    """A cycle that began before the held buckets is rebuilt from a cycle-only read."""
    counted = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    counted.apply(counted.ledger.plan(T0 + 3 * HOUR), rows((T0 + 2 * HOUR + 60, 3.0)))
    counted.ledger.start_cycle(T0 + HOUR)
    assert not counted.ledger.cycle_known
    plan = counted.ledger.plan(T0 + 3 * HOUR + 60)
    assert plan.cycle_only
    counted.apply(plan, rows((T0 + 2 * HOUR + 60, 3.0)), [], rows((T0 + HOUR + 60, 4.0)))
    assert counted.ledger.cycle_known
    assert counted.ledger.cycle[TTS] == 7.0


def test_state_round_trip_resumes_exactly() -> None:
    """A ledger rebuilt from its state answers the next poll exactly like the original."""
    a = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    a.apply(a.ledger.plan(T0 + 600), rows((T0 + 300, 10.0), (T0 + 360, 2.5)))
    b = Counted.plain(Ledger.from_state(a.ledger.to_state(), lookback=HOUR))
    b.router.restore(a.router.to_state())
    for counted in (a, b):
        counted.apply(counted.ledger.plan(T0 + 660), rows((T0 + 300, 12.0), (T0 + 360, 2.5)))
    assert a.to_state() == b.to_state()
    assert b.total[TTS] == 14.5


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.pop("live"),
        lambda s: s.update(anchor="yesterday"),
        lambda s: s.update(cycle=[[["a", "b"], 1.0]]),
        lambda s: s.update(settled_until=s["covered_until"] + 60),
        lambda s: s.update(live=[[1, ["x"], "many", 0, 0]]),
    ],
)
def test_malformed_state_is_refused(damage: object) -> None:
    """Damaged state raises ValueError (the caller then reseeds), never anything else."""
    counted = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    counted.apply(counted.ledger.plan(T0 + 600), rows((T0 + 300, 10.0)))
    state = counted.ledger.to_state()
    damage(state)  # type: ignore[operator]
    with pytest.raises(ValueError, match="malformed"):
        Ledger.from_state(state, lookback=HOUR)


def test_floor_keeps_a_reseed_from_dropping_the_counter() -> None:
    """A reseed that cannot resume the old ledger never exports less than it did: credits
    revised away before the restart are added back on top of the reseeded values."""
    old = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    old.apply(old.ledger.plan(T0 + 600), rows((T0 + 300, 10.0)))
    old.apply(old.ledger.plan(T0 + 660), rows((T0 + 300, 6.0)))  # revised down by 4
    fresh = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    fresh.router.floor_at(old.total, old.down)
    plan = fresh.ledger.plan(T0 + 900)
    fresh.apply(plan, rows((T0 + 300, 6.0), (T0 + 720, 1.0)))
    assert fresh.total[TTS] == 11.0  # 10 seen before + 1 new
    assert fresh.down[TTS] == 4.0


def test_nothing_is_read_before_the_anchor() -> None:
    """A clock before the anchor plans nothing; rows before the anchor are ignored."""
    counted = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    assert counted.ledger.plan(T0 - 300).windows == ()
    counted.apply(
        ReadPlan(end=T0 + 60, fold_at=T0, revisable=(Window(T0 - 60, T0 + 60, 60),)),
        rows((T0 - 60, 50.0), (T0, 1.0)),
    )
    assert counted.total[TTS] == 1.0


def test_a_state_without_history_reads_the_week_back_for_the_windows_only() -> None:
    """A ledger resumed from a state written before the window history existed plans a
    one-off read of the week before its buckets; those rows fill the windows and never
    the counters, and until they are read the wide windows are left out, not wrong."""
    now = T0 + 10 * DAY
    first = Counted.plain(
        Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0, keep_history=True)
    )
    plan = first.ledger.plan(now)
    first.apply(plan, rows((now - 600, 5.0)), rows((now - 5 * HOUR, 7.0)))
    state = first.ledger.to_state()
    state.pop("history")
    resumed = Counted.plain(Ledger.from_state(state, lookback=HOUR, keep_history=True))
    resumed.router.restore(first.router.to_state())
    early = resumed.ledger.window_sums({"5m": 300, "1h": HOUR, "1d": DAY})
    assert early == {"text_to_speech": {"5m": 0.0, "1h": 5.0}}  # 1d left out
    plan = resumed.ledger.plan(now + 60)
    assert plan.history
    assert plan.history[0].start <= now - 7 * DAY
    assert plan.history[-1].end == resumed.ledger.settled_until
    increments = resumed.apply(plan, rows((now - 600, 5.0)), history=rows((now - 5 * HOUR, 7.0)))
    assert increments.used.get(TTS, 0.0) == 0.0  # the history rows count for nothing
    assert resumed.total[TTS] == 12.0
    sums = resumed.ledger.window_sums({"1h": HOUR, "1d": DAY})
    assert sums == {"text_to_speech": {"1h": 5.0, "1d": 12.0}}
    assert not resumed.ledger.plan(now + 120).history
