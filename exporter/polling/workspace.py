"""The sources of one workspace, built from its config, and the loop that runs them.

Order matters within a round: the subscription comes first (it tells the others the
billing cycle), then the usage sources (credits, or cost once the workspace proves
billed in currency), then the optional ones (character stats, key and group limits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from exporter.api.client import ElevenLabsClient
from exporter.config import Config, WorkspaceConfig
from exporter.core.snapshot import SnapshotStore
from exporter.core.state import StateStore
from exporter.polling.charstats import CharacterStatsSource, poll_interval
from exporter.polling.cost import CostSource
from exporter.polling.credits import CreditsSource
from exporter.polling.limits import ApiKeyLimitsSource, GroupLimitsSource
from exporter.polling.loop import WorkspaceLoop
from exporter.polling.source import PollTelemetry, Source, WorkspaceFacts
from exporter.polling.subscription import SubscriptionSource


def workspace_loop(
    workspace: WorkspaceConfig,
    config: Config,
    client: ElevenLabsClient,
    *,
    snapshots: SnapshotStore,
    telemetry: PollTelemetry,
    log: Any,
    clock: Callable[[], float],
    state: StateStore | None = None,
    seed_limiter: asyncio.Semaphore | None = None,
) -> WorkspaceLoop:
    """The loop of one workspace with every source its config asks for."""
    log = log.bind(workspace=workspace.name)
    facts = WorkspaceFacts()
    interval = workspace.poll_interval or config.poll_interval
    handle = state.workspace(workspace.name, workspace.base_url, log) if state else None
    sources: list[Source] = [
        SubscriptionSource(client, facts, max(interval, config.subscription_interval), log, clock),
        CreditsSource(
            workspace,
            config,
            client,
            facts,
            log=log,
            clock=clock,
            state=handle,
            seed_limiter=seed_limiter,
        ),
        CostSource(workspace, config, client, facts, log=log, state=handle),
    ]
    if workspace.character_stats:
        sources.append(CharacterStatsSource(client, facts, poll_interval(config, workspace)))
    # Key and group limits change like the plan: read on the subscription's interval.
    slow = max(interval, config.subscription_interval)
    if workspace.key_limits:
        sources.append(ApiKeyLimitsSource(client, facts, slow, workspace.max_keys, log))
    if workspace.group_limits:
        sources.append(GroupLimitsSource(client, facts, slow, workspace.max_groups, log))
    return WorkspaceLoop(
        workspace.name, sources, snapshots=snapshots, telemetry=telemetry, log=log, clock=clock
    )
