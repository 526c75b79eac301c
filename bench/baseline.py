"""The bare baseline: ``prometheus_client.start_http_server`` serving static series.

It reads a JSON spec (one ``[sample name, label names, [[label values..., value], ...]]``
entry per sample name, taken from the exporter's own exposition) and serves the same
series on 127.0.0.1 from a fresh registry, in one of two ways:

* ``gauges``: one ``Gauge`` per sample name, a child per label set, values set once
  (what an instrumented application does);
* ``families``: a collector returning the same families pre-built once, so a scrape
  costs only the library's text rendering (the cheapest ``prometheus_client`` can be).

It prints the port on the first line of stdout and serves until terminated. Same
series, same label sets, no snapshot to read: what the exposition costs before the
exporter adds anything.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


def build_registry(spec: list[list[object]]) -> tuple[CollectorRegistry, int]:
    """A registry holding the spec's series as static gauges; (registry, series)."""
    registry = CollectorRegistry(auto_describe=False)
    series = 0
    for name, label_names, samples in spec:
        assert isinstance(name, str)
        assert isinstance(label_names, list)
        assert isinstance(samples, list)
        gauge = Gauge(name, f"Static copy of {name}.", label_names, registry=registry)
        for sample in samples:
            *values, value = sample
            child = gauge.labels(*values) if label_names else gauge
            child.set(float(value))
            series += 1
    return registry, series


class StaticFamilies(Collector):
    """Families built once; every scrape renders the same objects."""

    def __init__(self, spec: list[list[object]]) -> None:
        self._families: list[Metric] = []
        for name, label_names, samples in spec:
            assert isinstance(name, str)
            assert isinstance(label_names, list)
            assert isinstance(samples, list)
            family = GaugeMetricFamily(name, f"Static copy of {name}.", labels=label_names)
            for sample in samples:
                *values, value = sample
                family.add_metric([str(v) for v in values], float(value))
            self._families.append(family)

    def collect(self) -> list[Metric]:
        return self._families

    def describe(self) -> list[Metric]:
        return []


def main(argv: list[str] | None = None) -> int:
    """Serve the spec until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--kind", choices=["gauges", "families"], default="gauges")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    if args.kind == "gauges":
        registry, _ = build_registry(spec)
    else:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StaticFamilies(spec))
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    print(server.server_port, flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
