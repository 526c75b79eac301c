"""A simulated ElevenLabs API on loopback: behind ``--demo`` and the tests.

``model`` is the usage model and the account's state (subscription and user among
it), ``tables``, ``charstats`` and ``accounts`` (service accounts, keys, groups)
answer the endpoints, ``handler`` speaks HTTP, ``control`` is the test-only control
plane under ``/_sim/``, ``server`` runs it all on a port. The simulator imports
nothing of the exporter but the endpoint paths it shares with the client.
"""

from exporter.simulator.charstats import hour_stats
from exporter.simulator.model import (
    COST_PER_CREDIT,
    PRODUCTS,
    SCENARIOS,
    Fault,
    SimState,
    cycle_bounds,
)
from exporter.simulator.server import Simulator

__all__ = [
    "COST_PER_CREDIT",
    "PRODUCTS",
    "SCENARIOS",
    "Fault",
    "SimState",
    "Simulator",
    "cycle_bounds",
    "hour_stats",
]
