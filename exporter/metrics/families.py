"""What every collector shares: the HELP sentence on cached values, and the source
of snapshots it reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from exporter.core.snapshot import WorkspaceSnapshot

POLLED = "Values come from the last successful poll of the ElevenLabs API, not from the scrape."

Snapshots = Callable[[], Mapping[str, WorkspaceSnapshot]]
