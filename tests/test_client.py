"""The HTTP client against respx-mocked answers: parsing and failure classification."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from contract import REASONS
from fakes import Recorder

from exporter.api.client import ElevenLabsClient
from exporter.api.errors import ApiError
from exporter.api.parse import UsageRow
from exporter.api.paths import SUBSCRIPTION_PATH, USAGE_PATH

BASE = "https://api.example.test"
KEY = "sk_0123456789abcdef0123456789abcdef"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def make_client(http: httpx.AsyncClient, sleep: Recorder | None = None) -> ElevenLabsClient:
    """A client whose retries wait on a recording sleep, never on the real clock."""
    return ElevenLabsClient(
        workspace="w", base_url=BASE, api_key=lambda: KEY, http=http, sleep=sleep or Recorder()
    )


async def usage(table: dict[str, Any], start: int = T0, end: int = T0 + 600) -> list[UsageRow]:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(BASE + USAGE_PATH).respond(200, json=table)
        async with httpx.AsyncClient() as http:
            return await make_client(http).usage(start, end, 60)


def table(columns: list[str], rows: list[list[Any]], **extra: Any) -> dict[str, Any]:
    return {"columns": columns, "rows": rows, **extra}


async def test_string_numbers_iso_times_and_display_columns() -> None:
    """Credits as strings, ISO timestamps and an appended display column are read by name."""
    rows = await usage(
        table(
            ["timestamp", "product_type", "credits_used", "product_type_label"],
            [
                ["2026-01-01T00:01:00Z", "text_to_speech", "125.5", "Text to Speech"],
                ["2026-01-01T00:02:00+00:00", "dubbing", 3, "Dubbing"],
            ],
        )
    )
    assert set(rows) == {
        UsageRow(T0 + 60, ("text_to_speech",), 125.5),
        UsageRow(T0 + 120, ("dubbing",), 3.0),
    }


async def test_reordered_columns_and_epoch_timestamps() -> None:
    """Columns in another order, epoch seconds and epoch milliseconds all work."""
    rows = await usage(
        table(
            ["credits_used", "product_type", "timestamp"],
            [
                [2.5, "music", T0 + 60],
                ["1", "music", (T0 + 120) * 1000],
                ["4", "music", str(T0 + 180)],
            ],
        )
    )
    assert sorted(r.bucket for r in rows) == [T0 + 60, T0 + 120, T0 + 180]
    assert sum(r.credits for r in rows) == 7.5


async def test_nulls_and_unknown_products_pass_through() -> None:
    """A null group becomes 'unknown', a null credit cell 0, and new products pass as-is."""
    rows = await usage(
        table(
            ["timestamp", "product_type", "credits_used"],
            [["2026-01-01T00:01:00Z", None, "2"], ["2026-01-01T00:01:00Z", "holo-deck", None]],
        )
    )
    assert set(rows) == {
        UsageRow(T0 + 60, ("unknown",), 2.0),
        UsageRow(T0 + 60, ("holo-deck",), 0.0),
    }


async def test_rows_outside_the_window_are_dropped_and_duplicates_summed() -> None:
    """The bucket at the end time (if the API includes it) is not read; rows that differ
    only in columns we did not group by are added together."""
    rows = await usage(
        table(
            ["timestamp", "product_type", "credits_used", "model"],
            [
                ["2026-01-01T00:01:00Z", "tts", "2", "a"],
                ["2026-01-01T00:01:00Z", "tts", "3", "b"],
                ["2026-01-01T00:10:00Z", "tts", "99", "a"],
            ],
        )
    )
    assert rows == [UsageRow(T0 + 60, ("tts",), 5.0)]


async def test_columns_found_by_type_and_unit_when_names_differ() -> None:
    """A renamed time column is found by its DateTime type, credits by their unit."""
    rows = await usage(
        table(
            ["bucket", "product_type", "spent"],
            [["2026-01-01T00:01:00Z", "tts", "2"]],
            column_types=["DateTime", "String", "Float"],
            column_units=["s", "", "credits"],
        )
    )
    assert rows == [UsageRow(T0 + 60, ("tts",), 2.0)]


@pytest.mark.parametrize(
    "body",
    [
        {"rows": []},
        table(["timestamp", "credits_used"], []),  # no product_type column
        table(["timestamp", "product_type"], []),  # no credits column
        table(["timestamp", "product_type", "credits_used"], [["2026-01-01T00:01:00Z", "x"]]),
        table(["timestamp", "product_type", "credits_used"], [["yesterday", "x", "1"]]),
        table(
            ["timestamp", "product_type", "credits_used"], [["2026-01-01T00:01:00Z", "x", "lots"]]
        ),
        table(
            ["timestamp", "product_type", "credits_used"], [["2026-01-01T00:01:00Z", "x", "nan"]]
        ),
        ["not", "an", "object"],
    ],
)
async def test_malformed_tables_are_bad_responses(body: Any) -> None:
    """Wrong shapes, missing columns and unreadable cells raise bad_response."""
    with pytest.raises(ApiError) as caught:
        await usage(body)
    assert caught.value.reason == "bad_response"


async def test_request_body_and_key_header() -> None:
    """The usage query sends ms times, the interval, product grouping, UTC and the key."""
    with respx.mock() as mock:
        route = mock.post(BASE + USAGE_PATH).respond(
            200, json=table(["timestamp", "product_type", "credits_used"], [])
        )
        async with httpx.AsyncClient() as http:
            await make_client(http).usage(T0, T0 + 3600, 3600)
    request = route.calls.last.request
    assert request.headers["xi-api-key"] == KEY
    assert json.loads(request.content) == {
        "start_time": T0 * 1000,
        "end_time": (T0 + 3600) * 1000,
        "interval_seconds": 3600,
        "group_by": ["product_type"],
        "time_zone": "UTC",
    }


async def test_subscription_fields() -> None:
    """The subscription is read with string-or-number counts and open enums."""
    body = {
        "tier": "creator",
        "status": "brand_new_status",
        "character_count": "1200",
        "character_limit": 100000,
        "next_character_count_reset_unix": 1738356858,
        "currency": "eur",
        "billing_period": "annual_period",
        "character_refresh_period": "monthly_period",
        "voice_slots_used": 3,
        "voice_limit": 30,
        "professional_voice_slots_used": 0,
        "professional_voice_limit": 1,
    }
    with respx.mock() as mock:
        mock.get(BASE + SUBSCRIPTION_PATH).respond(200, json=body)
        async with httpx.AsyncClient() as http:
            sub = await make_client(http).subscription()
    assert (sub.credits_used, sub.credits_limit, sub.reset_at) == (1200.0, 100000.0, 1738356858)
    assert (sub.status, sub.refresh_period, sub.voice_limit) == (
        "brand_new_status",
        "monthly_period",
        30.0,
    )


async def call_with(
    response: httpx.Response | Exception, sleep: Recorder | None = None
) -> ApiError:
    with respx.mock() as mock:
        route = mock.get(BASE + SUBSCRIPTION_PATH)
        if isinstance(response, Exception):
            route.side_effect = response
        else:
            route.return_value = response
        async with httpx.AsyncClient() as http:
            with pytest.raises(ApiError) as caught:
                await make_client(http, sleep).subscription()
    return caught.value


# One answer (or transport failure) per way a call can fail, with the reason it counts as.
FAILURES: list[tuple[httpx.Response | Exception, str]] = [
    (
        httpx.Response(
            401, json={"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
        ),
        "auth",
    ),
    (
        httpx.Response(
            401,
            json={
                "detail": {
                    "status": "missing_permissions",
                    "message": "The API key you used is missing the permission user_read "
                    "to execute this operation.",
                }
            },
        ),
        "permission",
    ),
    (httpx.Response(403, json={"detail": {"code": "only_for_creator+"}}), "permission"),
    (
        httpx.Response(422, json={"detail": [{"loc": ["body", "start_time"], "msg": "bad"}]}),
        "client_error",
    ),
    (httpx.Response(400, text="plain words"), "client_error"),
    (httpx.Response(404, json={"detail": "Not Found"}), "client_error"),
    (
        httpx.Response(429, json={"detail": {"code": "concurrent_limit_exceeded"}}),
        "rate_limited",
    ),
    (httpx.Response(429, json={"detail": {"status": "system_busy"}}), "rate_limited"),
    (httpx.Response(503, text="<html>down</html>"), "server_error"),
    (httpx.Response(200, text="<html>login</html>"), "bad_response"),
    (httpx.Response(200, text='{"tier": "pro", "charac'), "bad_response"),
    (httpx.ConnectTimeout("slow"), "timeout"),
    (httpx.ReadTimeout("slow"), "timeout"),
    (httpx.ConnectError("refused"), "network"),
    (httpx.RemoteProtocolError("reset"), "network"),
]


@pytest.mark.parametrize(("response", "reason"), FAILURES)
async def test_failures_are_classified(response: httpx.Response | Exception, reason: str) -> None:
    """Each kind of failure maps to its poll-error reason, reading the body."""
    assert (await call_with(response)).reason == reason


def test_every_poll_error_reason_has_a_classification_case() -> None:
    """The failures above cover every reason of the contract, and nothing else."""
    assert {reason for _, reason in FAILURES} == set(REASONS)


async def test_retry_after_is_read_from_429() -> None:
    """A 429's retry-after header is kept on the error for the backoff (and the retries
    within the poll wait exactly that long, on an injected sleep)."""
    sleep = Recorder()
    err = await call_with(httpx.Response(429, headers={"retry-after": "7"}), sleep)
    assert err.retry_after == 7.0
    assert sleep.waits == [7.0, 7.0]


async def test_key_never_appears_in_error_text() -> None:
    """An error body that echoes the key does not carry it into the exception text
    unredacted by the client's callers (the log redactor masks key-shaped strings)."""
    from exporter.log import Redactor

    err = await call_with(
        httpx.Response(
            401, json={"detail": {"status": "invalid_api_key", "message": f"bad key {KEY}"}}
        )
    )
    assert KEY not in Redactor([KEY]).redact(str(err))
