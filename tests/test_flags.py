"""Flag mistakes on the command line: one line naming the flag, exit 2, for the exporter
and both subcommands alike; the usage block only when asked for with ``--help``.

Each case runs the real process (``python -m exporter``), so what is pinned is exactly
what a user sees on stderr. None of them gets as far as reading a config or a key.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
        cwd=REPO,
    )


@pytest.mark.parametrize(
    ("args", "flag", "why"),
    [
        # The exporter itself.
        (["--log.level", "nope"], "--log.level", "invalid choice: 'nope'"),
        (["--log.format", "xml"], "--log.format", "invalid choice: 'xml'"),
        (["--nope"], "--nope", "unknown flag"),
        (["--demo", "--nope=1"], "--nope", "unknown flag"),
        (["--config.file"], "--config.file", "expected one argument"),
        # The exporter's own checks, made before the config is read: no key is set here,
        # and the flag mistake is what gets reported.
        (["--web.listen-address", "nope"], "--web.listen-address", "expected host:port"),
        (["--shard", "5/3"], "--shard", ""),
        (["--shard", "x"], "--shard", ""),
        (["--web.telemetry-path", "metrics"], "--web.telemetry-path", "a path like"),
        (["--demo", "--demo.scenario", "nope"], "--demo.scenario", "unknown scenario"),
        # report
        (["report", "--format", "xml", "--since", "1d"], "--format", "invalid choice: 'xml'"),
        (["report", "--since", "1d", "--nope"], "--nope", "unknown flag"),
        (["report"], "--since", "required"),
        (["report", "--format", "csv", "--since"], "--since", "expected one argument"),
        # backfill
        (["backfill", "--since", "2d", "--step", "x"], "--step", "expected a duration"),
        (["backfill", "--since", "2d", "--nope"], "--nope", "unknown flag"),
        (["backfill"], "--since", "required"),
        (["backfill", "--since", "2d", "--label"], "--label", "expected one argument"),
        (["backfill", "--s", "2d"], "--s", "ambiguous"),
        (["backfill", "--since", "2d", "--step", "0"], "--step", "expected a duration"),
        (["report", "--since", "1d", "--until", "nonsense"], "--until", "cannot read"),
    ],
)
def test_flag_mistakes_are_one_line_naming_the_flag(args: list[str], flag: str, why: str) -> None:
    """A bad choice value, an unknown flag, a missing required flag or value: exactly one
    line on stderr, ``flag error: FLAG: why``, nothing on stdout, exit 2."""
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"flag error: {flag}: "), result.stderr
    assert why in result.stderr
    assert "usage:" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["backfill", "--since", "2d", "--until", "1d"],
        ["report", "--since", "1d"],
        ["--web.listen-address", "127.0.0.1:0"],
    ],
)
def test_a_config_mistake_after_good_flags_is_one_line_too(args: list[str]) -> None:
    """With good flags but no workspace configured, one line naming the config key: no
    note or usage printed before it."""
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("config error: workspaces: "), result.stderr


@pytest.mark.parametrize("command", [[], ["report"], ["backfill"]])
def test_help_still_prints_usage_and_exits_0(command: list[str]) -> None:
    """``--help`` prints argparse's usage and flag list on stdout and exits 0."""
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    prog = " ".join(["elevenlabs-exporter", *command])
    assert result.stdout.startswith(f"usage: {prog} ")
    assert "--config.file" in result.stdout


def test_the_parser_names_every_missing_flag_and_keeps_the_long_name() -> None:
    """Several missing flags are all named in the one line; ``-q/--quiet`` is named by its
    long form."""
    # Imported here so that the process tests above also run against a tree without it.
    from exporter.flags import FlagParser, UsageError

    parser = FlagParser(prog="test")
    parser.add_argument("--since", required=True)
    parser.add_argument("--until", required=True)
    parser.add_argument("-q", "--quiet", action="store_true")
    with pytest.raises(UsageError) as missing:
        parser.parse_args([])
    assert str(missing.value) == "flag error: --since, --until: required"
    with pytest.raises(UsageError) as explicit:
        parser.parse_args(["--since", "a", "--until", "b", "--quiet=yes"])
    assert str(explicit.value) == "flag error: --quiet: ignored explicit argument 'yes'"
