"""The fast formatter writes exactly what prometheus_client's encoders write."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from exporter.api.parse import Subscription
from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.metrics.exposition import encode
from exporter.metrics.render import fast_format, render
from exporter.polling.cost import CostPart
from exporter.polling.credits import CreditsPart
from exporter.polling.subscription import SubscriptionPart
from exporter.runtime import build_registry

ACCEPTS = [
    "",
    "text/plain;version=0.0.4",
    "application/openmetrics-text; version=1.0.0",
    # What Prometheus 2.x sends:
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
]
AWKWARD = ['quote " here', "back\\slash", "new\nline", "ünïcødé ✓", "", "a,b=c{d}"]


def registry_with_everything() -> CollectorRegistry:
    store = SnapshotStore(["main", "other"])
    registry, telemetry = build_registry(store)
    credits: dict[tuple[str, ...], float] = {
        ("text_to_speech", value): 1.5 + i for i, value in enumerate(AWKWARD)
    }
    store.publish(
        WorkspaceSnapshot.of(
            "main",
            CreditsPart(
                label_names=("product_type", "voice_id"),
                credits=credits,
                downward=dict.fromkeys(credits, 0.0),
                cycle=credits,
                names={("voice_id", v): f"Name {v}" for v in AWKWARD},
            ),
            SubscriptionPart(
                Subscription(
                    tier='tier "x"',
                    status="active",
                    credits_used=1e21,
                    credits_limit=float("inf"),
                    reset_at=1767225600,
                ),
                cycle_reset=None,
                cycle_length=None,
            ),
            CostPart(cost={("dubbing",): 0.0001}, charges={("dubbing",): 3.0}, currency="eur"),
            up=True,
            last_success={"usage": 1766000000.123, "subscription": 0.0},
        )
    )
    telemetry.register_workspace("main")
    for seconds in (0.01, 0.3, 7.0, 100.0):
        telemetry.observe_request("main", "usage", "200", seconds)
    telemetry.poll_failed("other", "subscription", "timeout")
    Counter("plain_total", "No labels.", registry=registry).inc(2)
    Gauge("neg", "Negative and NaN.", ["k"], registry=registry).labels("x").set(float("nan"))
    Histogram("h_seconds", "A histogram.", registry=registry).observe(0.2)
    return registry


def test_output_is_byte_identical_to_the_library_in_every_format() -> None:
    """Text and OpenMetrics, awkward label values, infinities, NaN, histograms, counters
    without labels: the fast path writes the library's bytes exactly."""
    registry = registry_with_everything()
    for accept in ACCEPTS:
        encoder, _ = choose_encoder(accept)
        kind = fast_format(encoder)
        assert kind is not None, accept
        # render() itself, so a silent fallback to the library cannot pass this test.
        assert render(registry.collect(), openmetrics=kind == "openmetrics") == encoder(registry)
        assert encode(registry, encoder) == encoder(registry), accept


def test_other_escapings_fall_back_to_the_library() -> None:
    """An escaping the fast path does not implement is rendered by the library."""
    registry = registry_with_everything()
    encoder, _ = choose_encoder("text/plain;version=1.0.0;escaping=dots")
    assert fast_format(encoder) is None
    assert encode(registry, encoder) == encoder(registry)
