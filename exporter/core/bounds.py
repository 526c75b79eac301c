"""What a plausible persisted number is: the bounds the state file is checked against.

Whatever a state file holds becomes counters, so it is checked by value, not only by
type. Times are whole seconds from 1970 up to the year 3058, bucket widths up to a
week, lookbacks up to a year. One bucket's amount is bounded like an answer's
(:data:`~exporter.api.parse.MAX_VALUE`); sums over buckets (the cycle gauge, an hour
of history, the exported counters) may pass that bound, and are bounded at 2^53,
where a float stops counting whole credits exactly, far beyond any workspace.
"""

from __future__ import annotations

from typing import Any

from exporter.api.parse import MAX_VALUE

MAX_TOTAL = float(2**53)
MAX_TIME = 2**35
MAX_BUCKET = 7 * 86400
MAX_LOOKBACK = 366 * 86400


def whole(value: Any, low: int = 0, high: int = MAX_TIME) -> int:
    """An integer from ``low`` to ``high`` (a time, by default), or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range ({low} to {high})")
    return value


def amount(value: Any, bound: float = MAX_VALUE) -> float:
    """A plausible amount: finite, from 0 to ``bound`` (by default what one bucket of an
    answer may hold), or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int) and not 0 <= value <= bound:
        raise ValueError(f"{value} is not a plausible amount")  # float() could overflow
    number = float(value)
    if not 0 <= number <= bound:  # NaN fails too
        raise ValueError(f"{number!r} is not a plausible amount")
    return number
