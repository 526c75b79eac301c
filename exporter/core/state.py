"""The state file: each workspace's ledger, persisted so a restart loses nothing.

Written atomically (temporary file, fsync, rename, fsync of the directory), so a
kill at any moment leaves either the old file or the new one. A missing,
truncated, corrupt or foreign-version file is logged and ignored: the exporter
then re-seeds from the API, which is slower but exact.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from exporter.core.ledger import STATE_VERSION

FORMAT = "elevenlabs-exporter-state"


class StateStore:
    """Per-workspace ledger states in one JSON file; writes are coalesced.

    Each workspace's state is kept as its serialized JSON (a few KiB), not as Python
    lists: that costs a third of the memory, and a flush only joins the pieces.
    """

    def __init__(self, path: Path | None, log: Any) -> None:
        self.path = path
        self._log = log
        self._lock = threading.Lock()
        self._loaded: dict[str, dict[str, Any]] = {}  # read at start-up, until replaced
        self._encoded: dict[str, str] = {}
        self._dirty = False

    def load(self) -> None:
        """Read the file once at start-up; any problem means starting empty."""
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
        if data.get("version") != STATE_VERSION:
            self._log.warning(
                "state file has another format version, ignored",
                path=str(self.path),
                version=data.get("version"),
                expected=STATE_VERSION,
            )
            return
        workspaces = data.get("workspaces")
        if isinstance(workspaces, dict):
            self._loaded = {
                str(name): state for name, state in workspaces.items() if isinstance(state, dict)
            }
            self._encoded = {
                name: json.dumps(state, separators=(",", ":"))
                for name, state in self._loaded.items()
            }

    def get(self, workspace: str) -> dict[str, Any] | None:
        """The state of one workspace as read at start-up, if any."""
        with self._lock:
            return self._loaded.get(workspace)

    def put(self, workspace: str, state: dict[str, Any]) -> None:
        """Replace one workspace's state; the next flush writes it."""
        encoded = json.dumps(state, separators=(",", ":"))
        with self._lock:
            self._loaded.pop(workspace, None)  # the start-up copy is no longer needed
            self._encoded[workspace] = encoded
            self._dirty = True

    def flush(self) -> bool:
        """Write the file if anything changed; False (and a log line) if writing failed."""
        if self.path is None:
            return True
        with self._lock:
            if not self._dirty:
                return True
            pieces = ",".join(f"{json.dumps(name)}:{text}" for name, text in self._encoded.items())
            header = f'{{"format":{json.dumps(FORMAT)},"version":{STATE_VERSION},"workspaces":{{'
            data = (header + pieces + "}}").encode()
            self._dirty = False
        try:
            write_atomically(self.path, data)
        except OSError as err:
            with self._lock:
                self._dirty = True
            self._log.warning("state file not written", path=str(self.path), error=str(err))
            return False
        return True


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
