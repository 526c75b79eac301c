"""When to try again after a failed request, and how long to wait.

Within one poll a transient failure (429, 5xx, timeout, network) is retried a few
times: after exactly what a retry header asked for, else after a capped exponential
backoff with full jitter (so many exporters behind one rate limit do not retry in
lockstep). A wait longer than ``cap`` is not spent inside the poll: the poller waits
it out before its next poll instead. Auth, permission and malformed answers are not
retried within a poll; the next poll tries again at the normal interval, because
keys get fixed.

Every request has a deadline of ``request_timeout`` for the whole answer (see the
client), and its retries share a deadline too, the *poll deadline*: twice
``request_timeout`` from the request's first attempt, counting only time spent on
attempts and retry waits (not time queued behind ``max_concurrent_requests``). A
retry is made only if its wait plus a whole ``request_timeout`` still ends before that
deadline. So a request that timed out is never retried within the poll, a hung or
dripping API costs a workspace one ``request_timeout`` per poll (not one per
attempt), while fast failures (a 503 in milliseconds, a 429 asking for a few
seconds) are still retried. A poll of many requests (seeding a cycle) may run longer
than the deadline as long as its requests keep succeeding: the deadline bounds how
long a poll can stall, not how much it can read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from exporter.api.errors import ApiError

RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "network"})
POLL_DEADLINE_TIMEOUTS = 2  # the poll deadline, in request timeouts


@dataclass(frozen=True)
class RetryPolicy:
    """Retries within one poll: how many, and the backoff's base and cap in seconds."""

    max_retries: int = 2
    base: float = 1.0
    cap: float = 30.0

    def delay(self, attempt: int, error: ApiError, rng: random.Random) -> float | None:
        """Seconds to wait before retry number ``attempt`` (from 1), or None to give up."""
        if error.reason not in RETRYABLE or attempt > self.max_retries:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.cap else None
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))


def retry_fits(spent: float, wait: float, timeout: float) -> bool:
    """Whether a retry after ``wait`` seconds could finish before the poll deadline,
    ``spent`` seconds of attempts and waits after the request began."""
    return spent + wait + timeout <= POLL_DEADLINE_TIMEOUTS * timeout


def next_poll_delay(
    interval: float, failures: int, error: ApiError | None, rng: random.Random
) -> float:
    """Seconds until the next poll, with ±5% jitter drawn from ``rng`` (see :func:`poll_delay`)."""
    return poll_delay(interval, failures, error, rng.uniform(0.95, 1.05))


def poll_delay(interval: float, failures: int, error: ApiError | None, jitter: float) -> float:
    """Seconds until the next poll of a source.

    The poll interval times ``jitter`` (about 1: many exporters must not poll in
    lockstep); after consecutive transient failures it doubles each time up to 8x (a
    struggling API gets fewer requests); never sooner than a retry header asked for.
    Auth and permission failures keep the normal interval.
    """
    delay = interval * jitter
    if error is not None and error.reason in RETRYABLE and failures > 1:
        delay *= min(2 ** (failures - 1), 8)
    if error is not None and error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay
