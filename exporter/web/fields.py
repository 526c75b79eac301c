"""Reading the keys of ``--web.config.file``, each mistake one line naming the key.

The file's sections are parsed in three places (:mod:`exporter.web.webconfig` for
the file and ``http_server_config``, :mod:`exporter.web.tls`, :mod:`exporter.web.auth`);
the helpers they share live here so that every message names its key the same way,
``web.config.file: tls_server_config.cert_file: ...``, and unknown or unsupported
keys are refused the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.config import ConfigError

FLAG = "web.config.file"

# Keys of the exporter-toolkit format that this exporter does not implement.
UNSUPPORTED = frozenset(
    (
        "rate_limit",
        "tls_server_config.cert",
        "tls_server_config.key",
        "tls_server_config.client_ca",
        "tls_server_config.client_allowed_sans",
        "tls_server_config.cipher_suites",
        "tls_server_config.prefer_server_cipher_suites",
        "tls_server_config.curve_preferences",
    )
)


def key(path: str) -> str:
    """The name a message gives the key at ``path`` (``""``: the file itself)."""
    return f"{FLAG}: {path}" if path else FLAG


def mapping(value: object, where: str, message: str = "expected a mapping") -> dict[str, Any]:
    """The section at ``where`` as a dict; an absent section is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key(where), message)
    return value


def check_keys(raw: Mapping[Any, Any], prefix: str, known: frozenset[str]) -> None:
    """Refuse keys the toolkit has but this exporter does not implement, by name, and
    keys the format does not have at all."""
    for name in raw:
        path = f"{prefix}.{name}" if prefix else str(name)
        if path in UNSUPPORTED:
            raise ConfigError(key(path), "not supported by elevenlabs-exporter")
        if name not in known:
            raise ConfigError(key(path), "unknown key")


def string(raw: Mapping[str, Any], name: str, where: str) -> str | None:
    """The non-empty string at ``where.name``, stripped, or None when absent."""
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key(f"{where}.{name}"), "must be a non-empty string")
    return value.strip()
