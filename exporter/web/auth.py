"""Basic auth for ``/metrics``: the ``basic_auth_users`` section and the check itself.

Only bcrypt hashes are accepted in the file, never plain-text passwords, and the
check is built to be cheap for the scraper that comes back every few seconds with
the right password, and expensive, in time and cores, for anyone guessing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Mapping

import bcrypt

from exporter.config import ConfigError
from exporter.web.fields import key, mapping

_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# Salt and hash of a random string. Unknown users are checked against it, at the
# highest configured cost, so a wrong name costs as long as a wrong password and
# response times do not reveal which user names exist.
_DUMMY_TAIL = "/8Pcht3VW20qgmPcPmYOxO.IFQ1rx4JP6zyF9evFg2NS7m8fawd9y"


class BasicAuth:
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
        credentials = parse_basic(header)
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


def parse_basic(header: str) -> tuple[str, bytes] | None:
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


def parse_users(value: object) -> tuple[tuple[str, str], ...]:
    """The ``basic_auth_users`` section as (user, bcrypt hash) pairs."""
    where = "basic_auth_users"
    raw = mapping(value, where, "expected a mapping of user names to bcrypt hashes")
    users = []
    for name, hashed in raw.items():
        user = str(name) if isinstance(name, str | int) and not isinstance(name, bool) else ""
        if not user or ":" in user:
            raise ConfigError(key(where), "user names must be non-empty and contain no ':'")
        # The message never repeats the value: it may be a plain-text password.
        if not isinstance(hashed, str) or not _BCRYPT_HASH.fullmatch(hashed.strip()):
            raise ConfigError(
                key(f"{where}.{user}"),
                "must be a bcrypt hash ($2y$10$...), not a plain-text password; make one "
                "with: htpasswd -nBC 10 \"\" | tr -d ':\\n'",
            )
        users.append((user, hashed.strip()))
    return tuple(users)
