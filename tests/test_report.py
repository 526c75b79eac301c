"""``elevenlabs-exporter report`` against the simulated API on loopback.

The simulator's clock is frozen and the report is given the same clock, so every
period is known exactly; the expected numbers come from the simulator's ground truth
(credits are multiples of 0.5, so sums are exact in floats).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

from exporter.simulator import Fault, SimState, Simulator, cycle_bounds
from exporter.tools import report

# 2026-11-20T15:37:00Z: a weekday afternoon, 13 days into the simulated cycle.
NOW = 1_795_189_020.0
SECRET = "sk_report_test_0123456789abcdef"  # noqa: S105 - a fake key, to prove it never prints


def ts(text: str) -> int:
    """Unix seconds of an RFC 3339 UTC time."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=NOW)).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def sim(shared_sim: Simulator) -> Simulator:
    """The module's simulator, back to its normal state with an empty request log."""
    state = shared_sim.state
    with state.lock:
        state.requests.clear()
        state.faults.clear()
        state.api_key = "demo"
        state.scenario = "normal"
    return shared_sim


def write_config(tmp_path: Path, workspaces: list[dict[str, Any]]) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"workspaces": workspaces}), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    return write_config(tmp_path, [{"name": "main", "api_key": "demo", "base_url": sim.url}])


class FakeTerminal(io.StringIO):
    """A captured stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run(config: Path, *args: str, stderr: io.StringIO | None = None) -> tuple[int, str, str]:
    """The report in-process with the simulator's clock: (status, stdout, stderr)."""
    out, err = io.StringIO(), stderr if stderr is not None else io.StringIO()
    code = report.main(
        ["--config.file", str(config), *args], clock=lambda: NOW, stdout=out, stderr=err
    )
    return code, out.getvalue(), err.getvalue()


def nonzero(values: dict[Any, float]) -> dict[Any, float]:
    return {k: v for k, v in values.items() if v}


def table_rows(text: str) -> tuple[dict[tuple[str, ...], tuple[float, str]], list[str]]:
    """Rows of a table report as labels -> (credits, share), and the total row's cells."""
    body = text.split("\n\n", 1)[1].splitlines()
    rows: dict[tuple[str, ...], tuple[float, str]] = {}
    total: list[str] = []
    for line in body[1:]:
        if not line or set(line) <= {"-", " "}:
            continue
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == "total":
            total = cells
            continue
        *labels, credits, share = cells
        rows[tuple(labels)] = (float(credits.replace(",", "")), share)
    return rows, total


def test_table_by_product_equals_the_ground_truth(sim: Simulator, config: Path) -> None:
    """The table lists every product's credits for a period with ragged edges exactly as
    the API's ground truth, largest first, with shares and a total row, under a header
    with the plan's tier, limit, credits used this cycle and reset time."""
    code, out, err = run(config, "--since", "2026-11-17T09:42:00Z", "--until", "now")
    assert code == 0, err
    truth = nonzero(sim.state.truth(ts("2026-11-17T09:42:00Z"), int(NOW)))
    rows, total = table_rows(out)
    assert {k[0]: v[0] for k, v in rows.items()} == truth
    credits = [v[0] for v in rows.values()]
    assert credits == sorted(credits, reverse=True)
    whole = sum(truth.values())
    for (product,), (_, share) in rows.items():
        assert share == f"{truth[product] / whole * 100:.1f}%"
    assert total[0] == "total"
    assert float(total[1].replace(",", "")) == whole
    assert total[2] == "100.0%"
    subscription = sim.state.subscription()
    _, reset = cycle_bounds(NOW)
    assert "Workspace   main" in out
    assert "Period      2026-11-17 09:42 UTC to 2026-11-20 15:37 UTC (3d 5h 55m)" in out
    assert "Plan        pro (active), 1,000,000 credits per cycle" in out
    assert f"This cycle  {subscription['character_count']:,} credits used" in out
    assert "resets 2026-12-07 09:13 UTC" in out
    assert datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%d %H:%M") == "2026-12-07 09:13"


