"""Per-key and per-group credit limits: ``GET /v1/service-accounts`` and
``GET /v1/workspace/groups``, read defensively into typed values.

``GET /v1/service-accounts`` answers ``{"service-accounts": [{service_account_user_id,
name, "api-keys": [...]}]}`` (the keys are hyphenated, as the SDK's aliases say); each
key has ``key_id``, ``name``, ``hashed_xi_api_key``, ``character_limit`` (credits per
billing period, null for no cap), ``character_count`` (credits used this period),
``is_disabled`` and ``disable_reason``. ``GET /v1/workspace/groups`` answers a dict from
group id to ``{name, id, members, group_usage_limit (an int or "unlimited"),
character_count}``.

The shape of an answer must be right (else ``bad_response``, and the poll applies
nothing: a missing list, an entry that is not an object), but one odd field never
fails it: a count or limit that is missing, not a number or not a plausible amount
(see :mod:`exporter.api.parse`) is left out (None), so its metric is absent rather
than wrong, and a key or group without an id is skipped (it could not be told apart
from the others). An id listed twice keeps its first entry: two samples with the same
labels would make Prometheus refuse the whole scrape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.api.errors import ApiError
from exporter.api.parse import bad, to_amount

UNLIMITED = "unlimited"


@dataclass(frozen=True, slots=True)
class ApiKeyLimit:
    """One service account's API key: its credit cap and what it used this period."""

    key_id: str
    name: str
    service_account: str  # the service account's name
    hashed_key: str  # hashed_xi_api_key, as the usage endpoint's dimension of that name
    used: float | None  # character_count: credits used this period
    limit: float | None  # character_limit: credits allowed per period; None: no cap
    disabled: bool | None  # is_disabled; None when the API does not say
    disable_reason: str = ""


@dataclass(frozen=True, slots=True)
class GroupLimit:
    """One workspace group: its credit limit and what its members used this period."""

    group_id: str
    name: str
    used: float | None  # character_count
    limit: float | None  # group_usage_limit when a number
    unlimited: bool | None  # True for "unlimited", False for a number, None when unknown


def _amount(value: Any, what: str) -> float | None:
    """A plausible amount, or None for anything else (missing, odd, implausible)."""
    if value is None:
        return None
    try:
        return to_amount(value, what)
    except ApiError:
        return None


def _text(value: Any) -> str:
    """A label value from a name or id: strings as they are, anything else empty."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _list(body: dict[str, Any], name: str, what: str) -> list[Any]:
    """The list under ``name`` (the API's hyphenated key) or its underscored spelling."""
    value = body.get(name, body.get(name.replace("-", "_")))
    if not isinstance(value, list):
        raise bad(f"{what}: missing or malformed {name!r}")
    return value


def _key(raw: Any, account: str) -> ApiKeyLimit | None:
    if not isinstance(raw, dict):
        raise bad("service_accounts: an API key is not an object")
    key_id = _text(raw.get("key_id"))
    if not key_id:
        return None
    disabled = raw.get("is_disabled")
    reason = raw.get("disable_reason")
    return ApiKeyLimit(
        key_id=key_id,
        name=_text(raw.get("name")),
        service_account=account,
        hashed_key=_text(raw.get("hashed_xi_api_key")),
        used=_amount(raw.get("character_count"), "character_count"),
        limit=_amount(raw.get("character_limit"), "character_limit"),
        disabled=disabled if isinstance(disabled, bool) else None,
        disable_reason=_text(reason) if disabled is True else "",
    )


def parse_service_accounts(body: Any) -> list[ApiKeyLimit]:
    """Every service account's keys, in the order the API lists them."""
    if not isinstance(body, dict):
        raise bad("service_accounts: expected a JSON object")
    keys: dict[str, ApiKeyLimit] = {}
    for account in _list(body, "service-accounts", "service_accounts"):
        if not isinstance(account, dict):
            raise bad("service_accounts: a service account is not an object")
        name = _text(account.get("name")) or _text(account.get("service_account_user_id"))
        for raw in _list(account, "api-keys", "service_accounts"):
            key = _key(raw, name)
            if key is not None:
                keys.setdefault(key.key_id, key)  # a key listed twice: its first entry
    return list(keys.values())


def _group(raw: Any, fallback_id: str) -> GroupLimit | None:
    if not isinstance(raw, dict):
        raise bad("groups: a group is not an object")
    group_id = _text(raw.get("id")) or fallback_id
    if not group_id:
        return None
    limit_raw = raw.get("group_usage_limit")
    unlimited: bool | None = None
    limit: float | None = None
    if isinstance(limit_raw, str) and limit_raw.strip().lower() == UNLIMITED:
        unlimited = True
    else:
        limit = _amount(limit_raw, "group_usage_limit")
        unlimited = False if limit is not None else None
    return GroupLimit(
        group_id=group_id,
        name=_text(raw.get("name")) or group_id,
        used=_amount(raw.get("character_count"), "character_count"),
        limit=limit,
        unlimited=unlimited,
    )


def parse_groups(body: Any) -> list[GroupLimit]:
    """Every group of the workspace: the API's dict from id to group (a list of groups
    is read too), ordered by id."""
    if isinstance(body, dict):
        items = [(_text(k), v) for k, v in body.items()]
    elif isinstance(body, list):
        items = [("", v) for v in body]
    else:
        raise bad("groups: expected a JSON object of groups")
    groups: dict[str, GroupLimit] = {}
    for key, raw in items:
        group = _group(raw, key)
        if group is not None:
            groups.setdefault(group.group_id, group)  # an id given twice: its first entry
    return sorted(groups.values(), key=lambda g: g.group_id)
