"""Human dates for ``--since`` and ``--until``, and the period they make.

Both commands take times the way people say them (``7d``, ``yesterday``, ``cycle``,
an RFC 3339 date) and turn them into a period of whole minutes or steps that the
usage API can answer. Times are UTC throughout, printed for machines (:func:`iso`)
or for people (:func:`human_time`, :func:`human_span`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exporter.flags import UsageError

MINUTE = 60
HOUR = 3600
DAY = 86400
# The usage endpoint refuses start times before 2020-01-01T00:00:00Z.
API_EARLIEST = 1_577_836_800
WHEN_FORMS = (
    "an RFC 3339 date or time (2026-11-01, 2026-11-01T09:00:00Z), a time ago "
    "(7d, 24h, 90m), today, yesterday, cycle or now"
)
_AGO_RE = re.compile(r"(?:\d+[smhdw])+")
_AGO_PART_RE = re.compile(r"(\d+)([smhdw])")
_AGO_UNITS = {"s": 1, "m": MINUTE, "h": HOUR, "d": DAY, "w": 7 * DAY}


@dataclass(frozen=True)
class When:
    """A parsed ``--since``/``--until``: a fixed time, or the billing-cycle start.

    The cycle start differs per workspace and needs the subscription, so ``cycle``
    is resolved only once that has been read (see :meth:`resolve`).
    """

    flag: str
    text: str
    at: float | None  # Unix seconds; None for "cycle"

    @property
    def needs_cycle(self) -> bool:
        """Whether the subscription is needed to know this time."""
        return self.at is None

    def resolve(self, cycle_start: int | None) -> float:
        """The time in Unix seconds, given the workspace's cycle start if needed."""
        if self.at is not None:
            return self.at
        if cycle_start is None:
            raise UsageError(self.flag, "cycle needs the subscription, which could not be read")
        return float(cycle_start)


def parse_when(text: str, flag: str, now: float) -> When:
    """Read a human date; times are UTC and a date alone means its midnight.

    Relative times count back from ``now``; ``cycle`` is left for :meth:`When.resolve`.
    """
    value = text.strip().lower()
    midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "now":
        return When(flag, text, now)
    if value == "today":
        return When(flag, text, midnight.timestamp())
    if value == "yesterday":
        return When(flag, text, (midnight - timedelta(days=1)).timestamp())
    if value == "cycle":
        return When(flag, text, None)
    if _AGO_RE.fullmatch(value):
        seconds = sum(int(n) * _AGO_UNITS[u] for n, u in _AGO_PART_RE.findall(value))
        return When(flag, text, now - seconds)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(flag, f"cannot read {text!r}: use {WHEN_FORMS}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return When(flag, text, parsed.timestamp())


def floor_to(value: float, step: int) -> int:
    """``value`` rounded down to a multiple of ``step`` seconds."""
    return int(value // step) * step


def check_period(start: int, end: int, since: When, until: When) -> None:
    """Refuse an empty period or one the usage API cannot answer."""
    if start < API_EARLIEST:
        raise UsageError(since.flag, "the usage API has no data before 2020-01-01")
    if start >= end:
        raise UsageError(
            since.flag,
            f"{iso(start)} ({since.text}) is not before {until.flag} {iso(end)} ({until.text})",
        )


def resolve_period(
    since: When,
    until: When,
    step: int,
    cycle_start: int | None = None,
    *,
    latest: float = math.inf,
) -> tuple[int, int]:
    """``[since, until)`` in Unix seconds, ``until`` capped at ``latest``, both rounded
    down to ``step``; refused (UsageError) when empty or before the API's data.

    A command checks its flags with this before any request where the period needs no
    subscription, and again per workspace once the cycle start is known.
    """
    start = floor_to(since.resolve(cycle_start), step)
    end = floor_to(min(until.resolve(cycle_start), latest), step)
    check_period(start, end, since, until)
    return start, end


def iso(seconds: float) -> str:
    """RFC 3339 UTC, to the second."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_time(seconds: float) -> str:
    """UTC to the minute, for people."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def human_span(seconds: int) -> str:
    """A length of time like ``3d 4h`` or ``90m`` → ``1h 30m``."""
    parts = []
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0m"