def test_csv_by_product_and_voice_equals_the_ground_truth(sim: Simulator, config: Path) -> None:
    """CSV grouped by product and voice has one header line and one row per label set
    whose credits equal the ground truth per label set, with plain numbers."""
    since, until = "2026-11-19T22:17:00Z", "2026-11-20T03:05:00Z"
    code, out, err = run(
        config,
        "--since",
        since,
        "--until",
        until,
        "--group-by",
        "product_type,voice_id",
        "--format",
        "csv",
    )
    assert code == 0, err
    lines = list(csv.reader(io.StringIO(out)))
    assert lines[0] == ["workspace", "product_type", "voice_id", "credits", "share_percent"]
    got = {(r[1], r[2]): float(r[3]) for r in lines[1:]}
    assert all(r[0] == "main" for r in lines[1:])
    assert all("," not in r[3] and re.fullmatch(r"[0-9.]+", r[4]) for r in lines[1:])
    truth = sim.state.truth_by(ts(since), ts(until), ["product_type", "voice_id"])
    assert got == truth
    assert len(got) > 20
    assert sum(float(r[4]) for r in lines[1:]) == pytest.approx(100, abs=0.01)


def test_json_with_a_filter_equals_the_filtered_ground_truth(sim: Simulator, config: Path) -> None:
    """JSON with a product filter holds only the filtered usage, per product and source,
    exactly; its period, group_by, filters, total and subscription object say what was
    asked and what the plan is."""
    since, until = "2026-11-18T12:30:00Z", "2026-11-20T12:00:00Z"
    code, out, err = run(
        config,
        "--since",
        since,
        "--until",
        until,
        "--group-by",
        "product_type,request_source",
        "--filter",
        "product_type=in:text_to_speech,dubbing",
        "--format",
        "json",
    )
    assert code == 0, err
    assert out.count("\n") == 1
    doc = json.loads(out)
    truth = {
        k: v
        for k, v in sim.state.truth_by(
            ts(since), ts(until), ["product_type", "request_source"]
        ).items()
        if k[0] in ("text_to_speech", "dubbing")
    }
    got = {(r["product_type"], r["request_source"]): r["credits"] for r in doc["rows"]}
    assert got == truth
    assert doc["total"] == sum(truth.values())
    assert doc["workspace"] == "main"
    assert doc["period"] == {
        "since": since,
        "until": until,
        "since_unix": ts(since),
        "until_unix": ts(until),
    }
    assert doc["group_by"] == ["product_type", "request_source"]
    assert doc["filters"] == [
        {"column": "product_type", "operation": "in", "values": ["text_to_speech", "dubbing"]}
    ]
    subscription = sim.state.subscription()
    assert doc["subscription"] == {
        "tier": "pro",
        "status": "active",
        "credits_used": subscription["character_count"],
        "credits_limit": 1_000_000,
        "used_percent": round(subscription["character_count"] / 10_000, 4),
        "cycle_start": "2026-11-07T09:13:27Z",
        "resets_at": "2026-12-07T09:13:27Z",
        "billing_period": "monthly_period",
    }
    bodies = [r["body"] for r in sim.state.requests if r["endpoint"] == "usage"]
    assert bodies
    assert all(b["filters"] == doc["filters"] for b in bodies)


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("7d", "2026-11-13T15:37:00Z"),
        ("24h", "2026-11-19T15:37:00Z"),
        ("90m", "2026-11-20T14:07:00Z"),
        ("1d12h", "2026-11-19T03:37:00Z"),
        ("today", "2026-11-20T00:00:00Z"),
        ("yesterday", "2026-11-19T00:00:00Z"),
        ("cycle", "2026-11-07T09:13:00Z"),
        ("2026-11-01", "2026-11-01T00:00:00Z"),
        ("2026-11-19T09:00:00Z", "2026-11-19T09:00:00Z"),
        ("2026-11-19T10:30:45+01:30", "2026-11-19T09:00:00Z"),
    ],
)
def test_human_dates(sim: Simulator, config: Path, since: str, expected: str) -> None:
    """Every documented form of --since means the UTC time it should, rounded down to
    the minute; --until defaults to now (the last whole minute) and the total is the
    ground truth of exactly that period."""
    code, out, err = run(config, "--since", since, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["period"]["since"] == expected
    assert doc["period"]["until"] == "2026-11-20T15:37:00Z"
    assert doc["total"] == sum(sim.state.truth(ts(expected), int(NOW)).values())


def test_until_yesterday_and_today(sim: Simulator, config: Path) -> None:
    """``--since yesterday --until today`` is exactly the previous UTC day."""
    code, out, err = run(config, "--since", "yesterday", "--until", "today", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["period"]["since"], doc["period"]["until"]) == (
        "2026-11-19T00:00:00Z",
        "2026-11-20T00:00:00Z",
    )
    truth = sim.state.truth(ts("2026-11-19T00:00:00Z"), ts("2026-11-20T00:00:00Z"))
    assert {r["product_type"]: r["credits"] for r in doc["rows"]} == nonzero(truth)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--since", "last tuesday"], "--since"),
        (["--since", "2026-13-01"], "--since"),
        (["--since", "7d", "--until", "soon"], "--until"),
        (["--since", "2026-11-20", "--until", "2026-11-19"], "--since"),
        (["--since", "2019-06-01"], "--since"),
        (["--since", "7d", "--group-by", "product_type,colour"], "--group-by"),
        (["--since", "7d", "--filter", "product_type=in:"], "--filter"),
        (["--since", "7d", "--filter", "no equals sign"], "--filter"),
        (["--since", "7d", "--workspace", "nope"], "--workspace"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    sim: Simulator, config: Path, args: list[str], flag: str
) -> None:
    """A bad date, period, dimension, filter or workspace exits 2 with one line on
    stderr naming the flag, prints nothing on stdout and asks the API nothing."""
    code, out, err = run(config, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"flag error: {flag}: ")
    assert sim.state.requests == []


def test_progress_goes_to_stderr_only(sim: Simulator, config: Path) -> None:
    """A month-long report reports progress on stderr, about one line per tenth when
    stderr is not a terminal, while stdout holds nothing but the CSV."""
    code, out, err = run(config, "--since", "2026-10-20T15:37:00Z", "--format", "csv")
    assert code == 0, err
    progress = err.splitlines()
    assert progress
    assert all(re.fullmatch(r"workspace main: fetched \d+/\d+ windows", p) for p in progress)
    done, total = map(int, re.findall(r"(\d+)/(\d+)", progress[-1])[0])
    assert done == total >= 5
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][0] == "workspace"
    assert all(r[0] == "main" and float(r[2]) > 0 for r in rows[1:])
    assert "fetched" not in out


