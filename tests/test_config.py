"""exporter/config: the YAML file and the environment, parsed once into frozen dataclasses.

Every test passes its own environment to ``load_config`` (nothing here reads or
changes ``os.environ``) and writes its config file into ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import (
    DEFAULT_BASE_URL,
    DEFAULT_KEY_ENV,
    DEFAULT_MAX_VALUES,
    ENV_PREFIX,
    Config,
    ConfigError,
    KeySource,
    Secret,
    default_state_file,
    load_config,
    parse_duration,
    read_key_file,
)

KEY = "sk_live_7f3a9c0e5b2d4f6a8c1e3b5d7f9a0c2e"
HOME = "/home/tester"
ENV = {"HOME": HOME, DEFAULT_KEY_ENV: KEY}


def load(
    tmp_path: Path, text: str | None, environ: Mapping[str, str] | None = None, **kw: Any
) -> Config:
    """load_config on ``text`` written to a file (None: no file), in a given environment."""
    path = None
    if text is not None:
        path = tmp_path / "config.yml"
        path.write_text(text, encoding="utf-8")
    return load_config(path, ENV if environ is None else environ, **kw)


def error(tmp_path: Path, text: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The message of the ConfigError that loading ``text`` raises."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    return str(caught.value)


def one_workspace(extra: str = "") -> str:
    """A config with one workspace ``a`` (inline key) and ``extra`` lines under it."""
    return f"workspaces:\n  - name: a\n    api_key: {KEY}\n" + extra


# --- Durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("24h", 86400.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
        ("1w", 604800.0),
        (" 5m ", 300.0),
        ("60", 60.0),
        (60, 60.0),
        (1.5, 1.5),
    ],
)
def test_durations_take_units_or_plain_seconds(value: object, seconds: float) -> None:
    """Durations like 90s, 5m, 24h, compound 1h30m, ms/d/w units, and integer seconds (as
    a number or a string) are all read as seconds."""
    assert parse_duration(value, "poll_interval") == seconds


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("soon", "expected a duration like 90s, 5m or 2h"),
        ("", "expected a duration"),
        ("5 m", "expected a duration"),
        ("1.5m", "expected a duration"),
        ("5M", "expected a duration"),
        ("-5s", "expected a duration"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([60], "expected a duration"),
        ("0s", "must be greater than zero"),
        (0, "must be greater than zero"),
        (-1, "must be greater than zero"),
    ],
)
def test_bad_durations_name_the_key(value: object, reason: str) -> None:
    """Anything that is not a positive duration is a ConfigError naming the key it was
    read for, with the reason."""
    with pytest.raises(ConfigError) as caught:
        parse_duration(value, "lookback")
    assert caught.value.key == "lookback"
    assert str(caught.value).startswith("config error: lookback: ")
    assert reason in str(caught.value)


# --- Defaults and the environment ---------------------------------------------------------


def test_defaults_without_a_file_watch_one_workspace_named_default(tmp_path: Path) -> None:
    """Without a config file: one workspace ``default`` keyed by ELEVENLABS_API_KEY on the
    public API, and the documented defaults for every other key."""
    config = load(tmp_path, None)
    assert (
        config.poll_interval,
        config.lookback,
        config.bucket,
        config.count_from,
        config.request_timeout,
        config.max_concurrent_requests,
        config.max_retries,
        config.current_bucket,
        config.recent,
        config.reread_interval,
        config.subscription_interval,
        config.max_response_bytes,
    ) == (60.0, 7200, 60, None, 30.0, 64, 2, True, 600, 600, 300.0, 16 * 1024 * 1024)
    (ws,) = config.workspaces
    assert ws.name == "default"
    assert ws.api_key.reveal() == KEY
    assert ws.key_source == KeySource("env", DEFAULT_KEY_ENV)
    assert ws.base_url == DEFAULT_BASE_URL == "https://api.elevenlabs.io"
    assert ws.group_by == ("product_type",)
    assert ws.poll_interval is None
    assert not ws.character_stats


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    """An empty config file (all keys are optional) means the same as no file."""
    assert load(tmp_path, "") == load(tmp_path, None)


def test_elevenlabs_base_url_sets_the_default_hosts(tmp_path: Path) -> None:
    """ELEVENLABS_BASE_URL (trailing slash dropped) is the host of the default workspace
    and of listed workspaces that name none; a workspace's own base_url wins."""
    env = {**ENV, "ELEVENLABS_BASE_URL": "https://api.eu.residency.elevenlabs.io/"}
    (default,) = load(tmp_path, None, env).workspaces
    assert default.base_url == "https://api.eu.residency.elevenlabs.io"
    config = load(
        tmp_path,
        "workspaces:\n  - {name: a, api_key: k}\n"
        "  - {name: b, api_key: k, base_url: 'http://127.0.0.1:8080/'}\n",
        env,
    )
    assert [ws.base_url for ws in config.workspaces] == [
        "https://api.eu.residency.elevenlabs.io",
        "http://127.0.0.1:8080",
    ]


