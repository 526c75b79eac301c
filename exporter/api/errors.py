"""Every way an ElevenLabs call can fail, classified in one place.

The ``reason`` of an :class:`ApiError` is the label value of
``elevenlabs_exporter_poll_errors_total``. Classification reads the body, not only
the status: ElevenLabs answers a missing permission with 401, like a bad key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx

REASONS = (
    "auth",
    "permission",
    "rate_limited",
    "server_error",
    "timeout",
    "network",
    "bad_response",
    "client_error",
)
# Longest wait the exporter accepts from a retry header; anything beyond is capped.
MAX_RETRY_AFTER = 3600.0


class ApiError(Exception):
    """A failed API call with its poll-error reason and what the API said."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def status_label(self) -> str:
        """The ``code`` label of the request counter: the HTTP status or ``error``."""
        return str(self.status) if self.status is not None else "error"


def error_detail(body: bytes) -> tuple[str | None, str]:
    """Read ``(code, message)`` from an error body, whatever shape it has.

    ``detail`` may be an object (``code`` or the older ``status``), a FastAPI list of
    validation items, or a plain string; the body may not be JSON at all.
    """
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body[:200].decode("utf-8", "replace").strip()
        return None, " ".join(text.split()) or "empty body"
    detail = parsed.get("detail", parsed) if isinstance(parsed, dict) else parsed
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status") or detail.get("type")
        message = detail.get("message") or detail.get("msg") or ""
        return (str(code) if code else None), str(message)
    if isinstance(detail, list):
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []))
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "validation_error", "; ".join(parts)
    return None, str(detail)[:200]


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait as the response asks, from any of the headers the SDK reads.

    ``retry-after-ms`` (milliseconds), ``retry-after`` (seconds or an HTTP date) and
    ``x-ratelimit-reset`` (a Unix time, or seconds when small). None when absent or
    unreadable; never negative; capped at an hour.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    wait: float | None = None
    if "retry-after-ms" in lowered:
        try:
            wait = float(lowered["retry-after-ms"]) / 1000
        except ValueError:
            wait = None
    if wait is None and "retry-after" in lowered:
        value = lowered["retry-after"].strip()
        try:
            wait = float(value)
        except ValueError:
            try:
                wait = parsedate_to_datetime(value).timestamp() - now
            except (TypeError, ValueError, IndexError):
                wait = None
    if wait is None and "x-ratelimit-reset" in lowered:
        try:
            value_f = float(lowered["x-ratelimit-reset"])
        except ValueError:
            value_f = None
        if value_f is not None:
            wait = value_f - now if value_f > 1e9 else value_f
    if wait is None or wait != wait:  # absent or NaN
        return None
    return min(max(wait, 0.0), MAX_RETRY_AFTER)


def classify_response(status: int, body: bytes, headers: Mapping[str, str], now: float) -> ApiError:
    """Turn a non-2xx answer into an ApiError with the right reason."""
    code, message = error_detail(body)
    summary = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    if status == 401:
        if code == "missing_permissions" or "permission" in message.lower():
            return ApiError("permission", summary, status=status, code=code)
        return ApiError("auth", summary, status=status, code=code)
    if status == 403:
        return ApiError("permission", summary, status=status, code=code)
    if status == 429 or status >= 500:  # transient: retried, as soon as the API asks
        return ApiError(
            "rate_limited" if status == 429 else "server_error",
            summary,
            status=status,
            code=code,
            retry_after=parse_retry_after(headers, now),
        )
    return ApiError("client_error", summary, status=status, code=code)


def classify_transport(exc: httpx.HTTPError) -> ApiError:
    """Turn an httpx exception (no HTTP answer) into an ApiError."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ApiError("timeout", f"request timed out ({name})")
    if isinstance(exc, httpx.DecodingError):
        return ApiError("bad_response", f"undecodable response body ({name})")
    return ApiError("network", f"{name}: {exc}" if str(exc) else name)


def missing_permission(message: str) -> str | None:
    """The permission name in a ``missing_permissions`` message, as the API spells it."""
    marker = "missing the permission "
    index = message.find(marker)
    if index < 0:
        return None
    return message[index + len(marker) :].split()[0].strip(".,")
