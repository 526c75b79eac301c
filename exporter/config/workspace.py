"""One entry of ``workspaces:``: its key source, host, breakdowns and options."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exporter.config.model import (
    DEFAULT_KEY_ENV,
    DEFAULT_MAX_GROUPS,
    DEFAULT_MAX_KEYS,
    FILTER_OPERATIONS,
    GROUP_BY_VALUES,
    WORKSPACE_KEYS,
    ConfigError,
    KeySource,
    Secret,
    WorkspaceConfig,
)
from exporter.config.values import (
    mapping,
    parse_amount,
    parse_base_url,
    parse_duration,
    parse_int,
    read_key_file,
)


def parse_workspace(
    raw: object,
    index: int,
    environ: Mapping[str, str],
    default_base: str,
    default_budget: float | None = None,
) -> WorkspaceConfig:
    """One ``workspaces:`` entry; ``default_budget`` is the top-level ``budget_credits``."""
    prefix = f"workspaces[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(prefix, "expected a mapping with at least a name")
    for name in raw:
        if name not in WORKSPACE_KEYS:
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
    base_url = parse_base_url(raw.get("base_url", default_base), f"{prefix}.base_url")
    group_by = _parse_group_by(raw.get("group_by", []), f"{prefix}.group_by")
    filters = _parse_filters(raw.get("filters", []), f"{prefix}.filters")
    poll_interval = None
    if raw.get("poll_interval") is not None:
        poll_interval = parse_duration(raw["poll_interval"], f"{prefix}.poll_interval")
        if poll_interval < 1:
            raise ConfigError(f"{prefix}.poll_interval", "must be at least 1s")
    max_values: dict[str, int] = {}
    for dim, cap in mapping(raw.get("max_values", {}), f"{prefix}.max_values").items():
        if dim not in group_by or dim == "product_type":
            raise ConfigError(
                f"{prefix}.max_values.{dim}", "not one of this workspace's extra group_by"
            )
        max_values[dim] = parse_int(cap, f"{prefix}.max_values.{dim}", 1)
    allow: dict[str, frozenset[str]] = {}
    for dim, values in mapping(raw.get("allow", {}), f"{prefix}.allow").items():
        if dim not in group_by or dim == "product_type":
            raise ConfigError(f"{prefix}.allow.{dim}", "not one of this workspace's extra group_by")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{prefix}.allow.{dim}", "expected a non-empty list of values")
        allow[dim] = frozenset(str(v) for v in values)
    character_stats = raw.get("character_stats", False)
    if not isinstance(character_stats, bool):
        raise ConfigError(f"{prefix}.character_stats", "expected true or false")
    budget = default_budget
    if raw.get("budget_credits") is not None:
        budget = parse_amount(raw["budget_credits"], f"{prefix}.budget_credits")
    key_limits, max_keys = _opt_in(raw, prefix, "key_limits", "max_keys", DEFAULT_MAX_KEYS)
    group_limits, max_groups = _opt_in(
        raw, prefix, "group_limits", "max_groups", DEFAULT_MAX_GROUPS
    )
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
        budget,
        key_limits=key_limits,
        group_limits=group_limits,
        max_keys=max_keys,
        max_groups=max_groups,
    )


def _opt_in(
    raw: Mapping[str, Any], prefix: str, switch: str, cap: str, default: int
) -> tuple[bool, int]:
    """An opt-in (``key_limits``, ``group_limits``) and its cap on exported series; the
    cap only with the opt-in, so that a forgotten switch is not silently ignored."""
    enabled = raw.get(switch, False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{prefix}.{switch}", "expected true or false")
    if cap not in raw:
        return enabled, default
    if not enabled:
        raise ConfigError(f"{prefix}.{cap}", f"only with {switch}: true")
    return enabled, parse_int(raw[cap], f"{prefix}.{cap}", 1)


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