def test_a_bad_elevenlabs_base_url_names_the_variable(tmp_path: Path) -> None:
    """A base URL that is not http(s) is a config error naming ELEVENLABS_BASE_URL."""
    message = error(tmp_path, None, {**ENV, "ELEVENLABS_BASE_URL": "api.elevenlabs.io"})
    assert message.startswith("config error: ELEVENLABS_BASE_URL: ")


def test_no_key_and_no_workspaces_says_the_three_ways(tmp_path: Path) -> None:
    """Without ELEVENLABS_API_KEY (or a blank one) and without workspaces, the error
    names the variable, --config.file and --demo."""
    for env in ({"HOME": HOME}, {"HOME": HOME, DEFAULT_KEY_ENV: "  "}):
        message = error(tmp_path, None, env)
        assert message.startswith("config error: workspaces: ")
        for hint in (DEFAULT_KEY_ENV, "--config.file", "--demo"):
            assert hint in message


def test_demo_needs_no_key_and_configures_no_workspace(tmp_path: Path) -> None:
    """With demo the workspaces stay empty (the caller points one at the simulator) and no
    key is needed, and no state file is kept unless one is set."""
    config = load(tmp_path, None, {"HOME": HOME}, demo=True)
    assert config.workspaces == ()
    assert config.state_file is None
    explicit = load(tmp_path, "state_file: /data/demo.json\n", {"HOME": HOME}, demo=True)
    assert explicit.state_file == Path("/data/demo.json")


