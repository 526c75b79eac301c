"""The exposition, rendered once per change of the data, not once per scrape.

The data changes only when a poll finishes (snapshots, request telemetry), while
Prometheus servers, federation and dashboards may scrape far more often. Each format
(text or OpenMetrics, plain or gzip) is rendered at most once per data version and
the same bytes are served until the next change; and a rendering after one
workspace's poll re-renders that workspace only (:mod:`exporter.metrics.chunks`).
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.metrics.chunks import ChunkedExposition
from exporter.metrics.render import UnsupportedError, fast_format, render

GZIP_LEVEL = 6  # most of the size win at a fraction of level 9's cost


class OrderedRegistry(CollectorRegistry):
    """The exporter's registry: it also keeps its collectors in the order they were
    registered, which is the order of the exposition, for chunked rendering."""

    def __init__(self) -> None:
        super().__init__(auto_describe=False)
        self.collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        """Register ``collector`` and remember it, in order."""
        super().register(collector)
        self.collectors.append(collector)


class ExpositionCache:
    """Rendered exposition bytes per format, valid while ``version()`` is unchanged."""

    def __init__(self, registry: CollectorRegistry, version: Callable[[], int]) -> None:
        self._registry = registry
        self._version = version
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, bool], tuple[int, bytes]] = {}
        self.renders = 0
        collectors = registry.collectors if isinstance(registry, OrderedRegistry) else None
        self.chunks = ChunkedExposition(collectors, GZIP_LEVEL) if collectors else None

    def render(self, accept: str, compress: bool) -> tuple[bytes, str]:
        """The body and content type for an Accept header, gzipped when asked."""
        encoder, content_type = choose_encoder(accept)
        key = (content_type, compress)
        version = self._version()  # read first: a change during rendering re-renders next time
        cached = self._cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1], content_type
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == version:
                return cached[1], content_type
            kind = fast_format(encoder)
            body = b""
            if self.chunks is not None and kind is not None:
                try:
                    body = self.chunks.body(kind == "openmetrics", compress)
                except UnsupportedError:
                    body = b""
            if not body:
                body = encode(self._registry, encoder)
                if compress:
                    body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            self._cache[key] = (version, body)
            self.renders += 1
            return body, content_type


class _Only:
    """The families of a registry that carry any of the given names (``name[]``)."""

    def __init__(self, registry: CollectorRegistry, names: Iterable[str]) -> None:
        self._registry = registry
        self._names = set(names)

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            if family.name in self._names or any(s.name in self._names for s in family.samples):
                yield family


def render_filtered(registry: CollectorRegistry, query: str, accept: str) -> tuple[bytes, str]:
    """Render only the families named by ``name[]`` query parameters (uncached).

    ``prometheus_client``'s restricted registry relies on ``describe()``, which the
    usage collector leaves empty on purpose, so filtering happens on collected families.
    """
    names = parse_qs(query).get("name[]", [])
    encoder, content_type = choose_encoder(accept)
    source = _Only(registry, names) if names else registry
    return encode(source, encoder), content_type


def encode(source: Any, encoder: Callable[..., bytes]) -> bytes:
    """Render with the fast formatter where it applies, else with the library's encoder."""
    kind = fast_format(encoder)
    if kind is not None:
        try:
            return render(source.collect(), openmetrics=kind == "openmetrics")
        except UnsupportedError:
            pass
    return encoder(source)
