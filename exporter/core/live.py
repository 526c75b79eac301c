"""The buckets a ledger still re-reads, kept compactly: three arrays per label set.

For every (bucket, label set) inside the lookback the ledger needs the highest value
seen (``hwm``), the largest shortfall below it (``short``) and the value last seen
(``last``). An object per bucket and label set costs about a hundred bytes each and
thousands per workspace; here each label set holds one array of the last values,
indexed by bucket from ``base`` (the first bucket still held), eight bytes a value.
Usage only grows until it settles, so ``hwm`` is almost always ``last`` and
``short`` 0: only the buckets revised downward keep the two in a small dict. A
bucket never seen with usage reads as all zeros, exactly as if it were absent.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from exporter.api.parse import Labels


class Series:
    """hwm, short and last of one label set, per bucket from the ledger's base."""

    __slots__ = ("_odd", "last")

    def __init__(self) -> None:
        self.last: array[float] = array("d")
        self._odd: dict[int, tuple[float, float]] = {}  # index -> (hwm, short), where
        # the bucket was revised down (hwm above last, or a shortfall recorded)

    def reach(self, length: int) -> None:
        """Make room for ``length`` buckets (new ones are zero)."""
        missing = length - len(self.last)
        if missing > 0:
            self.last.extend(array("d", bytes(8 * missing)))

    def get(self, i: int) -> tuple[float, float, float]:
        """``(hwm, short, last)`` of the bucket at ``i``."""
        last = self.last[i]
        odd = self._odd.get(i)
        return (odd[0], odd[1], last) if odd is not None else (last, 0.0, last)

    def put(self, i: int, hwm: float, short: float, last: float) -> None:
        """Set the bucket at ``i``."""
        self.last[i] = last
        if hwm != last or short:
            self._odd[i] = (hwm, short)
        else:
            self._odd.pop(i, None)

    def held(self, i: int) -> bool:
        """Whether the bucket at ``i`` ever held usage."""
        return bool(self.last[i]) or i in self._odd

    def drop(self, count: int) -> None:
        """Forget the first ``count`` buckets."""
        del self.last[:count]
        if self._odd:
            self._odd = {i - count: v for i, v in self._odd.items() if i >= count}

    def empty(self) -> bool:
        """Whether no bucket holds usage."""
        return not self._odd and not any(self.last)


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
            for i in range(min(count, len(series.last))):
                if series.held(i):
                    yield self.time(i), labels, series.last[i]
            series.drop(count)
            if series.empty():
                del self.series[labels]
        self.base += count * self.bucket

    def entries(self) -> Iterator[tuple[int, Labels, float, float, float]]:
        """Every (bucket, labels, hwm, short, last) that ever held usage."""
        for labels, series in self.series.items():
            for i in range(len(series.last)):
                if series.held(i):
                    yield (self.time(i), labels, *series.get(i))

    def __len__(self) -> int:
        """How many (bucket, label set) entries hold usage."""
        return sum(1 for _ in self.entries())
