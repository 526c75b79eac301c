"""Hourly usage history of the last week, per product, for the window gauges.

The alerting rules judge spend by when it happened: ``elevenlabs_window_credits_used``
holds what the API attributes to the last 5m ... 7d by bucket time. Inside the
lookback the ledger still holds every bucket; what it folds away (and settled usage
read in coarse buckets) is kept here, summed per UTC hour, for as long as the widest
window needs: one compact array of floats per product, about 170 numbers a week,
however many buckets or breakdown values went into it.

Values older than the fold point never change again (the lookback's assumption), so
an hour's sum is final once the ledger has folded all of it. The history knows from
which hour on it is complete (``start``): a restart without it, or a window wider
than the time since the anchor, is filled by reading the API again.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.core.bounds import MAX_TOTAL, amount

HOUR = 3600
WEEK = 7 * 86400
# The windows of elevenlabs_window_credits_used: label value to seconds.
WINDOWS = {"5m": 300, "30m": 1800, "1h": HOUR, "6h": 6 * HOUR, "1d": 86400, "7d": WEEK}
# Hours kept: a week, plus the hour a week-long window starts in, plus the hour that
# is still being folded.
SPAN = WEEK // HOUR + 2


def first_hour(now: float) -> int:
    """The earliest hour the widest window at ``now`` can reach."""
    return int(now) - int(now) % HOUR - (SPAN - 1) * HOUR


@dataclass
class History:
    """Hour sums per product from ``start`` (an hour) on; see the module docstring."""

    start: int
    hours: dict[str, array[float]] = field(default_factory=dict)

    @classmethod
    def reaching(cls, now: float) -> History:
        """An empty history starting where the widest window at ``now`` reaches."""
        return cls(start=first_hour(now))

    def add(self, bucket: int, product: str, credits: float) -> None:
        """Count usage of ``bucket`` (any bucket start; hour sums are by its hour)."""
        hour = bucket - bucket % HOUR
        if hour < self.start:
            return
        series = self.hours.get(product)
        if series is None:
            series = self.hours[product] = array("d")
        index = (hour - self.start) // HOUR
        if index >= len(series):
            series.extend([0.0] * (index + 1 - len(series)))
        series[index] += credits

    def trim(self, now: float) -> None:
        """Forget hours no window reaches any more."""
        drop = (first_hour(now) - self.start) // HOUR
        if drop <= 0:
            return
        for product, series in list(self.hours.items()):
            del series[:drop]
            if not series or not any(series):
                del self.hours[product]
        self.start += drop * HOUR

    def since(self, moment: float) -> dict[str, float]:
        """Per product, the hours starting at or after the hour nearest ``moment``:
        exact to the hour, off by at most half an hour at the window's start."""
        first = int(moment + HOUR / 2) // HOUR * HOUR
        skip = max(0, (first - self.start) // HOUR)
        return {product: sum(series[skip:]) for product, series in self.hours.items()}

    # Persistence ---------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "start": self.start,
            "hours": {p: list(series) for p, series in sorted(self.hours.items())},
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> History:
        """Rebuild a history; raise ValueError on anything malformed."""
        try:
            start = data["start"]
            raw = data["hours"]
            if isinstance(start, bool) or not isinstance(start, int) or start % HOUR:
                raise ValueError("start is not an hour")
            if not isinstance(raw, dict) or len(raw) > 10_000:
                raise ValueError("hours is not a mapping")
            hours = {str(p): array("d", _numbers(values)) for p, values in raw.items()}
        except (KeyError, TypeError) as err:
            raise ValueError(f"malformed history: {err}") from None
        if any(len(series) > SPAN + 1 for series in hours.values()):
            raise ValueError("malformed history: longer than a week")
        return cls(start, hours)


def _numbers(values: Iterable[Any]) -> list[float]:
    """An hour's sums, each plausible (see :mod:`exporter.core.bounds`)."""
    try:
        return [amount(value, MAX_TOTAL) for value in values]
    except ValueError as err:
        raise ValueError(f"malformed history: {err}") from None
