"""Billing-cycle arithmetic from the subscription.

The subscription tells when credits next reset (``next_character_count_reset_unix``)
and how often they refresh (``character_refresh_period``, else ``billing_period``).
The cycle started one period (in calendar months) before the reset.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

from exporter.api.parse import Subscription

PERIOD_MONTHS = {
    "monthly_period": 1,
    "3_month_period": 3,
    "6_month_period": 6,
    "annual_period": 12,
}
# Reset times jitter by seconds between answers; a move larger than this is a new cycle.
NEW_CYCLE_THRESHOLD = 3600


@dataclass(frozen=True)
class Cycle:
    """One billing cycle ``[start, reset)``; ``known`` is False for a guessed month."""

    start: int
    reset: int
    known: bool = True

    @property
    def length(self) -> int:
        """Seconds from the cycle start to the reset."""
        return self.reset - self.start


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier, clamped to month end."""
    month_index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def cycle_of(subscription: Subscription, now: float) -> Cycle:
    """The current cycle; the calendar month (UTC) when the API gives no reset time."""
    if subscription.reset_at is None:
        today = datetime.fromtimestamp(now, UTC)
        start = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = months_before(start, -1)
        return Cycle(int(start.timestamp()), int(nxt.timestamp()), known=False)
    period = subscription.refresh_period or subscription.billing_period or "monthly_period"
    months = PERIOD_MONTHS.get(period, 1)
    reset = datetime.fromtimestamp(subscription.reset_at, UTC)
    start = months_before(reset, months)
    return Cycle(int(start.timestamp()), subscription.reset_at)


def is_new_cycle(old: Cycle | None, new: Cycle) -> bool:
    """Whether ``new`` is a different cycle from ``old`` (not just reset-time jitter)."""
    return old is None or abs(new.start - old.start) > NEW_CYCLE_THRESHOLD
