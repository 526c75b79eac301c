"""Property-based tests of the ledger against a model of a revising usage API.

The model API holds one value per (minute bucket, product). Between polls it may
revise any bucket still inside the lookback, up or down (to zero, which makes the
row disappear), and add new usage; buckets older than the lookback never change
again (the assumption the lookback stands for). Polls may be skipped for longer
than the lookback (outages), and the ledger may be restarted through its persisted
state at any point.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.api.parse import Labels, UsageRow
from exporter.core.counted import Counted
from exporter.core.history import WINDOWS
from exporter.core.ledger import Ledger, ReadPlan

BUCKET = 60
LOOKBACK = 600
ANCHOR = 1_700_000_040  # a minute boundary that is not an hour boundary
PRODUCTS: tuple[Labels, ...] = (("text_to_speech",), ("dubbing",))
Rows = tuple[list[UsageRow], list[UsageRow], list[UsageRow], list[UsageRow]]


@dataclass
class ModelApi:
    """Current values, and every value each bucket was served with."""

    values: dict[tuple[int, Labels], float] = field(default_factory=dict)
    served: dict[tuple[int, Labels], list[float]] = field(default_factory=lambda: defaultdict(list))

    def read(self, start: int, end: int, interval: int) -> list[UsageRow]:
        """Rows of ``[start, end)`` in ``interval`` buckets (buckets never given a value
        are 0 and served as such: only those ever set are recorded)."""
        sums: dict[tuple[int, Labels], float] = defaultdict(float)
        for (bucket, labels), value in self.values.items():
            if start <= bucket < end:
                self.served[(bucket, labels)].append(value)
                if value:
                    sums[(bucket - (bucket - start) % interval, labels)] += value
        return [UsageRow(b, labels, v) for (b, labels), v in sums.items()]

    def fetch(self, plan: ReadPlan) -> Rows:
        out: Rows = ([], [], [], [])
        groups = (plan.revisable, plan.settled, plan.cycle_only, plan.history)
        for target, windows in zip(out, groups, strict=True):
            for w in windows:
                target.extend(self.read(w.start, w.end, w.interval))
        return out


mutation = st.tuples(
    st.integers(0, LOOKBACK // BUCKET - 1),  # how many buckets before "now"
    st.integers(0, len(PRODUCTS) - 1),
    # credits, multiples of 0.5 (exact in floats); 0 often: the row then disappears
    st.one_of(st.just(0.0), st.integers(1, 40).map(lambda n: n / 2)),
)
step = st.fixed_dictionaries(
    {
        "advance": st.one_of(
            st.integers(1, 3), st.integers(11, 40)
        ),  # buckets; >10 outlasts lookback
        "poll": st.booleans() | st.just(True),
        "mutations": st.lists(mutation, max_size=6),
        "restart": st.integers(0, 9).map(lambda n: n == 0),
    }
)


def _run(
    start_offset: int,
    steps: list[dict[str, object]],
    *,
    additive: bool = False,
    read_current: bool = False,
    keep_history: bool = False,
    recent: tuple[int | None, int] = (None, 0),
) -> tuple[Counted, ModelApi, list[str]]:
    """Drive a ledger and its counters through ``steps``; ``additive`` turns "set to v"
    into "add v"; ``read_current`` reads the bucket under way at every poll;
    ``keep_history`` keeps the window history (and reads before the anchor for it);
    ``recent`` is (seconds re-read every poll, seconds between full re-reads)."""
    api = ModelApi()
    ledger = Counted.plain(
        Ledger(
            anchor=ANCHOR,
            bucket=BUCKET,
            lookback=LOOKBACK,
            cycle_start=ANCHOR,
            read_current=read_current,
            keep_history=keep_history,
            recent=recent[0],
            reread_every=recent[1],
        )
    )
    now = ANCHOR + start_offset * BUCKET
    # History before the exporter ever ran: settled usage it must seed, and usage
    # before the anchor, which it must never count (the windows may show it).
    for bucket in range(ANCHOR, now - LOOKBACK, BUCKET * 7):
        api.values[(bucket, PRODUCTS[bucket % 2])] = float(bucket % 11)
    for bucket in range(ANCHOR - 3 * 3600, ANCHOR, BUCKET * 5):
        api.values[(bucket, PRODUCTS[bucket % 2])] = 3.0
    violations: list[str] = []
    previous_total: dict[Labels, float] = {}
    previous_down: dict[Labels, float] = {}

    def poll() -> None:
        plan = ledger.ledger.plan(now + 5)  # a few seconds into the bucket: it is not read yet
        ledger.apply(plan, *api.fetch(plan))
        for labels in set(previous_total) | set(ledger.total):
            if ledger.total.get(labels, 0.0) < previous_total.get(labels, 0.0):
                violations.append(f"total decreased for {labels}")
            if ledger.down.get(labels, 0.0) < previous_down.get(labels, 0.0):
                violations.append(f"down decreased for {labels}")
        previous_total.update(ledger.total)
        previous_down.update(ledger.down)

    for item in steps:
        advance = int(item["advance"])  # type: ignore[call-overload]
        now += advance * BUCKET
        for back, product, value in item["mutations"]:  # type: ignore[attr-defined]
            bucket = now - (back + 1) * BUCKET
            if bucket >= now - LOOKBACK and bucket >= ANCHOR:
                key = (bucket, PRODUCTS[product])
                api.values[key] = api.values.get(key, 0.0) + value if additive else value
        if item["restart"]:
            state = json.loads(json.dumps(ledger.to_state()))
            restored = Ledger.from_state(
                state["ledger"],
                lookback=LOOKBACK,
                read_current=read_current,
                keep_history=keep_history,
            )
            restored.recent, restored.reread_every = recent
            ledger = Counted.plain(restored)
            ledger.router.restore(state["router"])
        if item["poll"]:
            poll()
    # Data stops changing; keep polling until every bucket has settled.
    for _ in range(LOOKBACK // BUCKET + 2):
        now += BUCKET
        poll()
    return ledger, api, violations


# Reads of the whole lookback every poll, or of the recent part with a full re-read
# every few polls (how the exporter reads by default: fewer rows, the same counters).
reads = st.sampled_from([(None, 0), (120, 180), (120, 300), (300, 600), (60, 600)])


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 400),
    st.lists(step, min_size=1, max_size=30),
    st.booleans(),
    st.booleans(),
    reads,
)
def test_counters_are_exact_and_monotonic(
    start_offset: int,
    steps: list[dict[str, object]],
    read_current: bool,
    keep_history: bool,
    recent: tuple[int | None, int],
) -> None:
    """For any revisions, outages and restarts: the counter never decreases, equals Σ of
    each bucket's highest served value (no bucket counted twice or missed), and the
    downward counter covers exactly what was revised away when no bucket rose after
    falling; the cycle gauge equals the API's final sum."""
    ledger, api, violations = _run(
        start_offset, steps, read_current=read_current, keep_history=keep_history, recent=recent
    )
    assert violations == []
    for labels in PRODUCTS:
        buckets = [k for k in api.served if k[1] == labels and k[0] >= ANCHOR]
        highest = sum(max(api.served[k]) for k in buckets)
        final = sum(api.values.get(k, 0.0) for k in buckets)
        assert ledger.total.get(labels, 0.0) == highest
        assert ledger.ledger.cycle.get(labels, 0.0) == final
        monotone_after_fall = all(
            not any(
                later > earlier
                for i, earlier in enumerate(seq)
                for later in seq[i + 1 :]
                if earlier < max(seq[: i + 1])
            )
            for seq in (api.served[k] for k in buckets)
        )
        if monotone_after_fall:
            assert ledger.down.get(labels, 0.0) == highest - final
        else:
            assert ledger.down.get(labels, 0.0) >= highest - final


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 400), st.lists(step, min_size=1, max_size=30), reads)
def test_upward_only_revisions_match_the_api_sum(
    start_offset: int, steps: list[dict[str, object]], recent: tuple[int | None, int]
) -> None:
    """When the API only ever revises upward (the documented case), the counter equals
    the API's own sum since the anchor and nothing is counted as revised away."""
    ledger, api, violations = _run(
        start_offset, steps, additive=True, keep_history=True, recent=recent
    )
    assert violations == []
    for labels in PRODUCTS:
        final = sum(v for k, v in api.values.items() if k[1] == labels and k[0] >= ANCHOR)
        assert ledger.total.get(labels, 0.0) == final
        assert ledger.down.get(labels, 0.0) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(step, min_size=5, max_size=40))
