"""A state file is checked by value, not only by type: whatever it holds would become
counters, so numbers that no poll could have produced are refused (the source then
reseeds from the API), and workspaces the config does not name are not loaded.

The real process restarting on such a file is in test_hostile.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.api.parse import UsageRow
from exporter.core.counted import Counted
from exporter.core.ledger import Ledger
from exporter.core.router import SeriesRouter
from exporter.core.state import FORMAT, STATE_VERSION, StateStore

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
HOUR = 3600
TTS = ("text_to_speech",)


def counted() -> Counted:
    """A ledger and router after one poll, as a state file would hold them."""
    c = Counted.plain(Ledger(anchor=T0, bucket=60, lookback=HOUR, cycle_start=T0))
    c.apply(c.ledger.plan(T0 + 600), [UsageRow(T0 + 300, TTS, 10.0)])
    c.apply(c.ledger.plan(T0 + 660), [UsageRow(T0 + 300, TTS, 6.0)])  # revised down by 4
    return c


def ledger_state() -> dict[str, Any]:
    state: dict[str, Any] = json.loads(json.dumps(counted().ledger.to_state()))
    return state


def router_state() -> dict[str, Any]:
    state: dict[str, Any] = json.loads(json.dumps(counted().router.to_state()))
    return state


Edit = Callable[[dict[str, Any]], None]


def entries(state: dict[str, Any]) -> list[list[Any]]:
    """The held buckets as [bucket, labels, hwm, short, last] entries (the per-entry form
    the reader also accepts), from the compact per-label-set arrays."""
    live = state["live"]
    return [
        [live["base"] + i * state["bucket"], labels, hwm, short, last]
        for labels, hwms, shorts, lasts in live["series"]
        for i, (hwm, short, last) in enumerate(zip(hwms, shorts, lasts, strict=True))
        if hwm or last
    ]


def live(index: int, value: Any) -> Edit:
    """Set one number of the held entry [bucket, labels, hwm, short, last]."""

    def edit(state: dict[str, Any]) -> None:
        state["live"] = entries(state)
        state["live"][0][index] = value

    return edit


def test_an_honest_state_is_accepted() -> None:
    """What a ledger and a router wrote is read back as it was."""
    ledger = Ledger.from_state(ledger_state(), lookback=HOUR)
    router = SeriesRouter(ledger.label_names)
    router.restore(router_state())
    assert (router.total[TTS], router.down[TTS]) == (10.0, 4.0)
    assert ledger.to_state() == counted().ledger.to_state()


@pytest.mark.parametrize(
    "edit",
    [
        live(2, -1.0),
        live(2, float("nan")),
        live(2, float("inf")),
        live(2, 1e308),
        live(2, 10**400),
        live(2, True),
        live(4, 11.0),  # last above the highest value ever seen
        live(3, 11.0),  # a shortfall larger than the highest value
        live(0, T0 - 60),  # a bucket already folded
        live(0, T0 + 3600),  # a bucket not yet read
        lambda s: s.update(cycle=[[["text_to_speech"], -7722.0]]),
        lambda s: s.update(cycle=[[["text_to_speech"], 1e17]]),
        lambda s: s.update(bucket=0),
        lambda s: s.update(bucket=-60),
        lambda s: s.update(anchor=-1),
        lambda s: s.update(covered_until=2**62),
        lambda s: s.update(cycle_start=10**30),
        lambda s: s.update(cycle_pending="yes"),
        lambda s: s.update(covered_until=s["settled_until"] + 100 * HOUR, live=[]),
        lambda s: s.update(lookback=10**9),
    ],
    ids=[
        "negative hwm",
        "NaN",
        "infinite",
        "1e308",
        "an integer float() cannot hold",
        "a boolean",
        "last above hwm",
        "short above hwm",
        "bucket before settled_until",
        "bucket after covered_until",
        "negative cycle total",
        "cycle total beyond 2^53",
        "bucket 0",
        "negative bucket",
        "negative time",
        "time far in the future",
        "cycle start beyond any time",
        "pending not a boolean",
        "held span beyond the lookback",
        "lookback beyond a year",
    ],
)
def test_implausible_ledger_numbers_are_refused(edit: Edit) -> None:
    """A bucket's amounts must be finite and from 0 to 1e12 and consistent (last and
    short at most hwm), sums at most 2^53, buckets inside what is held, times and spans
    bounded: else ValueError, and the caller reseeds."""
    state = ledger_state()
    edit(state)
    with pytest.raises(ValueError, match="malformed ledger state"):
        Ledger.from_state(state, lookback=HOUR)


@pytest.mark.parametrize(
    "value", [-7722.0, -1, float("nan"), float("-inf"), 1e308, 10**400, 2**53 + 2, True, "5"]
)
@pytest.mark.parametrize("which", ["total", "down"])
def test_implausible_router_totals_are_refused(which: str, value: Any) -> None:
    """A counter total below 0, not finite, beyond 2^53 or not a number is refused, for
    resuming and for the floor of a reseed alike: a negative total restored as it was
    read 7,722 below the API."""
    state = router_state()
    state[which][0][1] = value
    for totals in (True, False):
        with pytest.raises(ValueError, match="malformed router state"):
            SeriesRouter(("product_type",)).restore(state, totals=totals)


def test_the_bounds_themselves_are_plausible() -> None:
    """A total of 2^53 and 0 are accepted (as integers too), and so is a held bucket of
    1e12 (a total may pass the bound of one bucket: it adds many up)."""
    state = router_state()
    state["total"][0][1] = 2**53
    state["down"][0][1] = 0
    router = SeriesRouter(("product_type",))
    router.restore(state)
    assert router.total[TTS] == 2.0**53
    ledger = ledger_state()
    ledger["live"] = entries(ledger)
    ledger["live"][0][2:] = [10**12, 0, 10**12]
    ledger["cycle"] = [[["text_to_speech"], 5e12]]
    assert Ledger.from_state(ledger, lookback=HOUR).cycle[TTS] == 5e12


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def _record(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    info = warning = _record


def test_workspaces_the_config_does_not_name_are_not_loaded(tmp_path: Path) -> None:
    """Records of unknown workspaces are ignored with one log line naming them, and not
    written back: what the exporter holds is bounded by its config, not by the file."""
    path = tmp_path / "state.json"
    record = {"base_url": "https://api.example.test", "credits": {}}
    workspaces = {"main": record, **{f"ghost{i:03d}": record for i in range(500)}}
    path.write_text(
        json.dumps({"format": FORMAT, "version": STATE_VERSION, "workspaces": workspaces})
    )
    log = Log()
    store = StateStore(path, log)
    store.load(["main", "other"])
    assert store.get("main") == record
    assert store.get("ghost000") is None
    warnings = [fields for event, fields in log.lines if "does not name" in event]
    assert len(warnings) == 1
    assert warnings[0]["count"] == 500
    assert len(warnings[0]["workspaces"]) == 10
    store.put("other", "credits", {})
    assert store.flush()
    assert set(json.loads(path.read_text())["workspaces"]) == {"main", "other"}
