"""How long the API can hold a workspace: the request deadline, the poll deadline that
bounds retries, and ``elevenlabs_up`` going to 0 as soon as a required source fails.

Answers come from httpx mock transports whose bodies really wait (short timeouts keep
the module quick); the real process against a dripping server is in test_hostile.py.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from exporter.api.backoff import POLL_DEADLINE_TIMEOUTS, RetryPolicy, retry_fits
from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError
from exporter.core.snapshot import SnapshotStore
from exporter.log import get_logger
from exporter.metrics.telemetry import Telemetry
from exporter.polling.loop import WorkspaceLoop
from exporter.polling.source import Outcome, Source

BASE = "https://api.example.test"
SUBSCRIPTION = b'{"character_count": 1, "character_limit": 10}'


class Drip(httpx.AsyncByteStream):
    """A body that sends one byte every ``interval`` seconds."""

    def __init__(self, body: bytes, interval: float) -> None:
        self.body, self.interval = body, interval

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index in range(len(self.body)):
            await asyncio.sleep(self.interval)
            yield self.body[index : index + 1]


class Api:
    """A mock transport answering each request with the next scripted behaviour."""

    def __init__(self, *script: str, drip: float = 0.05) -> None:
        self.script = list(script)
        self.drip = drip
        self.attempts = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if step == "hang":
            await asyncio.sleep(3600)
        if step == "drip":
            return httpx.Response(200, stream=Drip(SUBSCRIPTION, self.drip))
        if step == "503":
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(200, content=SUBSCRIPTION)


def client(
    api: Api, timeout: float, retries: int = 2
) -> tuple[ElevenLabsClient, httpx.AsyncClient]:
    # httpx's own timeouts are per read, as in the exporter: they never fire here.
    http = httpx.AsyncClient(transport=httpx.MockTransport(api), timeout=60)
    return (
        ElevenLabsClient(
            workspace="w",
            base_url=BASE,
            api_key=lambda: "k",
            http=http,
            timeout=timeout,
            retry=RetryPolicy(max_retries=2, base=0.01),
            rng=random.Random(1),
        ),
        http,
    )


async def subscription_error(api: Api, request_timeout: float) -> tuple[ApiError, float]:
    ours, http = client(api, request_timeout)
    started = time.monotonic()
    async with http:
        with pytest.raises(ApiError) as caught:
            await ours.subscription()
    return caught.value, time.monotonic() - started


async def test_a_dripping_answer_hits_the_request_deadline() -> None:
    """A byte every 50 ms resets any per-read timeout; the deadline covers the whole
    answer, so the request fails as ``timeout`` after request_timeout."""
    err, took = await subscription_error(Api("drip"), 0.3)
    assert err.reason == "timeout"
    assert "request_timeout (0.3s)" in str(err)
    assert took < 0.3 * POLL_DEADLINE_TIMEOUTS + 0.2


async def test_a_request_that_timed_out_is_not_retried_within_the_poll() -> None:
    """After a whole request_timeout, a retry could not finish before the poll deadline
    (two request timeouts): one attempt, one timeout, whatever max_retries says."""
    api = Api("hang")
    err, took = await subscription_error(api, 0.3)
    assert err.reason == "timeout"
    assert api.attempts == 1
    assert took < 0.5


async def test_fast_failures_are_still_retried() -> None:
    """A 503 answered at once leaves the poll deadline almost whole: it is retried up to
    max_retries, and the retry's answer is used."""
    api = Api("503", "503", "ok")
    ours, http = client(api, timeout=0.3)
    async with http:
        subscription = await ours.subscription()
    assert subscription.credits_used == 1
    assert api.attempts == 3


async def test_a_slow_failure_uses_up_the_retries_deadline() -> None:
    """A 503 that took most of a request_timeout, asking for a retry after 0.1 s, leaves
    no room for a retry that could take a whole request_timeout: the poll ends with it."""
    attempts: list[httpx.Request] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        await asyncio.sleep(0.25)
        return httpx.Response(503, headers={"retry-after": "0.1"}, json={"detail": "busy"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    ours = ElevenLabsClient(
        workspace="w",
        base_url=BASE,
        api_key=lambda: "k",
        http=http,
        timeout=0.3,
        retry=RetryPolicy(max_retries=2, base=0.1),
    )
    async with http:
        with pytest.raises(ApiError) as caught:
            await ours.subscription()
    assert caught.value.reason == "server_error"
    assert len(attempts) == 1


@pytest.mark.parametrize(
    ("spent", "wait", "fits"),
    [(0.0, 0.0, True), (0.1, 29.9, True), (0.1, 30.0, False), (30.0, 0.0, True), (30.1, 0, False)],
)
def test_the_retry_rule(spent: float, wait: float, fits: bool) -> None:
    """A retry is made only if its wait plus a whole request_timeout (30 s here) still ends
    within two request timeouts of the request's first attempt."""
    assert retry_fits(spent, wait, 30.0) is fits


# elevenlabs_up -------------------------------------------------------------------------


class Failing(Source):
    endpoint = "usage"

    def interval(self) -> float:
        return 60.0

    async def poll(self, now: float) -> Outcome:
        raise ApiError("timeout", "hung")

    def part(self, last_success: float) -> None:
        return None


class Watching(Source):
    """A source that records what the loop had published when its turn came."""

    endpoint = "subscription"
    required = False

    def __init__(self, snapshots: SnapshotStore) -> None:
        self.snapshots = snapshots
        self.seen: list[bool] = []

    def interval(self) -> float:
        return 60.0

    async def poll(self, now: float) -> Outcome:
        self.seen.append(self.snapshots.current()["w"].up)
        return Outcome()

    def part(self, last_success: float) -> Any:
        return None


async def test_up_goes_to_0_when_a_required_source_fails_not_after_the_round() -> None:
    """The snapshot is published right after a failure, so up is 0 while the round's
    other sources still poll (each may itself take up to a request_timeout)."""
    snapshots = SnapshotStore(["w"])
    failing, watching = Failing(), Watching(snapshots)
    loop = WorkspaceLoop(
        "w",
        [failing, watching],
        snapshots=snapshots,
        telemetry=Telemetry(CollectorRegistry()),
        log=get_logger(),
    )
    loop.status[id(failing)].ok = True  # it succeeded last time
    loop.publish()
    assert snapshots.current()["w"].up
    await loop.poll_once()
    assert watching.seen == [False]
