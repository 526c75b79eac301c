"""``--web.config.file``: TLS and basic auth in the Prometheus exporter-toolkit format.

Usage data is business data, so ``/metrics`` can be served over TLS and behind basic
auth exactly as node_exporter does it: the same YAML file works for both. This module
implements the commonly used subset of that format:

```yaml
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
  client_ca_file: ca.crt
  min_version: TLS12                             # TLS12 or TLS13
  max_version: TLS13
basic_auth_users:
  alice: $2y$10$...                              # bcrypt hashes only
http_server_config:
  headers: {X-Frame-Options: deny}
```

Keys of the format this exporter does not implement (inline ``cert``/``key``,
``cipher_suites``, ``rate_limit``, ...) are rejected by name rather than silently
ignored: a user who relies on one must learn at start-up that it has no effect.
Relative paths are relative to the web config file's directory, as in the toolkit.
Everything is validated, and the TLS context built once, at load time, so that every
mistake stops the exporter at start-up with one line naming the key.

This module reads the file and its ``http_server_config``, and wraps the app;
:mod:`exporter.web.tls` parses ``tls_server_config`` and builds the context,
:mod:`exporter.web.auth` parses ``basic_auth_users`` and checks passwords, and
:mod:`exporter.web.fields` names the keys in every message.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.config import ConfigError
from exporter.web.auth import BasicAuth, parse_users
from exporter.web.fields import FLAG, check_keys, key, mapping
from exporter.web.server import StartResponse, WSGIApp
from exporter.web.tls import TLSConfig, build_context, parse_tls

REALM = "elevenlabs-exporter"

_TOP_KEYS = frozenset(("tls_server_config", "http_server_config", "basic_auth_users"))
_HTTP_KEYS = frozenset(("headers", "http2"))
# Same allow-list as the toolkit, so a file valid here is valid for node_exporter:
# header name -> accepted values (empty: any value).
_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}


@dataclass(frozen=True)
class WebConfig:
    """A parsed web config file: optional TLS, optional basic auth users, extra headers.

    An empty file is valid and changes nothing, as with the toolkit.
    """

    path: Path
    tls: TLSConfig | None = None
    # (user, bcrypt hash) pairs; left out of repr so hashes never reach a log line.
    basic_auth_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    headers: tuple[tuple[str, str], ...] = ()

    def ssl_context(self) -> ssl.SSLContext | None:
        """A server-side TLS context, or None when the file configures no TLS.

        Raises ConfigError naming the key when a file cannot be read or used.
        """
        if self.tls is None:
            return None
        return build_context(self.tls)

    def protect(self, app: WSGIApp) -> WSGIApp:
        """Wrap ``app`` so every path demands basic auth and carries the extra headers.

        Every path is protected, ``/healthz`` and ``/readyz`` included, as the toolkit
        does: one rule is easier to reason about than a list of exceptions.
        """
        if not self.basic_auth_users and not self.headers:
            return app
        checker = BasicAuth(dict(self.basic_auth_users)) if self.basic_auth_users else None
        extra = list(self.headers)
        extra_names = {name.lower() for name, _ in extra}

        def protected(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                kept = [(n, v) for n, v in headers if n.lower() not in extra_names]
                return start_response(status, kept + extra, exc_info)

            if checker is not None and not checker.allows(environ.get("HTTP_AUTHORIZATION", "")):
                body = b"Unauthorized\n"
                start(
                    "401 Unauthorized",
                    [
                        ("Content-Type", "text/plain; charset=utf-8"),
                        ("Content-Length", str(len(body))),
                        ("WWW-Authenticate", f'Basic realm="{REALM}"'),
                    ],
                )
                return [body]
            return app(environ, start)

        return protected

    def describe(self) -> dict[str, Any]:
        """What the file turns on, safe to log: no hashes, no key material."""
        return {
            "web_config_file": str(self.path),
            "tls": self.tls is not None,
            "tls_client_auth": self.tls.client_auth_type if self.tls else None,
            "basic_auth_users": len(self.basic_auth_users),
        }


def load_web_config(path: Path) -> WebConfig:
    """Read, validate and return the web config; every problem is a ConfigError.

    The TLS context is built here once, so that an unreadable or mismatched
    certificate stops the exporter at start-up instead of failing every handshake.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(FLAG, f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(FLAG, f"{path} is not UTF-8 text") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(FLAG, f"{path} is not valid YAML{where}") from None
    raw = mapping(loaded, "", f"{path} must hold a mapping of keys")
    check_keys(raw, "", _TOP_KEYS)
    base = path.parent
    config = WebConfig(
        path=path,
        tls=parse_tls(raw.get("tls_server_config"), base),
        basic_auth_users=parse_users(raw.get("basic_auth_users")),
        headers=_parse_http(raw.get("http_server_config")),
    )
    config.ssl_context()
    return config


def _parse_http(value: object) -> tuple[tuple[str, str], ...]:
    where = "http_server_config"
    raw = mapping(value, where)
    check_keys(raw, where, _HTTP_KEYS)
    http2 = raw.get("http2", True)
    if not isinstance(http2, bool):
        # Accepted for compatibility; the server speaks HTTP/1.1 either way.
        raise ConfigError(key(f"{where}.http2"), "must be true or false")
    headers_where = f"{where}.headers"
    headers = []
    for name, header_value in mapping(raw.get("headers"), headers_where).items():
        at = key(f"{headers_where}.{name}")
        if name not in _HEADERS:
            raise ConfigError(at, f"cannot be configured (allowed: {', '.join(_HEADERS)})")
        if header_value is None or header_value == "":
            continue  # blank means unset, as in the toolkit
        if not isinstance(header_value, str) or "\r" in header_value or "\n" in header_value:
            raise ConfigError(at, "must be a single-line string")
        allowed = _HEADERS[name]
        if allowed and header_value not in allowed:
            raise ConfigError(at, f"expected one of {', '.join(allowed)}, got {header_value!r}")
        headers.append((name, header_value))
    return tuple(headers)
