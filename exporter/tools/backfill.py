"""``elevenlabs-exporter backfill``: past usage as an OpenMetrics file for promtool.

A new install has no history: the dashboards start empty and the burn-rate alerts
know nothing of last month. The usage API does know, so this reads a past period
and writes the series the live exporter would have exported over it, for
``promtool tsdb create-blocks-from openmetrics``.

The series are the live ones, values included, so they join what Prometheus
scrapes: ``elevenlabs_credits_used_total`` counts from the exporter's anchor (the
billing-cycle start, restarting at 0 at each cycle start, or ``count_from``) and
``elevenlabs_cycle_credits_used`` from each cycle start, with ``workspace``,
``product_type`` and the ``--label`` labels (``job``, ``instance``). A counter that
continued from an arbitrary 0 at ``--since`` would meet the live counter at an
arbitrary value, and ``increase()`` across the join would be wrong; anchored like
the live one it is exact, and the cycle resets are resets ``rate()`` and
``increase()`` already handle.

promtool needs: ``# TYPE`` per family with ``_total`` samples for counters,
timestamps in seconds, each series' samples in time order and together, families
not interleaved, and ``# EOF``. Steps are summed in memory as compact float arrays
(8 bytes per step and series) and the file is written one series at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError
from exporter.api.parse import Labels, UsageRow
from exporter.config import Config, ConfigError, WorkspaceConfig
from exporter.core.cycle import Cycle, cycle_of
from exporter.core.windows import Window, coarse_windows, fine_windows
from exporter.tools.periods import (
    HOUR,
    MINUTE,
    WHEN_FORMS,
    Progress,
    UsageError,
    When,
    check_period,
    cycle_starts,
    floor_to,
    for_each_workspace,
    human_span,
    human_time,
    iso,
    parse_when,
    read_windows,
    workspaces,
)

# Prometheus keeps the last ~3h in its head block; backfilled blocks must not overlap it
# ("it is not safe to backfill data from the last 3 hours", Prometheus storage docs).
HEAD_BLOCK = 3 * HOUR
DEFAULT_JOB = "elevenlabs-exporter"
MAX_STEP = 86400
COUNTER = "elevenlabs_credits_used"
GAUGE = "elevenlabs_cycle_credits_used"
COUNTER_HELP = (
    "Credits used since the anchor (count_from; by default the start of the billing "
    "cycle, where it restarts from 0), per product. Backfilled from the usage API."
)
GAUGE_HELP = (
    "Credits used since the billing cycle began, per product. Backfilled from the usage API."
)
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_STEP_RE = re.compile(r"(?:\d+[mhd])+")
_STEP_PART_RE = re.compile(r"(\d+)([mhd])")
_STEP_UNITS = {"m": MINUTE, "h": HOUR, "d": 86400}
_RESERVED_LABELS = ("workspace", "product_type")


def parse_step(text: str) -> int:
    """``1m``, ``5m``, ``1h``...: whole minutes dividing an hour, or whole hours up to a day.

    Samples then fall on round times and a step never straddles an hour bucket.
    """
    value = text.strip().lower()
    if not _STEP_RE.fullmatch(value):
        raise UsageError("--step", f"expected a duration like 1m, 5m or 1h, got {text!r}")
    step = sum(int(n) * _STEP_UNITS[u] for n, u in _STEP_PART_RE.findall(value))
    fits = (0 < step < HOUR and HOUR % step == 0) or (HOUR <= step <= MAX_STEP and step % HOUR == 0)
    if not fits:
        raise UsageError(
            "--step", f"{text!r}: use minutes that divide an hour or whole hours up to 1d"
        )
    return step


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """``--label name=value`` pairs; ``job`` defaults to the documented job name."""
    labels: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not _LABEL_NAME_RE.fullmatch(name) or name.startswith("__"):
            raise UsageError(
                "--label", f"expected name=value with a Prometheus label name, got {item!r}"
            )
        if name in _RESERVED_LABELS:
            raise UsageError("--label", f"{name} is set by the exporter")
        if name in labels:
            raise UsageError("--label", f"{name} given twice")
        labels[name] = value
    labels.setdefault("job", DEFAULT_JOB)
    return labels


def escape_label(value: str) -> str:
    """A label value inside double quotes, as OpenMetrics escapes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value without float noise (credits come in fractions like 0.5)."""
    value = round(value, 6) + 0.0
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


# Accumulating -----------------------------------------------------------------------


@dataclass
class Anchors:
    """Times a cumulative series restarts from 0 at: cycle starts, or count_from.

    ``before`` is the last one at or before ``--since`` (None: the series is 0
    until the first of ``inside``); ``inside`` are those later, up to ``--until``.
    """

    before: int | None
    inside: tuple[int, ...]

    @classmethod
    def of(cls, times: Iterable[int], since: int, until: int) -> Anchors:
        """Split anchor times around the period."""
        ordered = sorted(set(times))
        before = max((t for t in ordered if t <= since), default=None)
        return cls(before, tuple(t for t in ordered if since < t <= until))


@dataclass
class Accumulator:
    """One workspace's credits per step of ``[since, until)``, and what anchors need.

    ``steps[labels][k]`` holds the credits of ``[since + k*step, since + (k+1)*step)``;
    ``pre[a]`` the credits from an anchor ``a`` before the period up to ``since``;
    ``partial[b]`` the credits of the step containing an anchor ``b`` that come
    before ``b``. A bucket the API reports as negative is not subtracted: counters
    never go down (the live exporter treats usage it reads as settled the same way).
    """

    since: int
    until: int
    step: int
    pre_anchors: tuple[int, ...] = ()
    inside_anchors: tuple[int, ...] = ()
    steps: dict[Labels, array[float]] = field(default_factory=dict)
    pre: dict[int, dict[Labels, float]] = field(default_factory=dict)
    partial: dict[int, dict[Labels, float]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Steps in the period."""
        return (self.until - self.since) // self.step

    def add(self, row: UsageRow) -> None:
        """A row read from ``[since, until)``."""
        if row.credits <= 0 or not self.since <= row.bucket < self.until:
            return
        series = self.steps.get(row.labels)
        if series is None:
            series = self.steps[row.labels] = array("d", bytes(8 * self.count))
        series[(row.bucket - self.since) // self.step] += row.credits
        for anchor in self.inside_anchors:
            if floor_to(anchor, self.step) <= row.bucket < anchor:
                target = self.partial.setdefault(anchor, {})
                target[row.labels] = target.get(row.labels, 0.0) + row.credits

    def add_pre(self, row: UsageRow) -> None:
        """A row read from before ``since``, for the anchors there."""
        if row.credits <= 0 or row.bucket >= self.since:
            return
        for anchor in self.pre_anchors:
            if row.bucket >= anchor:
                target = self.pre.setdefault(anchor, {})
                target[row.labels] = target.get(row.labels, 0.0) + row.credits

    def label_sets(self, anchors: Anchors) -> list[Labels]:
        """Every label set with usage the series of ``anchors`` can show."""
        found = set(self.steps)
        if anchors.before is not None:
            found.update(self.pre.get(anchors.before, {}))
        for anchor in anchors.inside:
            found.update(self.partial.get(anchor, {}))
        return sorted(found)

    def samples(self, labels: Labels, anchors: Anchors) -> Iterator[tuple[int, float]]:
        """``(time, credits since the anchor)`` at every step, ``--since`` to ``--until``
        inclusive, plus one at each anchor inside the period that is off the grid.

        At an anchor's own time the series still shows the whole of the ending cycle
        and restarts with the next sample: ``increase()`` then loses nothing to the
        reset (a 0 at the anchor would drop the credits of the step before it).
        """
        steps = self.steps.get(labels)
        base: float | None = None  # value = running total - base; None: 0 until an anchor
        if anchors.before is not None:
            base = -self.pre.get(anchors.before, {}).get(labels, 0.0)
        record_at: dict[int, list[int]] = {}
        for anchor in anchors.inside:
            index = (floor_to(anchor, self.step) - self.since) // self.step
            record_at.setdefault(index, []).append(anchor)
        at_anchor: dict[int, float] = {}  # running total at each anchor's time
        pending = list(anchors.inside)
        total = 0.0

        def since_anchor(value: float) -> float:
            return 0.0 if base is None else max(value - base, 0.0)

        for k in range(self.count + 1):
            at = self.since + k * self.step
            if k and steps is not None:
                total += steps[k - 1]
            for anchor in record_at.get(k, ()):
                at_anchor[anchor] = total + self.partial.get(anchor, {}).get(labels, 0.0)
            while pending and pending[0] < at:
                anchor = pending.pop(0)
                if (anchor - self.since) % self.step:
                    yield anchor, since_anchor(at_anchor[anchor])
                base = at_anchor[anchor]
            yield at, since_anchor(total)


@dataclass
class WorkspaceHistory:
    """What one workspace contributes to the file."""

    workspace: str
    accumulator: Accumulator
    counter: Anchors
    cycle: Anchors | None  # None: the cycle gauge is left out


# Reading ----------------------------------------------------------------------------


def main_windows(since: int, until: int, step: int, breaks: Sequence[int]) -> list[Window]:
    """Hour buckets (a week per request) when steps are hours, else minute buckets (a
    day per request); minute buckets around ``breaks`` so no bucket straddles one."""
    if step >= HOUR:
        return coarse_windows(since, until, MINUTE, breaks)
    return fine_windows(since, until, MINUTE)


async def read_history(
    client: ElevenLabsClient,
    ws: WorkspaceConfig,
    config: Config,
    *,
    since: When,
    until: When,
    step: int,
    now: float,
    cycle_gauge: bool,
    err: TextIO,
    quiet: bool,
) -> WorkspaceHistory:
    """Read the subscription (for the cycles), then the period and what precedes it
    back to the anchor in force at ``--since``."""
    cycle: Cycle | None = None
    try:
        cycle = cycle_of(await client.subscription(), now)
    except ApiError as exc:
        if exc.reason != "permission" or since.needs_cycle or until.needs_cycle:
            raise
        what = "counts from --since" if config.count_from is None else "counts from count_from"
        print(
            f"warning: workspace {ws.name}: cannot read the subscription ({exc}); the "
            f"counter {what} and {GAUGE} is left out",
            file=err,
        )
    cycle_start = floor_to(cycle.start, MINUTE) if cycle is not None else None
    start = floor_to(since.resolve(cycle_start), step)
    end = floor_to(until.resolve(cycle_start), step)
    check_period(start, end, since, until)
    check_recent(end, until, now)

    starts = cycle_starts(cycle, start, end) if cycle is not None else []
    starts = [floor_to(t, config.bucket) for t in starts]
    if config.count_from is not None:
        counter = Anchors.of([floor_to(config.count_from.timestamp(), config.bucket)], start, end)
    elif cycle is not None:
        counter = Anchors.of(starts, start, end)
    else:
        counter = Anchors(start, ())
    gauge: Anchors | None = None
    if cycle_gauge and cycle is not None:
        if cycle.known:
            gauge = Anchors.of(starts, start, end)
        else:
            print(
                f"note: workspace {ws.name}: the subscription gives no reset time, so the "
                f"billing cycles are unknown and {GAUGE} is left out",
                file=err,
            )
    if ws.group_by != ("product_type",):
        print(
            f"note: workspace {ws.name}: backfill writes product_type only; the exporter's "
            f"extra dimensions ({', '.join(ws.group_by[1:])}) are not backfilled",
            file=err,
        )

    anchor_sets = [a for a in (counter, gauge) if a is not None]
    before = sorted({a.before for a in anchor_sets if a.before is not None and a.before < start})
    inside = sorted({t for a in anchor_sets for t in a.inside})
    acc = Accumulator(start, end, step, tuple(before), tuple(inside))
    pre_windows = coarse_windows(before[0], start, MINUTE, before) if before else []
    windows = main_windows(start, end, step, inside)
    progress = Progress(err, f"workspace {ws.name}", len(pre_windows) + len(windows), quiet=quiet)
    filters: Sequence[Mapping[str, Any]] = ws.filters
    await read_windows(client, pre_windows, acc.add_pre, filters=filters, progress=progress)
    await read_windows(client, windows, acc.add, filters=filters, progress=progress)
    return WorkspaceHistory(ws.name, acc, counter, gauge)


def check_recent(end: int, until: When, now: float) -> None:
    """Refuse to write samples Prometheus may still hold in its head block."""
    if end > now - HEAD_BLOCK:
        raise UsageError(
            until.flag,
            f"{iso(end)} is later than 3 hours ago; Prometheus still holds that time in "
            "its head block, which backfilled blocks must not overlap: backfill up to "
            "when the exporter started (the default is 3h ago)",
        )


# Writing ----------------------------------------------------------------------------


def write_openmetrics(
    out: TextIO, histories: Sequence[WorkspaceHistory], extra: Mapping[str, str]
) -> tuple[int, int]:
    """Write both families, one series at a time; returns (series, samples)."""
    extra_text = "".join(f',{k}="{escape_label(v)}"' for k, v in sorted(extra.items()))
    series = samples = 0

    def family(name: str, kind: str, help_text: str, sample_name: str, gauge: bool) -> None:
        nonlocal series, samples
        out.write(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        for history in histories:
            anchors = history.cycle if gauge else history.counter
            if anchors is None:
                continue
            acc = history.accumulator
            for labels in acc.label_sets(anchors):
                prefix = (
                    f'{sample_name}{{workspace="{escape_label(history.workspace)}",'
                    f'product_type="{escape_label(labels[0])}"{extra_text}}} '
                )
                series += 1
                for at, value in acc.samples(labels, anchors):
                    out.write(f"{prefix}{format_value(value)} {at}\n")
                    samples += 1

    family(COUNTER, "counter", COUNTER_HELP, COUNTER + "_total", gauge=False)
    if any(h.cycle is not None for h in histories):
        family(GAUGE, "gauge", GAUGE_HELP, GAUGE, gauge=True)
    out.write("# EOF\n")
    return series, samples


# Command ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The backfill's flags."""
    parser = argparse.ArgumentParser(
        prog="elevenlabs-exporter backfill",
        description="Write a past period's usage as the exporter's series in OpenMetrics, "
        "for `promtool tsdb create-blocks-from openmetrics FILE DATADIR`.",
        epilog=f"WHEN is {WHEN_FORMS}; times are UTC and rounded down to the step. "
        f"{COUNTER}_total counts from the exporter's anchor like the live series (by "
        "default it restarts from 0 at each billing-cycle start), so rate() and "
        "increase() are exact over the backfilled range and across the join with the "
        f"scraped series; {GAUGE} counts from each cycle start. Pass the job and instance "
        "labels Prometheus gives the scraped series. --until must be at least 3 hours "
        "ago (Prometheus's head block); backfill up to when the exporter started. Exit "
        "status: 0 ok, 1 an API or network error (nothing is written), 2 a bad flag or "
        "config.",
    )
    parser.add_argument(
        "--config.file", dest="config_file", type=Path, default=None, help="the exporter's config"
    )
    parser.add_argument(
        "--workspace", default=None, help="only this workspace (default: all of them)"
    )
    parser.add_argument("--since", required=True, metavar="WHEN", help="start of the history")
    parser.add_argument(
        "--until", default="3h", metavar="WHEN", help="end of the history (default: 3h ago)"
    )
    parser.add_argument(
        "--step",
        default="1m",
        help="time between samples: 1m (default, like a 60s scrape), 5m, 1h, ...",
    )
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a label on every series, e.g. --label instance=host:9142 "
        f"(job defaults to {DEFAULT_JOB}); repeat for more",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=None, help="write here instead of stdout"
    )
    parser.add_argument(
        "--no-cycle-gauge",
        dest="cycle_gauge",
        action="store_false",
        help=f"leave out {GAUGE}",
    )
    parser.add_argument(
        "--demo", action="store_true", help="read the built-in simulated API (no key needed)"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress or summary on stderr"
    )
    return parser


@contextlib.contextmanager
def _destination(path: Path | None, stdout: TextIO) -> Iterator[TextIO]:
    """stdout, or a file that appears complete or not at all."""
    if path is None:
        yield stdout
        return
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            yield handle
        partial.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def main(
    argv: list[str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``backfill``; returns the exit status (0, 1 on API errors, 2 on bad flags)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    now = clock()
    try:
        since = parse_when(args.since, "--since", now)
        until = parse_when(args.until, "--until", now)
        step = parse_step(args.step)
        extra = parse_labels(args.label)
        if not since.needs_cycle and not until.needs_cycle:
            start, end = floor_to(since.resolve(None), step), floor_to(until.resolve(None), step)
            check_period(start, end, since, until)
            check_recent(end, until, now)
        if "instance" not in extra:
            print(
                "note: no --label instance=...: the backfilled series will not continue the "
                "scraped ones (sums over instances still add up)",
                file=err,
            )
        with workspaces(args.config_file, args.workspace, demo=args.demo) as (config, chosen):

            async def read(client: ElevenLabsClient, ws: WorkspaceConfig) -> WorkspaceHistory:
                return await read_history(
                    client,
                    ws,
                    config,
                    since=since,
                    until=until,
                    step=step,
                    now=now,
                    cycle_gauge=args.cycle_gauge,
                    err=err,
                    quiet=args.quiet,
                )

            histories, failed = asyncio.run(
                for_each_workspace(config, chosen, read, err, stop_on_error=True)
            )
        if failed:
            return 1
        with _destination(args.output, out) as handle:
            series, samples = write_openmetrics(handle, histories, extra)
            handle.flush()
        if not args.quiet and histories:
            acc = histories[0].accumulator
            where = str(args.output) if args.output else "stdout"
            print(
                f"wrote {samples} samples of {series} series, {human_time(acc.since)} to "
                f"{human_time(acc.until)} ({human_span(acc.until - acc.since)}) every "
                f"{human_span(step)}, to {where}",
                file=err,
            )
        return 0
    except (UsageError, ConfigError) as exc:
        print(exc, file=err)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=err)
        return 1
    except KeyboardInterrupt:
        return 130
