"""Retry schedule and request concurrency, with an injected sleep and clock."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
import respx
from fakes import Recorder

from exporter.api.backoff import RetryPolicy, next_poll_delay
from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError
from exporter.api.paths import SUBSCRIPTION_PATH

BASE = "https://api.example.test"
NOW = 1_767_225_600.0
SUB = {"character_count": 1, "character_limit": 10}


async def run(
    responses: list[httpx.Response], policy: RetryPolicy | None = None, seed: int = 1
) -> tuple[Recorder, ApiError | None, int]:
    sleep = Recorder()
    with respx.mock() as mock:
        route = mock.get(BASE + SUBSCRIPTION_PATH)
        route.side_effect = responses
        async with httpx.AsyncClient() as http:
            client = ElevenLabsClient(
                workspace="w",
                base_url=BASE,
                api_key=lambda: "k",
                http=http,
                clock=lambda: NOW,
                retry=policy,
                sleep=sleep,
                rng=random.Random(seed),
            )
            try:
                await client.subscription()
                error = None
            except ApiError as err:
                error = err
        return sleep, error, route.call_count


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "2500"}, 2.5),
        (
            {"retry-after": format_datetime(datetime.fromtimestamp(NOW + 12, UTC), usegmt=True)},
            12.0,
        ),
        ({"x-ratelimit-reset": str(int(NOW) + 4)}, 4.0),
    ],
)
async def test_each_retry_header_sets_the_wait(headers: dict[str, str], wait: float) -> None:
    """A 429 is retried after exactly what its retry header asks for, then succeeds."""
    sleep, error, calls = await run(
        [httpx.Response(429, headers=headers), httpx.Response(200, json=SUB)]
    )
    assert error is None
    assert sleep.waits == [wait]
    assert calls == 2


async def test_without_headers_backoff_is_exponential_with_full_jitter() -> None:
    """Without a header the k-th wait lies in [0, base·2^(k-1)], and the waits vary."""
    seen = []
    for seed in range(20):
        sleep, error, calls = await run(
            [httpx.Response(503)] * 3, RetryPolicy(2, 1.0, 30.0), seed=seed
        )
        assert isinstance(error, ApiError)
        assert error.reason == "server_error"
        assert calls == 3
        assert 0 <= sleep.waits[0] <= 1.0
        assert 0 <= sleep.waits[1] <= 2.0
        seen.append(tuple(sleep.waits))
    assert len(set(seen)) > 10


async def test_retries_stop_at_the_configured_number() -> None:
    """max_retries bounds the attempts in one poll."""
    for retries in (0, 1, 4):
        sleep, error, calls = await run([httpx.Response(429)] * 6, RetryPolicy(retries))
        assert error is not None
        assert calls == retries + 1
        assert len(sleep.waits) == retries


async def test_a_wait_longer_than_the_cap_is_left_to_the_next_poll() -> None:
    """A retry header beyond the cap ends the poll; the next poll waits at least that long."""
    sleep, error, calls = await run(
        [httpx.Response(429, headers={"retry-after": "120"})], RetryPolicy(2, 1.0, 30.0)
    )
    assert error is not None
    assert sleep.waits == []
    assert calls == 1
    assert next_poll_delay(60, 1, error, random.Random(0)) >= 120


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(status: int) -> None:
    """Auth, permission and validation failures are not retried within the poll."""
    sleep, error, calls = await run([httpx.Response(status)] * 3)
    assert error is not None
    assert calls == 1
    assert sleep.waits == []


def test_poll_delay_grows_with_transient_failures_and_not_with_auth() -> None:
    """Consecutive transient failures space polls out (up to 8x); a rejected key keeps
    the normal interval so a fixed key is noticed on the next poll."""
    rng = random.Random(3)
    busy = ApiError("server_error", "x")
    delays = [next_poll_delay(60, n, busy, rng) for n in range(1, 7)]
    assert 57 <= delays[0] <= 63
    assert 114 <= delays[1] <= 126
    assert all(d <= 8 * 63 for d in delays)
    assert delays[-1] >= 8 * 57
    assert 57 <= next_poll_delay(60, 9, ApiError("auth", "x"), rng) <= 63


async def test_concurrent_requests_never_exceed_the_cap() -> None:
    """Many workspaces polling at once never have more requests in flight than the
    configured cap, retries included."""
    in_flight = 0
    peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(503) if random.random() < 0.3 else httpx.Response(200, json=SUB)

    limiter = asyncio.Semaphore(3)
    with respx.mock() as mock:
        mock.get(BASE + SUBSCRIPTION_PATH).mock(side_effect=answer)
        async with httpx.AsyncClient() as http:
            clients = [
                ElevenLabsClient(
                    workspace=f"w{n}",
                    base_url=BASE,
                    api_key=lambda: "k",
                    http=http,
                    limiter=limiter,
                    sleep=Recorder(),
                )
                for n in range(20)
            ]
            results = await asyncio.gather(
                *(c.subscription() for c in clients for _ in range(3)), return_exceptions=True
            )
    assert len(results) == 60
    assert 1 < peak <= 3
