"""Pre-rendered exposition: rendered once per data change, never stale.

How the app serves it (formats, gzip, name[] filters) is pinned in test_server.py.
"""

from __future__ import annotations

from typing import Any

from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.metrics.exposition import ExpositionCache
from exporter.polling.credits import CreditsPart
from exporter.runtime import build_registry


def setup() -> tuple[SnapshotStore, Any, ExpositionCache]:
    store = SnapshotStore(["main"])
    registry, telemetry = build_registry(store)

    def version() -> int:
        return store.version + telemetry.version

    cache = ExpositionCache(registry, version)
    return store, telemetry, cache


def test_repeated_scrapes_render_once_and_changes_show_at_once() -> None:
    """Scrapes between two polls reuse one rendering; a published snapshot or a counted
    request is visible on the very next scrape."""
    store, telemetry, cache = setup()
    first, _ = cache.render("", False)
    for _ in range(5):
        assert cache.render("", False)[0] == first
    assert cache.renders == 1
    store.publish(WorkspaceSnapshot.of("main", CreditsPart(credits={("tts",): 42.0}), up=True))
    body, _ = cache.render("", False)
    assert b'elevenlabs_credits_used_total{product_type="tts",workspace="main"} 42.0' in body
    telemetry.observe_request("main", "usage", "429", 0.1)
    body, _ = cache.render("", False)
    assert b'code="429"' in body
    assert cache.renders == 3
