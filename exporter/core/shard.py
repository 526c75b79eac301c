"""Split the configured workspaces between several exporter processes.

``--shard i/n`` makes one process poll only the workspaces whose shard is ``i`` out of
``n`` (``i`` counts from 0, like a StatefulSet's pod ordinal). A workspace's shard
depends on its name alone, through SHA-256 rather than Python's per-process salted
``hash()``: every replica computes the same assignment, on every start, and adding
or removing one workspace never moves another to a different shard.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

__all__ = ["parse_shard", "select", "shard_of"]

_SHARD_RE = re.compile(r"([0-9]+)/([0-9]+)")


def _check(index: int, count: int) -> None:
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    if not 0 <= index < count:
        raise ValueError(f"shard index must be between 0 and {count - 1}, got {index}")


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/n"`` into ``(i, n)``, with ``0 <= i < n``.

    Raises ``ValueError`` naming the expected form for anything else, e.g. ``"3/2"``,
    ``"a/b"``, ``"0/0"`` or ``"1"``.
    """
    match = _SHARD_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"invalid shard {text!r}: expected INDEX/COUNT with whole numbers, "
            "INDEX counted from 0, e.g. 0/3"
        )
    index, count = int(match.group(1)), int(match.group(2))
    try:
        _check(index, count)
    except ValueError as err:
        raise ValueError(f"invalid shard {text!r}: {err}") from None
    return index, count


def shard_of(workspace_name: str, count: int) -> int:
    """The shard, from 0 to ``count - 1``, that polls the workspace of this name."""
    _check(0, count)
    digest = hashlib.sha256(workspace_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select(names: Sequence[str], index: int, count: int) -> list[str]:
    """The names, in their given order, that shard ``index`` of ``count`` polls."""
    _check(index, count)
    return [name for name in names if shard_of(name, count) == index]
