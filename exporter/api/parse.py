"""Reading ElevenLabs answers into typed values, defensively.

Tables are read by column name, never by position: the API appends display columns
and may reorder them. Numbers may arrive as strings, timestamps as ISO strings or
epoch seconds or milliseconds, enums as values nobody documented. Anything that
cannot be read raises :class:`~exporter.api.errors.ApiError` with reason
``bad_response``.

Amounts (credits, cost, charges, requests, characters, seconds) must be plausible: a
finite number from 0 to :data:`MAX_VALUE` (10^12) per bucket, after adding up the
rows of one bucket. A bucket cannot have used less than nothing: the API revises a
bucket by answering a smaller value for it later, never with a negative row. One
implausible value rejects the whole answer, so a poll applies all or nothing, and
the counters built from accepted values stay finite however long they add up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.api.errors import ApiError

Labels = tuple[str, ...]
UNKNOWN = "unknown"
_TIME_COLUMNS = ("timestamp", "time", "bucket_start", "start_time", "interval_start", "date")
_CREDIT_COLUMNS = ("credits_used", "credits")
# The largest amount accepted per bucket (and per subscription field): far beyond any
# real workspace (a trillion credits), far below where float sums lose their meaning.
MAX_VALUE = 1e12


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Credits used in one bucket by one label set (bucket start in Unix seconds)."""

    bucket: int
    labels: Labels
    credits: float


@dataclass(frozen=True)
class UsageTable:
    """A usage answer: the rows, and display names the API appended for id columns."""

    rows: list[UsageRow]
    names: dict[tuple[str, str], str]  # (dimension, value) -> display name


def display_column(columns: Sequence[str], dimension: str) -> int | None:
    """Where the API put the display name of an id column (``voice_id`` -> ``voice_name``)."""
    stem = dimension.removesuffix("_id")
    for candidate in (f"{dimension}_label", f"{dimension}_name", f"{stem}_name", f"{stem}_label"):
        if candidate != dimension and candidate in columns:
            return columns.index(candidate)
    return None


@dataclass(frozen=True)
class Subscription:
    """The fields of ``GET /v1/user/subscription`` the exporter publishes."""

    tier: str
    status: str
    credits_used: float
    credits_limit: float
    reset_at: int | None
    currency: str | None = None
    billing_period: str | None = None
    refresh_period: str | None = None
    voice_slots_used: float | None = None
    voice_limit: float | None = None
    # Under consolidated billing the count of every workspace of the billing group;
    # the workspace's own is professional_voice_slots_used_in_workspace.
    professional_voice_slots_used: float | None = None
    professional_voice_limit: float | None = None
    professional_voice_slots_used_in_workspace: float | None = None
    # current_overage: the usage-based overage so far, in overage_currency.
    overage_amount: float | None = None
    overage_currency: str | None = None
    # max_credit_limit_extension: credits the limit may be exceeded by (0: usage-based
    # billing off), or unlimited; None for both when missing or unreadable.
    credit_limit_extension: float | None = None
    credit_limit_extension_unlimited: bool | None = None
    has_open_invoices: bool | None = None


def bad(message: str) -> ApiError:
    """A ``bad_response`` error."""
    return ApiError("bad_response", message)


