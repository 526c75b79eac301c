"""The definitions of the Grafana dashboards that ``grafana/generate.py`` writes.

``layout`` places panels on the grid, ``panels`` builds each kind of panel, ``queries``
holds the PromQL they share (the design's alerting contract in PromQL), and one module
per group of rows (``cycle``, ``breakdown``, ``limits``, ``health``) adds them, one function per
row; ``overview`` puts the rows, variables and header together.
"""

from __future__ import annotations

from collections.abc import Callable

from dashboard.layout import Json
from dashboard.overview import credits_overview
from dashboard.queries import ALERT_NAMES

# File name to the function that builds it.
DASHBOARDS: dict[str, Callable[[], Json]] = {"elevenlabs-credits.json": credits_overview}

__all__ = ["ALERT_NAMES", "DASHBOARDS", "Json"]
