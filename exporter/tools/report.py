"""``elevenlabs-exporter report``: a period's credits, by product or any breakdown.

The question behind it comes before any dashboard exists, or from someone without
Grafana: "where did last week's credits go, and how much of the plan is left?".
It reads the period straight from the usage endpoint (so it needs no Prometheus and
no history), sums it per label set and prints it next to the plan's limits, as a
table for people, or CSV and JSON for scripts.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from exporter.api.client import ElevenLabsClient
from exporter.api.parse import Labels, Subscription
from exporter.config import Config, WorkspaceConfig
from exporter.core.cycle import Cycle
from exporter.flags import FlagParser
from exporter.tools.breakdown import describe_filter, parse_filter, parse_group_by
from exporter.tools.command import Invocation, add_run_flags, add_source_flags, run_command
from exporter.tools.dates import (
    MINUTE,
    WHEN_FORMS,
    When,
    floor_to,
    human_span,
    human_time,
    iso,
    parse_when,
    resolve_period,
)
from exporter.tools.periods import period_totals, read_plan

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Section:
    """One workspace's report: the period, its rows and the plan beside them."""

    workspace: str
    start: int
    end: int
    group_by: tuple[str, ...]
    filters: tuple[Mapping[str, Any], ...]
    rows: tuple[tuple[Labels, float], ...]  # by credits, largest first
    subscription: Subscription | None
    cycle: Cycle | None

    @property
    def total(self) -> float:
        """Credits of every row together."""
        return sum(credits for _, credits in self.rows)

    def share(self, credits: float) -> float:
        """A row's share of the total, in percent."""
        total = self.total
        return credits / total * 100 if total else 0.0


def sorted_rows(totals: Mapping[Labels, float]) -> tuple[tuple[Labels, float], ...]:
    """Label sets with usage, largest first (ties by label), zeros left out."""
    return tuple(sorted(((k, v) for k, v in totals.items() if v), key=lambda kv: (-kv[1], kv[0])))


def plain_number(value: float) -> str:
    """A number for machines: no separators, no float noise, no ``.0`` on integers."""
    value = round(value, 6) + 0.0
    return str(int(value)) if value.is_integer() else repr(value)


def _decimals(values: Sequence[float]) -> int:
    """The fewest decimals (up to 3) that show every value exactly."""
    for places in range(4):
        if all(abs(round(v, places) - v) < 1e-9 for v in values):
            return places
    return 3


# Table ------------------------------------------------------------------------------


def render_table(section: Section) -> str:
    """The report for people: a header block with the plan, then the aligned table."""
    credits = [c for _, c in section.rows] + [section.total]
    places = _decimals(credits)

    def amount(value: float) -> str:
        return f"{value:,.{places}f}"

    header: list[tuple[str, str]] = [
        ("Workspace", section.workspace),
        (
            "Period",
            f"{human_time(section.start)} to {human_time(section.end)} "
            f"({human_span(section.end - section.start)})",
        ),
        ("Grouped by", ", ".join(section.group_by)),
    ]
    if section.filters:
        header.append(("Filters", "; ".join(describe_filter(f) for f in section.filters)))
    sub = section.subscription
    if sub is None:
        header.append(("Plan", "unknown (the subscription could not be read)"))
    else:
        header.append(
            ("Plan", f"{sub.tier} ({sub.status}), {sub.credits_limit:,.0f} credits per cycle")
        )
        used = sub.credits_used / sub.credits_limit * 100 if sub.credits_limit else 0.0
        cycle = f"{sub.credits_used:,.0f} credits used ({used:.1f}%)"
        if section.cycle is not None:
            cycle += f" since {human_time(section.cycle.start)}"
        if sub.reset_at is not None:
            cycle += f", resets {human_time(sub.reset_at)}"
        header.append(("This cycle", cycle))
    key_width = max(len(k) for k, _ in header)
    lines = [f"{k:<{key_width}}  {v}" for k, v in header]
    lines.append("")

    titles = [*section.group_by, "credits", "share"]
    body = [
        [*labels, amount(value), f"{section.share(value):.1f}%"] for labels, value in section.rows
    ]
    total = ["total", *([""] * (len(section.group_by) - 1)), amount(section.total)]
    total.append("100.0%" if section.total else "0.0%")
    widths = [max(len(row[i]) for row in [titles, *body, total]) for i in range(len(titles))]
    labels_count = len(section.group_by)

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i < labels_count else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines.append(line(titles))
    lines.append(rule)
    if body:
        lines.extend(line(row) for row in body)
    else:
        lines.append("(no usage in this period)")
    lines.append(rule)
    lines.append(line(total))
    return "\n".join(lines) + "\n"


# JSON -------------------------------------------------------------------------------


def subscription_object(sub: Subscription | None, cycle: Cycle | None) -> dict[str, Any] | None:
    """The plan beside the numbers, as JSON-ready data."""
    if sub is None:
        return None
    used = sub.credits_used / sub.credits_limit * 100 if sub.credits_limit else 0.0
    return {
        "tier": sub.tier,
        "status": sub.status,
        "credits_used": sub.credits_used,
        "credits_limit": sub.credits_limit,
        "used_percent": round(used, 4),
        "cycle_start": iso(cycle.start) if cycle is not None else None,
        "resets_at": iso(sub.reset_at) if sub.reset_at is not None else None,
        "billing_period": sub.billing_period,
    }


