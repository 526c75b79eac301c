"""``python -m exporter.simulator``: the simulated API on its own, for tests and experiments."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable

from exporter.simulator.model import SCENARIOS, SimState
from exporter.simulator.server import Simulator


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the simulator until interrupted; prints its URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator", description="A simulated ElevenLabs API on loopback."
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", choices=SCENARIOS, default="normal")
    parser.add_argument("--api-key", default="demo", help="the key it accepts ('' for any)")
    parser.add_argument("--frozen-at", type=float, default=None, help="freeze the clock here")
    args = parser.parse_args(argv)
    sim = Simulator(
        SimState(scenario=args.scenario, api_key=args.api_key or None, frozen_at=args.frozen_at),
        port=args.port,
    )
    out(sim.url)
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        sim.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
