"""The state file: each workspace's counters, persisted so a restart loses nothing.

One record per workspace: the API host it was read from (``base_url``) and one
entry per poll source that persists anything (``credits``: the ledger and the
exported counters; ``cost``: the same for cost-billed workspaces). Written
atomically (temporary file, fsync, rename, fsync of the directory), so a kill at
any moment leaves either the old file or the new one. A missing, truncated, corrupt
or foreign-version file is logged and ignored: the exporter then re-seeds from the
API, which is slower but exact. So is a record whose numbers are implausible
(negative, not finite, beyond the bound, inconsistent), and records of workspaces
the config does not name are not loaded at all. Files of format version 1 (where the ledger also
kept totals) are read and converted.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STATE_VERSION = 2
FORMAT = "elevenlabs-exporter-state"


class StateStore:
    """Per-workspace records in one JSON file; writes are coalesced.

    Each source's entry is kept as its serialized JSON, compressed (a few KiB per
    workspace rather than the tens a tree of Python numbers costs), and a flush only
    joins the pieces. A record read at start-up is kept until its sources replaced it.
    """

    def __init__(self, path: Path | None, log: Any) -> None:
        self.path = path
        self._log = log
        self._lock = threading.Lock()
        self._loaded: dict[str, dict[str, Any]] = {}  # read at start-up, until replaced
        self._pieces: dict[str, dict[str, bytes]] = {}  # workspace -> key -> zlib(JSON)
        self._dirty = False

    def load(self, workspaces: Iterable[str] | None = None) -> None:
        """Read the file once at start-up; any problem means starting empty.

        With ``workspaces`` (the configured names) the records of other workspaces are
        ignored, with one log line, and left out of the next write: what is held stays
        bounded by the config, whatever the file holds. The numbers in each record are
        checked where they are read (the ledger's and the router's ``from_state`` and
        ``restore``); a record that fails is reseeded from the API, never exported.
        """
        if self.path is None:
            return
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._log.info("state file not found, seeding from the API", path=str(self.path))
            return
        except OSError as err:
            self._log.warning("state file unreadable, ignored", path=str(self.path), error=str(err))
            return
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._log.warning("state file corrupt, ignored", path=str(self.path))
            return
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            self._log.warning("state file is not ours, ignored", path=str(self.path))
            return
        if data.get("version") not in (1, STATE_VERSION):
            self._log.warning(
                "state file has another format version, ignored",
                path=str(self.path),
                version=data.get("version"),
                expected=STATE_VERSION,
            )
            return
        records = data.get("workspaces")
        if isinstance(records, dict):
            convert = migrate_v1 if data.get("version") == 1 else dict
            known = None if workspaces is None else set(workspaces)
            unknown = sorted(str(n) for n in records if known is not None and n not in known)
            if unknown:
                self._log.warning(
                    "state file holds workspaces the config does not name, ignored",
                    path=str(self.path),
                    count=len(unknown),
                    workspaces=unknown[:10],
                )
            self._loaded = {
                str(name): convert(state)
                for name, state in records.items()
                if isinstance(state, dict) and (known is None or name in known)
            }
            self._pieces = {
                name: {key: _pack(value) for key, value in record.items()}
                for name, record in self._loaded.items()
            }

    def get(self, workspace: str) -> dict[str, Any] | None:
        """The record of one workspace as read at start-up, if any."""
        with self._lock:
            return self._loaded.get(workspace)

    def put(self, workspace: str, key: str, value: Any) -> None:
        """Replace one entry of a workspace's record; the next flush writes it."""
        packed = _pack(value)
        with self._lock:
            loaded = self._loaded.get(workspace)
            if loaded is not None:
                loaded.pop(key, None)  # the start-up copy is no longer needed
            self._pieces.setdefault(workspace, {})[key] = packed
            self._dirty = True

    def workspace(self, name: str, base_url: str, log: Any) -> WorkspaceState:
        """The handle one workspace's sources read and write their entries through."""
        return WorkspaceState(self, name, base_url, log)

    def flush(self) -> bool:
        """Write the file if anything changed; False (and a log line) if writing failed."""
        if self.path is None:
            return True
        with self._lock:
            if not self._dirty:
                return True
            records = ",".join(
                f"{json.dumps(name)}:{{"
                + ",".join(f"{json.dumps(key)}:{_unpack(piece)}" for key, piece in record.items())
                + "}"
                for name, record in self._pieces.items()
            )
            header = f'{{"format":{json.dumps(FORMAT)},"version":{STATE_VERSION},"workspaces":{{'
            data = (header + records + "}}").encode()
            self._dirty = False
        try:
            write_atomically(self.path, data)
        except OSError as err:
            with self._lock:
                self._dirty = True
            self._log.warning("state file not written", path=str(self.path), error=str(err))
            return False
        return True


def _pack(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 1)


def _unpack(piece: bytes) -> str:
    return zlib.decompress(piece).decode()


class WorkspaceState:
    """One workspace's record: each source reads its entry at start-up and replaces it
    after each successful poll; entries of other sources are kept as they are.

    A record written for another API host is not used (the same workspace name may
    now point elsewhere): the sources then seed from the API.
    """

    def __init__(self, store: StateStore, name: str, base_url: str, log: Any) -> None:
        self._store = store
        self._name = name
        self._base_url = base_url
        stored = store.get(name)
        self._usable = stored is None or stored.get("base_url") == base_url
        if not self._usable:
            log.info("state is for another API host, seeding from the API", base_url=base_url)
        self._announced = False

    def get(self, key: str) -> dict[str, Any] | None:
        """A source's entry as persisted, if any."""
        stored = self._store.get(self._name) if self._usable else None
        entry = stored.get(key) if stored is not None else None
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Replace a source's entry; the next flush writes the whole record."""
        if not self._announced:
            self._store.put(self._name, "base_url", self._base_url)
            self._announced = True
        self._store.put(self._name, key, entry)


def migrate_v1(record: dict[str, Any]) -> dict[str, Any]:
    """A version-1 record in the version-2 layout.

    Version 1 kept the counters twice (the ledger's raw totals and the router's
    exported ones) and one of ``ledger``/``cost`` at the top of the record. The
    exported totals are what Prometheus saw, so they are the ones kept.
    """
    out: dict[str, Any] = {"base_url": record.get("base_url")}
    ledger = record.get("ledger")
    if isinstance(ledger, dict):
        router = record.get("router")
        out["credits"] = {
            "ledger": ledger,
            "router": router if isinstance(router, dict) else _router_of(ledger),
        }
    cost = record.get("cost")
    if isinstance(cost, dict):
        out["cost"] = {
            name: {"ledger": part, "router": _router_of(part)}
            for name, part in cost.items()
            if isinstance(part, dict)
        }
    return out


def _router_of(ledger: dict[str, Any]) -> dict[str, Any]:
    """The exported counters of a version-1 ledger without bounded dimensions."""
    return {
        "label_names": ledger.get("label_names"),
        "members": {},
        "total": ledger.get("total", []),
        "down": ledger.get("down", []),
    }


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
