"""``--group-by`` and ``--filter``: what a report sums by and which usage it keeps.

Both are checked against the usage API's own lists (the same ones the exporter's
config accepts), so a typo is one line naming the flag before any request is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from exporter.config import FILTER_OPERATIONS, GROUP_BY_VALUES
from exporter.flags import UsageError

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")


def parse_group_by(text: str, flag: str = "--group-by") -> tuple[str, ...]:
    """A comma-separated list of usage dimensions, checked against the API's list."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise UsageError(flag, "name at least one dimension, e.g. product_type")
    for name in names:
        if name not in GROUP_BY_VALUES:
            raise UsageError(
                flag,
                f"unknown dimension {name!r}; choose from {', '.join(sorted(GROUP_BY_VALUES))}",
            )
    if len(set(names)) != len(names):
        raise UsageError(flag, f"a dimension is named twice in {text!r}")
    return names


def parse_filter(text: str, flag: str = "--filter") -> dict[str, Any]:
    """``column=op:v1,v2`` (or ``column=v1,v2`` for ``in``) as a ColumnFilter object.

    Values stay strings: the API takes them as they are, and an id that looks like a
    number must not turn into one.
    """
    column, sep, rest = text.partition("=")
    column = column.strip()
    if not sep or not _NAME_RE.fullmatch(column):
        raise UsageError(flag, f"expected column=op:value[,value...], got {text!r}")
    operation, colon, values_text = rest.partition(":")
    if not colon or operation not in FILTER_OPERATIONS:
        operation, values_text = "in", rest
    values = [v.strip() for v in values_text.split(",") if v.strip()]
    if not values:
        raise UsageError(flag, f"no values in {text!r}")
    return {"column": column, "operation": operation, "values": values}


def describe_filter(item: Mapping[str, Any]) -> str:
    """A filter as the user wrote it, for headers."""
    return f"{item['column']} {item['operation']} {','.join(str(v) for v in item['values'])}"
