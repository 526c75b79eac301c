"""grafana/generate.py: the committed dashboards are exactly what it writes.

It runs as users and CI run it, as a script, into a temporary directory; ``--check``
must pass on fresh output and fail on a stale file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dashboards_support import DASHBOARDS, GRAFANA, OVERVIEW_PATH


def test_generator_reproduces_the_committed_dashboards(tmp_path: Path) -> None:
    """The committed JSON is exactly what grafana/generate.py writes, file for file."""
    subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), "--output", str(tmp_path)], check=True
    )
    generated = {path.name: path.read_bytes() for path in tmp_path.glob("*.json")}
    committed = {path.name: path.read_bytes() for path in DASHBOARDS}
    assert set(generated) == set(committed)
    for name, text in generated.items():
        assert text == committed[name], f"{name} is out of date: run python grafana/generate.py"


def test_generator_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    """``--check`` fails on a dashboard that differs from what the generator would write."""
    generate = [sys.executable, str(GRAFANA / "generate.py"), "--output", str(tmp_path)]
    subprocess.run(generate, check=True)
    assert subprocess.run([*generate, "--check"], check=False).returncode == 0
    (tmp_path / OVERVIEW_PATH.name).write_text("{}\n", encoding="utf-8")
    result = subprocess.run([*generate, "--check"], capture_output=True, check=False, text=True)
    assert result.returncode == 1
    assert "out of date" in result.stderr
