"""The buckets a ledger still re-reads, kept compactly: three arrays per label set.

For every (bucket, label set) inside the lookback the ledger needs the highest value
seen (``hwm``), the largest shortfall below it (``short``) and the value last seen
(``last``). An object per bucket and label set costs about a hundred bytes each and
thousands per workspace; here each label set holds one array of floats per field,
indexed by bucket from ``base`` (the first bucket still held), eight bytes a value.
A bucket never seen with usage reads as all zeros, exactly as if it were absent.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from exporter.api.parse import Labels


class Series:
    """hwm, short and last of one label set, per bucket from the ledger's base."""

    __slots__ = ("hwm", "last", "short")

    def __init__(self) -> None:
        self.hwm: array[float] = array("d")
        self.short: array[float] = array("d")
        self.last: array[float] = array("d")

    def reach(self, length: int) -> None:
        """Make room for ``length`` buckets (new ones are zero)."""
        missing = length - len(self.hwm)
        if missing > 0:
            zeros = array("d", bytes(8 * missing))
            self.hwm.extend(zeros)
            self.short.extend(zeros)
            self.last.extend(zeros)

    def drop(self, count: int) -> None:
        """Forget the first ``count`` buckets."""
        del self.hwm[:count]
        del self.short[:count]
        del self.last[:count]


class Live:
    """Every held bucket of every label set, from ``base`` (a bucket start) on."""

    def __init__(self, bucket: int, base: int) -> None:
        self.bucket = bucket
        self.base = base
        self.series: dict[Labels, Series] = {}

    def index(self, bucket: int) -> int:
        """Where ``bucket`` sits in the arrays."""
        return (bucket - self.base) // self.bucket

    def time(self, index: int) -> int:
        """The bucket start at ``index``."""
        return self.base + index * self.bucket

    def of(self, labels: Labels, until: int) -> Series:
        """The series of ``labels``, long enough to hold buckets up to ``until``."""
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = Series()
        series.reach(self.index(until - 1) + 1)
        return series

    def rebase(self, base: int) -> Iterator[tuple[int, Labels, float]]:
        """Drop the buckets before ``base``, yielding each dropped (bucket, labels,
        last) that held usage; label sets left without any usage are forgotten."""
        count = self.index(base)
        if count <= 0:
            return
        for labels, series in list(self.series.items()):
            for i, value in enumerate(series.last[:count]):
                if value or series.hwm[i]:
                    yield self.time(i), labels, value
            series.drop(count)
            if not any(series.hwm):
                del self.series[labels]
        self.base += count * self.bucket

    def entries(self) -> Iterator[tuple[int, Labels, float, float, float]]:
        """Every (bucket, labels, hwm, short, last) that ever held usage."""
        for labels, series in self.series.items():
            for i, hwm in enumerate(series.hwm):
                if hwm or series.last[i]:
                    yield self.time(i), labels, hwm, series.short[i], series.last[i]

    def __len__(self) -> int:
        """How many (bucket, label set) entries hold usage."""
        return sum(1 for _ in self.entries())