@pytest.mark.parametrize(
    ("key", "file_value", "env_value", "attribute", "expected"),
    [
        ("poll_interval", "90s", "5m", "poll_interval", 300.0),
        ("lookback", "2h", "4h", "lookback", 14400),
        ("bucket", "60s", "5m", "bucket", 300),
        (
            "count_from",
            "billing_cycle",
            "2026-01-01",
            "count_from",
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        ("state_file", "/var/lib/a.json", "/data/b.json", "state_file", Path("/data/b.json")),
        ("state_file", "/var/lib/a.json", "", "state_file", None),
        ("request_timeout", "30s", "10s", "request_timeout", 10.0),
        ("max_concurrent_requests", "4", "9", "max_concurrent_requests", 9),
        ("max_retries", "2", "0", "max_retries", 0),
        ("max_response_bytes", "16MiB", "1MiB", "max_response_bytes", 1024**2),
    ],
)
def test_environment_overrides_the_file(
    tmp_path: Path, key: str, file_value: str, env_value: str, attribute: str, expected: object
) -> None:
    """ELEVENLABS_EXPORTER_<KEY> overrides the file's value of each top-level key
    (an empty ELEVENLABS_EXPORTER_STATE_FILE disables the state file)."""
    env = {**ENV, ENV_PREFIX + key.upper(): env_value}
    assert getattr(load(tmp_path, f"{key}: '{file_value}'\n", env), attribute) == expected
    assert getattr(load(tmp_path, None, env), attribute) == expected


def test_environment_values_are_validated_like_the_files(tmp_path: Path) -> None:
    """A bad value from the environment is a config error naming the key it overrides."""
    env = {**ENV, "ELEVENLABS_EXPORTER_POLL_INTERVAL": "soon"}
    assert error(tmp_path, None, env).startswith("config error: poll_interval: ")
    env = {**ENV, "ELEVENLABS_EXPORTER_MAX_RETRIES": "-1"}
    assert error(tmp_path, None, env).startswith("config error: max_retries: ")


# --- The file itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("poll_intervall: 60s\n", "poll_intervall", "unknown key"),
        ("workspace:\n  - name: a\n", "workspace", "unknown key"),
        (one_workspace("    colour: red\n"), "workspaces[0].colour", "unknown key"),
        (one_workspace("    api_key_envv: X\n"), "workspaces[0].api_key_envv", "unknown key"),
    ],
)
def test_unknown_keys_are_errors(tmp_path: Path, text: str, key: str, reason: str) -> None:
    """A misspelt key, top-level or in a workspace, is an error naming it, not ignored."""
    assert error(tmp_path, text) == f"config error: {key}: {reason}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[unclosed\n", "is not valid YAML at line 2"),
        ("- a\n- list\n", "must hold a mapping of keys"),
        ("just words\n", "must hold a mapping of keys"),
    ],
)
def test_a_file_that_is_not_a_mapping_is_a_config_file_error(
    tmp_path: Path, text: str, reason: str
) -> None:
    """Invalid YAML (with its line) or YAML that is not a mapping is an error about
    config.file that names the file."""
    message = error(tmp_path, text)
    assert message.startswith("config error: config.file: ")
    assert str(tmp_path / "config.yml") in message
    assert reason in message