def json_object(section: Section) -> dict[str, Any]:
    """One workspace's report as a JSON object."""
    return {
        "workspace": section.workspace,
        "period": {
            "since": iso(section.start),
            "until": iso(section.end),
            "since_unix": section.start,
            "until_unix": section.end,
        },
        "group_by": list(section.group_by),
        "filters": [dict(f) for f in section.filters],
        "rows": [
            {
                **dict(zip(section.group_by, labels, strict=True)),
                "credits": round(value, 6),
                "share_percent": round(section.share(value), 4),
            }
            for labels, value in section.rows
        ],
        "total": round(section.total, 6),
        "subscription": subscription_object(section.subscription, section.cycle),
    }


# Output -----------------------------------------------------------------------------


class Writer:
    """Writes each workspace's section as it is read, in the chosen format.

    Table: one block per workspace, separated by a blank line. CSV: one table for all
    workspaces, with a ``workspace`` column, one header line and no total row or plan
    (a second section would break CSV readers; JSON has both). JSON: one object per
    workspace per line (JSON Lines; with one workspace, a single JSON document).
    """

    def __init__(self, fmt: str, out: TextIO, group_by: Sequence[str]) -> None:
        self._fmt = fmt
        self._out = out
        self._group_by = list(group_by)
        self._count = 0
        self._csv = csv.writer(out, lineterminator="\n")

    def write(self, section: Section) -> None:
        """Print one workspace's report."""
        if self._fmt == "table":
            if self._count:
                self._out.write("\n")
            self._out.write(render_table(section))
        elif self._fmt == "csv":
            if not self._count:
                self._csv.writerow(["workspace", *self._group_by, "credits", "share_percent"])
            for labels, value in section.rows:
                share = plain_number(round(section.share(value), 4))
                self._csv.writerow([section.workspace, *labels, plain_number(value), share])
        else:
            self._out.write(json.dumps(json_object(section)) + "\n")
        self._out.flush()
        self._count += 1


# Command ----------------------------------------------------------------------------


def build_parser() -> FlagParser:
    """The report's flags."""
    parser = FlagParser(
        prog="elevenlabs-exporter report",
        description="Credits used in a period, summed per product (or any breakdown), "
        "next to the plan's limit, read from the ElevenLabs usage API with the "
        "exporter's config.",
        epilog=f"WHEN is {WHEN_FORMS}; times are UTC and rounded down to the minute. "
        "Formats: table (for people: the plan, then the rows with their share and a "
        "total); csv (one header line, then one row per workspace and label set with "
        "plain numbers; it has no total row and no plan, use json for those); json "
        "(one object per workspace per line with period, group_by, rows, total and "
        "subscription). Exit status: 0 ok, 1 an API or network error (one line on "
        "stderr per failed workspace), 2 a bad flag or config.",
    )
    add_source_flags(
        parser,
        workspace_help="report only this workspace (default: all, one each)",
        since_help="start of the period",
        until_default="now",
        until_help="end of the period (default: now)",
    )
    parser.add_argument(
        "--group-by",
        dest="group_by",
        default="product_type",
        metavar="DIM[,DIM...]",
        help="dimensions to sum by, e.g. product_type,voice_id (default: product_type)",
    )
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COLUMN=OP:V1,V2",
        help="keep only matching usage, e.g. product_type=in:text_to_speech,dubbing or "
        "request_source=neq:web (OP: in, not_in, eq, neq, lt, le, gt, ge; COLUMN=V1,V2 "
        "means in); repeat to combine",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    add_run_flags(parser, quiet_help="no progress lines on stderr")
    return parser


async def read_section(
    client: ElevenLabsClient,
    ws: WorkspaceConfig,
    *,
    since: When,
    until: When,
    group_by: tuple[str, ...],
    filters: tuple[Mapping[str, Any], ...],
    now: float,
    err: TextIO,
    quiet: bool,
) -> Section:
    """Read one workspace's subscription and period totals."""
    sub, cycle = await read_plan(client, since, until, now, err, left_out="the plan is left out")
    cycle_start = floor_to(cycle.start, MINUTE) if cycle is not None else None
    start, end = resolve_period(since, until, MINUTE, cycle_start, latest=now)
    totals = await period_totals(
        client,
        start,
        end,
        group_by=group_by,
        filters=filters,
        progress_stream=err,
        quiet=quiet,
    )
    return Section(ws.name, start, end, group_by, filters, sorted_rows(totals), sub, cycle)


def _run(run: Invocation) -> int:
    """The report once its flags are parsed: check them all, then read and print."""
    args, now, err = run.args, run.now, run.err
    since = parse_when(args.since, "--since", now)
    until = parse_when(args.until, "--until", now)
    group_by = parse_group_by(args.group_by)
    filters = tuple(parse_filter(f) for f in args.filter)
    if not since.needs_cycle and not until.needs_cycle:
        resolve_period(since, until, MINUTE, latest=now)
    writer = Writer(args.format, run.out, group_by)

    async def read(client: ElevenLabsClient, ws: WorkspaceConfig, _: Config) -> None:
        section = await read_section(
            client,
            ws,
            since=since,
            until=until,
            group_by=group_by,
            filters=filters,
            now=now,
            err=err,
            quiet=args.quiet,
        )
        writer.write(section)

    _, failed = run.read_workspaces(read, stop_on_error=False)
    return 1 if failed else 0


def main(
    argv: list[str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``report``; returns the exit status (0, 1 on API errors, 2 on bad flags)."""
    return run_command(build_parser(), argv, _run, clock=clock, stdout=stdout, stderr=stderr)
