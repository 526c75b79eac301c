"""A period of usage, planned as bounded requests and read politely.

The reads follow the exporter's rules: every window starts and ends on a bucket
boundary (how the API fills a partial bucket is undocumented), hour buckets where
whole hours fit, minute buckets at the edges, a week or a day per request at most,
and one request at a time. Rows are handed on as they arrive, never piled up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError
from exporter.api.parse import Labels, Subscription, UsageRow
from exporter.core.cycle import Cycle, cycle_of, months_before
from exporter.core.windows import Window, coarse_windows
from exporter.tools.dates import MINUTE, When, floor_to
from exporter.tools.progress import Progress


def cycle_starts(cycle: Cycle, start: float, end: float) -> list[int]:
    """Every cycle start in ``[start, end]``, plus the last one before ``start``.

    Earlier cycles are inferred from the current one, a whole number of calendar
    months at a time counted back from its reset, as the subscription only tells
    about the current cycle. Each start is rounded down to the minute, like the
    exporter's ledger does.
    """
    reset = datetime.fromtimestamp(cycle.reset, UTC)
    first = datetime.fromtimestamp(cycle.start, UTC)
    months = max(1, (reset.year * 12 + reset.month) - (first.year * 12 + first.month))
    out: list[int] = []
    k = 1
    while True:
        moment = floor_to(months_before(reset, k * months).timestamp(), MINUTE)
        if moment <= end:
            out.append(moment)
        if moment <= start:
            break
        k += 1
    if cycle.reset <= end:
        # A period reaching past the current reset (never for past periods).
        out.append(floor_to(cycle.reset, MINUTE))
    return sorted(set(out))


def period_windows(start: int, end: int, breaks: Sequence[int] = ()) -> list[Window]:
    """``[start, end)`` as bounded requests: hour buckets where whole hours fit (a week
    per request), minute buckets at ragged edges and around ``breaks``."""
    return coarse_windows(start, end, MINUTE, breaks)


async def read_windows(
    client: ElevenLabsClient,
    windows: Sequence[Window],
    sink: Callable[[UsageRow], None],
    *,
    group_by: Sequence[str] = ("product_type",),
    filters: Sequence[Mapping[str, Any]] = (),
    progress: Progress | None = None,
) -> None:
    """Read every window in order, one request at a time, handing each row to ``sink``.

    Rows are not kept: a month of minute buckets passes through without piling up.
    """
    try:
        for window in windows:
            rows = await client.usage(window.start, window.end, window.interval, group_by, filters)
            for row in rows:
                sink(row)
            if progress is not None:
                progress.advance()
    finally:
        if progress is not None:
            progress.finish()


async def period_totals(
    client: ElevenLabsClient,
    start: int,
    end: int,
    *,
    group_by: Sequence[str] = ("product_type",),
    filters: Sequence[Mapping[str, Any]] = (),
    progress_stream: TextIO | None = None,
    quiet: bool = False,
) -> dict[Labels, float]:
    """Credits per label set in ``[start, end)`` (minute-aligned Unix seconds)."""
    windows = period_windows(start, end)
    progress = None
    if progress_stream is not None:
        progress = Progress(
            progress_stream, f"workspace {client.workspace}", len(windows), quiet=quiet
        )
    totals: dict[Labels, float] = {}

    def add(row: UsageRow) -> None:
        totals[row.labels] = totals.get(row.labels, 0.0) + row.credits

    await read_windows(client, windows, add, group_by=group_by, filters=filters, progress=progress)
    return totals


async def read_plan(
    client: ElevenLabsClient,
    since: When,
    until: When,
    now: float,
    err: TextIO,
    *,
    left_out: str,
) -> tuple[Subscription | None, Cycle | None]:
    """The workspace's subscription and current cycle, if the key may read them.

    A key may read usage without being allowed to read the plan: then, unless the
    period itself starts or ends at the cycle, the command goes on without it, after
    a warning on ``err`` saying what is ``left_out``. Any other error is raised.
    """
    try:
        sub = await client.subscription()
    except ApiError as exc:
        if exc.reason != "permission" or since.needs_cycle or until.needs_cycle:
            raise
        print(
            f"warning: workspace {client.workspace}: cannot read the subscription ({exc}); "
            f"{left_out}",
            file=err,
        )
        return None, None
    return sub, cycle_of(sub, now)
