"""The effective configuration as frozen dataclasses, and the names of every key.

Nothing else in the exporter reads raw YAML, dicts or ``os.environ``: everything it
needs arrives in these objects, validated by :mod:`exporter.config.load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_KEY_ENV = "ELEVENLABS_API_KEY"
ENV_PREFIX = "ELEVENLABS_EXPORTER_"

# Top-level keys that an environment variable ELEVENLABS_EXPORTER_<KEY> overrides.
ENV_OVERRIDABLE = (
    "poll_interval",
    "lookback",
    "bucket",
    "count_from",
    "state_file",
    "request_timeout",
    "max_concurrent_requests",
    "max_retries",
    "current_bucket",
    "budget_credits",
    "recent",
    "reread_interval",
    "subscription_interval",
    "max_response_bytes",
)
TOP_KEYS = frozenset((*ENV_OVERRIDABLE, "workspaces"))
WORKSPACE_KEYS = frozenset(
    (
        "name",
        "api_key_env",
        "api_key_file",
        "api_key",
        "base_url",
        "group_by",
        "filters",
        "poll_interval",
        "max_values",
        "allow",
        "character_stats",
        "budget_credits",
        "key_limits",
        "group_limits",
        "max_keys",
        "max_groups",
    )
)
# Values the usage endpoint accepts for group_by (product_type is always grouped first).
GROUP_BY_VALUES = frozenset(
    (
        "product_type",
        "model",
        "voice_id",
        "user_id",
        "fiat_currency",
        "fiat_charge_type",
        "region",
        "reporting_workspace_id",
        "request_source",
        "resource_id",
        "subresource_id",
        "request_queue_type",
        "voice_multiplier",
        "hashed_xi_api_key",
        "billing_group_id",
        "surface",
        "actor",
    )
)
FILTER_OPERATIONS = frozenset(("in", "not_in", "le", "ge", "lt", "gt", "eq", "neq"))
DEFAULT_MAX_VALUES = 20  # series per extra dimension; the rest is folded into "other"
# API keys (key_limits) and groups (group_limits) exported per workspace at most; the
# ones nearest their limit are kept, the rest are not exported.
DEFAULT_MAX_KEYS = 100
DEFAULT_MAX_GROUPS = 100
# The largest API answer read (decoded); larger ones are refused as bad_response. Far
# above any real answer: a poll's largest is a day of minute buckets, a few MiB even
# with many label sets.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def format_size(size: int) -> str:
    """Bytes as the config reads them back: in the largest binary unit that divides them."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


class ConfigError(Exception):
    """A configuration problem, reported as one line naming the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config error: {key}: {message}")
        self.key = key


class Secret:
    """An API key that never prints itself: repr, str and format all show a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the real value; call only where the key goes on the wire."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class KeySource:
    """Where a workspace's API key comes from; files are re-read when they change."""

    kind: str  # "env", "file", "config", "demo"
    where: str = ""

    def describe(self) -> str:
        """A description safe to print: it names the source, never the value."""
        if self.kind == "env":
            return f"from environment variable {self.where}"
        if self.kind == "file":
            return f"from file {self.where}"
        if self.kind == "demo":
            return "built-in demo key"
        return "inline in the config file"


@dataclass(frozen=True)
class WorkspaceConfig:
    """One ElevenLabs workspace to poll: its label value, key and API host."""

    name: str
    api_key: Secret = field(repr=False)
    key_source: KeySource
    base_url: str = DEFAULT_BASE_URL
    group_by: tuple[str, ...] = ("product_type",)
    filters: tuple[Mapping[str, Any], ...] = ()
    poll_interval: float | None = None  # None: the global poll_interval
    max_values: Mapping[str, int] = field(default_factory=dict)
    allow: Mapping[str, frozenset[str]] = field(default_factory=dict)
    character_stats: bool = False
    budget_credits: float | None = None  # the workspace's own allowance per cycle
    key_limits: bool = False  # export each API key's credit limit (GET /v1/service-accounts)
    group_limits: bool = False  # export each group's credit limit (GET /v1/workspace/groups)
    max_keys: int = DEFAULT_MAX_KEYS
    max_groups: int = DEFAULT_MAX_GROUPS

    def cap(self, dimension: str) -> int | None:
        """Most series a dimension may have (None: unbounded, for product_type)."""
        if dimension == "product_type":
            return None
        return self.max_values.get(dimension, DEFAULT_MAX_VALUES)


@dataclass(frozen=True)
class Config:
    """The effective configuration; durations are in seconds."""

    workspaces: tuple[WorkspaceConfig, ...]
    poll_interval: float = 60.0
    lookback: int = 7200
    bucket: int = 60
    count_from: datetime | None = None  # None: the start of the current billing cycle
    state_file: Path | None = None
    request_timeout: float = 30.0
    max_concurrent_requests: int = 64  # in flight at once for the whole process
    max_retries: int = 2
    current_bucket: bool = True  # read the still-growing current bucket every poll
    recent: int = 600  # seconds re-read every poll
    reread_interval: int = 600  # seconds between re-reads of the whole lookback
    subscription_interval: float = 300.0  # seconds between subscription polls
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def secrets(self) -> list[str]:
        """Every key value, for the log redactor."""
        return [ws.api_key.reveal() for ws in self.workspaces]

    def describe(self) -> dict[str, Any]:
        """The effective configuration as plain data, with every secret left out."""
        return {
            "poll_interval": f"{self.poll_interval:g}s",
            "lookback": f"{self.lookback}s",
            "bucket": f"{self.bucket}s",
            "count_from": self.count_from.isoformat() if self.count_from else "billing_cycle",
            "state_file": str(self.state_file) if self.state_file else None,
            "request_timeout": f"{self.request_timeout:g}s",
            "max_concurrent_requests": self.max_concurrent_requests,
            "max_retries": self.max_retries,
            "current_bucket": self.current_bucket,
            "recent": f"{self.recent}s",
            "reread_interval": f"{self.reread_interval}s",
            "subscription_interval": f"{self.subscription_interval:g}s",
            "max_response_bytes": format_size(self.max_response_bytes),
            "workspaces": [
                {
                    "name": ws.name,
                    "api_key": ws.key_source.describe(),
                    "base_url": ws.base_url,
                    "group_by": list(ws.group_by),
                    **({"filters": [dict(f) for f in ws.filters]} if ws.filters else {}),
                    **({"poll_interval": f"{ws.poll_interval:g}s"} if ws.poll_interval else {}),
                    **({"max_values": dict(ws.max_values)} if ws.max_values else {}),
                    **({"allow": {k: sorted(v) for k, v in ws.allow.items()}} if ws.allow else {}),
                    **({"character_stats": True} if ws.character_stats else {}),
                    **(
                        {"budget_credits": ws.budget_credits}
                        if ws.budget_credits is not None
                        else {}
                    ),
                    **({"key_limits": True, "max_keys": ws.max_keys} if ws.key_limits else {}),
                    **(
                        {"group_limits": True, "max_groups": ws.max_groups}
                        if ws.group_limits
                        else {}
                    ),
                }
                for ws in self.workspaces
            ],
        }
