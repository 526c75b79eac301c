#!/usr/bin/env python3
"""Write the Grafana dashboards in ``grafana/dashboards/`` from the definitions in
``grafana/dashboard/``.

The JSON files are what users import and what the tests check; this script is how they
are made, so that ids, grid positions, datasource references and selectors stay
consistent. Each dashboard row is one function that adds its panels, in order and with
their sizes, to a ``Grid``, which works out the positions. Edit the definitions there,
then run (standard library only)::

    python grafana/generate.py           # rewrite grafana/dashboards/*.json
    python grafana/generate.py --check   # exit 1 if a committed file is out of date

Every query uses only the metrics of the exporter's contract (plus ``ALERTS`` and
``up``), so the dashboard works without the project's rules; the rules' marker series
``elevenlabs:alert_rules_loaded`` only lets the alert-state panel say "rules not loaded".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

# Run as `python grafana/generate.py` this directory is on sys.path already; loaded from
# its file (as a test loads it), it is not.
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from dashboard import ALERT_NAMES, DASHBOARDS, Json  # noqa: E402 - needs the path above

DASHBOARD_DIR = HERE / "dashboards"

__all__ = ["ALERT_NAMES", "DASHBOARDS", "main", "render"]


def render(dashboard: Json) -> str:
    """The JSON text as committed: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with --check, compare) every dashboard file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DASHBOARD_DIR, help="directory to write")
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    args = parser.parse_args(argv)
    stale = []
    for filename, build in DASHBOARDS.items():
        path = args.output / filename
        text = render(build())
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{path} is out of date; run python grafana/generate.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
