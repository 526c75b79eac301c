"""Chunked rendering (exporter/metrics/chunks.py): the same bytes as the library, and
a scrape after one workspace's poll re-renders that workspace only.

The exposition joins, family by family, each workspace's rendered share; gzip joins
independently compressed blocks. Whatever changed, the result must equal what
prometheus_client's own encoders write for the same registry, and decompress to it.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_latest

from exporter.api.parse import Subscription
from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.metrics.exposition import ExpositionCache
from exporter.metrics.telemetry import Telemetry
from exporter.polling.credits import CreditsPart
from exporter.polling.subscription import SubscriptionPart
from exporter.runtime import build_registry

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def snapshot(name: str, n: float) -> WorkspaceSnapshot:
    """A workspace's snapshot whose numbers depend on ``n``."""
    credits: dict[tuple[str, ...], float] = {
        ("text_to_speech",): 10.0 * n,
        ("dubbing",): n / 3,
        ('q"uote',): 1.5,
    }
    windows = {"text_to_speech": {"5m": n, "1h": 12 * n, "7d": 900 * n}}
    sub = Subscription("pro", "active", 100 * n, 500000.0, 1767225600, currency="usd")
    return WorkspaceSnapshot.of(
        name,
        CreditsPart(credits=credits, downward=dict.fromkeys(credits, 0.0), windows=windows),
        SubscriptionPart(sub, 1767225600, 2678400),
        up=True,
        last_success={"usage": 1766000000.0 + n, "subscription": 1766000000.0},
    )


def setup(count: int) -> tuple[SnapshotStore, Telemetry, ExpositionCache, Callable[[], None]]:
    names = [f"ws-{i:03d}" for i in range(count)]
    store = SnapshotStore(names)
    registry, telemetry = build_registry(store)
    for i, name in enumerate(names):
        telemetry.register_workspace(name)
        telemetry.observe_request(name, "usage", "200", 0.01 * (i + 1))
        store.publish(snapshot(name, i + 1))
    cache = ExpositionCache(registry, lambda: store.version + telemetry.version)

    def agrees() -> None:
        text = generate_latest(registry)
        assert cache.render("", False)[0] == text
        assert gzip.decompress(cache.render("", True)[0]) == text
        om = om_latest(registry)  # type: ignore[no-untyped-call]
        assert cache.render(OPENMETRICS, False)[0] == om
        assert gzip.decompress(cache.render(OPENMETRICS, True)[0]) == om

    return store, telemetry, cache, agrees


def test_chunked_bytes_equal_the_library_in_every_format() -> None:
    """Text and OpenMetrics, plain and gzip, for 40 workspaces: exactly the library's
    bytes (gzip decompresses to them)."""
    _, _, cache, agrees = setup(40)
    agrees()
    assert cache.chunks is not None


def test_after_one_workspace_changes_only_it_is_rendered_again() -> None:
    """One workspace's new snapshot re-renders that workspace's share of each snapshot
    collector, one request counted re-renders its telemetry share, and nothing else;
    the bytes still equal the library's."""
    store, telemetry, cache, agrees = setup(40)
    agrees()
    chunks = cache.chunks
    assert chunks is not None
    before = chunks.renders
    store.publish(snapshot("ws-007", 77))
    agrees()
    per_format = (chunks.renders - before) // 2  # text and OpenMetrics
    assert per_format == 4  # its share in usage, cost, subscription and health
    before = chunks.renders
    telemetry.observe_request("ws-012", "subscription", "503", 2.0)
    agrees()
    assert (chunks.renders - before) // 2 == 1
    before = chunks.renders
    agrees()
    assert chunks.renders == before  # nothing changed: nothing rendered