def test_a_file_that_is_not_utf8_is_a_config_file_error(tmp_path: Path) -> None:
    """A config file that is not UTF-8 text is an error about config.file."""
    path = tmp_path / "config.yml"
    path.write_bytes(b"poll_interval: 60s # caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert caught.value.key == "config.file"


def test_an_unreadable_file_is_a_config_file_error(tmp_path: Path) -> None:
    """A config file that does not exist is an error about config.file, without a
    traceback's worth of detail."""
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yml", ENV)
    assert caught.value.key == "config.file"
    assert "cannot read" in str(caught.value)
    assert "No such file" in str(caught.value)


# --- Validation of the top-level keys ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("poll_interval: 500ms\n", "poll_interval", "at least 1s"),
        ("bucket: 7s\n", "bucket", "at least 60s"),
        ("bucket: 61s\n", "bucket", "divide one hour"),
        ("bucket: 2h\n", "bucket", "divide one hour"),
        ("lookback: 90s\n", "lookback", "multiple of bucket"),
        ("lookback: 60s\n", "lookback", "at least two buckets"),
        ("bucket: 5m\nlookback: 12m\n", "lookback", "multiple of bucket"),
        ("count_from: last tuesday\n", "count_from", "RFC 3339"),
        ("count_from: '2026-13-01'\n", "count_from", "RFC 3339"),
        ("state_file: 5\n", "state_file", "file path or null"),
        ("request_timeout: never\n", "request_timeout", "expected a duration"),
        ("max_concurrent_requests: 0\n", "max_concurrent_requests", "at least 1"),
        ("max_concurrent_requests: 2.5\n", "max_concurrent_requests", "whole number"),
        ("max_retries: -1\n", "max_retries", "at least 0"),
        ("max_retries: true\n", "max_retries", "whole number"),
        ("max_response_bytes: lots\n", "max_response_bytes", "expected a size"),
        ("max_response_bytes: 16 MiBs\n", "max_response_bytes", "expected a size"),
        ("max_response_bytes: 1.5MiB\n", "max_response_bytes", "expected a size"),
        ("max_response_bytes: true\n", "max_response_bytes", "expected a size"),
        ("max_response_bytes: 1KiB\n", "max_response_bytes", "from 64KiB to 1GiB"),
        ("max_response_bytes: 2GiB\n", "max_response_bytes", "from 64KiB to 1GiB"),
    ],
)
def test_bad_top_level_values_name_the_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    """Each invalid value is one ConfigError naming its key and saying why."""
    message = error(tmp_path, text)
    assert message.startswith(f"config error: {key}: "), message
    assert reason in message


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "2026-01-01 25:00:00"])
def test_an_impossible_unquoted_date_is_a_config_error(tmp_path: Path, value: str) -> None:
    """A date YAML reads as a timestamp but that does not exist (month 13, 30 February)
    is one config error, naming count_from or the file, not a crash."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"count_from: {value}\n")
    assert caught.value.key in ("count_from", "config.file")


@pytest.mark.parametrize(
    ("text", "bucket", "lookback"),
    [
        ("bucket: 5m\nlookback: 10m\n", 300, 600),
        ("bucket: 90s\nlookback: 3h\n", 90, 10800),
        ("bucket: 1h\nlookback: 1d\n", 3600, 86400),
    ],
)
def test_buckets_that_divide_an_hour_with_a_lookback_of_whole_buckets(
    tmp_path: Path, text: str, bucket: int, lookback: int
) -> None:
    """Any bucket of whole seconds from 60s to 1h that divides an hour is accepted, with
    a lookback of at least two whole buckets."""
    config = load(tmp_path, text)
    assert (config.bucket, config.lookback) == (bucket, lookback)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count_from: billing_cycle\n", None),
        ("count_from: 2026-01-01\n", datetime(2026, 1, 1, tzinfo=UTC)),
        ("count_from: '2026-01-01'\n", datetime(2026, 1, 1, tzinfo=UTC)),
        ("count_from: 2026-01-01T00:00:00Z\n", datetime(2026, 1, 1, tzinfo=UTC)),
        ("count_from: '2026-01-01T00:00:00Z'\n", datetime(2026, 1, 1, tzinfo=UTC)),
        ("count_from: '2026-01-01T02:30:00+02:00'\n", datetime(2026, 1, 1, 0, 30, tzinfo=UTC)),
        ("count_from: '2026-01-01T12:00:00'\n", datetime(2026, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_count_from_is_the_billing_cycle_or_an_rfc3339_time_in_utc(
    tmp_path: Path, text: str, expected: datetime | None
) -> None:
    """count_from is billing_cycle (None) or a date/time, quoted or as YAML reads it,
    converted to UTC (a time without an offset is UTC)."""
    config = load(tmp_path, text)
    assert config.count_from == expected
    if expected is not None:
        assert config.count_from is not None
        assert config.count_from.utcoffset() is not None


@pytest.mark.parametrize("value", ["null", "~", "''", "none"])
def test_state_file_null_disables_persistence(tmp_path: Path, value: str) -> None:
    """state_file: null (or empty, or none) keeps the ledger in memory only."""
    assert load(tmp_path, f"state_file: {value}\n").state_file is None


# --- Default state file location ---------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"STATE_DIRECTORY": "/var/lib/elevenlabs-exporter", "XDG_STATE_HOME": "/x"},
            "/var/lib/elevenlabs-exporter/state.json",
        ),
        ({"STATE_DIRECTORY": "/var/lib/one:/var/lib/two"}, "/var/lib/one/state.json"),
        (
            {"XDG_STATE_HOME": "/srv/state", "HOME": HOME},
            "/srv/state/elevenlabs-exporter/state.json",
        ),
        ({"HOME": HOME}, f"{HOME}/.local/state/elevenlabs-exporter/state.json"),
        (
            {"STATE_DIRECTORY": "", "XDG_STATE_HOME": "", "HOME": HOME},
            f"{HOME}/.local/state/elevenlabs-exporter/state.json",
        ),
    ],
)
def test_default_state_file_follows_systemd_then_xdg_then_home(
    environ: dict[str, str], expected: str
) -> None:
    """systemd's $STATE_DIRECTORY (its first entry) wins, then $XDG_STATE_HOME, then
    ~/.local/state; empty variables count as unset."""
    assert default_state_file(environ) == Path(expected)


def test_the_default_state_file_is_used_when_none_is_configured(tmp_path: Path) -> None:
    """Without state_file the ledger persists at the default location, by default."""
    env = {**ENV, "STATE_DIRECTORY": "/var/lib/elevenlabs-exporter"}
    assert load(tmp_path, None, env).state_file == Path("/var/lib/elevenlabs-exporter/state.json")
    assert load(tmp_path, "state_file: /data/s.json\n", env).state_file == Path("/data/s.json")


# --- Keys and where they come from -------------------------------------------------------


def test_each_key_source_reads_its_key(tmp_path: Path) -> None:
    """api_key_env reads the named variable, api_key_file the file (whitespace stripped),
    api_key the inline value; a workspace naming none reads ELEVENLABS_API_KEY."""
    key_file = tmp_path / "key"
    key_file.write_text(f"  {KEY}-file\n")
    config = load(
        tmp_path,
        "workspaces:\n"
        "  - {name: env, api_key_env: MAIN_KEY}\n"
        f"  - {{name: file, api_key_file: '{key_file}'}}\n"
        f"  - {{name: inline, api_key: '{KEY}-inline'}}\n"
        "  - {name: implicit}\n",
        {**ENV, "MAIN_KEY": f"{KEY}-env\n"},
    )
    assert [(ws.name, ws.api_key.reveal(), ws.key_source) for ws in config.workspaces] == [
        ("env", f"{KEY}-env", KeySource("env", "MAIN_KEY")),
        ("file", f"{KEY}-file", KeySource("file", str(key_file))),
        ("inline", f"{KEY}-inline", KeySource("config")),
        ("implicit", KEY, KeySource("env", DEFAULT_KEY_ENV)),
    ]


@pytest.mark.parametrize(
    ("workspace", "key", "reason"),
    [
        ("{name: a, api_key_env: NOPE}", "workspaces[0].api_key_env", "NOPE is not set"),
        ("{name: a, api_key_env: BLANK}", "workspaces[0].api_key_env", "BLANK is not set"),
        ("{name: a, api_key_env: ''}", "workspaces[0].api_key_env", "environment variable"),
        ("{name: a, api_key_file: /nonexistent/key}", "workspaces[0].api_key_file", "cannot read"),
        ("{name: a, api_key_file: EMPTY}", "workspaces[0].api_key_file", "is empty"),
        ("{name: a, api_key_file: ''}", "workspaces[0].api_key_file", "file path"),
        ("{name: a, api_key: ' '}", "workspaces[0].api_key", "non-empty string"),
        ("{name: a, api_key: 42}", "workspaces[0].api_key", "non-empty string"),
        ("{name: a, api_key: k, api_key_env: X}", "workspaces[0]", "set only one of"),
    ],
)
def test_key_problems_name_the_workspace_key(
    tmp_path: Path, workspace: str, key: str, reason: str
) -> None:
    """A missing variable, an unreadable or empty key file, a blank inline key, or two
    sources at once: one error naming the workspace's key."""
    empty = tmp_path / "empty"
    empty.write_text("\n")
    text = "workspaces:\n  - " + workspace.replace("EMPTY", str(empty)) + "\n"
    message = error(tmp_path, text, {**ENV, "BLANK": " "})
    assert message.startswith(f"config error: {key}: "), message
    assert reason in message


