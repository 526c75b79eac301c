"""The one workspace ``--demo`` reads: the embedded simulator, under the name ``default``.

The exporter (``--demo``) and the one-off commands (``report --demo``, ``backfill
--demo``) read the same simulated workspace, so it is described here once.
"""

from __future__ import annotations

import dataclasses

from exporter.config.model import Config, KeySource, Secret, WorkspaceConfig

DEMO_WORKSPACE = "default"


def demo_workspace(url: str) -> WorkspaceConfig:
    """The simulated workspace at ``url``, with the simulator's built-in key; it shows
    its API keys' and groups' credit limits (``key_limits``, ``group_limits``)."""
    return WorkspaceConfig(
        DEMO_WORKSPACE,
        Secret("demo"),
        KeySource("demo"),
        url,
        key_limits=True,
        group_limits=True,
    )


def demo_config(config: Config, url: str) -> Config:
    """``config`` reading only the simulator at ``url``; never persisting simulated usage.

    A demo that wrote the state file would replace a real workspace's saved ledger
    (both are called ``default``), so a demo keeps its state in memory only.
    """
    return dataclasses.replace(config, workspaces=(demo_workspace(url),), state_file=None)
