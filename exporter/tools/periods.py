"""What ``report`` and ``backfill`` share: a period of usage, read politely.

Both subcommands take human dates, turn them into a minute-aligned period and read
it through the exporter's own client, config and key handling, so a key that works
for the exporter works here. The reads follow the exporter's rules: every window
starts and ends on a bucket boundary (how the API fills a partial bucket is
undocumented), hour buckets where whole hours fit, minute buckets at the edges, a
week or a day per request at most, and one request at a time, because ElevenLabs
limits concurrency and a one-off report must not starve the running exporter.

Long reads report progress on stderr, never on stdout, which carries only the
report or the OpenMetrics file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO, TypeVar

import httpx

from exporter.api.backoff import RetryPolicy
from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError
from exporter.api.keys import KeyProvider
from exporter.api.parse import Labels, UsageRow
from exporter.config import (
    FILTER_OPERATIONS,
    GROUP_BY_VALUES,
    Config,
    KeySource,
    Secret,
    WorkspaceConfig,
    load_config,
)
from exporter.core.cycle import Cycle, months_before
from exporter.core.windows import Window, coarse_windows

T = TypeVar("T")

MINUTE = 60
HOUR = 3600
# The usage endpoint refuses start times before 2020-01-01T00:00:00Z.
API_EARLIEST = 1_577_836_800
# Fewer requests than this finish quickly enough that progress lines would be noise.
PROGRESS_MIN_WINDOWS = 5
WHEN_FORMS = (
    "an RFC 3339 date or time (2026-11-01, 2026-11-01T09:00:00Z), a time ago "
    "(7d, 24h, 90m), today, yesterday, cycle or now"
)
_AGO_RE = re.compile(r"(?:\d+[smhdw])+")
_AGO_PART_RE = re.compile(r"(\d+)([smhdw])")
_AGO_UNITS = {"s": 1, "m": MINUTE, "h": HOUR, "d": 86400, "w": 604800}
_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


class UsageError(Exception):
    """A bad flag value: one line naming the flag; the command exits 2."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(f"flag error: {flag}: {message}")
        self.flag = flag


@dataclass(frozen=True)
class When:
    """A parsed ``--since``/``--until``: a fixed time, or the billing-cycle start.

    The cycle start differs per workspace and needs the subscription, so ``cycle``
    is resolved only once that has been read (see :meth:`resolve`).
    """

    flag: str
    text: str
    at: float | None  # Unix seconds; None for "cycle"

    @property
    def needs_cycle(self) -> bool:
        """Whether the subscription is needed to know this time."""
        return self.at is None

    def resolve(self, cycle_start: int | None) -> float:
        """The time in Unix seconds, given the workspace's cycle start if needed."""
        if self.at is not None:
            return self.at
        if cycle_start is None:
            raise UsageError(self.flag, "cycle needs the subscription, which could not be read")
        return float(cycle_start)