def test_read_key_file_strips_and_names_the_key(tmp_path: Path) -> None:
    """read_key_file returns the stripped key; an empty file names the key it was for."""
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    assert read_key_file(path, "workspaces[3].api_key_file") == KEY
    path.write_text(" \n")
    with pytest.raises(ConfigError) as caught:
        read_key_file(path, "workspaces[3].api_key_file")
    assert caught.value.key == "workspaces[3].api_key_file"


def test_key_sources_describe_themselves_without_the_key() -> None:
    """Each source names where the key comes from, never its value."""
    assert KeySource("env", "MAIN_KEY").describe() == "from environment variable MAIN_KEY"
    assert KeySource("file", "/run/secrets/key").describe() == "from file /run/secrets/key"
    assert KeySource("config").describe() == "inline in the config file"
    assert KeySource("demo").describe() == "built-in demo key"


def test_a_secret_never_prints_itself() -> None:
    """repr, str, format() and f-strings of a Secret show a mask; only reveal() gives
    the key; two Secrets of the same key are equal."""
    secret = Secret(KEY)
    for shown in (repr(secret), str(secret), f"{secret}", format(secret), f"{[secret]}"):
        assert KEY not in shown
        assert "****" in shown
    assert secret.reveal() == KEY
    assert secret == Secret(KEY)
    assert secret != Secret(KEY + "x")
    assert len({secret, Secret(KEY)}) == 1


