"""exporter/cli.py: flags, --config.check, exit codes and the one-line errors.

``cli.main`` is called in-process and its output read with capsys; only the last test
starts ``python -m exporter``. Every case here exits before the exporter would start
serving. ``cli.main`` reads the real environment (it takes no environ), so an autouse
fixture clears the variables the config reads and points HOME at the test's directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from exporter import __version__, cli
from exporter.core.shard import select

KEY = "sk_live_7f3a9c0e5b2d4f6a8c1e3b5d7f9a0c2e"

# Every case returns at once; a regression that starts the server fails instead of hanging.
pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ELEVENLABS_* or state-directory variables from the caller; HOME is tmp_path."""
    for name in list(os.environ):
        if name.startswith("ELEVENLABS") or name in ("STATE_DIRECTORY", "XDG_STATE_HOME"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)


@dataclass
class Result:
    """What one run of the command line did."""

    returncode: int
    stdout: str
    stderr: str


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """cli.main(args) in-process: its exit code (returned or raised) and its output."""
    try:
        code = cli.main(list(args))
    except SystemExit as exit_:  # argparse exits for --help, --version and bad flags
        code = exit_.code if isinstance(exit_.code, int) else 2
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


# --- --config.check ------------------------------------------------------------------------


def test_config_check_prints_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config.check prints the effective config, names where keys come from, never them."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    config = tmp_path / "config.yml"
    config.write_text(
        "poll_interval: 90s\nworkspaces:\n"
        "  - name: main\n    api_key_env: MAIN_KEY\n"
        f"  - name: eu\n    api_key_file: {key_file}\n"
        "    base_url: https://api.eu.residency.elevenlabs.io\n"
        f"  - name: inline\n    api_key: {KEY}x\n"
    )
    monkeypatch.setenv("MAIN_KEY", KEY + "y")
    result = run(capsys, "--config.file", str(config), "--config.check")
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stdout + result.stderr
    assert "from environment variable MAIN_KEY" in result.stdout
    assert "poll_interval: 90s" in result.stdout


def test_config_check_prints_the_effective_config_as_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output is YAML holding the effective values: environment overrides applied,
    defaults filled in, the default workspace from ELEVENLABS_API_KEY; nothing on stderr."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    monkeypatch.setenv("ELEVENLABS_EXPORTER_LOOKBACK", "4h")
    config = write_config(tmp_path, "lookback: 2h\nstate_file: null\n")
    result = run(capsys, "--config.file", str(config), "--config.check")
    assert (result.returncode, result.stderr) == (0, "")
    printed = yaml.safe_load(result.stdout)
    assert printed["lookback"] == "14400s"
    assert printed["poll_interval"] == "60s"
    assert printed["state_file"] is None
    assert printed["workspaces"] == [
        {
            "name": "default",
            "api_key": "from environment variable ELEVENLABS_API_KEY",
            "base_url": "https://api.elevenlabs.io",
            "group_by": ["product_type"],
        }
    ]


def test_config_check_without_a_file_shows_the_default_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a config file, --config.check shows the state file under ~/.local/state."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    result = run(capsys, "--config.check")
    assert result.returncode == 0, result.stderr
    expected = tmp_path / ".local/state/elevenlabs-exporter/state.json"
    assert yaml.safe_load(result.stdout)["state_file"] == str(expected)


def test_config_check_in_demo_mode_shows_the_simulator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--demo --config.check needs no key and shows the one simulated workspace."""
    result = run(capsys, "--demo", "--config.check")
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["workspaces"] == [
        {"name": "default", "api_key": "built-in demo key", "base_url": "embedded simulator"}
    ]
    assert printed["state_file"] is None


def test_config_check_in_demo_mode_shows_no_state_file_even_when_one_is_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo never persists (so it cannot replace a real workspace's ledger), and the
    effective config --config.check prints says so."""
    monkeypatch.setenv("ELEVENLABS_EXPORTER_STATE_FILE", "/data/state.json")
    result = run(capsys, "--demo", "--config.check")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["state_file"] is None


