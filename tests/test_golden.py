"""The exposition for fixed snapshots, byte for byte, against a reviewed golden file.

Any change to a metric name, label, HELP text or type shows up here as a diff that
has to be looked at (dashboards, rules and users depend on them). Regenerate with
``UPDATE_GOLDEN=1 pytest tests/test_golden.py`` after checking the change is meant.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from contract import SERIES_NAMES
from prometheus_client import generate_latest

from exporter.api.limits import ApiKeyLimit, GroupLimit
from exporter.api.parse import Subscription
from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.polling.credits import CreditsPart
from exporter.polling.limits import ApiKeyLimitsPart, GroupLimitsPart
from exporter.polling.subscription import SubscriptionPart
from exporter.runtime import build_registry

GOLDEN = Path(__file__).parent / "fixtures" / "golden.prom"


def exposition() -> str:
    store = SnapshotStore(["main", "eu"])
    registry, telemetry = build_registry(store, key_limits=True, group_limits=True)
    credits = CreditsPart(
        credits={("text_to_speech",): 125.5, ("unknown",): 2.0, ("dubbing",): 0.0},
        downward={("text_to_speech",): 1.5, ("unknown",): 0.0, ("dubbing",): 0.0},
        cycle={("text_to_speech",): 124.0, ("unknown",): 2.0, ("dubbing",): 0.0},
        names={("product_type", "text_to_speech"): "Text to Speech"},
        windows={
            "text_to_speech": {"5m": 1.5, "30m": 9.0, "1h": 20.5, "6h": 80.0, "1d": 110.0},
            "unknown": {"5m": 0.0, "30m": 0.0, "1h": 0.0, "6h": 2.0, "1d": 2.0},
        },
        budget=400000,
    )
    store.publish(
        WorkspaceSnapshot.of(
            "main",
            credits,
            SubscriptionPart(
                subscription=Subscription(
                    tier="pro",
                    status="active",
                    credits_used=126,
                    credits_limit=500000,
                    reset_at=1767225600,
                    currency="usd",
                    billing_period="monthly_period",
                    refresh_period="monthly_period",
                    voice_slots_used=3,
                    voice_limit=160,
                    professional_voice_slots_used=3,
                    professional_voice_limit=2,
                    professional_voice_slots_used_in_workspace=1,
                    overage_amount=12.5,
                    overage_currency="usd",
                    credit_limit_extension=100000,
                    credit_limit_extension_unlimited=False,
                    has_open_invoices=False,
                ),
                cycle_reset=1767225600,
                cycle_length=2678400,
            ),
            ApiKeyLimitsPart(
                (
                    ApiKeyLimit("key_tts", "prod-tts", "Backend", "k_3f9a", 270000, 300000, False),
                    ApiKeyLimit(
                        "key_agents", "prod-agents", "Backend", "k_81c2", 1500, None, False
                    ),
                    ApiKeyLimit(
                        "key_old", "old", "Batch", "k_e07d", 12, 1000, True, "exposed_publicly"
                    ),
                ),
                listed=3,
            ),
            GroupLimitsPart(
                (
                    GroupLimit("grp_eng", "Engineering", 351696, 500000, False),
                    GroupLimit("grp_support", "Support", 155495, None, True),
                ),
                listed=2,
            ),
            up=True,
            last_success={
                "usage": 1766000000.0,
                "subscription": 1766000001.0,
                "service_accounts": 1766000002.0,
                "groups": 1766000003.0,
            },
            ready=True,
        )
    )
    store.publish(WorkspaceSnapshot(name="eu", last_success={"usage": 0.0, "subscription": 0.0}))
    for workspace in ("main", "eu"):
        telemetry.register_workspace(workspace)
    telemetry.observe_request("main", "usage", "200", 0.2)
    telemetry.observe_request("main", "subscription", "200", 0.04)
    telemetry.observe_request("eu", "subscription", "error", 30.0)
    telemetry.poll_failed("eu", "subscription", "timeout")
    return generate_latest(registry).decode().replace("0.1.0", "VERSION")


def test_exposition_matches_golden_file() -> None:
    """Names, labels, HELP, TYPE and values for fixed snapshots are exactly as reviewed."""
    text = exposition()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_golden_exposition_passes_promtool() -> None:
    """promtool check metrics has nothing to say about the exposition."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is required"
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert (result.stdout + result.stderr).strip() == ""


def test_every_contract_metric_is_exposed() -> None:
    """Every series name of the design's metric contract (the list the rule and dashboard
    tests check against) is in the exposition, so rules and panels select real series."""
    names = {
        line.split("{")[0].split(" ")[0]
        for line in exposition().splitlines()
        if line and not line.startswith("#")
    }
    assert SERIES_NAMES - names == set()
