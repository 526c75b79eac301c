"""Pre-rendered exposition: rendered once per data change, never stale."""

from __future__ import annotations

import gzip
from typing import Any
from wsgiref.util import setup_testing_defaults

from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.metrics.exposition import ExpositionCache
from exporter.polling.credits import CreditsPart
from exporter.runtime import build_registry
from exporter.web.server import make_app


def call(app: Any, path: str = "/metrics", **environ: str) -> tuple[str, dict[str, str], bytes]:
    env: dict[str, Any] = {"PATH_INFO": path, **environ}
    setup_testing_defaults(env)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    body = b"".join(app(env, start_response))
    return captured["status"], captured["headers"], body


def setup() -> tuple[SnapshotStore, Any, Any, ExpositionCache]:
    store = SnapshotStore(["main"])
    registry, telemetry = build_registry(store)

    def version() -> int:
        return store.version + telemetry.version

    cache = ExpositionCache(registry, version)
    app = make_app(registry, store.ready, version=version)
    return store, telemetry, app, cache


def test_repeated_scrapes_render_once_and_changes_show_at_once() -> None:
    """Scrapes between two polls reuse one rendering; a published snapshot or a counted
    request is visible on the very next scrape."""
    store, telemetry, _, cache = setup()
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


def test_formats_and_gzip_through_the_app() -> None:
    """The app serves text, OpenMetrics and gzip from the cache, and name[] filters."""
    store, _, app, _ = setup()
    store.publish(WorkspaceSnapshot.of("main", CreditsPart(credits={("tts",): 1.0}), up=True))
    status, headers, body = call(app)
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("text/plain")
    assert b"elevenlabs_up" in body
    _, headers, body = call(app, HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    _, headers, body = call(app, HTTP_ACCEPT_ENCODING="gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert b"elevenlabs_up" in gzip.decompress(body)
    _, _, body = call(app, QUERY_STRING="name[]=elevenlabs_up")
    assert b"elevenlabs_up" in body
    assert b"elevenlabs_credits_used_total" not in body