def test_config_check_rejects_an_unknown_demo_scenario(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--config.check validates every flag the run would reject: an unknown scenario is
    exit 2 with one line naming --demo.scenario."""
    result = run(capsys, "--demo", "--demo.scenario", "apocalypse", "--config.check")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--demo.scenario" in result.stderr


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("poll_intervall: 60s\n", "poll_intervall"),
        ("poll_interval: soon\n", "poll_interval"),
        ("bucket: 7s\n", "bucket"),
        ("lookback: 90s\n", "lookback"),
        ("count_from: last tuesday\n", "count_from"),
        ("workspaces:\n  - name: a\n    api_key_env: NOPE\n", "workspaces[0].api_key_env"),
        ("workspaces:\n  - name: a\n    colour: red\n", "workspaces[0].colour"),
        (
            "workspaces:\n  - name: a\n    api_key: k\n    base_url: ftp://x\n",
            "workspaces[0].base_url",
        ),
        ("workspaces:\n  - {name: a, api_key: k}\n  - {name: a, api_key: k}\n", "workspaces"),
        ("[unclosed\n", "config.file"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path,
    content: str,
    key: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every config mistake is one line on stderr naming the key; exit code 2; no traceback."""
    config = tmp_path / "config.yml"
    config.write_text(content)
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    result = run(capsys, "--config.file", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{key}:" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flags", [["--config.check"], []])
def test_config_check_exits_2_on_a_bad_config_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    """With or without --config.check a bad config is exit 2, one line starting
    'config error: ', nothing on stdout."""
    config = write_config(tmp_path, "workspaces:\n  - {name: a, api_key: k, colour: red}\n")
    result = run(capsys, "--config.file", str(config), *flags)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "config error: workspaces[0].colour: unknown key\n"


def test_a_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --config.file that does not exist is one config.file error, exit 2."""
    result = run(capsys, "--config.file", str(tmp_path / "nope.yml"), "--config.check")
    assert result.returncode == 2
    assert result.stderr.startswith("config error: config.file: cannot read ")
    assert result.stderr.count("\n") == 1


def test_a_missing_web_config_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config.check also validates --web.config.file: a missing one is exit 2."""
    result = run(capsys, "--demo", "--web.config.file", str(tmp_path / "web.yml"), "--config.check")
    assert result.returncode == 2
    assert result.stderr.startswith("config error: web.config.file: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "content", [b"count_from: 2026-13-01\n", b"poll_interval: 60s # caf\xe9\n"]
)
def test_a_config_file_problem_is_never_blamed_on_the_listen_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    """A config file YAML cannot build (an impossible date) or that is not UTF-8 is a
    config error, exit 2, and says nothing about --web.listen-address."""
    config = tmp_path / "config.yml"
    config.write_bytes(content)
    result = run(capsys, "--demo", "--config.file", str(config), "--config.check")
    assert result.returncode == 2
    assert result.stderr.startswith("config error: ")
    assert "--web.listen-address" not in result.stderr


def test_no_key_and_no_config_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a key the exporter explains the three ways to give one."""
    result = run(capsys)
    assert result.returncode == 2
    assert "ELEVENLABS_API_KEY" in result.stderr
    assert "--demo" in result.stderr


# --- Flags ---------------------------------------------------------------------------------


def test_version_prints_the_name_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints 'elevenlabs-exporter <version>' on stdout and exits 0."""
    result = run(capsys, "--version")
    assert result.returncode == 0
    assert result.stdout == f"elevenlabs-exporter {__version__}\n"


def test_help_lists_the_prometheus_style_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """--help exits 0 and documents the contract's flags and the subcommands."""
    result = run(capsys, "--help")
    assert result.returncode == 0
    for flag in (
        "--config.file",
        "--config.check",
        "--web.listen-address",
        "--web.telemetry-path",
        "--web.config.file",
        "--log.level",
        "--log.format",
        "--demo",
        "--shard",
        "--version",
    ):
        assert flag in result.stdout, flag
    assert "report" in result.stdout
    assert "backfill" in result.stdout


def test_flag_defaults_are_the_documented_ones() -> None:
    """Defaults: listen on :9142, metrics at /metrics, info level, no demo, and the log
    format chosen by where the log goes (console on a terminal, JSON otherwise)."""
    args = cli.build_parser().parse_args([])
    assert (args.listen_address, args.telemetry_path) == (":9142", "/metrics")
    assert (args.log_level, args.log_format) == ("info", None)
    assert (args.config_file, args.config_check, args.demo, args.shard) == (
        None,
        False,
        False,
        None,
    )
    assert args.demo_scenario == "normal"


BAD_FLAGS = [
    (["--bogus"], "--bogus"),
    (["--log.level", "loud"], "--log.level"),
    (["--log.format", "xml"], "--log.format"),
    (["--config.file"], "--config.file"),
]


@pytest.mark.parametrize(("args", "flag"), BAD_FLAGS)
def test_bad_flags_exit_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], args: list[str], flag: str
) -> None:
    """An unknown flag, a value outside a flag's choices or a missing value is exit 2,
    with the last line of stderr naming the flag."""
    result = run(capsys, "--demo", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert flag in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("args", "flag"), BAD_FLAGS)
