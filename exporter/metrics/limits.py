"""The collectors of the opt-in per-key and per-group credit limits (see
:mod:`exporter.polling.limits`).

Each is registered only when some workspace opted in (``key_limits``,
``group_limits``), so the exposition of everyone else is unchanged. A limit that does
not exist (a key without a cap, a group whose limit is ``"unlimited"``) is left out,
never exported as +Inf; a count the API did not give is left out too. Never any I/O.
"""

from __future__ import annotations

from typing import cast

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.core.snapshot import WorkspaceSnapshot
from exporter.metrics.families import POLLED, SnapshotCollector
from exporter.polling.limits import ApiKeyLimitsPart, GroupLimitsPart

KEY_LABELS = ["workspace", "key_id", "key_name", "service_account", "hashed_xi_api_key"]
GROUP_LABELS = ["workspace", "group_id", "group"]
KEYS_FROM = (
    "From GET /v1/service-accounts (opt-in per workspace with key_limits: true; at most "
    "max_keys keys, those nearest their limit)."
)
JOIN = (
    "hashed_xi_api_key has the value of the label of that name of "
    "elevenlabs_cycle_credits_used where the workspace groups by hashed_xi_api_key, so "
    "the two join on (workspace, hashed_xi_api_key)."
)
GROUPS_FROM = (
    "From GET /v1/workspace/groups (opt-in per workspace with group_limits: true; at most "
    "max_groups groups, those nearest their limit)."
)


class ApiKeyLimitsCollector(SnapshotCollector):
    """Each opted-in workspace's API keys: credits used, the cap, whether disabled."""

    def families(self) -> list[Metric]:
        """Used, limit and disabled, per key."""
        return [
            GaugeMetricFamily(
                "elevenlabs_api_key_credits_used",
                "Credits a service account's API key used in the current billing period "
                f"(character_count). {JOIN} {KEYS_FROM} {POLLED}",
                labels=KEY_LABELS,
            ),
            GaugeMetricFamily(
                "elevenlabs_api_key_credits_limit",
                "Credits the API key may use per billing period (character_limit); the key "
                "stops working when it reaches it. Absent for a key without a limit. "
                f"{KEYS_FROM} {POLLED}",
                labels=KEY_LABELS,
            ),
            GaugeMetricFamily(
                "elevenlabs_api_key_disabled",
                "1 if the API key is disabled (is_disabled; disable_reason says why), 0 if "
                f"not; absent when the API does not say. {KEYS_FROM} {POLLED}",
                labels=[*KEY_LABELS, "disable_reason"],
            ),
        ]

    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """One workspace's keys, by key id."""
        part = snap.part(ApiKeyLimitsPart)
        if part is None:
            return
        used, limit, disabled = cast("list[GaugeMetricFamily]", families)
        for key in sorted(part.keys, key=lambda k: k.key_id):
            labels = [snap.name, key.key_id, key.name, key.service_account, key.hashed_key]
            if key.used is not None:
                used.add_metric(labels, key.used)
            if key.limit is not None:
                limit.add_metric(labels, key.limit)
            if key.disabled is not None:
                disabled.add_metric([*labels, key.disable_reason], 1 if key.disabled else 0)


class GroupLimitsCollector(SnapshotCollector):
    """Each opted-in workspace's groups: credits used, the limit, whether unlimited."""

    def families(self) -> list[Metric]:
        """Used, limit and unlimited, per group."""
        return [
            GaugeMetricFamily(
                "elevenlabs_group_credits_used",
                "Credits the members of a workspace group used in the current billing "
                f"period (character_count). {GROUPS_FROM} {POLLED}",
                labels=GROUP_LABELS,
            ),
            GaugeMetricFamily(
                "elevenlabs_group_credits_limit",
                "Credits the group may use per billing period (group_usage_limit). Absent "
                'when the limit is "unlimited" (see elevenlabs_group_credits_unlimited) or '
                f"not given. {GROUPS_FROM} {POLLED}",
                labels=GROUP_LABELS,
            ),
            GaugeMetricFamily(
                "elevenlabs_group_credits_unlimited",
                '1 if the group\'s group_usage_limit is "unlimited", 0 if it is a number; '
                f"absent when not given. {GROUPS_FROM} {POLLED}",
                labels=GROUP_LABELS,
            ),
        ]

    def add(self, snap: WorkspaceSnapshot, families: list[Metric]) -> None:
        """One workspace's groups, by group id."""
        part = snap.part(GroupLimitsPart)
        if part is None:
            return
        used, limit, unlimited = cast("list[GaugeMetricFamily]", families)
        for group in sorted(part.groups, key=lambda g: g.group_id):
            labels = [snap.name, group.group_id, group.name]
            if group.used is not None:
                used.add_metric(labels, group.used)
            if group.limit is not None:
                limit.add_metric(labels, group.limit)
            if group.unlimited is not None:
                unlimited.add_metric(labels, 1 if group.unlimited else 0)
