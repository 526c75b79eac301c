"""Where panels go: Grafana's 24-column grid, and the panel ids handed out on the way."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def row_header(title: str) -> Json:
    """An expanded row header."""
    return {"collapsed": False, "panels": [], "title": title, "type": "row"}


class Grid:
    """Places panels on Grafana's 24-column grid and hands out panel ids.

    Grafana stores absolute positions. Stated by hand, every panel added or resized
    shifts the `y` of everything below it; here positions follow from the order and the
    sizes: panels go left to right, a panel that does not fit starts a new line below
    the tallest panel of the current one, and a row header starts a line of its own.
    """

    COLUMNS = 24

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._line_height = 0

    def row(self, title: str) -> None:
        """Start an expanded row called `title` below everything placed so far."""
        self._new_line()
        self._place(row_header(title), self.COLUMNS, 1)

    def add(self, *panels: Json, w: int, h: int) -> None:
        """Place each of `panels`, `w` columns wide and `h` high, after the previous one."""
        for panel in panels:
            if self._x + w > self.COLUMNS:
                self._new_line()
            self._place(panel, w, h)

    def _new_line(self) -> None:
        self._x, self._y, self._line_height = 0, self._y + self._line_height, 0

    def _place(self, panel: Json, w: int, h: int) -> None:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._line_height = max(self._line_height, h)
