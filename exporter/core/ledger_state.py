"""The ledger's persisted form: what the state file holds for one ledger, and its checks.

Kept apart from the ledger's arithmetic so that the format (and the validation of a
file that may be damaged or hostile) is read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.api.parse import Labels
from exporter.core.bounds import MAX_BUCKET, MAX_LOOKBACK, MAX_TOTAL, amount, whole
from exporter.core.history import History
from exporter.core.ledger import Ledger
from exporter.core.live import Live, Series


def ledger_to_state(ledger: Ledger) -> dict[str, Any]:
    """Everything needed to resume exactly, as JSON-ready data (no totals: the router
    persists those)."""
    return {
        "anchor": ledger.anchor,
        "bucket": ledger.bucket,
        "lookback": ledger.lookback,
        "cycle_start": ledger.cycle_start,
        "label_names": list(ledger.label_names),
        "covered_until": ledger.covered_until,
        "settled_until": ledger.settled_until,
        "cycle_pending": ledger.cycle_pending,
        "cycle": [[list(k), v] for k, v in sorted(ledger.cycle.items())],
        "history": ledger.history.to_state() if ledger.history is not None else None,
        "history_gap": list(ledger.history_gap) if ledger.history_gap is not None else None,
        "live": _live_state(ledger._live),
    }


def _live_state(live: Live) -> dict[str, Any]:
    """The held buckets as one row of numbers per label set and field (integral values
    as integers: most credits are)."""

    def compact(values: Any) -> list[float | int]:
        return [int(v) if v.is_integer() else v for v in values]

    return {
        "base": live.base,
        "series": [
            [list(labels), *(compact(field) for field in _fields(s))]
            for labels, s in sorted(live.series.items())
        ],
    }


def _fields(series: Series) -> tuple[list[float], list[float], list[float]]:
    """The hwm, short and last of every bucket of one series."""
    hwms, shorts, lasts = [], [], []
    for i in range(len(series.last)):
        hwm, short, last = series.get(i)
        hwms.append(hwm)
        shorts.append(short)
        lasts.append(last)
    return hwms, shorts, lasts


def ledger_from_state(
    data: Mapping[str, Any],
    *,
    lookback: int,
    read_current: bool = False,
    keep_history: bool = False,
) -> Ledger:
    """Rebuild a ledger; raise ValueError on anything malformed or implausible.

    A state file is checked by value (:mod:`exporter.core.bounds`), since whatever it
    holds becomes counters: times within bounds, the bucket from a second to a week;
    ``settled_until <= covered_until``, with the anchor at or before what is held
    (or, for a ledger keeping the window history, up to a lookback after it), no
    more than twice the ledger's lookback apart; every held bucket between them and
    on the grid; every amount finite and from 0 to what one bucket may hold,
    consistent (``last <= hwm``, ``short <= hwm``); the cycle's sums bounded.

    A state without a window history (written before it was kept) resumes with the
    history to be read again from the API.
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
        bucket = whole(data["bucket"], 1, MAX_BUCKET)
        written_lookback = whole(data["lookback"], bucket, MAX_LOOKBACK)
        ledger = Ledger(
            anchor=whole(data["anchor"]),
            bucket=bucket,
            lookback=lookback,
            cycle_start=None if cycle_start is None else whole(cycle_start),
            label_names=names,
            cycle={labels_of(k): amount(v, MAX_TOTAL) for k, v in data["cycle"]},
            covered_until=whole(data["covered_until"]),
            settled_until=whole(data["settled_until"]),
            cycle_pending=pending,
            read_current=read_current,
            keep_history=keep_history,
        )
        if keep_history and data.get("history") is not None:
            ledger.history = History.from_state(data["history"])
            gap = data.get("history_gap")
            ledger.history_gap = None if gap is None else (whole(gap[0]), whole(gap[1]))
        live = data["live"]
        if isinstance(live, list):  # one entry per bucket and label set (version 1)
            for bucket, labels, hwm, short, last in live:
                _put(ledger, whole(bucket), labels_of(labels), hwm, short, last)
        else:
            if whole(live["base"]) != ledger.settled_until:
                raise ValueError("held buckets do not start where the ledger folded")
            for labels, hwms, shorts, lasts in live["series"]:
                if not len(hwms) == len(shorts) == len(lasts):
                    raise ValueError("fields of different lengths")
                key = labels_of(labels)
                for i, (hwm, short, last) in enumerate(zip(hwms, shorts, lasts, strict=True)):
                    _put(ledger, ledger._live.time(i), key, hwm, short, last)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed ledger state: {err}") from None
    # A ledger keeping the window history also holds the lookback before its anchor.
    early = ledger.anchor - ledger.settled_until  # held before the anchor
    if early > (written_lookback + ledger.bucket if keep_history else 0):
        raise ValueError("malformed ledger state: inconsistent coverage")
    if ledger.settled_until > ledger.covered_until:
        raise ValueError("malformed ledger state: inconsistent coverage")
    # Between two full re-reads nothing folds: up to a lookback more is held.
    if ledger.covered_until - ledger.settled_until > 2 * written_lookback + ledger.bucket:
        raise ValueError("malformed ledger state: more held than its lookback")
    return ledger


def _put(ledger: Ledger, bucket: int, labels: Labels, hwm: Any, short: Any, last: Any) -> None:
    """Hold one bucket's values, refusing what lies outside the held range or does not
    add up."""
    if not ledger.settled_until <= bucket < ledger.covered_until:
        raise ValueError(f"held bucket {bucket} outside what the ledger covers")
    if (bucket - ledger.settled_until) % ledger.bucket:
        raise ValueError(f"held bucket {bucket} off the bucket grid")
    values = amount(hwm), amount(short), amount(last)
    if values[2] > values[0] or values[1] > values[0]:
        raise ValueError(f"entry inconsistent: hwm {hwm!r}, short {short!r}, last {last!r}")
    series = ledger._live.of(labels, bucket + ledger.bucket)
    i = ledger._live.index(bucket)
    series.put(i, *values)
