"""Error-body reading and retry headers, in the one place that classifies failures."""

from __future__ import annotations

import pytest

from exporter.api.errors import error_detail, missing_permission, parse_retry_after

NOW = 1_767_225_600.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"detail":{"type":"validation_error","code":"invalid_parameters","message":"m"}}',
            ("invalid_parameters", "m"),
        ),
        (
            b'{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}',
            ("invalid_api_key", "Invalid API key"),
        ),
        (b'{"detail":"Something went wrong"}', (None, "Something went wrong")),
        (
            b'{"detail":[{"loc":["body","end_time"],"msg":"field required","type":"missing"}]}',
            ("validation_error", "body.end_time: field required"),
        ),
        (b"<html><body>Bad gateway</body></html>", (None, "<html><body>Bad gateway</body></html>")),
        (b"", (None, "empty body")),
    ],
)
def test_error_detail_reads_every_shape(body: bytes, expected: tuple[str | None, str]) -> None:
    """detail as an object (code or legacy status), a string, a FastAPI list, or no JSON."""
    assert error_detail(body) == expected


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "12"}, 12.0),
        ({"retry-after": "Thu, 01 Jan 2026 00:00:30 GMT"}, 30.0),
        ({"x-ratelimit-reset": str(int(NOW) + 45)}, 45.0),
        ({"x-ratelimit-reset": "20"}, 20.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "99999"}, 3600.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], seconds: float | None) -> None:
    """Every retry header the SDK reads is honoured, clamped to [0, 1h]."""
    assert parse_retry_after(headers, NOW) == seconds


def test_missing_permission_is_named() -> None:
    """The permission a key lacks is extracted as the API spells it."""
    message = "The API key you used is missing the permission user_read to execute this operation."
    assert missing_permission(message) == "user_read"
    assert missing_permission("Invalid API key") is None