# --- Workspaces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("workspaces: []\n", "workspaces", "non-empty list"),
        ("workspaces: {name: a}\n", "workspaces", "non-empty list"),
        ("workspaces:\n  - main\n", "workspaces[0]", "expected a mapping"),
        ("workspaces:\n  - {api_key: k}\n", "workspaces[0].name", "required"),
        ("workspaces:\n  - {name: ' ', api_key: k}\n", "workspaces[0].name", "required"),
        ("workspaces:\n  - {name: 7, api_key: k}\n", "workspaces[0].name", "required"),
        (
            "workspaces:\n  - {name: a, api_key: k}\n  - {name: b, api_key: k, base_url: ftp://x}\n",
            "workspaces[1].base_url",
            "http(s) URL",
        ),
        (
            "workspaces:\n  - {name: a, api_key: k}\n  - {name: ' a ', api_key: k}\n",
            "workspaces",
            "duplicate workspace name 'a'",
        ),
        (one_workspace("    poll_interval: 500ms\n"), "workspaces[0].poll_interval", "at least 1s"),
        (one_workspace("    poll_interval: soon\n"), "workspaces[0].poll_interval", "duration"),
        (
            one_workspace("    character_stats: maybe\n"),
            "workspaces[0].character_stats",
            "true or false",
        ),
    ],
)
def test_bad_workspaces_name_the_entry_and_key(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    """Every problem with a workspace entry names it by index (workspaces[i].key)."""
    message = error(tmp_path, text)
    assert message.startswith(f"config error: {key}: "), message
    assert reason in message


def test_workspaces_keep_their_order_names_and_options(tmp_path: Path) -> None:
    """Workspaces come out in the file's order with their names stripped, their own
    poll interval (None: the global one) and character_stats."""
    config = load(
        tmp_path,
        "poll_interval: 2m\nworkspaces:\n"
        "  - {name: ' main ', api_key: k, poll_interval: 5m, character_stats: true}\n"
        "  - {name: eu, api_key: k}\n",
    )
    assert [(ws.name, ws.poll_interval, ws.character_stats) for ws in config.workspaces] == [
        ("main", 300.0, True),
        ("eu", None, False),
    ]
    assert config.poll_interval == 120.0


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    """Config and WorkspaceConfig cannot be changed after parsing."""
    config = load(tmp_path, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.poll_interval = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.workspaces[0].name = "other"  # type: ignore[misc]


# --- group_by, filters, max_values, allow -----------------------------------------------


def test_group_by_puts_product_type_first_and_drops_repeats(tmp_path: Path) -> None:
    """product_type is always the first dimension; extras follow in the given order,
    each once."""
    config = load(
        tmp_path, one_workspace("    group_by: [voice_id, model, voice_id, product_type]\n")
    )
    assert config.workspaces[0].group_by == ("product_type", "voice_id", "model")


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ("    group_by: voice_id\n", "workspaces[0].group_by", "expected a list"),
        ("    group_by: [voice]\n", "workspaces[0].group_by", "unknown dimension 'voice'"),
        ("    filters: {column: model}\n", "workspaces[0].filters", "expected a list"),
        (
            "    filters: [{column: model, values: [a]}]\n",
            "workspaces[0].filters[0]",
            "exactly column, operation and values",
        ),
        (
            "    filters: [{column: model, operation: like, values: [a]}]\n",
            "workspaces[0].filters[0].operation",
            "one of",
        ),
        (
            "    filters: [{column: '', operation: eq, values: [a]}]\n",
            "workspaces[0].filters[0].column",
            "column name",
        ),
        (
            "    filters: [{column: model, operation: eq, values: a}]\n",
            "workspaces[0].filters[0].values",
            "expected a list",
        ),
        ("    max_values: {voice_id: 5}\n", "workspaces[0].max_values.voice_id", "group_by"),
        (
            "    group_by: [voice_id]\n    max_values: {voice_id: 0}\n",
            "workspaces[0].max_values.voice_id",
            "at least 1",
        ),
        ("    group_by: [voice_id]\n    max_values: [5]\n", "workspaces[0].max_values", "mapping"),
        ("    allow: {model: [a]}\n", "workspaces[0].allow.model", "extra group_by"),
        ("    allow: {product_type: [tts]}\n", "workspaces[0].allow.product_type", "extra"),
        (
            "    group_by: [model]\n    allow: {model: []}\n",
            "workspaces[0].allow.model",
            "non-empty list",
        ),
        (
            "    group_by: [model]\n    allow: {model: a}\n",
            "workspaces[0].allow.model",
            "non-empty list",
        ),
    ],
)
def test_bad_breakdowns_name_the_key(tmp_path: Path, extra: str, key: str, reason: str) -> None:
    """group_by takes known dimensions only; filters need column, operation and a list of
    values; max_values and allow apply only to this workspace's extra dimensions."""
    message = error(tmp_path, one_workspace(extra))
    assert message.startswith(f"config error: {key}: "), message
    assert reason in message