def test_progress_on_a_terminal_rewrites_one_line_and_erases_it(
    sim: Simulator, config: Path
) -> None:
    """On a terminal progress rewrites one line in place and erases it at the end, so
    nothing is left between the prompt and the report."""
    terminal = FakeTerminal()
    code, out, _ = run(config, "--since", "2026-10-20T15:37:00Z", stderr=terminal)
    assert code == 0
    err = terminal.getvalue()
    assert "\n" not in err
    assert err.count("\r\x1b[K") >= 6
    assert err.endswith("\r\x1b[K")
    assert "fetched 1/" in err
    assert out.startswith("Workspace")


def test_quiet_and_short_reports_print_no_progress(sim: Simulator, config: Path) -> None:
    """A report needing few requests, or run with --quiet, prints nothing on stderr."""
    assert run(config, "--since", "6h")[2] == ""
    assert run(config, "--since", "2026-10-20T15:37:00Z", "--quiet")[2] == ""


def test_several_workspaces_one_section_each_and_one_failing(
    tmp_path: Path, sim: Simulator
) -> None:
    """With several workspaces each gets its own section; one with a rejected key gets
    one error line naming it and the exit status 1, and the others still report.
    --workspace picks one."""
    config = write_config(
        tmp_path,
        [
            {"name": "alpha", "api_key": "demo", "base_url": sim.url},
            {"name": "broken", "api_key": SECRET, "base_url": sim.url},
            {"name": "gamma", "api_key": "demo", "base_url": sim.url},
        ],
    )
    code, out, err = run(config, "--since", "2026-11-20T00:00:00Z")
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("error: workspace broken: auth: HTTP 401")
    assert SECRET not in err + out
    assert out.count("Workspace   ") == 2
    assert "Workspace   alpha" in out
    assert "Workspace   gamma" in out

    code, out, err = run(config, "--since", "2026-11-20T00:00:00Z", "--workspace", "gamma")
    assert code == 0, err
    assert out.count("Workspace   ") == 1
    assert "Workspace   gamma" in out

    code, out, _ = run(config, "--since", "2026-11-20T00:00:00Z", "--format", "csv")
    lines = out.splitlines()
    assert lines[0].startswith("workspace,")
    assert {line.split(",")[0] for line in lines[1:]} == {"alpha", "gamma"}


