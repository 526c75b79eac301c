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

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from exporter.api.client import ElevenLabsClient
from exporter.config import Config, WorkspaceConfig
from exporter.flags import FlagParser, UsageError
from exporter.metrics.render import EOF_LINE, help_line, label_set, sample_line, type_line
from exporter.tools.command import Invocation, add_run_flags, add_source_flags, run_command
from exporter.tools.dates import (
    DAY,
    HOUR,
    MINUTE,
    WHEN_FORMS,
    human_span,
    human_time,
    parse_when,
    resolve_period,
)
from exporter.tools.history import COUNTER, GAUGE, WorkspaceHistory, check_recent, read_history

DEFAULT_JOB = "elevenlabs-exporter"
MAX_STEP = DAY
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
_STEP_UNITS = {"m": MINUTE, "h": HOUR, "d": DAY}
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


def format_value(value: float) -> str:
    """A sample value without float noise (credits come in fractions like 0.5)."""
    value = round(value, 6) + 0.0
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def write_openmetrics(
    out: TextIO, histories: Sequence[WorkspaceHistory], extra: Mapping[str, str]
) -> tuple[int, int]:
    """Write both families, one series at a time; returns (series, samples).

    Lines are made by the exposition's own primitives, so labels are escaped exactly
    as on ``/metrics``; each series' label set is formatted once, not per sample.
    """
    extra_sorted = dict(sorted(extra.items()))
    series = samples = 0

    def family(name: str, kind: str, help_text: str, sample_name: str, gauge: bool) -> None:
        nonlocal series, samples
        out.write(help_line(name, help_text, openmetrics=True) + type_line(name, kind))
        for history in histories:
            anchors = history.cycle if gauge else history.counter
            if anchors is None:
                continue
            acc = history.accumulator
            for labels in acc.label_sets(anchors):
                text = label_set(
                    {"workspace": history.workspace, "product_type": labels[0], **extra_sorted}
                )
                series += 1
                for at, value in acc.samples(labels, anchors):
                    out.write(sample_line(sample_name, text, format_value(value), at))
                    samples += 1

    family(COUNTER, "counter", COUNTER_HELP, COUNTER + "_total", gauge=False)
    if any(h.cycle is not None for h in histories):
        family(GAUGE, "gauge", GAUGE_HELP, GAUGE, gauge=True)
    out.write(EOF_LINE)
    return series, samples


# Command ----------------------------------------------------------------------------


def build_parser() -> FlagParser:
    """The backfill's flags."""
    parser = FlagParser(
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
    add_source_flags(
        parser,
        workspace_help="only this workspace (default: all of them)",
        since_help="start of the history",
        until_default="3h",
        until_help="end of the history (default: 3h ago)",
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
    add_run_flags(parser, quiet_help="no progress or summary on stderr")
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


def _run(run: Invocation) -> int:
    """The backfill once its flags are parsed: check them all, read every workspace,
    and only then write the file, so a failure writes nothing."""
    args, now, err = run.args, run.now, run.err
    since = parse_when(args.since, "--since", now)
    until = parse_when(args.until, "--until", now)
    step = parse_step(args.step)
    extra = parse_labels(args.label)
    if not since.needs_cycle and not until.needs_cycle:
        _, end = resolve_period(since, until, step)
        check_recent(end, until, now)
    noted = "instance" in extra

    async def read(
        client: ElevenLabsClient, ws: WorkspaceConfig, config: Config
    ) -> WorkspaceHistory:
        nonlocal noted
        if not noted:  # once the config has loaded: a config error stays one line
            noted = True
            print(
                "note: no --label instance=...: the backfilled series will not continue "
                "the scraped ones (sums over instances still add up)",
                file=err,
            )
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

    histories, failed = run.read_workspaces(read, stop_on_error=True)
    if failed:
        return 1
    try:
        with _destination(args.output, run.out) as handle:
            series, samples = write_openmetrics(handle, histories, extra)
            handle.flush()
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror}", file=err)
        return 1
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


def main(
    argv: list[str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``backfill``; returns the exit status (0, 1 on API errors, 2 on bad flags)."""
    return run_command(build_parser(), argv, _run, clock=clock, stdout=stdout, stderr=stderr)