def test_filters_max_values_and_allow_are_kept(tmp_path: Path) -> None:
    """Filters pass through as the API takes them; max_values caps only the named
    dimensions (the rest default to 20, product_type is never capped); allow values are
    kept as strings."""
    config = load(
        tmp_path,
        one_workspace(
            "    group_by: [voice_id, model, request_source]\n"
            "    filters: [{column: model, operation: in, values: [a, b]}]\n"
            "    max_values: {voice_id: 5}\n"
            "    allow: {model: [eleven_v3, 2]}\n"
        ),
    )
    (ws,) = config.workspaces
    assert ws.filters == ({"column": "model", "operation": "in", "values": ["a", "b"]},)
    assert ws.cap("voice_id") == 5
    assert ws.cap("request_source") == DEFAULT_MAX_VALUES == 20
    assert ws.cap("product_type") is None
    assert ws.allow == {"model": frozenset({"eleven_v3", "2"})}


def test_max_values_for_product_type_is_rejected(tmp_path: Path) -> None:
    """product_type is never capped, so a cap for it is an error like allow.product_type,
    not a setting that does nothing."""
    message = error(tmp_path, one_workspace("    max_values: {product_type: 5}\n"))
    assert message.startswith("config error: workspaces[0].max_values.product_type: ")


def test_budget_credits_is_a_workspace_key(tmp_path: Path) -> None:
    """budget_credits, the workspace's own allowance per cycle, is accepted and shown by
    describe()."""
    config = load(tmp_path, one_workspace("    budget_credits: 500000\n"))
    assert config.describe()["workspaces"][0]["budget_credits"] == 500000


# --- describe() ----------------------------------------------------------------------------


def test_describe_leaves_every_secret_out(tmp_path: Path) -> None:
    """describe() and the config's repr name where each key comes from and never hold a
    key, whatever its source."""
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "-file\n")
    config = load(
        tmp_path,
        "workspaces:\n"
        "  - {name: env, api_key_env: MAIN_KEY}\n"
        f"  - {{name: file, api_key_file: '{key_file}'}}\n"
        f"  - {{name: inline, api_key: '{KEY}-inline'}}\n",
        {**ENV, "MAIN_KEY": KEY + "-env"},
    )
    described = config.describe()
    for text in (yaml.safe_dump(described), repr(described), repr(config), str(config)):
        assert KEY not in text
    assert [ws["api_key"] for ws in described["workspaces"]] == [
        "from environment variable MAIN_KEY",
        f"from file {key_file}",
        "inline in the config file",
    ]
    assert sorted(config.secrets()) == sorted(KEY + s for s in ("-env", "-file", "-inline"))