def test_missing_subscription_permission_reports_without_the_plan(
    sim: Simulator, config: Path
) -> None:
    """A key that may read usage but not the subscription still gets its report, with
    a warning and the plan marked unknown; a period starting at the cycle then fails
    with exit status 1, since the cycle start is unknown."""
    body = json.dumps(
        {
            "detail": {
                "status": "missing_permissions",
                "message": "The API key you used is missing the permission user_read "
                "to execute this operation.",
            }
        }
    )
    sim.state.faults.append(Fault(endpoint="subscription", times=-1, status=401, body=body))
    code, out, err = run(config, "--since", "2026-11-20T00:00:00Z")
    assert code == 0, err
    assert err.startswith("warning: workspace main: cannot read the subscription")
    assert "Plan        unknown" in out
    truth = nonzero(sim.state.truth(ts("2026-11-20T00:00:00Z"), int(NOW)))
    assert {k[0]: v[0] for k, v in table_rows(out)[0].items()} == truth

    code, out, err = run(config, "--since", "cycle")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: workspace main: permission: HTTP 401 missing_permissions")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELEVENLABS")}
    env.update(extra)
    return env


def test_real_cli_with_the_key_in_the_environment(sim: Simulator, tmp_path: Path) -> None:
    """``ELEVENLABS_API_KEY=... elevenlabs-exporter report`` just works: the real
    process, configured only by the environment, prints the period's ground truth."""
    sim.state.api_key = SECRET
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "report",
            "--since",
            "2026-11-19T00:00:00Z",
            "--until",
            "2026-11-20T00:00:00Z",
            "--format",
            "json",
        ],
        env=clean_env(ELEVENLABS_API_KEY=SECRET, ELEVENLABS_BASE_URL=sim.url),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["workspace"] == "default"
    truth = sim.state.truth(ts("2026-11-19T00:00:00Z"), ts("2026-11-20T00:00:00Z"))
    assert {r["product_type"]: r["credits"] for r in doc["rows"]} == nonzero(truth)
    assert SECRET not in result.stdout + result.stderr


def test_real_cli_rejected_key_exits_1_with_one_line_and_no_key(tmp_path: Path) -> None:
    """A rejected key makes the real process exit 1 with one stderr line naming the
    workspace and the reason, nothing on stdout, and the key nowhere."""
    simulator = Simulator(SimState(frozen_at=NOW, scenario="key-rejected", api_key=None)).start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "report", "--since", "2026-11-19"],
            env=clean_env(ELEVENLABS_API_KEY=SECRET, ELEVENLABS_BASE_URL=simulator.url),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            check=False,
        )
    finally:
        simulator.stop()
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: workspace default: auth: HTTP 401 invalid_api_key")
    assert "ELEVENLABS_API_KEY" in result.stderr
    assert SECRET not in result.stderr


def test_demo_needs_no_key(tmp_path: Path) -> None:
    """``report --demo`` reads the built-in simulated API: a table of products, no key."""
    out = io.StringIO()
    code = report.main(["--demo", "--since", "2h", "--quiet"], stdout=out, stderr=io.StringIO())
    assert code == 0
    assert "Workspace   default" in out.getvalue()
    assert "text_to_speech" in out.getvalue()


def test_exporter_help_names_the_subcommands() -> None:
    """``elevenlabs-exporter --help`` points at both subcommands, and each has --help."""
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=True,
    )
    assert "report --help" in result.stdout
    assert "backfill --help" in result.stdout
    for sub in ("report", "backfill"):
        result = subprocess.run(
            [sys.executable, "-m", "exporter", sub, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=True,
        )
        assert f"usage: elevenlabs-exporter {sub}" in result.stdout
        assert "--since WHEN" in result.stdout
    report_help = " ".join(report.build_parser().format_help().split())
    assert "no total row and no plan" in report_help
