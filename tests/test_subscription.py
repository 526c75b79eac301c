"""The subscription fields users ask about: the overage (an amount sent as a string),
the credit limit extension (a number or "unlimited"), open invoices, and the
workspace's own professional voice slots beside the billing group's.

Read with respx through the real client; exported through the real registry. Missing
or odd values leave their gauge out and never fail the subscription poll; "unlimited"
is a boolean beside an absent gauge, never +Inf.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import generate_latest

from exporter.api.client import ElevenLabsClient
from exporter.api.parse import Subscription, parse_subscription
from exporter.api.paths import SUBSCRIPTION_PATH
from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.polling.subscription import SubscriptionPart
from exporter.runtime import build_registry

BASE = "https://api.example.test"
PLAIN = {"tier": "pro", "status": "active", "character_count": 10, "character_limit": 100}
NEW_GAUGES = (
    "elevenlabs_subscription_overage_amount",
    "elevenlabs_subscription_credits_extension_limit",
    "elevenlabs_subscription_credits_extension_unlimited",
    "elevenlabs_subscription_has_open_invoices",
    "elevenlabs_subscription_billing_group_professional_voice_slots_used",
    "elevenlabs_subscription_professional_voice_slots_used",
)


async def read(body: dict[str, Any]) -> Subscription:
    with respx.mock(assert_all_called=True) as mock:
        mock.get(BASE + SUBSCRIPTION_PATH).respond(200, json=body)
        async with httpx.AsyncClient() as http:
            client = ElevenLabsClient(workspace="w", base_url=BASE, api_key=lambda: "k", http=http)
            return await client.subscription()


def exported(sub: Subscription) -> dict[str, tuple[dict[str, str], float]]:
    """The new gauges' samples (labels, value) of one workspace, by name."""
    store = SnapshotStore(["main"])
    registry, _ = build_registry(store)
    store.publish(WorkspaceSnapshot.of("main", SubscriptionPart(sub, None, None)))
    return {
        s.name: (s.labels, s.value)
        for family in registry.collect()
        for s in family.samples
        if s.name in NEW_GAUGES
    }


async def test_the_overage_extension_invoices_and_slots_are_read_and_exported() -> None:
    """A full answer: the overage's string amount in its currency, a numeric limit
    extension (not unlimited), open invoices, the workspace's own professional slots
    as the contract gauge and the billing group's as a gauge of its own."""
    sub = await read(
        {
            **PLAIN,
            "currency": "eur",
            "current_overage": {"amount": "12.34", "currency": "usd"},
            "max_credit_limit_extension": 50000,
            "has_open_invoices": True,
            "professional_voice_slots_used": 5,
            "professional_voice_slots_used_in_workspace": 2,
        }
    )
    assert (sub.overage_amount, sub.overage_currency) == (12.34, "usd")
    assert (sub.credit_limit_extension, sub.credit_limit_extension_unlimited) == (50000.0, False)
    assert sub.has_open_invoices is True
    assert exported(sub) == {
        "elevenlabs_subscription_overage_amount": ({"workspace": "main", "currency": "usd"}, 12.34),
        "elevenlabs_subscription_credits_extension_limit": ({"workspace": "main"}, 50000.0),
        "elevenlabs_subscription_credits_extension_unlimited": ({"workspace": "main"}, 0.0),
        "elevenlabs_subscription_has_open_invoices": ({"workspace": "main"}, 1.0),
        "elevenlabs_subscription_professional_voice_slots_used": ({"workspace": "main"}, 2.0),
        "elevenlabs_subscription_billing_group_professional_voice_slots_used": (
            {"workspace": "main"},
            5.0,
        ),
    }


async def test_an_unlimited_extension_is_a_flag_beside_an_absent_limit() -> None:
    """ "unlimited" (any case) sets the unlimited gauge to 1 and leaves the extension's
    limit out: never +Inf."""
    for word in ("unlimited", "Unlimited"):
        sub = await read({**PLAIN, "max_credit_limit_extension": word})
        assert (sub.credit_limit_extension, sub.credit_limit_extension_unlimited) == (None, True)
        samples = exported(sub)
        assert samples["elevenlabs_subscription_credits_extension_unlimited"][1] == 1.0
        assert "elevenlabs_subscription_credits_extension_limit" not in samples


async def test_the_overage_currency_falls_back_to_the_subscriptions() -> None:
    """An overage without a currency of its own takes the subscription's; without either
    the overage is left out (an amount without a currency means nothing)."""
    sub = await read({**PLAIN, "currency": "gbp", "current_overage": {"amount": "1.5"}})
    assert (sub.overage_amount, sub.overage_currency) == (1.5, "gbp")
    sub = await read({**PLAIN, "current_overage": {"amount": "1.5"}})
    assert (sub.overage_amount, sub.overage_currency) == (None, None)
    assert "elevenlabs_subscription_overage_amount" not in exported(sub)


ODD: list[tuple[str, dict[str, Any]]] = [
    ("overage not an object", {"current_overage": "12"}),
    ("overage amount a word", {"current_overage": {"amount": "twelve", "currency": "usd"}}),
    ("overage amount negative", {"current_overage": {"amount": "-3.00", "currency": "usd"}}),
    ("overage amount infinite", {"current_overage": {"amount": "1e400", "currency": "usd"}}),
    ("overage amount NaN", {"current_overage": {"amount": "NaN", "currency": "usd"}}),
    ("overage currency a number", {"current_overage": {"amount": "1", "currency": 5}}),
    ("extension a word", {"max_credit_limit_extension": "lots"}),
    ("extension negative", {"max_credit_limit_extension": -1}),
    ("extension a boolean", {"max_credit_limit_extension": True}),
    ("invoices a string", {"has_open_invoices": "yes"}),
    ("workspace slots a word", {"professional_voice_slots_used_in_workspace": "two"}),
]


@pytest.mark.parametrize("fields", [f for _, f in ODD], ids=[name for name, _ in ODD])
async def test_odd_values_are_left_out_and_never_fail_the_poll(fields: dict[str, Any]) -> None:
    """Each odd value leaves its own gauge out; the subscription is still read and its
    other gauges are still exported, every sample finite."""
    sub = await read({**PLAIN, **fields})
    assert (sub.credits_used, sub.credits_limit) == (10.0, 100.0)
    samples = exported(sub)
    assert samples == {}
    store = SnapshotStore(["main"])
    registry, _ = build_registry(store)
    store.publish(WorkspaceSnapshot.of("main", SubscriptionPart(sub, None, None)))
    assert registry.get_sample_value("elevenlabs_subscription_credits_used", {"workspace": "main"})
    for family in registry.collect():
        for sample in family.samples:
            assert math.isfinite(sample.value), sample


def test_missing_fields_leave_every_new_gauge_out() -> None:
    """An answer without any of the new fields (an older API) exports none of them; the
    contract's professional voice slots gauge is not filled from the billing group's
    count, which differs from the workspace's under consolidated billing."""
    sub = parse_subscription({**PLAIN, "professional_voice_slots_used": 3})
    samples = exported(sub)
    assert set(samples) == {"elevenlabs_subscription_billing_group_professional_voice_slots_used"}


def test_the_exposition_with_the_new_gauges_has_help_and_no_created_series() -> None:
    """Every new gauge has a HELP saying it comes from the last poll."""
    store = SnapshotStore(["main"])
    registry, _ = build_registry(store)
    text = generate_latest(registry).decode()
    for name in NEW_GAUGES:
        (help_line,) = [line for line in text.splitlines() if line.startswith(f"# HELP {name} ")]
        assert "last successful poll" in help_line, name
