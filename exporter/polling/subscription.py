"""The subscription source: the plan's credits, limit and billing cycle.

It reads ``GET /v1/user/subscription`` and tells the workspace's other sources the
billing cycle they anchor their counters at (:class:`WorkspaceFacts`). A cycle seen
again with a reset time that moved by seconds is the same cycle; a move larger
than an hour is a new one.

The subscription changes little, so it is polled on its own, slower interval
(``subscription_interval``), and once more just after the reset it announced, so a
new cycle is seen within seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exporter.api.client import ElevenLabsClient
from exporter.api.parse import Subscription
from exporter.core.cycle import Cycle, cycle_of, is_new_cycle
from exporter.polling.source import Outcome, Source, WorkspaceFacts

# Seconds after the announced reset at which the subscription is read again.
AFTER_RESET = 5.0


@dataclass(frozen=True)
class SubscriptionPart:
    """What the subscription collector exports for one workspace."""

    subscription: Subscription
    cycle_reset: int | None
    cycle_length: int | None


class SubscriptionSource(Source):
    """Reads the subscription every poll interval."""

    endpoint = "subscription"

    def __init__(
        self,
        client: ElevenLabsClient,
        facts: WorkspaceFacts,
        interval: float,
        log: Any,
        clock: Callable[[], float],
        retry: float | None = None,
    ) -> None:
        self.client = client
        self.facts = facts
        self._interval = interval
        self._retry = retry if retry is not None else interval
        self.log = log
        self.clock = clock

    def interval(self) -> float:
        """The subscription interval (never shorter than the workspace's poll interval)."""
        return self._interval

    def retry_interval(self) -> float:
        """After a failure, the workspace's poll interval: up comes back soon."""
        return self._retry

    def due_by(self) -> float | None:
        """Just after the announced reset, when the cycle (and the plan) change."""
        cycle = self.facts.cycle
        return cycle.reset + AFTER_RESET if cycle is not None and cycle.known else None

    async def poll(self, now: float) -> Outcome:
        """Read the subscription and follow the billing cycle."""
        subscription = await self.client.subscription()
        self.facts.subscription = subscription
        cycle = cycle_of(subscription, self.clock())
        previous = self.facts.cycle
        if is_new_cycle(previous, cycle):
            if previous is not None:
                self.log.info(
                    "billing cycle changed", cycle_start=cycle.start, cycle_reset=cycle.reset
                )
            self.facts.cycle = cycle
        else:
            # Same cycle: keep the first start seen but follow the reset time.
            assert previous is not None
            self.facts.cycle = Cycle(previous.start, cycle.reset, cycle.known)
        return Outcome(requests=1, rows=1)

    def part(self, last_success: float) -> SubscriptionPart | None:
        """The subscription and the cycle, once read (a guessed cycle is not exported)."""
        subscription = self.facts.subscription
        if subscription is None:
            return None
        cycle = (
            self.facts.cycle if self.facts.cycle is not None and self.facts.cycle.known else None
        )
        return SubscriptionPart(
            subscription,
            cycle.reset if cycle else None,
            cycle.length if cycle else None,
        )
