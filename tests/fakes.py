"""Test doubles shared by the test modules: things injected in place of the real ones."""

from __future__ import annotations


class Recorder:
    """An async sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class ReadyCheck:
    """A ready-check for ``make_app``: not ready, waiting for ``waiting``, until told."""

    def __init__(self, *waiting: str) -> None:
        self.waiting = list(waiting)
        self.calls = 0

    def __call__(self) -> tuple[bool, list[str]]:
        self.calls += 1
        return not self.waiting, list(self.waiting)
