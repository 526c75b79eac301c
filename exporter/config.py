"""Configuration, parsed once into frozen dataclasses.

Nothing else in the exporter reads raw YAML, dicts or ``os.environ``: everything it
needs arrives here, is validated here, and fails here with one line naming the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_KEY_ENV = "ELEVENLABS_API_KEY"
ENV_PREFIX = "ELEVENLABS_EXPORTER_"

# Top-level keys that an environment variable ELEVENLABS_EXPORTER_<KEY> overrides.
_ENV_OVERRIDABLE = (
    "poll_interval",
    "lookback",
    "bucket",
    "count_from",
    "state_file",
    "request_timeout",
    "max_concurrent_requests",
    "max_retries",
)
_TOP_KEYS = frozenset((*_ENV_OVERRIDABLE, "workspaces"))
_WORKSPACE_KEYS = frozenset(
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
_DURATION_RE = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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
    max_concurrent_requests: int = 4
    max_retries: int = 2

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
                }
                for ws in self.workspaces
            ],
        }


def parse_duration(value: object, key: str) -> float:
    """Parse "90s", "5m", "1h30m", "24h" or a number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a duration like 90s, 5m or 2h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for match in _DURATION_RE.finditer(text):
                if match.start() != pos:
                    break
                seconds += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(text) or pos == 0:
                raise ConfigError(key, f"expected a duration like 90s, 5m or 2h, got {value!r}")
    else:
        raise ConfigError(key, f"expected a duration like 90s, 5m or 2h, got {value!r}")
    if seconds <= 0:
        raise ConfigError(key, "must be greater than zero")
    return seconds