def test_memory_is_bounded_by_the_lookback(steps: list[dict[str, object]]) -> None:
    """However long it runs, the ledger holds at most the buckets of one lookback plus
    one poll's advance, per label set."""
    ledger, _, _ = _run(0, steps)
    assert ledger.ledger.live_entries <= (LOOKBACK // BUCKET + 1) * len(PRODUCTS)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 400), st.lists(step, min_size=1, max_size=30), st.booleans(), reads)
def test_windows_hold_the_current_values_by_bucket_time(
    start_offset: int,
    steps: list[dict[str, object]],
    read_current: bool,
    recent: tuple[int | None, int],
) -> None:
    """For any revisions, outages and restarts, once the data stops changing every window
    equals the API's current values of the buckets it covers, before the anchor too:
    exactly for the buckets still held, from the hour nearest its start for the folded
    ones."""
    counted, api, _ = _run(
        start_offset, steps, read_current=read_current, keep_history=True, recent=recent
    )
    ledger = counted.ledger
    sums = ledger.window_sums(WINDOWS)
    end = ledger.covered_until
    folded = ledger.settled_until
    for name, span in WINDOWS.items():
        start = end - span
        # Before the fold point the window starts at the nearest hour; after it, exactly.
        first = int(start + 1800) // 3600 * 3600 if start < folded else start
        for labels in PRODUCTS:
            expected = sum(
                v
                for (b, k), v in api.values.items()
                if k == labels and (first <= b < folded or max(start, folded) <= b < end)
            )
            assert sums.get(labels[0], {}).get(name, 0.0) == expected, (name, labels)