def parse_when(text: str, flag: str, now: float) -> When:
    """Read a human date; times are UTC and a date alone means its midnight.

    Relative times count back from ``now``; ``cycle`` is left for :meth:`When.resolve`.
    """
    value = text.strip().lower()
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "now":
        return When(flag, text, now)
    if value == "today":
        return When(flag, text, midnight.timestamp())
    if value == "yesterday":
        return When(flag, text, (midnight - timedelta(days=1)).timestamp())
    if value == "cycle":
        return When(flag, text, None)
    if _AGO_RE.fullmatch(value):
        seconds = sum(int(n) * _AGO_UNITS[u] for n, u in _AGO_PART_RE.findall(value))
        return When(flag, text, now - seconds)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(flag, f"cannot read {text!r}: use {WHEN_FORMS}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return When(flag, text, parsed.timestamp())


def floor_to(value: float, step: int) -> int:
    """``value`` rounded down to a multiple of ``step`` seconds."""
    return int(value // step) * step


def check_period(start: int, end: int, since: When, until: When) -> None:
    """Refuse an empty period or one the usage API cannot answer."""
    if start < API_EARLIEST:
        raise UsageError(since.flag, "the usage API has no data before 2020-01-01")
    if start >= end:
        raise UsageError(
            since.flag,
            f"{iso(start)} ({since.text}) is not before {until.flag} {iso(end)} ({until.text})",
        )


def parse_group_by(text: str, flag: str = "--group-by") -> tuple[str, ...]:
    """A comma-separated list of usage dimensions, checked against the API's list."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise UsageError(flag, "name at least one dimension, e.g. product_type")
    for name in names:
        if name not in GROUP_BY_VALUES:
            raise UsageError(
                flag,
                f"unknown dimension {name!r}; choose from {', '.join(sorted(GROUP_BY_VALUES))}",
            )
    if len(set(names)) != len(names):
        raise UsageError(flag, f"a dimension is named twice in {text!r}")
    return names


def parse_filter(text: str, flag: str = "--filter") -> dict[str, Any]:
    """``column=op:v1,v2`` (or ``column=v1,v2`` for ``in``) as a ColumnFilter object.

    Values stay strings: the API takes them as they are, and an id that looks like a
    number must not turn into one.
    """
    column, sep, rest = text.partition("=")
    column = column.strip()
    if not sep or not _NAME_RE.fullmatch(column):
        raise UsageError(flag, f"expected column=op:value[,value...], got {text!r}")
    operation, colon, values_text = rest.partition(":")
    if not colon or operation not in FILTER_OPERATIONS:
        operation, values_text = "in", rest
    values = [v.strip() for v in values_text.split(",") if v.strip()]
    if not values:
        raise UsageError(flag, f"no values in {text!r}")
    return {"column": column, "operation": operation, "values": values}


def describe_filter(item: Mapping[str, Any]) -> str:
    """A filter as the user wrote it, for headers."""
    return f"{item['column']} {item['operation']} {','.join(str(v) for v in item['values'])}"


def iso(seconds: float) -> str:
    """RFC 3339 UTC, to the second."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_time(seconds: float) -> str:
    """UTC to the minute, for people."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def human_span(seconds: int) -> str:
    """A length of time like ``3d 4h`` or ``90m`` → ``1h 30m``."""
    parts = []
    for unit, size in (("d", 86400), ("h", HOUR), ("m", MINUTE)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0m"


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


# Config and clients -----------------------------------------------------------------


@contextmanager
def workspaces(
    config_file: Path | None,
    name: str | None,
    *,
    demo: bool,
    environ: Mapping[str, str] | None = None,
) -> Iterator[tuple[Config, tuple[WorkspaceConfig, ...]]]:
    """The config and the workspaces to read, as the exporter would load them.

    With ``demo`` one workspace named ``default`` reads the embedded simulator,
    which runs for as long as the context is open. Raises ConfigError for a bad
    config and UsageError for an unknown ``--workspace``.
    """
    config = load_config(config_file, os.environ if environ is None else environ, demo=demo)
    simulator = None
    if demo:
        from exporter.simulator import SimState, Simulator

        simulator = Simulator(SimState()).start()
        demo_ws = WorkspaceConfig("default", Secret("demo"), KeySource("demo"), simulator.url)
        config = dataclasses.replace(config, workspaces=(demo_ws,))
    try:
        chosen = config.workspaces
        if name is not None:
            chosen = tuple(ws for ws in config.workspaces if ws.name == name)
            if not chosen:
                known = ", ".join(ws.name for ws in config.workspaces)
                raise UsageError(
                    "--workspace", f"no workspace named {name!r} (configured: {known})"
                )
        yield config, chosen
    finally:
        if simulator is not None:
            simulator.stop()


def http_client(config: Config) -> httpx.AsyncClient:
    """The HTTP client for one run: the configured timeout, one connection is enough."""
    return httpx.AsyncClient(timeout=config.request_timeout)


def make_client(ws: WorkspaceConfig, http: httpx.AsyncClient, config: Config) -> ElevenLabsClient:
    """A client for one workspace, retrying transient failures as the exporter does."""
    return ElevenLabsClient(
        workspace=ws.name,
        base_url=ws.base_url,
        api_key=KeyProvider(ws),
        http=http,
        retry=RetryPolicy(max_retries=config.max_retries),
    )


def describe_error(ws: WorkspaceConfig, err: ApiError, secrets: Sequence[str] = ()) -> str:
    """One line naming the workspace, the reason and what the API said; never the key."""
    text = f"workspace {ws.name}: {err.reason}: {err}"
    if err.reason in ("network", "timeout"):
        text += f" (base URL {ws.base_url})"
    elif err.reason == "auth":
        text += f" (check the API key, {ws.key_source.describe()})"
    for secret in (ws.api_key.reveal(), *secrets):
        if secret:
            text = text.replace(secret, "********")
    return " ".join(text.split())


# Reading ----------------------------------------------------------------------------


async def for_each_workspace(
    config: Config,
    chosen: Sequence[WorkspaceConfig],
    read: Callable[[ElevenLabsClient, WorkspaceConfig], Awaitable[T]],
    err: TextIO,
    *,
    stop_on_error: bool,
) -> tuple[list[T], bool]:
    """Run ``read`` for each workspace in turn, each with its own client.

    An API error becomes one line on ``err`` naming the workspace and the reason (never
    the key). With ``stop_on_error`` the first one ends the run; otherwise the other
    workspaces are still read. Returns the results and whether anything failed.
    """
    results: list[T] = []
    failed = False
    async with http_client(config) as http:
        for ws in chosen:
            try:
                results.append(await read(make_client(ws, http, config), ws))
            except ApiError as exc:
                print(f"error: {describe_error(ws, exc, config.secrets())}", file=err)
                failed = True
                if stop_on_error:
                    break
    return results, failed


class Progress:
    """``fetched 3/31 windows`` on stderr while a long read runs.

    On a terminal one line is rewritten in place and erased at the end, so the
    report that follows stands alone; otherwise (logs, CI) a line is written each
    time another tenth of the windows is done. Reads of fewer than
    ``PROGRESS_MIN_WINDOWS`` requests print nothing.
    """

    def __init__(self, stream: TextIO, what: str, total: int, *, quiet: bool = False) -> None:
        self._stream = stream
        self._what = what
        self._total = total
        self._done = 0
        self._shown_tenths = 0
        self._enabled = not quiet and total >= PROGRESS_MIN_WINDOWS
        isatty = getattr(stream, "isatty", None)
        self._tty = bool(isatty()) if callable(isatty) else False

    def advance(self) -> None:
        """One more window read."""
        self._done += 1
        if not self._enabled:
            return
        line = f"{self._what}: fetched {self._done}/{self._total} windows"
        if self._tty:
            self._stream.write("\r\x1b[K" + line)
            self._stream.flush()
            return
        tenths = self._done * 10 // self._total
        if tenths > self._shown_tenths:
            self._shown_tenths = tenths
            self._stream.write(line + "\n")
            self._stream.flush()

    def finish(self) -> None:
        """Leave the terminal line clean."""
        if self._enabled and self._tty:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


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