def _parse_count_from(value: object) -> datetime | None:
    key = "count_from"
    if value is None or value == "billing_cycle":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                key, f"expected billing_cycle or an RFC 3339 date/time, got {value!r}"
            ) from None
    else:
        raise ConfigError(key, f"expected billing_cycle or an RFC 3339 date/time, got {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_int(value: object, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(key, f"expected a whole number, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(key, f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(key, f"must be at least {minimum}")
    return number


def _parse_base_url(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a URL, got {value!r}")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(key, f"expected an http(s) URL, got {value!r}")
    return value.rstrip("/")


def default_state_file(environ: Mapping[str, str]) -> Path:
    """Where the ledger persists by default: systemd's StateDirectory, else XDG state."""
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0]) / "state.json"
    base = environ.get("XDG_STATE_HOME") or str(
        Path(environ.get("HOME") or Path.home()) / ".local/state"
    )
    return Path(base) / "elevenlabs-exporter" / "state.json"


def read_key_file(path: Path, key: str) -> str:
    """Read a key file; a missing or empty file is a config error naming the key."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError(key, f"cannot read {path}: {err.strerror}") from None
    if not text:
        raise ConfigError(key, f"{path} is empty")
    return text


def _parse_workspace(
    raw: object, index: int, environ: Mapping[str, str], default_base: str
) -> WorkspaceConfig:
    prefix = f"workspaces[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(prefix, "expected a mapping with at least a name")
    for name in raw:
        if name not in _WORKSPACE_KEYS:
            raise ConfigError(f"{prefix}.{name}", "unknown key")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{prefix}.name", "required, a non-empty string")
    sources = [k for k in ("api_key_env", "api_key_file", "api_key") if k in raw]
    if len(sources) > 1:
        raise ConfigError(
            prefix, f"set only one of api_key_env, api_key_file, api_key (got {sources})"
        )
    source = sources[0] if sources else "api_key_env"
    if source == "api_key":
        value = raw["api_key"]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{prefix}.api_key", "must be a non-empty string")
        key, key_source = value.strip(), KeySource("config")
    elif source == "api_key_file":
        path = raw["api_key_file"]
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{prefix}.api_key_file", "must be a file path")
        key = read_key_file(Path(path), f"{prefix}.api_key_file")
        key_source = KeySource("file", path)
    else:
        env_name = raw.get("api_key_env", DEFAULT_KEY_ENV)
        if not isinstance(env_name, str) or not env_name:
            raise ConfigError(f"{prefix}.api_key_env", "must name an environment variable")
        key = environ.get(env_name, "").strip()
        if not key:
            raise ConfigError(
                f"{prefix}.api_key_env", f"environment variable {env_name} is not set"
            )
        key_source = KeySource("env", env_name)
    base_url = _parse_base_url(raw.get("base_url", default_base), f"{prefix}.base_url")
    group_by = _parse_group_by(raw.get("group_by", []), f"{prefix}.group_by")
    filters = _parse_filters(raw.get("filters", []), f"{prefix}.filters")
    poll_interval = None
    if raw.get("poll_interval") is not None:
        poll_interval = parse_duration(raw["poll_interval"], f"{prefix}.poll_interval")
        if poll_interval < 1:
            raise ConfigError(f"{prefix}.poll_interval", "must be at least 1s")
    max_values: dict[str, int] = {}
    for dim, cap in _mapping(raw.get("max_values", {}), f"{prefix}.max_values").items():
        if dim not in group_by:
            raise ConfigError(f"{prefix}.max_values.{dim}", "not one of this workspace's group_by")
        max_values[dim] = _parse_int(cap, f"{prefix}.max_values.{dim}", 1)
    allow: dict[str, frozenset[str]] = {}
    for dim, values in _mapping(raw.get("allow", {}), f"{prefix}.allow").items():
        if dim not in group_by or dim == "product_type":
            raise ConfigError(f"{prefix}.allow.{dim}", "not one of this workspace's extra group_by")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{prefix}.allow.{dim}", "expected a non-empty list of values")
        allow[dim] = frozenset(str(v) for v in values)
    character_stats = raw.get("character_stats", False)
    if not isinstance(character_stats, bool):
        raise ConfigError(f"{prefix}.character_stats", "expected true or false")
    return WorkspaceConfig(
        name.strip(),
        Secret(key),
        key_source,
        base_url,
        group_by,
        filters,
        poll_interval,
        max_values,
        allow,
        character_stats,
    )


def _mapping(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a mapping")
    return {str(k): v for k, v in value.items()}


def _parse_group_by(value: object, key: str) -> tuple[str, ...]:
    """product_type first, then the opt-in extra dimensions in the order given."""
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list of dimensions, e.g. [voice_id, model]")
    dims = ["product_type"]
    for item in value:
        if item not in GROUP_BY_VALUES:
            raise ConfigError(key, f"unknown dimension {item!r}; one of {sorted(GROUP_BY_VALUES)}")
        if item not in dims:
            dims.append(str(item))
    return tuple(dims)


def _parse_filters(value: object, key: str) -> tuple[Mapping[str, Any], ...]:
    """ColumnFilter objects, passed through to the usage endpoint as they are."""
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list of {column, operation, values}")
    filters = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, dict) or set(item) != {"column", "operation", "values"}:
            raise ConfigError(where, "expected exactly column, operation and values")
        if not isinstance(item["column"], str) or not item["column"]:
            raise ConfigError(f"{where}.column", "expected a column name")
        if item["operation"] not in FILTER_OPERATIONS:
            raise ConfigError(f"{where}.operation", f"one of {sorted(FILTER_OPERATIONS)}")
        if not isinstance(item["values"], list):
            raise ConfigError(f"{where}.values", "expected a list (even for eq)")
        filters.append(
            {
                "column": item["column"],
                "operation": item["operation"],
                "values": list(item["values"]),
            }
        )
    return tuple(filters)


def load_config(
    path: Path | None, environ: Mapping[str, str] | None = None, *, demo: bool = False
) -> Config:
    """Build the effective config from an optional YAML file and the environment.

    Environment variables override the file. Without workspaces in the file, one
    workspace named ``default`` is read from ``ELEVENLABS_API_KEY`` and
    ``ELEVENLABS_BASE_URL``. With ``demo`` the workspaces are left empty: the caller
    points one at the embedded simulator.
    """
    env = dict(os.environ if environ is None else environ)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError("config.file", f"cannot read {path}: {err.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError("config.file", f"{path} is not valid YAML{where}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("config.file", f"{path} must hold a mapping of keys")
        raw = dict(loaded or {})
    for key in raw:
        if key not in _TOP_KEYS:
            raise ConfigError(str(key), "unknown key")
    for key in _ENV_OVERRIDABLE:
        env_name = ENV_PREFIX + key.upper()
        if env_name in env:
            raw[key] = env[env_name]

    poll_interval = parse_duration(raw.get("poll_interval", 60), "poll_interval")
    if poll_interval < 1:
        raise ConfigError("poll_interval", "must be at least 1s")
    bucket = parse_duration(raw.get("bucket", 60), "bucket")
    if bucket != int(bucket) or bucket < 60 or 3600 % bucket:
        raise ConfigError("bucket", "must be whole seconds, at least 60s, and divide one hour")
    lookback = parse_duration(raw.get("lookback", "2h"), "lookback")
    if lookback % bucket or lookback < 2 * bucket:
        raise ConfigError("lookback", "must be a multiple of bucket and at least two buckets")
    count_from = _parse_count_from(raw.get("count_from", "billing_cycle"))
    request_timeout = parse_duration(raw.get("request_timeout", 30), "request_timeout")
    max_concurrent = _parse_int(raw.get("max_concurrent_requests", 4), "max_concurrent_requests", 1)
    max_retries = _parse_int(raw.get("max_retries", 2), "max_retries", 0)

    state_file: Path | None
    if "state_file" in raw:
        value = raw["state_file"]
        if value is None or value in ("", "null", "none"):
            state_file = None
        elif isinstance(value, str):
            state_file = Path(value)
        else:
            raise ConfigError("state_file", f"expected a file path or null, got {value!r}")
    else:
        state_file = None if demo else default_state_file(env)

    default_base = _parse_base_url(
        env.get("ELEVENLABS_BASE_URL", DEFAULT_BASE_URL), "ELEVENLABS_BASE_URL"
    )
    workspaces: list[WorkspaceConfig] = []
    if not demo:
        raw_list = raw.get("workspaces")
        if raw_list is None:
            key = env.get(DEFAULT_KEY_ENV, "").strip()
            if not key:
                raise ConfigError(
                    "workspaces",
                    f"no workspace configured: set {DEFAULT_KEY_ENV}, list workspaces in "
                    "--config.file, or run with --demo",
                )
            workspaces.append(
                WorkspaceConfig(
                    "default", Secret(key), KeySource("env", DEFAULT_KEY_ENV), default_base
                )
            )
        else:
            if not isinstance(raw_list, list) or not raw_list:
                raise ConfigError("workspaces", "expected a non-empty list")
            for index, item in enumerate(raw_list):
                workspaces.append(_parse_workspace(item, index, env, default_base))
            names = [ws.name for ws in workspaces]
            for name in names:
                if names.count(name) > 1:
                    raise ConfigError("workspaces", f"duplicate workspace name {name!r}")

    return Config(
        workspaces=tuple(workspaces),
        poll_interval=poll_interval,
        lookback=int(lookback),
        bucket=int(bucket),
        count_from=count_from,
        state_file=state_file,
        request_timeout=request_timeout,
        max_concurrent_requests=max_concurrent,
        max_retries=max_retries,
    )
