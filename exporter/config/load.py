"""Building the effective config from an optional YAML file and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from exporter.config.model import (
    DEFAULT_BASE_URL,
    DEFAULT_KEY_ENV,
    DEFAULT_MAX_RESPONSE_BYTES,
    ENV_OVERRIDABLE,
    ENV_PREFIX,
    TOP_KEYS,
    Config,
    ConfigError,
    KeySource,
    Secret,
    WorkspaceConfig,
)
from exporter.config.values import (
    default_state_file,
    parse_amount,
    parse_base_url,
    parse_bool,
    parse_count_from,
    parse_duration,
    parse_int,
    parse_size,
)
from exporter.config.workspace import parse_workspace

# max_response_bytes: below 64 KiB a normal poll's answer would not fit; beyond 1 GiB
# the cap no longer protects the process.
MIN_RESPONSE_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 1024**3


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
        except UnicodeDecodeError:
            raise ConfigError("config.file", f"{path} is not UTF-8 text") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError("config.file", f"{path} is not valid YAML{where}") from None
        except ValueError as err:  # PyYAML builds dates itself: 2026-13-01 raises here
            raise ConfigError("config.file", f"{path}: {err}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("config.file", f"{path} must hold a mapping of keys")
        raw = dict(loaded or {})
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(str(key), "unknown key")
    for key in ENV_OVERRIDABLE:
        env_name = ENV_PREFIX + key.upper()
        if env_name in env:
            raw[key] = env[env_name]

    poll_interval = parse_duration(raw.get("poll_interval", 10 if demo else 60), "poll_interval")
    if poll_interval < 1:
        raise ConfigError("poll_interval", "must be at least 1s")
    bucket = parse_duration(raw.get("bucket", 60), "bucket")
    if bucket != int(bucket) or bucket < 60 or 3600 % bucket:
        raise ConfigError("bucket", "must be whole seconds, at least 60s, and divide one hour")
    lookback = parse_duration(raw.get("lookback", "2h"), "lookback")
    if lookback % bucket or lookback < 2 * bucket:
        raise ConfigError("lookback", "must be a multiple of bucket and at least two buckets")
    if "recent" in raw:
        recent = parse_duration(raw["recent"], "recent")
        if recent % bucket or not bucket <= recent <= lookback:
            raise ConfigError("recent", "must be a multiple of bucket, from one bucket to lookback")
    else:  # ten minutes, in whole buckets
        recent = min(lookback, -(-600 // bucket) * bucket)
    reread = parse_duration(raw.get("reread_interval", "10m"), "reread_interval")
    if reread > lookback:
        raise ConfigError("reread_interval", "must not be longer than lookback")
    subscription_interval = parse_duration(
        raw.get("subscription_interval", "1m" if demo else "5m"), "subscription_interval"
    )
    count_from = parse_count_from(raw.get("count_from", "billing_cycle"))
    request_timeout = parse_duration(raw.get("request_timeout", 30), "request_timeout")
    max_response_bytes = parse_size(
        raw.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES),
        "max_response_bytes",
        MIN_RESPONSE_BYTES,
        MAX_RESPONSE_BYTES,
    )
    max_concurrent = parse_int(raw.get("max_concurrent_requests", 64), "max_concurrent_requests", 1)
    max_retries = parse_int(raw.get("max_retries", 2), "max_retries", 0)
    current_bucket = parse_bool(raw.get("current_bucket", True), "current_bucket")
    budget = raw.get("budget_credits")
    default_budget = None if budget is None else parse_amount(budget, "budget_credits")

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

    default_base = parse_base_url(
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
                    "default",
                    Secret(key),
                    KeySource("env", DEFAULT_KEY_ENV),
                    default_base,
                    budget_credits=default_budget,
                )
            )
        else:
            if not isinstance(raw_list, list) or not raw_list:
                raise ConfigError("workspaces", "expected a non-empty list")
            for index, item in enumerate(raw_list):
                workspaces.append(parse_workspace(item, index, env, default_base, default_budget))
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
        current_bucket=current_bucket,
        recent=int(recent),
        reread_interval=int(reread),
        subscription_interval=subscription_interval,
        max_response_bytes=max_response_bytes,
    )
