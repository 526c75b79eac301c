"""The only code that talks to ElevenLabs: typed answers or typed errors.

One client per workspace. Every request is counted and timed, every failure is
classified by :mod:`exporter.api.errors`, and a shared semaphore caps how many
requests are in flight across all workspaces (ElevenLabs limits concurrency, not
rate). Nothing the API sends can hold the exporter or fill its memory: each request
has a deadline for the whole answer (``request_timeout``), answers are read up to a
cap (``max_response_bytes``), and large ones are parsed off the serving threads
(:mod:`exporter.api.decode`).
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import httpx

from exporter import __version__
from exporter.api.backoff import RetryPolicy, retry_fits
from exporter.api.body import (
    ACCEPT_ENCODING,
    ERROR_BODY_BYTES,
    BodyTooLargeError,
    BodyUnreadableError,
    read_capped,
)
from exporter.api.charstats import character_stats_query, parse_character_stats
from exporter.api.decode import AnswerDecoder
from exporter.api.errors import ApiError, classify_response, classify_transport
from exporter.api.limits import ApiKeyLimit, GroupLimit, parse_groups, parse_service_accounts
from exporter.api.parse import (
    Subscription,
    UsageRow,
    UsageTable,
    parse_cost_usage,
    parse_subscription,
    parse_usage,
)
from exporter.api.paths import (
    CHARACTER_STATS_PATH,
    COST_USAGE_PATH,
    SERVICE_ACCOUNTS_PATH,
    SUBSCRIPTION_PATH,
    USAGE_PATH,
    WORKSPACE_GROUPS_PATH,
)

USER_AGENT = f"elevenlabs-exporter/{__version__}"
DEFAULT_TIMEOUT = 30.0  # seconds for a whole request: connect, headers and body
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # 16 MiB, decoded
T = TypeVar("T")


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
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        decoder: AnswerDecoder | None = None,
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
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._decoder = decoder or AnswerDecoder()
        self.last_error: ApiError | None = None

    async def _request(
        self,
        endpoint: str,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        body: dict[str, Any] | None = None,
    ) -> T:
        """One call, retried within the poll as the retry policy and the poll's deadline
        allow (see :mod:`exporter.api.backoff`)."""
        attempt = 0
        spent: list[float] = []  # seconds of each attempt and wait so far
        while True:
            try:
                return await self._attempt(endpoint, method, path, body, parse, spent)
            except ApiError as err:
                attempt += 1
                wait = self._retry.delay(attempt, err, self._rng)
                if wait is not None and not retry_fits(sum(spent), wait, self._timeout):
                    wait = None
                if wait is None:
                    # The error outlives the poll (last_error): drop the frames it holds,
                    # which may hold a refused answer's bytes.
                    err.__traceback__ = err.__context__ = None
                    self.last_error = err
                    raise err
                spent.append(wait)
                await self._sleep(wait)

    async def _attempt(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        parse: Callable[[Any], T],
        spent: list[float],
    ) -> T:
        headers = {
            "xi-api-key": self._api_key(),
            "user-agent": USER_AGENT,
            "accept-encoding": ACCEPT_ENCODING,
        }
        async with self._limiter:
            started = time.perf_counter()
            try:
                status, content, answer_headers = await self._exchange(
                    endpoint, method, path, body, headers
                )
            except ApiError as err:
                self._observe(endpoint, err.status_label, started)
                raise
            finally:
                spent.append(time.perf_counter() - started)
            self._observe(endpoint, str(status), started)
        if not 200 <= status < 300:
            raise classify_response(status, content, answer_headers, self._clock())
        return await self._decoder.decode(content, parse, endpoint, status)

    async def _exchange(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes, httpx.Headers]:
        """Send one request and read its answer, all within ``request_timeout``.

        The deadline covers connecting, the headers and the whole body: httpx's own
        timeouts apply to each read, so an answer dripping a byte at a time would
        otherwise never time out. A successful answer is read up to
        ``max_response_bytes`` and refused beyond it, unread; of an error answer only
        the first 64 KiB are read, for its code and message.
        """
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._http.stream(
                    method, self._base_url + path, json=body, headers=headers
                ) as response,
            ):
                status = response.status_code
                ok = 200 <= status < 300
                try:
                    content = await read_capped(
                        response, self._max_bytes if ok else ERROR_BODY_BYTES, truncate=not ok
                    )
                except (BodyTooLargeError, BodyUnreadableError) as err:
                    raise ApiError("bad_response", f"{endpoint}: {err}", status=status) from None
                return status, content, response.headers
        except TimeoutError:
            raise ApiError(
                "timeout", f"no complete answer within request_timeout ({self._timeout:g}s)"
            ) from None
        except httpx.HTTPError as exc:
            raise classify_transport(exc) from None

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
        parse = functools.partial(
            parse_usage, group_by=tuple(group_by), start=start, end=end, interval=interval
        )
        return await self._request("usage", "POST", USAGE_PATH, parse, body)

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
        parse = functools.partial(
            parse_cost_usage, group_by=tuple(group_by), start=start, end=end, interval=interval
        )
        return await self._request("usage", "POST", COST_USAGE_PATH, parse, body)

    async def subscription(self) -> Subscription:
        """The workspace's subscription: credits used and limit, reset time, tier."""
        return await self._request("subscription", "GET", SUBSCRIPTION_PATH, parse_subscription)

    async def character_stats(
        self, start_ms: int, end_ms: int, metric: str, bucket_seconds: int, breakdown: str
    ) -> dict[str, list[tuple[int, float]]]:
        """One metric of the deprecated character-stats endpoint for ``[start_ms, end_ms)``
        (Unix ms): values per breakdown key and bucket start (Unix ms)."""
        query = character_stats_query(start_ms, end_ms, metric, bucket_seconds, breakdown)
        path = f"{CHARACTER_STATS_PATH}?{urlencode(query)}"
        return await self._request("character_stats", "GET", path, parse_character_stats)

    async def service_accounts(self) -> list[ApiKeyLimit]:
        """Every service account's API keys with their credit cap and use this period."""
        return await self._request(
            "service_accounts", "GET", SERVICE_ACCOUNTS_PATH, parse_service_accounts
        )

    async def workspace_groups(self) -> list[GroupLimit]:
        """The workspace's groups with their credit limit and use this period."""
        return await self._request("groups", "GET", WORKSPACE_GROUPS_PATH, parse_groups)
