"""TLS for ``/metrics``: the ``tls_server_config`` section and the server context.

Everything is checked, and the context built, when the web config is loaded, so an
unreadable, mismatched or encrypted certificate or key stops the exporter at start-up
with one line naming the key at fault, instead of failing every handshake later.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from exporter.config import ConfigError
from exporter.web.fields import check_keys, key, mapping, string

_TLS_KEYS = frozenset(
    ("cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version")
)
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# The toolkit's client_auth_type values that Python's ssl module can express.
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True)
class TLSConfig:
    """Where the server's certificate and key are, and what TLS clients must offer."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"


def parse_tls(value: object, base: Path) -> TLSConfig | None:
    """The ``tls_server_config`` section, its paths relative to ``base``; None if absent."""
    where = "tls_server_config"
    raw = mapping(value, where)
    if not raw:
        return None
    check_keys(raw, where, _TLS_KEYS)
    files: dict[str, Path | None] = {}
    for name in ("cert_file", "key_file", "client_ca_file"):
        text = string(raw, name, where)
        files[name] = base / text if text is not None else None
    cert_file, key_file, ca_file = files["cert_file"], files["key_file"], files["client_ca_file"]
    if cert_file is None:
        raise ConfigError(key(f"{where}.cert_file"), "required when tls_server_config is set")
    if key_file is None:
        raise ConfigError(key(f"{where}.key_file"), "required when tls_server_config is set")
    client_auth = string(raw, "client_auth_type", where) or "NoClientCert"
    if client_auth not in _CLIENT_AUTH:
        raise ConfigError(
            key(f"{where}.client_auth_type"),
            f"expected one of {', '.join(_CLIENT_AUTH)}, got {client_auth!r}",
        )
    if ca_file is None and client_auth != "NoClientCert":
        raise ConfigError(
            key(f"{where}.client_ca_file"), f"required with client_auth_type {client_auth}"
        )
    if ca_file is not None and client_auth == "NoClientCert":
        raise ConfigError(
            key(f"{where}.client_auth_type"),
            "client_ca_file is set but no client certificate is asked for: "
            "use RequireAndVerifyClientCert",
        )
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = string(raw, name, where) or default
        if version not in _VERSIONS:
            raise ConfigError(key(f"{where}.{name}"), f"expected TLS12 or TLS13, got {version!r}")
        versions[name] = version
    if _VERSIONS[versions["min_version"]] > _VERSIONS[versions["max_version"]]:
        raise ConfigError(key(f"{where}.min_version"), "is above max_version")
    return TLSConfig(
        cert_file=cert_file,
        key_file=key_file,
        client_auth_type=client_auth,
        client_ca_file=ca_file,
        min_version=versions["min_version"],
        max_version=versions["max_version"],
    )


def _read_pem(path: Path, key_name: str) -> str:
    """The file as PEM text; ``key_name`` is blamed when it cannot be read or is binary."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(key_name, f"cannot read {path}: {err.strerror}") from None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(key_name, f"{path} is not a PEM file") from None


def build_context(tls: TLSConfig) -> ssl.SSLContext:
    """Build the server context, blaming the key whose file is at fault."""
    where = "tls_server_config"
    cert_key = key(f"{where}.cert_file")
    key_key = key(f"{where}.key_file")
    ca_key = key(f"{where}.client_ca_file")

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
