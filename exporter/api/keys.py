"""API keys at run time: a key from a file is re-read when the file changes.

Keys get rotated and mounted secrets get updated in place; re-reading the file on
change lets a fixed key take effect on the next poll without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from exporter.config import WorkspaceConfig


class KeyProvider:
    """Returns the current key of a workspace, telling the redactor about new ones."""

    def __init__(
        self, workspace: WorkspaceConfig, on_new_key: Callable[[str], None] | None = None
    ) -> None:
        self._key = workspace.api_key.reveal()
        self._path = (
            Path(workspace.key_source.where) if workspace.key_source.kind == "file" else None
        )
        self._stamp = self._file_stamp()
        self._on_new_key = on_new_key

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def __call__(self) -> str:
        stamp = self._file_stamp()
        if self._path is not None and stamp is not None and stamp != self._stamp:
            self._stamp = stamp
            try:
                text = self._path.read_text(encoding="utf-8").strip()
            except OSError:
                text = ""
            if text and text != self._key:
                if self._on_new_key is not None:
                    self._on_new_key(text)
                self._key = text
        return self._key
