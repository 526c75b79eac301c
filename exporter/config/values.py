"""Parsers for single config values: durations, sizes, numbers, URLs, dates, key files.

Each raises :class:`~exporter.config.model.ConfigError` naming the key it read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from exporter.config.model import ConfigError, format_size

_DURATION_RE = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_RE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?")
_UNIT_BYTES = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
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


def parse_size(value: object, key: str, minimum: int, maximum: int) -> int:
    """Bytes from a whole number or a size like "16MiB", "512KiB" or "20MB"."""
    expected = f"expected a size like 16MiB or 512KiB, got {value!r}"
    if isinstance(value, bool):
        raise ConfigError(key, expected)
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE_RE.fullmatch(value.strip())):
        size = int(match.group(1)) * _UNIT_BYTES[match.group(2)]
    else:
        raise ConfigError(key, expected)
    if not minimum <= size <= maximum:
        raise ConfigError(key, f"must be from {format_size(minimum)} to {format_size(maximum)}")
    return size


def parse_count_from(value: object) -> datetime | None:
    """``billing_cycle`` (None) or an RFC 3339 date/time, as UTC."""
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


def parse_int(value: object, key: str, minimum: int) -> int:
    """A whole number (or its string) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(key, f"expected a whole number, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(key, f"expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(key, f"must be at least {minimum}")
    return number


def parse_base_url(value: object, key: str) -> str:
    """An http(s) URL without a trailing slash."""
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


def mapping(value: object, key: str) -> dict[str, Any]:
    """A mapping with string keys, or a config error."""
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a mapping")
    return {str(k): v for k, v in value.items()}


def parse_bool(value: object, key: str) -> bool:
    """true or false (also as the strings an environment variable carries)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(key, f"expected true or false, got {value!r}")


def parse_amount(value: object, key: str) -> float:
    """A positive, finite number (or its string), such as a credit allowance."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"expected a positive number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(key, f"expected a positive number, got {value!r}") from None
    if not 0 < number < 1e15:
        raise ConfigError(key, "must be a positive number below 1e15")
    return number
