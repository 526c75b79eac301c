"""Tests for exporter.shard: how ``--shard i/n`` splits workspaces between replicas."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.core.shard import parse_shard, select, shard_of

names_strategy = st.lists(st.text(min_size=1, max_size=30), unique=True, max_size=40)
count_strategy = st.integers(min_value=1, max_value=16)


@given(names=names_strategy, count=count_strategy)
def test_each_workspace_is_polled_by_exactly_one_shard(names: list[str], count: int) -> None:
    """Across the n shards, every workspace is selected once and only once."""
    selected = [name for index in range(count) for name in select(names, index, count)]
    assert sorted(selected) == sorted(names)


@given(
    names=names_strategy,
    added=names_strategy,
    removed_every=st.integers(min_value=2, max_value=5),
    count=count_strategy,
)
def test_assignment_survives_unrelated_additions_and_removals(
    names: list[str], added: list[str], removed_every: int, count: int
) -> None:
    """Adding or removing other workspaces never moves a workspace to another shard."""
    kept = [name for i, name in enumerate(names) if i % removed_every]
    changed = kept + [name for name in added if name not in names]
    before = {name: index for index in range(count) for name in select(names, index, count)}
    after = {name: index for index in range(count) for name in select(changed, index, count)}
    for name in kept:
        assert after[name] == before[name]


def test_select_keeps_the_given_order() -> None:
    """A shard's workspaces come back in configuration order, not hash order."""
    names = [f"team-{i:02d}" for i in range(30)]
    for index in range(3):
        chosen = select(names, index, 3)
        assert chosen == [name for name in names if name in chosen]


def test_known_assignments_do_not_change() -> None:
    """The hash is part of the deploy contract: changing it reshuffles every replica's work."""
    names = ("main", "marketing", "sales", "support", "research", "agents")
    assert [shard_of(name, 3) for name in names] == [0, 0, 1, 2, 2, 1]
    assert shard_of("default", 1) == 0


def test_assignment_does_not_depend_on_python_hash_seed() -> None:
    """Two processes with different PYTHONHASHSEED agree (no use of the salted hash())."""
    code = (
        "from exporter.core.shard import shard_of; "
        "print([shard_of(f'ws-{i}', 7) for i in range(50)])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str([shard_of(f"ws-{i}", 7) for i in range(50)])


def test_shards_get_roughly_equal_shares() -> None:
    """Workspaces spread evenly: no shard gets far more than 1/n of them."""
    counts = Counter(shard_of(f"workspace-{i}", 4) for i in range(2000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(400 <= n <= 600 for n in counts.values()), counts


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0/1", (0, 1)), ("2/3", (2, 3)), (" 1/4\n", (1, 4)), ("09/10", (9, 10))],
)
def test_parse_shard_accepts_index_over_count(text: str, expected: tuple[int, int]) -> None:
    """``i/n`` with 0 <= i < n parses, surrounding whitespace ignored."""
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("3/2", "between 0 and 1"),
        ("2/2", "between 0 and 1"),
        ("0/0", "at least 1"),
        ("a/b", "INDEX/COUNT"),
        ("1", "INDEX/COUNT"),
        ("1/2/3", "INDEX/COUNT"),
        ("", "INDEX/COUNT"),
        ("-1/2", "INDEX/COUNT"),
        ("+1/2", "INDEX/COUNT"),
        ("1/-2", "INDEX/COUNT"),
        ("1 / 2", "INDEX/COUNT"),
        ("1.0/2", "INDEX/COUNT"),
        ("\u0661/\u0662", "INDEX/COUNT"),
    ],
)
def test_parse_shard_rejects_bad_input_with_a_clear_message(text: str, reason: str) -> None:
    """Bad ``--shard`` values raise ValueError quoting the input and saying what is wrong."""
    with pytest.raises(ValueError, match="invalid shard") as excinfo:
        parse_shard(text)
    assert repr(text) in str(excinfo.value)
    assert reason in str(excinfo.value)


@pytest.mark.parametrize(("index", "count"), [(0, 0), (3, 3), (-1, 2)])
def test_select_rejects_impossible_shards(index: int, count: int) -> None:
    """select() refuses an index outside 0..count-1 or a count below 1."""
    with pytest.raises(ValueError, match="shard"):
        select(["a"], index, count)


def test_shard_of_rejects_zero_count() -> None:
    """shard_of() refuses a count below 1 instead of dividing by zero."""
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("main", 0)
