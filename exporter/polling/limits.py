"""The opt-in sources of per-key and per-group credit limits.

A service account's API key can carry its own credit cap per billing period, and a
workspace group its own usage limit; a key or group that reaches its limit stops
working, which users want to see coming. Two sources read them, each opted in per
workspace:

* ``key_limits: true``: :class:`ApiKeyLimitsSource` reads ``GET /v1/service-accounts``
  (endpoint label ``service_accounts``), every service account's keys with
  ``character_limit`` and ``character_count``;
* ``group_limits: true``: :class:`GroupLimitsSource` reads ``GET /v1/workspace/groups``
  (endpoint label ``groups``), every group with ``group_usage_limit`` and
  ``character_count``.

They change like the subscription, so they are polled on the subscription's slower
interval (and once more just after the billing cycle's reset, when the counts start
again). Neither is required: a failure (a key without the permission these endpoints
need, above all) is counted under its endpoint and never sets ``elevenlabs_up`` to 0;
the loop logs a repeated permission failure of an optional source once. A failed poll
leaves the last good values exported.

Bounded like the opt-in dimensions: at most ``max_keys`` keys and ``max_groups`` groups
are exported per workspace. The ones nearest their limit are kept (enabled before
disabled, with a limit before without, then by the share of the limit used and the
credits used), so a key about to run out is never the one left out; the others are not
exported, and a log line says so once, when the cap is first exceeded.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from exporter.api.client import ElevenLabsClient
from exporter.api.limits import ApiKeyLimit, GroupLimit
from exporter.polling.source import Outcome, Source, WorkspaceFacts
from exporter.polling.subscription import AFTER_RESET

Item = TypeVar("Item", ApiKeyLimit, GroupLimit)


@dataclass(frozen=True)
class ApiKeyLimitsPart:
    """The exported API keys of one workspace (at most ``max_keys``) and how many the
    API listed."""

    keys: tuple[ApiKeyLimit, ...]
    listed: int


@dataclass(frozen=True)
class GroupLimitsPart:
    """The exported groups of one workspace (at most ``max_groups``) and how many the
    API listed."""

    groups: tuple[GroupLimit, ...]
    listed: int


def share(used: float | None, limit: float | None) -> float:
    """The share of a limit used, for ordering: 0 without a positive limit or a count."""
    if used is None or limit is None or limit <= 0:
        return 0.0
    return used / limit


def _rank(item: ApiKeyLimit | GroupLimit) -> tuple[bool, bool, float, float, str]:
    """Nearest its limit first: enabled, with a limit, larger share, more credits, id."""
    if isinstance(item, ApiKeyLimit):
        disabled, ident = item.disabled is True, item.key_id
    else:
        disabled, ident = False, item.group_id
    return (
        disabled,
        item.limit is None or item.limit <= 0,
        -share(item.used, item.limit),
        -(item.used or 0.0),
        ident,
    )


def nearest_first(items: Sequence[Item], cap: int) -> list[Item]:
    """At most ``cap`` of ``items``, the ones nearest their limit (see the module)."""
    return sorted(items, key=_rank)[:cap]


class _LimitsSource(Source, Generic[Item]):
    """What the two sources share: the slow interval, the cap and its log line."""

    required = False
    what = ""  # "API keys" or "groups", for the log line
    cap_key = ""  # the config key of the cap

    def __init__(
        self,
        client: ElevenLabsClient,
        facts: WorkspaceFacts,
        interval: float,
        cap: int,
        log: Any,
    ) -> None:
        self.client = client
        self.facts = facts
        self._interval = interval
        self.cap = cap
        self.log = log
        self.items: tuple[Item, ...] | None = None  # None until the first success
        self.listed = 0
        self.capped = False  # the cap was exceeded at the last poll (logged once)

    def interval(self) -> float:
        """The subscription's interval: limits and counts change like the plan does."""
        return self._interval

    def due_by(self) -> float | None:
        """Just after the billing cycle's reset, when the counts start again."""
        cycle = self.facts.cycle
        return cycle.reset + AFTER_RESET if cycle is not None and cycle.known else None

    @abstractmethod
    async def fetch(self) -> list[Item]:
        """Everything the endpoint lists, through the client."""

    async def poll(self, now: float) -> Outcome:
        """Read the list, keep at most ``cap`` (nearest their limit), all at once."""
        listed = await self.fetch()
        kept = nearest_first(listed, self.cap)
        left_out = len(listed) - len(kept)
        if left_out and not self.capped:
            self.log.warning(
                "cap reached, the rest are not exported",
                endpoint=self.endpoint,
                what=self.what,
                listed=len(listed),
                exported=len(kept),
                not_exported=left_out,
                **{self.cap_key: self.cap},
            )
        self.capped = left_out > 0
        self.items, self.listed = tuple(kept), len(listed)
        return Outcome(requests=1, rows=len(listed), fields={"exported": len(kept)})


class ApiKeyLimitsSource(_LimitsSource[ApiKeyLimit]):
    """Reads every service account's API keys (``key_limits: true``)."""

    endpoint = "service_accounts"
    what = "API keys"
    cap_key = "max_keys"

    async def fetch(self) -> list[ApiKeyLimit]:
        """``GET /v1/service-accounts``."""
        return await self.client.service_accounts()

    def part(self, last_success: float) -> ApiKeyLimitsPart | None:
        """The exported keys, once read."""
        if self.items is None:
            return None
        return ApiKeyLimitsPart(self.items, self.listed)


class GroupLimitsSource(_LimitsSource[GroupLimit]):
    """Reads the workspace's groups (``group_limits: true``)."""

    endpoint = "groups"
    what = "groups"
    cap_key = "max_groups"

    async def fetch(self) -> list[GroupLimit]:
        """``GET /v1/workspace/groups``."""
        return await self.client.workspace_groups()

    def part(self, last_success: float) -> GroupLimitsPart | None:
        """The exported groups, once read."""
        if self.items is None:
            return None
        return GroupLimitsPart(self.items, self.listed)
