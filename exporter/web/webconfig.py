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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import ssl
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from exporter.config import ConfigError
from exporter.web.server import StartResponse, WSGIApp

FLAG = "web.config.file"
REALM = "elevenlabs-exporter"

_TOP_KEYS = frozenset(("tls_server_config", "http_server_config", "basic_auth_users"))
_TLS_KEYS = frozenset(
    ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version")
)
_HTTP_KEYS = frozenset(("headers", "http2"))
# Keys of the exporter-toolkit format that this exporter does not implement.
_UNSUPPORTED = frozenset(
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
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# The toolkit's client_auth_type values that Python's ssl module can express.
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Same allow-list as the toolkit, so a file valid here is valid for node_exporter:
# header name -> accepted values (empty: any value).
_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# Salt and hash of a random string. Unknown users are checked against it, at the
# highest configured cost, so a wrong name costs as long as a wrong password and
# response times do not reveal which user names exist.
_DUMMY_TAIL = "/8Pcht3VW20qgmPcPmYOxO.IFQ1rx4JP6zyF9evFg2NS7m8fawd9y"


def _key(path: str) -> str:
    return f"{FLAG}: {path}" if path else FLAG


@dataclass(frozen=True)
class TLSConfig:
    """Where the server's certificate and key are, and what TLS clients must offer."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"


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
        return _build_context(self.tls)

    def protect(self, app: WSGIApp) -> WSGIApp:
        """Wrap ``app`` so every path demands basic auth and carries the extra headers.

        Every path is protected, ``/healthz`` and ``/readyz`` included, as the toolkit
        does: one rule is easier to reason about than a list of exceptions.
        """
        if not self.basic_auth_users and not self.headers:
            return app
        checker = _BasicAuth(dict(self.basic_auth_users)) if self.basic_auth_users else None
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


class _BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes, quickly.

    bcrypt is slow on purpose (about 100 ms at cost 10) and Prometheus scrapes with the
    same credentials every few seconds, so a successful check is remembered: per user,
    an HMAC-SHA-256 (under a key random to this process) of user, hash and password.
    Only successes are stored, so the cache holds at most one entry per configured
    user and an attacker cannot grow it. Lookups compare digests in constant time.
    A wrong guess always pays the full bcrypt cost, and bcrypt runs one at a time so a
    flood of bad guesses takes one core, not all of them.
    """

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = {user: hashed.encode("ascii") for user, hashed in users.items()}
        cost = max(int(hashed[4:6]) for hashed in users.values())
        self._dummy = f"$2b${cost:02d}${_DUMMY_TAIL}".encode("ascii")
        self._hmac_key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()

    def _digest(self, user: bytes, hashed: bytes, password: bytes) -> bytes:
        mac = hmac.new(self._hmac_key, digestmod=hashlib.sha256)
        for part in (user, hashed, password):
            # Length-prefixed, so no two different triples share an input.
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return mac.digest()

    def allows(self, header: str) -> bool:
        """True when the header carries a configured user and that user's password."""
        credentials = _parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        known = self._users.get(user)
        hashed = known if known is not None else self._dummy
        digest = self._digest(user.encode("utf-8"), hashed, password)
        with self._lock:
            cached = self._verified.get(user)
        if cached is not None and hmac.compare_digest(cached, digest):
            return True
        with self._bcrypt_lock:
            try:
                matches = bcrypt.checkpw(password, hashed)
            except ValueError:  # longer than bcrypt's 72 bytes, or a hash it rejects
                matches = False
        if not (matches and known is not None):
            return False
        with self._lock:
            self._verified[user] = digest
        return True


def _parse_basic(header: str) -> tuple[str, bytes] | None:
    """(user, password) from an ``Authorization: Basic`` value, None if it is not one."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = raw.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


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
    raw = _mapping(loaded, "", f"{path} must hold a mapping of keys")
    _check_keys(raw, "", _TOP_KEYS)
    base = path.parent
    config = WebConfig(
        path=path,
        tls=_parse_tls(raw.get("tls_server_config"), base),
        basic_auth_users=_parse_users(raw.get("basic_auth_users")),
        headers=_parse_http(raw.get("http_server_config")),
    )
    config.ssl_context()
    return config


def _mapping(value: object, where: str, message: str = "expected a mapping") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(_key(where), message)
    return value


def _check_keys(raw: Mapping[Any, Any], prefix: str, known: frozenset[str]) -> None:
    for name in raw:
        path = f"{prefix}.{name}" if prefix else str(name)
        if path in _UNSUPPORTED:
            raise ConfigError(_key(path), "not supported by elevenlabs-exporter")
        if name not in known:
            raise ConfigError(_key(path), "unknown key")


def _string(raw: Mapping[str, Any], name: str, where: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(_key(f"{where}.{name}"), "must be a non-empty string")
    return value.strip()


def _parse_tls(value: object, base: Path) -> TLSConfig | None:
    where = "tls_server_config"
    raw = _mapping(value, where)
    if not raw:
        return None
    _check_keys(raw, where, _TLS_KEYS)
    files: dict[str, Path | None] = {}
    for name in ("cert_file", "key_file", "client_ca_file"):
        text = _string(raw, name, where)
        files[name] = base / text if text is not None else None
    cert_file, key_file, ca_file = files["cert_file"], files["key_file"], files["client_ca_file"]
    if cert_file is None:
        raise ConfigError(_key(f"{where}.cert_file"), "required when tls_server_config is set")
    if key_file is None:
        raise ConfigError(_key(f"{where}.key_file"), "required when tls_server_config is set")
    client_auth = _string(raw, "client_auth_type", where) or "NoClientCert"
    if client_auth not in _CLIENT_AUTH:
        raise ConfigError(
            _key(f"{where}.client_auth_type"),
            f"expected one of {', '.join(_CLIENT_AUTH)}, got {client_auth!r}",
        )
    if ca_file is None and client_auth != "NoClientCert":
        raise ConfigError(
            _key(f"{where}.client_ca_file"), f"required with client_auth_type {client_auth}"
        )
    if ca_file is not None and client_auth == "NoClientCert":
        raise ConfigError(
            _key(f"{where}.client_auth_type"),
            "client_ca_file is set but no client certificate is asked for: "
            "use RequireAndVerifyClientCert",
        )
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = _string(raw, name, where) or default
        if version not in _VERSIONS:
            raise ConfigError(_key(f"{where}.{name}"), f"expected TLS12 or TLS13, got {version!r}")
        versions[name] = version
    if _VERSIONS[versions["min_version"]] > _VERSIONS[versions["max_version"]]:
        raise ConfigError(_key(f"{where}.min_version"), "is above max_version")
    return TLSConfig(
        cert_file=cert_file,
        key_file=key_file,
        client_auth_type=client_auth,
        client_ca_file=ca_file,
        min_version=versions["min_version"],
        max_version=versions["max_version"],
    )


def _parse_users(value: object) -> tuple[tuple[str, str], ...]:
    where = "basic_auth_users"
    raw = _mapping(value, where, "expected a mapping of user names to bcrypt hashes")
    users = []
    for name, hashed in raw.items():
        user = str(name) if isinstance(name, str | int) and not isinstance(name, bool) else ""
        if not user or ":" in user:
            raise ConfigError(_key(where), "user names must be non-empty and contain no ':'")
        # The message never repeats the value: it may be a plain-text password.
        if not isinstance(hashed, str) or not _BCRYPT_HASH.fullmatch(hashed.strip()):
            raise ConfigError(
                _key(f"{where}.{user}"),
                "must be a bcrypt hash ($2y$10$...), not a plain-text password; make one "
                "with: htpasswd -nBC 10 \"\" | tr -d ':\\n'",
            )
        users.append((user, hashed.strip()))
    return tuple(users)


def _parse_http(value: object) -> tuple[tuple[str, str], ...]:
    where = "http_server_config"
    raw = _mapping(value, where)
    _check_keys(raw, where, _HTTP_KEYS)
    http2 = raw.get("http2", True)
    if not isinstance(http2, bool):
        # Accepted for compatibility; the server speaks HTTP/1.1 either way.
        raise ConfigError(_key(f"{where}.http2"), "must be true or false")
    headers_where = f"{where}.headers"
    headers = []
    for name, header_value in _mapping(raw.get("headers"), headers_where).items():
        key = _key(f"{headers_where}.{name}")
        if name not in _HEADERS:
            raise ConfigError(key, f"cannot be configured (allowed: {', '.join(_HEADERS)})")
        if header_value is None or header_value == "":
            continue  # blank means unset, as in the toolkit
        if not isinstance(header_value, str) or "\r" in header_value or "\n" in header_value:
            raise ConfigError(key, "must be a single-line string")
        allowed = _HEADERS[name]
        if allowed and header_value not in allowed:
            raise ConfigError(key, f"expected one of {', '.join(allowed)}, got {header_value!r}")
        headers.append((name, header_value))
    return tuple(headers)


def _read_pem(path: Path, key: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(key, f"cannot read {path}: {err.strerror}") from None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path} is not a PEM file") from None


def _build_context(tls: TLSConfig) -> ssl.SSLContext:
    """Build the server context, blaming the key whose file is at fault."""
    where = "tls_server_config"
    cert_key = _key(f"{where}.cert_file")
    key_key = _key(f"{where}.key_file")
    ca_key = _key(f"{where}.client_ca_file")

    cert_text = _read_pem(tls.cert_file, cert_key)
    _read_pem(tls.key_file, key_key)
    try:
        # Parsing the certificate on its own tells a bad certificate from a bad key.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=cert_text)
    except (ssl.SSLError, ValueError):
        raise ConfigError(cert_key, f"{tls.cert_file} holds no valid PEM certificate") from None

    def no_password() -> bytes:
        # Without a callback OpenSSL would prompt on the terminal for a passphrase.
        raise ConfigError(key_key, f"{tls.key_file} is encrypted; decrypt it first")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.maximum_version = _VERSIONS[tls.max_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=no_password)
    except ssl.SSLError as err:
        reason = (
            "does not match cert_file"
            if err.reason == "KEY_VALUES_MISMATCH"
            else "holds no valid PEM private key"
        )
        raise ConfigError(key_key, f"{tls.key_file} {reason}") from None
    except OSError as err:
        raise ConfigError(key_key, f"cannot load {tls.key_file}: {err.strerror}") from None
    if tls.client_ca_file is not None:
        _read_pem(tls.client_ca_file, ca_key)
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, OSError):
            raise ConfigError(
                ca_key, f"{tls.client_ca_file} holds no valid PEM certificate"
            ) from None
    context.verify_mode = _CLIENT_AUTH[tls.client_auth_type]
    context.set_alpn_protocols(["http/1.1"])
    return context