def test_describe_shows_the_effective_values(tmp_path: Path) -> None:
    """describe() prints durations with units, the anchor, the state file and, per
    workspace, only the options that are set."""
    config = load(
        tmp_path,
        "poll_interval: 90s\nlookback: 3h\nrequest_timeout: 500ms\n"
        "count_from: '2026-01-01T00:00:00Z'\nstate_file: null\nworkspaces:\n"
        "  - {name: plain, api_key: k}\n"
        "  - name: rich\n    api_key: k\n    poll_interval: 5m\n    character_stats: true\n"
        "    group_by: [voice_id]\n    max_values: {voice_id: 5}\n"
        "    allow: {voice_id: [b, a]}\n"
        "    filters: [{column: model, operation: eq, values: [m]}]\n",
    )
    assert config.describe() == {
        "poll_interval": "90s",
        "lookback": "10800s",
        "bucket": "60s",
        "count_from": "2026-01-01T00:00:00+00:00",
        "state_file": None,
        "request_timeout": "0.5s",
        "max_concurrent_requests": 64,
        "max_retries": 2,
        "current_bucket": True,
        "recent": "600s",
        "reread_interval": "600s",
        "subscription_interval": "300s",
        "max_response_bytes": "16MiB",
        "workspaces": [
            {
                "name": "plain",
                "api_key": "inline in the config file",
                "base_url": DEFAULT_BASE_URL,
                "group_by": ["product_type"],
            },
            {
                "name": "rich",
                "api_key": "inline in the config file",
                "base_url": DEFAULT_BASE_URL,
                "group_by": ["product_type", "voice_id"],
                "filters": [{"column": "model", "operation": "eq", "values": ["m"]}],
                "poll_interval": "300s",
                "max_values": {"voice_id": 5},
                "allow": {"voice_id": ["a", "b"]},
                "character_stats": True,
            },
        ],
    }


def test_described_top_level_values_load_back_to_the_same_config(tmp_path: Path) -> None:
    """The top-level part of describe() is itself a valid config that loads to the same
    values, so --config.check output can be pasted back into a file."""
    config = load(
        tmp_path,
        "poll_interval: 1h30m\nlookback: 6h\nbucket: 5m\ncount_from: 2026-02-01\n"
        "state_file: /data/state.json\nrequest_timeout: 45s\nmax_retries: 5\n"
        "max_response_bytes: 20MB\n",
    )
    top = {k: v for k, v in config.describe().items() if k != "workspaces"}
    again = load(tmp_path, yaml.safe_dump(top))
    assert dataclasses.replace(again, workspaces=config.workspaces) == config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_response_bytes: 1048576\n", 1024**2),
        ("max_response_bytes: '1048576'\n", 1024**2),
        ("max_response_bytes: 512KiB\n", 512 * 1024),
        ("max_response_bytes: 32 MiB\n", 32 * 1024**2),
        ("max_response_bytes: 20MB\n", 20_000_000),
        ("max_response_bytes: 1GiB\n", 1024**3),
    ],
)
def test_max_response_bytes_takes_bytes_or_a_size_with_a_unit(
    tmp_path: Path, text: str, expected: int
) -> None:
    """The answer cap is a whole number of bytes or a size in KiB, MiB, GiB (or KB, MB,
    GB), from 64 KiB to 1 GiB; describe() prints it in the largest unit that divides it."""
    config = load(tmp_path, text)
    assert config.max_response_bytes == expected
    again = load(tmp_path, f"max_response_bytes: '{config.describe()['max_response_bytes']}'\n")
    assert again.max_response_bytes == expected
