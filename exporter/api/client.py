"""The only code that talks to ElevenLabs: typed answers or typed errors.

One client per workspace. Every request is counted and timed, every failure is
classified by :mod:`exporter.errors`, and a shared semaphore caps how many requests
are in flight across all workspaces (ElevenLabs limits concurrency, not rate).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from exporter import __version__
from exporter.api.backoff import RetryPolicy
from exporter.api.charstats import character_stats_query, parse_character_stats
from exporter.api.errors import ApiError, classify_response, classify_transport
from exporter.api.parse import (
    Subscription,
    UsageRow,
    UsageTable,
    parse_subscription,
    parse_usage,
)
from exporter.api.paths import (
    CHARACTER_STATS_PATH,
    COST_USAGE_PATH,
    SUBSCRIPTION_PATH,
    USAGE_PATH,
)

USER_AGENT = f"elevenlabs-exporter/{__version__}"


class RequestObserver(Protocol):
    """Where each request's outcome goes (the exporter's telemetry provides it)."""

    def observe_request(self, workspace: str, endpoint: str, code: str, seconds: float) -> None:
        """Count one request with its HTTP status (or ``error``) and its latency."""
        ...


class ElevenLabsClient:
    """Reads usage and subscription for one workspace."""

    def __init__(
        self,
        *,
        workspace: str,
        base_url: str,
        api_key: Callable[[], str],
        http: httpx.AsyncClient,
        telemetry: RequestObserver | None = None,
        limiter: asyncio.Semaphore | None = None,
        clock: Callable[[], float] = time.time,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.workspace = workspace
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._http = http
        self._telemetry = telemetry
        self._limiter = limiter or asyncio.Semaphore(1)
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.last_error: ApiError | None = None

    async def _request(
        self, endpoint: str, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        """One call, retried within the poll as the retry policy allows."""
        attempt = 0
        while True:
            try:
                return await self._attempt(endpoint, method, path, body)
            except ApiError as err:
                attempt += 1
                wait = self._retry.delay(attempt, err, self._rng)
                if wait is None:
                    self.last_error = err
                    raise
                await self._sleep(wait)

    async def _attempt(
        self, endpoint: str, method: str, path: str, body: dict[str, Any] | None
    ) -> Any:
        headers = {"xi-api-key": self._api_key(), "user-agent": USER_AGENT}
        async with self._limiter:
            started = time.perf_counter()
            try:
                response = await self._http.request(
                    method, self._base_url + path, json=body, headers=headers
                )
            except httpx.HTTPError as exc:
                error = classify_transport(exc)
                self._observe(endpoint, "error", started)
                raise error from None
            self._observe(endpoint, str(response.status_code), started)
        if not 200 <= response.status_code < 300:
            raise classify_response(
                response.status_code, response.content, response.headers, self._clock()
            )
        try:
            return json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            snippet = " ".join(response.content[:80].decode("utf-8", "replace").split())
            raise ApiError(
                "bad_response",
                f"{endpoint}: answer is not JSON: {snippet!r}",
                status=response.status_code,
            ) from None

    def _observe(self, endpoint: str, code: str, started: float) -> None:
        if self._telemetry is not None:
            self._telemetry.observe_request(
                self.workspace, endpoint, code, time.perf_counter() - started
            )

    async def usage(
        self,
        start: int,
        end: int,
        interval: int,
        group_by: Sequence[str] = ("product_type",),
        filters: Sequence[Mapping[str, Any]] = (),
    ) -> list[UsageRow]:
        """Credits per bucket and label set for ``[start, end)`` (Unix seconds)."""
        return (await self.usage_table(start, end, interval, group_by, filters)).rows

    async def usage_table(
        self,
        start: int,
        end: int,
        interval: int,
        group_by: Sequence[str] = ("product_type",),
        filters: Sequence[Mapping[str, Any]] = (),
    ) -> UsageTable:
        """The rows and display names for ``[start, end)``.

        ``filters`` are ColumnFilter objects passed through as the API takes them.
        """
        body: dict[str, Any] = {
            "start_time": start * 1000,
            "end_time": end * 1000,
            "interval_seconds": interval,
            "group_by": list(group_by),
            "time_zone": "UTC",
        }
        if filters:
            body["filters"] = [dict(f) for f in filters]
        answer = await self._request("usage", "POST", USAGE_PATH, body)
        return parse_usage(answer, group_by, start=start, end=end, interval=interval)

    async def cost_usage(
        self, start: int, end: int, interval: int, group_by: Sequence[str] = ("product_type",)
    ) -> tuple[list[UsageRow], list[UsageRow]]:
        """Cost (workspace currency) and charge count per day, for cost-billed workspaces.

        The endpoint takes whole UTC days (or weeks) only. Requests count under the
        ``usage`` endpoint label: for these workspaces it is their usage poll.
        """
        body = {
            "start_time": start * 1000,
            "end_time": end * 1000,
            "interval_seconds": interval,
            "group_by": list(group_by),
        }
        answer = await self._request("usage", "POST", COST_USAGE_PATH, body)
        window = {"start": start, "end": end, "interval": interval}
        cost = parse_usage(
            answer, group_by, value_columns=("total_cost",), value_unit=None, **window
        )
        count = parse_usage(
            answer, group_by, value_columns=("total_charge_count",), value_unit=None, **window
        )
        return cost.rows, count.rows

    async def subscription(self) -> Subscription:
        """The workspace's subscription: credits used and limit, reset time, tier."""
        return parse_subscription(await self._request("subscription", "GET", SUBSCRIPTION_PATH))

    async def character_stats(
        self, start_ms: int, end_ms: int, metric: str, bucket_seconds: int, breakdown: str
    ) -> dict[str, list[tuple[int, float]]]:
        """One metric of the deprecated character-stats endpoint for ``[start_ms, end_ms)``
        (Unix ms): values per breakdown key and bucket start (Unix ms)."""
        query = character_stats_query(start_ms, end_ms, metric, bucket_seconds, breakdown)
        path = f"{CHARACTER_STATS_PATH}?{urlencode(query)}"
        return parse_character_stats(await self._request("character_stats", "GET", path))
