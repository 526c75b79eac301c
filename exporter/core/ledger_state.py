"""The ledger's persisted form: what the state file holds for one ledger, and its checks.

Kept apart from the ledger's arithmetic so that the format (and the validation of a
file that may be damaged or hostile) is read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.api.parse import Labels
from exporter.core.history import History
from exporter.core.ledger import Ledger
from exporter.core.live import Live


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
            [list(labels), compact(s.hwm), compact(s.short), compact(s.last)]
            for labels, s in sorted(live.series.items())
        ],
    }


def ledger_from_state(
    data: Mapping[str, Any],
    *,
    lookback: int,
    read_current: bool = False,
    keep_history: bool = False,
) -> Ledger:
    """Rebuild a ledger; raise ValueError on anything malformed.

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
        ledger = Ledger(
            anchor=_int(data["anchor"]),
            bucket=_int(data["bucket"]),
            lookback=lookback,
            cycle_start=None if cycle_start is None else _int(cycle_start),
            label_names=names,
            cycle={labels_of(k): _number(v) for k, v in data["cycle"]},
            covered_until=_int(data["covered_until"]),
            settled_until=_int(data["settled_until"]),
            cycle_pending=bool(data["cycle_pending"]),
            read_current=read_current,
            keep_history=keep_history,
        )
        if keep_history and data.get("history") is not None:
            ledger.history = History.from_state(data["history"])
            gap = data.get("history_gap")
            ledger.history_gap = None if gap is None else (_int(gap[0]), _int(gap[1]))
        live = data["live"]
        if isinstance(live, list):  # one entry per bucket and label set (version 1)
            for bucket, labels, hwm, short, last in live:
                _put(ledger, _int(bucket), labels_of(labels), hwm, short, last)
        else:
            if _int(live["base"]) != ledger.settled_until:
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
    before_anchor = ledger.settled_until < ledger.anchor and not keep_history
    if before_anchor or ledger.settled_until > ledger.covered_until:
        raise ValueError("malformed ledger state: inconsistent coverage")
    return ledger


def _put(ledger: Ledger, bucket: int, labels: Labels, hwm: Any, short: Any, last: Any) -> None:
    """Hold one bucket's values, refusing what lies outside the held range."""
    if not ledger.settled_until <= bucket < max(ledger.covered_until, ledger.settled_until + 1):
        raise ValueError(f"held bucket {bucket} outside what the ledger covers")
    if bucket % ledger.bucket:
        raise ValueError(f"held bucket {bucket} off the bucket grid")
    series = ledger._live.of(labels, bucket + ledger.bucket)
    i = ledger._live.index(bucket)
    series.hwm[i], series.short[i], series.last[i] = _number(hwm), _number(short), _number(last)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)