def test_bad_flags_print_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], flag: str
) -> None:
    """A bad flag is one line on stderr, like a bad config."""
    result = run(capsys, "--demo", *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_bad_listen_address_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --web.listen-address is a flag error, exit 2."""
    result = run(capsys, "--demo", "--web.listen-address", "localhost")
    assert result.returncode == 2
    assert "--web.listen-address" in result.stderr


@pytest.mark.parametrize("address", ["localhost", "host:port", ":65536", ""])
def test_bad_listen_address_is_one_flag_error_line(
    capsys: pytest.CaptureFixture[str], address: str
) -> None:
    """The listen address is checked with --config.check too: one 'flag error' line
    quoting the value, exit 2."""
    result = run(capsys, "--demo", "--config.check", "--web.listen-address", address)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"flag error: --web.listen-address: expected host:port, got {address!r}\n"
    )


@pytest.mark.parametrize("path", ["metrics", "/", "/healthz", "/readyz"])
def test_telemetry_path_must_be_a_free_absolute_path(
    capsys: pytest.CaptureFixture[str], path: str
) -> None:
    """--web.telemetry-path must start with / and not take /, /healthz or /readyz."""
    result = run(capsys, "--demo", "--config.check", "--web.telemetry-path", path)
    assert result.returncode == 2
    assert result.stderr == "flag error: --web.telemetry-path: must be a path like /metrics\n"


def test_a_custom_telemetry_path_passes_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Any other absolute path is accepted."""
    result = run(capsys, "--demo", "--config.check", "--web.telemetry-path", "/stats")
    assert result.returncode == 0, result.stderr


# --- --shard -------------------------------------------------------------------------------


def test_shard_flag_keeps_only_this_shards_workspaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--shard i/n keeps exactly the workspaces hashed to shard i; across all shards each
    workspace appears once."""
    config = tmp_path / "config.yml"
    names = [f"client-{n}" for n in range(12)]
    config.write_text("workspaces:\n" + "".join(f"  - {{name: {n}, api_key: k}}\n" for n in names))
    seen: list[str] = []
    for index in range(3):
        result = run(
            capsys, "--config.file", str(config), "--config.check", "--shard", f"{index}/3"
        )
        assert result.returncode == 0, result.stderr
        seen += [
            line.split(": ", 1)[1]
            for line in result.stdout.splitlines()
            if line.startswith("- name: ")
        ]
    assert sorted(seen) == sorted(names)
    bad = run(capsys, "--config.file", str(config), "--shard", "3/3")
    assert bad.returncode == 2
    assert "--shard" in bad.stderr


def test_shard_keeps_the_config_order_and_the_hash_assignment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each shard's workspaces are those core.shard.select assigns it, in the file's order;
    0/1 keeps them all."""
    names = [f"team-{n}" for n in range(8)]
    config = write_config(
        tmp_path, "workspaces:\n" + "".join(f"  - {{name: {n}, api_key: k}}\n" for n in names)
    )
    for shard, expected in (("0/1", names), ("1/2", select(names, 1, 2))):
        result = run(capsys, "--config.file", str(config), "--config.check", "--shard", shard)
        assert result.returncode == 0, result.stderr
        printed = [ws["name"] for ws in yaml.safe_load(result.stdout)["workspaces"]]
        assert printed == expected


@pytest.mark.parametrize("shard", ["3/3", "a/b", "1", "0/0", "-1/3", "1/2/3"])
def test_a_bad_shard_is_one_flag_error_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, shard: str
) -> None:
    """An impossible or malformed --shard is exit 2 with one line naming --shard and the
    value, with or without --config.check (given as --shard=VALUE, so that argparse reads
    -1/3 as a value)."""
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    for flags in (["--config.check"], []):
        result = run(capsys, f"--shard={shard}", *flags)
        assert result.returncode == 2
        assert result.stderr.startswith(f"flag error: --shard: invalid shard {shard!r}")
        assert result.stderr.count("\n") == 1


# --- The process ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--version"], 0),
        (["--demo", "--config.check"], 0),
        (["--config.check"], 2),
        (["--demo", "--shard", "2/2"], 2),
    ],
)
def test_python_m_exporter_exits_with_the_code_main_returns(
    tmp_path: Path, args: list[str], code: int
) -> None:
    """`python -m exporter` exits with cli.main's code: 0 for --version and a good check,
    2 for a bad config or flag, without a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
