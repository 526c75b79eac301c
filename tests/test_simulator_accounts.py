"""The simulator's user, service accounts, API keys and groups agree with its usage model.

A key's ``character_count`` is the usage whose ``hashed_xi_api_key`` is that key's, a
group's is its members' (``user_id``) usage this cycle: the same credits the usage
endpoint breaks down and the subscription's ``character_count`` adds up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from exporter.api.paths import (
    SERVICE_ACCOUNT_KEYS_PATH,
    SERVICE_ACCOUNTS_PATH,
    SUBSCRIPTION_PATH,
    USAGE_PATH,
    USER_PATH,
    WORKSPACE_GROUPS_PATH,
)
from exporter.simulator import SimState, Simulator
from exporter.simulator.model import API_KEYS, USERS

# 2025-11-01T12:26:40Z: 25 days into the simulated billing cycle.
NOW = 1_762_000_000


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=NOW)).start()
    yield simulator
    simulator.stop()


def get(sim: Simulator, path: str, key: str = "demo") -> httpx.Response:
    return httpx.get(sim.url + path, headers={"xi-api-key": key}, timeout=30)


def cycle_usage(sim: Simulator, group_by: str) -> dict[str, float]:
    """The usage endpoint's credits this cycle per value of one dimension."""
    start, end = sim.state.cycle_window()
    body = {
        "start_time": start * 1000,
        "end_time": end * 1000,
        "interval_seconds": 86400,
        "group_by": [group_by],
        "time_zone": "UTC",
    }
    table = httpx.post(
        sim.url + USAGE_PATH, json=body, headers={"xi-api-key": "demo"}, timeout=60
    ).json()
    index, credits = table["columns"].index(group_by), table["columns"].index("credits_used")
    sums: dict[str, float] = {}
    for row in table["rows"]:
        sums[row[index]] = sums.get(row[index], 0.0) + float(row[credits])
    return sums


def keys(sim: Simulator) -> list[dict[str, Any]]:
    accounts = get(sim, SERVICE_ACCOUNTS_PATH).json()["service-accounts"]
    return [key for account in accounts for key in account["api-keys"]]


def test_each_key_counts_its_own_usage_this_cycle(sim: Simulator) -> None:
    """Every key's hashed_xi_api_key is one of the usage model's, and its
    character_count is what the usage endpoint attributes to that key this cycle."""
    listed = keys(sim)
    assert sorted(k["hashed_xi_api_key"] for k in listed) == sorted(API_KEYS)
    usage = cycle_usage(sim, "hashed_xi_api_key")
    assert {k["hashed_xi_api_key"]: k["character_count"] for k in listed} == {
        key: int(value) for key, value in usage.items()
    }
    subscription = get(sim, SUBSCRIPTION_PATH).json()["character_count"]
    assert subscription - len(listed) < sum(k["character_count"] for k in listed) <= subscription


def test_keys_have_limits_some_unlimited(sim: Simulator) -> None:
    """Some keys are capped (an int above their usage so far), some are not (null)."""
    limits = [k["character_limit"] for k in keys(sim)]
    assert None in limits
    assert any(isinstance(limit, int) for limit in limits)
    for key in keys(sim):
        if key["character_limit"] is not None:
            assert 0 < key["character_count"] < key["character_limit"]


def test_one_accounts_keys_are_its_keys_in_the_list(sim: Simulator) -> None:
    """/v1/service-accounts/{id}/api-keys lists that account's keys, as the list does;
    an unknown account is 404."""
    accounts = get(sim, SERVICE_ACCOUNTS_PATH).json()["service-accounts"]
    for account in accounts:
        path = SERVICE_ACCOUNT_KEYS_PATH.format(
            service_account_user_id=account["service_account_user_id"]
        )
        assert get(sim, path).json() == {"api-keys": account["api-keys"]}
    unknown = SERVICE_ACCOUNT_KEYS_PATH.format(service_account_user_id="sa_nobody")
    assert get(sim, unknown).status_code == 404


def test_groups_count_their_members_usage(sim: Simulator) -> None:
    """A dict id -> group; each group's character_count is its members' usage this cycle,
    and its group_usage_limit an int or "unlimited"."""
    groups = get(sim, WORKSPACE_GROUPS_PATH).json()
    assert {g["id"] for g in groups.values()} == set(groups)
    usage = cycle_usage(sim, "user_id")
    assert {m for g in groups.values() for m in g["members"]} <= {f"u_{u}" for u in USERS}
    for group in groups.values():
        assert group["character_count"] == int(sum(usage.get(m, 0.0) for m in group["members"]))
    assert sorted(str(g["group_usage_limit"]) for g in groups.values())[-1] == "unlimited"
    assert any(isinstance(g["group_usage_limit"], int) for g in groups.values())


def test_user_never_carries_the_full_key(sim: Simulator) -> None:
    """/v1/user has the key's preview, never the key itself (older answers did)."""
    response = get(sim, USER_PATH)
    assert response.status_code == 200
    assert "xi_api_key" not in response.json()
    assert "demo" not in response.text
    assert (
        response.json()["subscription"]["character_count"]
        == (get(sim, SUBSCRIPTION_PATH).json()["character_count"])
    )


@pytest.mark.parametrize(
    "path", [USER_PATH, SERVICE_ACCOUNTS_PATH, WORKSPACE_GROUPS_PATH, SUBSCRIPTION_PATH]
)
def test_new_endpoints_check_the_key_and_the_method(sim: Simulator, path: str) -> None:
    """A wrong key is 401, a method the endpoint does not take 405."""
    assert get(sim, path, key="wrong").status_code == 401
    response = httpx.post(sim.url + path, json={}, headers={"xi-api-key": "demo"}, timeout=30)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
