"""Request windows: bucket-aligned time ranges, small enough for one request each.

How the usage API fills a window that starts or ends mid-bucket is undocumented, so
every window starts and ends on bucket boundaries. Fine (minute) buckets are read
where buckets are still revisable or at ragged edges, hour buckets where whole hours
of settled history fit; no request asks for more than a day of minute buckets or a
week of hour buckets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

COARSE_SECONDS = 3600  # hour buckets for settled history
MAX_FINE_BUCKETS = 1440  # one request asks for at most a day of minute buckets
MAX_COARSE_BUCKETS = 168  # and at most a week of hour buckets


@dataclass(frozen=True, slots=True)
class Window:
    """One request's time range ``[start, end)`` and bucket width, in seconds."""

    start: int
    end: int
    interval: int


def floor_to(value: float, step: int) -> int:
    """``value`` rounded down to a multiple of ``step``."""
    return int(value // step) * step


def ceil_to(value: int, step: int) -> int:
    """``value`` rounded up to a multiple of ``step``."""
    return -((-value) // step) * step


def fine_windows(
    start: int, end: int, bucket: int, max_buckets: int = MAX_FINE_BUCKETS
) -> list[Window]:
    """``[start, end)`` in bucket-wide windows of at most ``max_buckets`` buckets."""
    out, chunk = [], bucket * max_buckets
    while start < end:
        stop = min(end, start + chunk)
        out.append(Window(start, stop, bucket))
        start = stop
    return out


def coarse_windows(
    start: int,
    end: int,
    bucket: int,
    breaks: Iterable[int] = (),
    coarse: int = COARSE_SECONDS,
    max_coarse: int = MAX_COARSE_BUCKETS,
) -> list[Window]:
    """``[start, end)`` in hour buckets where hours fit whole, fine buckets at the edges.

    ``breaks`` are times no coarse bucket may straddle (the cycle start), so every
    bucket lies wholly on one side of them.
    """
    points = sorted({start, end, *(b for b in breaks if start < b < end)})
    out: list[Window] = []
    for lo, hi in pairwise(points):
        lo_c, hi_c = ceil_to(lo, coarse), floor_to(hi, coarse)
        if lo_c >= hi_c:
            out += fine_windows(lo, hi, bucket)
            continue
        out += fine_windows(lo, lo_c, bucket)
        out += fine_windows(lo_c, hi_c, coarse, max_coarse)
        out += fine_windows(hi_c, hi, bucket)
    return out
