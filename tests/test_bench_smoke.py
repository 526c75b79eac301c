"""The benchmark harness runs end to end in a tiny configuration and reports a
well-formed table. Timings are never asserted: machines are shared and noisy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

pytestmark = pytest.mark.e2e


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Each markdown table under its ``###`` heading, as rows of cells (header first)."""
    out: dict[str, list[list[str]]] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("### "):
            heading = line[4:]
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue  # the separator row
            out.setdefault(heading, []).append(cells)
    return out


def test_tiny_benchmark_produces_a_well_formed_report(tmp_path: Path) -> None:
    """Two scraped workspaces, one-second points and a few in-process polls: every
    process is started and stopped, and the report has the targets table, a scrape
    table with a row per server and a filled requests-per-poll table."""
    out, raw = tmp_path / "report.md", tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--sections",
            "requests,scrape",
            "--scrape-workspaces",
            "2",
            "--scrape-poll-interval",
            "2s",
            "--duration",
            "0.5",
            "--threads",
            "2",
            "--history-days",
            "1,2",
            "--history-polls",
            "2",
            "--out",
            str(out),
            "--json",
            str(raw),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    assert done.stdout == report
    found = tables(report)

    targets = found["Targets"]
    assert targets[0] == ["target", "measured", "result"]
    assert len(targets) == 8
    assert all(row[2] in ("PASS", "FAIL", "not run") for row in targets[1:])
    # Measured here: throughput, latency and history; memory, the cycle and the hostile
    # section were not run.
    assert [row[2] != "not run" for row in targets[1:]] == [
        True,
        True,
        False,
        True,
        False,
        False,
        False,
    ]

    scrape = next(rows for name, rows in found.items() if name.startswith("/metrics"))
    header, body = scrape[0], scrape[1:]
    assert len(body) == 6  # two bare baselines, the exporter four ways
    assert all(len(row) == len(header) for row in body)
    for row in body:
        assert row[4].endswith("×")
        assert float(row[3].replace(",", "")) > 0  # requests per second were measured
    assert body[0][4] == "1.00×"

    history = next(rows for name, rows in found.items() if name.startswith("API requests"))
    assert [row[0] for row in history[1:]] == ["1", "2"]
    assert all(row[2] == "2–2" for row in history[1:])  # subscription + one usage window

    data = json.loads(raw.read_text())
    assert data["scrape"][0]["workspaces"] == 2
    assert data["scrape"][0]["series"] > 2 * 20
