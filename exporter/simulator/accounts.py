"""The simulator's service accounts, their API keys and the workspace's groups.

``GET /v1/service-accounts`` and ``GET /v1/service-accounts/{id}/api-keys`` list keys
with a credit cap per billing period (``character_limit``, null for none) and the
credits used this period (``character_count``); ``GET /v1/workspace/groups`` lists
groups with ``group_usage_limit`` (an int or ``"unlimited"``) and ``character_count``.
The counts come from the usage model: a key's is the usage whose
``hashed_xi_api_key`` is that key's, a group's is its members' usage (``user_id``)
this cycle, so they add up with the usage endpoint's breakdowns and with the
subscription's ``character_count``. The API keys' and groups' ids are made up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from exporter.simulator.model import API_KEYS

if TYPE_CHECKING:
    from exporter.simulator.model import SimState


@dataclass(frozen=True)
class ApiKey:
    """One service account's API key."""

    key_id: str
    name: str
    hashed: str  # the usage model's hashed_xi_api_key
    limit: int | None  # credits per billing period; None: no cap
    permissions: tuple[str, ...] | None = None  # None: all permissions


@dataclass(frozen=True)
class ServiceAccount:
    """A service account and its keys."""

    user_id: str
    name: str
    keys: tuple[ApiKey, ...]


@dataclass(frozen=True)
class Group:
    """A workspace group and its members (``user_id`` values of the usage model)."""

    group_id: str
    name: str
    members: tuple[str, ...]
    limit: int | str  # credits per billing period, or "unlimited"


SERVICE_ACCOUNTS = (
    ServiceAccount(
        "sa_backend",
        "Production backend",
        (
            ApiKey(
                "key_prod_tts",
                "prod-tts",
                API_KEYS[0],
                300_000,
                ("text_to_speech", "voices_read", "models_read"),
            ),
            ApiKey("key_prod_agents", "prod-agents", API_KEYS[1], None),
        ),
    ),
    ServiceAccount(
        "sa_batch",
        "Nightly batch",
        (ApiKey("key_batch", "batch-dubbing", API_KEYS[2], 250_000, ("dubbing_write",)),),
    ),
)
GROUPS = (
    Group("grp_eng", "Engineering", ("u_ada", "u_linus", "u_ken"), 500_000),
    Group("grp_support", "Support", ("u_grace", "u_margaret"), "unlimited"),
    Group("grp_contractors", "Contractors", ("u_barbara",), 60_000),
)


def _key(account: ServiceAccount, key: ApiKey, used: dict[str, float]) -> dict[str, Any]:
    return {
        "name": key.name,
        "hint": key.hashed[-4:],
        "key_id": key.key_id,
        "service_account_user_id": account.user_id,
        "created_at_unix": 1_714_521_600,
        "is_disabled": False,
        "permissions": list(key.permissions) if key.permissions is not None else None,
        "character_limit": key.limit,
        "character_count": int(used.get(key.hashed, 0.0)),
        "hashed_xi_api_key": key.hashed,
        "expires_at_unix": None,
    }


def service_accounts(state: SimState) -> tuple[int, dict[str, Any]]:
    """``GET /v1/service-accounts``: every service account with its keys (hyphenated keys)."""
    used = state.cycle_usage_by("hashed_xi_api_key")
    return 200, {
        "service-accounts": [
            {
                "service_account_user_id": account.user_id,
                "name": account.name,
                "created_at_unix": 1_714_521_600,
                "api-keys": [_key(account, key, used) for key in account.keys],
            }
            for account in SERVICE_ACCOUNTS
        ]
    }


def service_account_keys(state: SimState, account_id: str) -> tuple[int, dict[str, Any]]:
    """``GET /v1/service-accounts/{id}/api-keys``: one service account's keys."""
    for account in SERVICE_ACCOUNTS:
        if account.user_id == account_id:
            used = state.cycle_usage_by("hashed_xi_api_key")
            return 200, {"api-keys": [_key(account, key, used) for key in account.keys]}
    return 404, {"detail": "Not Found"}


def groups(state: SimState) -> tuple[int, dict[str, Any]]:
    """``GET /v1/workspace/groups``: a dict from group id to group."""
    used = state.cycle_usage_by("user_id")
    return 200, {
        group.group_id: {
            "name": group.name,
            "id": group.group_id,
            "members": list(group.members),
            "group_usage_limit": group.limit,
            "character_count": int(sum(used.get(member, 0.0) for member in group.members)),
        }
        for group in GROUPS
    }
