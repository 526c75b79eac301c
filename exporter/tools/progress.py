"""Progress of a long read, on stderr: stdout carries only the report or the file.

A month of minute buckets is dozens of requests made one at a time, which takes long
enough that silence would look like a hang; a read of a few requests says nothing.
"""

from __future__ import annotations

from typing import TextIO

# Fewer requests than this finish quickly enough that progress lines would be noise.
PROGRESS_MIN_WINDOWS = 5


class Progress:
    """``fetched 3/31 windows`` on stderr while a long read runs.

    On a terminal one line is rewritten in place and erased at the end, so the
    report that follows stands alone; otherwise (logs, CI) a line is written each
    time another tenth of the windows is done. Reads of fewer than
    ``PROGRESS_MIN_WINDOWS`` requests print nothing.
    """

    def __init__(self, stream: TextIO, what: str, total: int, *, quiet: bool = False) -> None:
        self._stream = stream
        self._what = what
        self._total = total
        self._done = 0
        self._shown_tenths = 0
        self._enabled = not quiet and total >= PROGRESS_MIN_WINDOWS
        isatty = getattr(stream, "isatty", None)
        self._tty = bool(isatty()) if callable(isatty) else False

    def advance(self) -> None:
        """One more window read."""
        self._done += 1
        if not self._enabled:
            return
        line = f"{self._what}: fetched {self._done}/{self._total} windows"
        if self._tty:
            self._stream.write("\r\x1b[K" + line)
            self._stream.flush()
            return
        tenths = self._done * 10 // self._total
        if tenths > self._shown_tenths:
            self._shown_tenths = tenths
            self._stream.write(line + "\n")
            self._stream.flush()

    def finish(self) -> None:
        """Leave the terminal line clean."""
        if self._enabled and self._tty:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