def to_number(value: Any, what: str) -> float:
    """A finite float from a number or a numeric string."""
    if isinstance(value, bool):
        raise bad(f"{what}: expected a number, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise bad(f"{what}: expected a number, got {value[:40]!r}") from None
    else:
        raise bad(f"{what}: expected a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise bad(f"{what}: not a finite number")
    return number


def to_amount(value: Any, what: str) -> float:
    """A plausible amount: a finite number from 0 to :data:`MAX_VALUE`."""
    number = to_number(value, what)
    if not 0 <= number <= MAX_VALUE:
        raise bad(f"{what}: {number:g} is not a plausible amount (0 to {MAX_VALUE:g})")
    return number


def to_epoch_seconds(value: Any) -> int:
    """Unix seconds from an ISO 8601 string or epoch seconds or milliseconds."""
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").replace(".", "", 1).isdigit():
            return to_epoch_seconds(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise bad(f"timestamp: cannot read {text[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return math.floor(parsed.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number):
            raise bad("timestamp: not a finite number")
        # Milliseconds from 1973 on are larger than any plausible epoch-seconds value.
        return math.floor(number / 1000 if abs(number) >= 1e11 else number)
    raise bad(f"timestamp: cannot read a {type(value).__name__}")


def label_value(value: Any) -> str:
    """A group value as a label: null becomes ``unknown``; anything else passes through."""
    if value is None or value == "":
        return UNKNOWN
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _find_column(
    columns: Sequence[str],
    names: Sequence[str],
    types: Sequence[Any],
    units: Sequence[Any],
    *,
    type_name: str | None = None,
    unit: str | None = None,
) -> int | None:
    for name in names:
        if name in columns:
            return columns.index(name)
    for index in range(len(columns)):
        if type_name is not None and index < len(types) and types[index] == type_name:
            return index
        if unit is not None and index < len(units) and units[index] == unit:
            return index
    return None


def parse_usage(
    body: Any,
    group_by: Sequence[str],
    *,
    start: int,
    end: int,
    interval: int,
    value_columns: Sequence[str] = _CREDIT_COLUMNS,
    value_unit: str | None = "credits",
) -> UsageTable:
    """Rows of a usage table whose bucket lies in ``[start, end)``, summed per key.

    Rows outside the window are dropped (the API may include the bucket at the end
    time); a row whose timestamp is off the interval grid is moved to the bucket that
    contains it; duplicate keys (from display columns) are added together.
    """
    if not isinstance(body, dict):
        raise bad("usage: expected a JSON object")
    columns = body.get("columns")
    rows = body.get("rows")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise bad("usage: missing or malformed 'columns'")
    if not isinstance(rows, list):
        raise bad("usage: missing or malformed 'rows'")
    types = body.get("column_types") or []
    units = body.get("column_units") or []
    if not isinstance(types, list) or not isinstance(units, list):
        raise bad("usage: malformed 'column_types' or 'column_units'")
    time_index = _find_column(columns, _TIME_COLUMNS, types, units, type_name="DateTime")
    if time_index is None:
        raise bad(f"usage: no time column among {columns}")
    credit_index = _find_column(columns, value_columns, types, units, unit=value_unit)
    if credit_index is None:
        raise bad(f"usage: no {value_columns[0]} column among {columns}")
    group_indexes = []
    for name in group_by:
        if name not in columns:
            raise bad(f"usage: missing column {name!r} (columns: {columns})")
        group_indexes.append(columns.index(name))

    width = len(columns)
    displays = {
        name: index for name in group_by if (index := display_column(columns, name)) is not None
    }
    names: dict[tuple[str, str], str] = {}
    totals: dict[tuple[int, Labels], float] = {}
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise bad(f"usage: row {number} does not have {width} cells")
        bucket = to_epoch_seconds(row[time_index])
        bucket -= bucket % interval
        if not start <= bucket < end:
            continue
        credits_cell = row[credit_index]
        credits = 0.0 if credits_cell is None else to_amount(credits_cell, value_columns[0])
        labels = tuple(label_value(row[i]) for i in group_indexes)
        key = (bucket, labels)
        total = totals[key] = totals.get(key, 0.0) + credits
        if total > MAX_VALUE:
            raise bad(f"usage: {value_columns[0]} of one bucket add up beyond {MAX_VALUE:g}")
        for name, index in displays.items():
            shown = row[index]
            if isinstance(shown, str) and shown:
                names[(name, labels[group_by.index(name)])] = shown
    rows_out = [UsageRow(bucket, labels, credits) for (bucket, labels), credits in totals.items()]
    return UsageTable(rows_out, names)


def parse_cost_usage(
    body: Any, group_by: Sequence[str], *, start: int, end: int, interval: int
) -> tuple[list[UsageRow], list[UsageRow]]:
    """The cost table of a workspace billed in currency: the rows of ``total_cost`` and
    of ``total_charge_count``, both read from the same answer."""
    window = {"start": start, "end": end, "interval": interval}
    cost = parse_usage(body, group_by, value_columns=("total_cost",), value_unit=None, **window)
    count = parse_usage(
        body, group_by, value_columns=("total_charge_count",), value_unit=None, **window
    )
    return cost.rows, count.rows


def _optional_number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return to_amount(value, name)
    except ApiError:
        return None


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return None if value is None else str(value)


def _optional_bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    return value if isinstance(value, bool) else None


def _currency(value: Any) -> str | None:
    """A currency code as a label value (``usd``, ...); None for anything else."""
    if not isinstance(value, str) or not value.strip() or len(value) > 16:
        return None
    return value.strip()


def _overage(body: dict[str, Any]) -> tuple[float | None, str | None]:
    """``current_overage``: ``{amount: str, currency}``; the amount is a string. Both
    None unless the amount is a plausible amount and a currency is known (the
    overage's, else the subscription's)."""
    overage = body.get("current_overage")
    if not isinstance(overage, dict):
        return None, None
    amount = _optional_number(overage, "amount")
    currency = _currency(overage.get("currency")) or _currency(body.get("currency"))
    if amount is None or currency is None:
        return None, None
    return amount, currency


def _extension(body: dict[str, Any]) -> tuple[float | None, bool | None]:
    """``max_credit_limit_extension``: an int, or ``"unlimited"``."""
    value = body.get("max_credit_limit_extension")
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return None, True
    amount = _optional_number(body, "max_credit_limit_extension")
    return amount, (False if amount is not None else None)


def parse_subscription(body: Any) -> Subscription:
    """The subscription, requiring only the credit count and limit."""
    if not isinstance(body, dict):
        raise bad("subscription: expected a JSON object")
    for name in ("character_count", "character_limit"):
        if name not in body or body[name] is None:
            raise bad(f"subscription: missing {name!r}")
    reset_raw = body.get("next_character_count_reset_unix")
    reset_at = None if reset_raw is None else to_epoch_seconds(reset_raw)
    overage_amount, overage_currency = _overage(body)
    extension, unlimited = _extension(body)
    return Subscription(
        tier=str(body.get("tier") or UNKNOWN),
        status=str(body.get("status") or UNKNOWN),
        credits_used=to_amount(body["character_count"], "character_count"),
        credits_limit=to_amount(body["character_limit"], "character_limit"),
        reset_at=reset_at,
        currency=_optional_str(body, "currency"),
        billing_period=_optional_str(body, "billing_period"),
        refresh_period=_optional_str(body, "character_refresh_period"),
        voice_slots_used=_optional_number(body, "voice_slots_used"),
        voice_limit=_optional_number(body, "voice_limit"),
        professional_voice_slots_used=_optional_number(body, "professional_voice_slots_used"),
        professional_voice_limit=_optional_number(body, "professional_voice_limit"),
        professional_voice_slots_used_in_workspace=_optional_number(
            body, "professional_voice_slots_used_in_workspace"
        ),
        overage_amount=overage_amount,
        overage_currency=overage_currency,
        credit_limit_extension=extension,
        credit_limit_extension_unlimited=unlimited,
        has_open_invoices=_optional_bool(body, "has_open_invoices"),
    )
