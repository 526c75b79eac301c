"""Per-API-key and per-group credit limits (opt-in ``key_limits``, ``group_limits``).

The client's parsing runs against respx; the sources, collectors and wiring run in a
real workspace loop over loopback against the simulator (clock frozen), whose key and
group counts come from its usage model, so the exported values and the join on
``hashed_xi_api_key`` are checked against its own truth; the real process shows them.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from support import run_exporter

from exporter.api.client import ElevenLabsClient
from exporter.api.errors import REASONS, ApiError
from exporter.api.limits import ApiKeyLimit, GroupLimit, parse_groups, parse_service_accounts
from exporter.api.paths import SERVICE_ACCOUNTS_PATH, WORKSPACE_GROUPS_PATH
from exporter.config import Config, ConfigError, KeySource, Secret, WorkspaceConfig, load_config
from exporter.config.model import DEFAULT_MAX_GROUPS, DEFAULT_MAX_KEYS
from exporter.core.cycle import Cycle
from exporter.core.snapshot import SnapshotStore, WorkspaceSnapshot
from exporter.polling.limits import (
    ApiKeyLimitsPart,
    ApiKeyLimitsSource,
    GroupLimitsPart,
    GroupLimitsSource,
    nearest_first,
)
from exporter.polling.workspace import workspace_loop
from exporter.runtime import build_registry
from exporter.simulator import Fault, SimState, Simulator

BASE = "https://api.example.test"
# 2026-11-20T15:37:00Z, on a minute boundary: the minute under way shows no credits yet,
# so the usage ledger's cycle and the simulator's per-key counts cover the same minutes.
START = 1_795_621_020.0
PROMTOOL = "/usr/bin/promtool"
KEY_METRICS = (
    "elevenlabs_api_key_credits_used",
    "elevenlabs_api_key_credits_limit",
    "elevenlabs_api_key_disabled",
)
GROUP_METRICS = (
    "elevenlabs_group_credits_used",
    "elevenlabs_group_credits_limit",
    "elevenlabs_group_credits_unlimited",
)
MISSING = json.dumps(
    {
        "detail": {
            "status": "missing_permissions",
            "message": "The API key you used is missing the permission workspace_read to "
            "execute this operation.",
        }
    }
)


class Log:
    """A logger that records (level, event, fields); bind returns itself."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def bind(self, **_: object) -> Log:
        return self

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.records.append((level, event, fields))

        return record

    def events(self, level: str, event: str) -> list[dict[str, Any]]:
        return [f for lvl, e, f in self.records if (lvl, e) == (level, event)]


def key(raw: dict[str, Any]) -> dict[str, Any]:
    """A key as the API lists it, with ``raw`` overriding the defaults."""
    return {
        "name": "k",
        "hint": "abcd",
        "key_id": "key_1",
        "service_account_user_id": "sa_1",
        "hashed_xi_api_key": "h1",
        "character_limit": 1000,
        "character_count": 10,
        **raw,
    }


# The client ---------------------------------------------------------------------------


async def fetch(path: str, body: Any, status: int = 200) -> Any:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(BASE + path).respond(status, json=body)
        async with httpx.AsyncClient() as http:
            client = ElevenLabsClient(workspace="w", base_url=BASE, api_key=lambda: "k", http=http)
            call = client.service_accounts if path == SERVICE_ACCOUNTS_PATH else None
            result = await (call() if call else client.workspace_groups())
        request = route.calls.last.request
        assert (request.method, request.headers["xi-api-key"], request.url.query) == (
            "GET",
            "k",
            b"",
        )
        return result


async def test_client_reads_every_service_accounts_keys() -> None:
    """Hyphenated keys as the API spells them: each key with its service account's name,
    counts and caps as numbers or numeric strings, a null cap as no cap, a disabled key
    with its reason; a key without an id is skipped."""
    body = {
        "service-accounts": [
            {
                "service_account_user_id": "sa_1",
                "name": "Backend",
                "api-keys": [
                    key({"key_id": "a", "name": "prod", "character_count": "1200.0"}),
                    key({"key_id": "b", "character_limit": None, "hashed_xi_api_key": "h2"}),
                    key({"key_id": "", "name": "no id"}),
                ],
            },
            {
                "service_account_user_id": "sa_2",
                "name": None,
                "api-keys": [
                    key(
                        {
                            "key_id": "c",
                            "is_disabled": True,
                            "disable_reason": "exposed_publicly",
                            "character_count": None,
                        }
                    )
                ],
            },
        ]
    }
    keys = await fetch(SERVICE_ACCOUNTS_PATH, body)
    assert keys == [
        ApiKeyLimit("a", "prod", "Backend", "h1", 1200.0, 1000.0, None),
        ApiKeyLimit("b", "k", "Backend", "h2", 10.0, None, None),
        ApiKeyLimit("c", "k", "sa_2", "h1", None, 1000.0, True, "exposed_publicly"),
    ]


@pytest.mark.parametrize("value", ["lots", -5, 1e13, "NaN", "inf", True, [1], {"x": 1}], ids=repr)
async def test_an_odd_count_or_cap_is_left_out_and_never_fails_the_poll(value: Any) -> None:
    """A count or cap that is not a plausible amount (0 to 10^12) is None: its metric is
    absent for that key, and the other keys are read."""
    body = {
        "service-accounts": [
            {
                "name": "s",
                "api-keys": [
                    key({"character_count": value, "character_limit": value}),
                    key({"key_id": "key_2"}),
                ],
            }
        ]
    }
    first, second = await fetch(SERVICE_ACCOUNTS_PATH, body)
    assert (first.used, first.limit) == (None, None)
    assert (second.used, second.limit) == (10.0, 1000.0)


def test_an_id_listed_twice_is_exported_once() -> None:
    """A key in two service accounts, or a group id given by two entries, keeps its first
    entry: a second sample with the same labels would make Prometheus refuse the scrape."""
    body = {
        "service-accounts": [
            {"name": "a", "api-keys": [key({"character_count": 1})]},
            {"name": "b", "api-keys": [key({"character_count": 2}), key({"key_id": "key_2"})]},
        ]
    }
    keys = parse_service_accounts(body)
    assert [(k.key_id, k.service_account, k.used) for k in keys] == [
        ("key_1", "a", 1.0),
        ("key_2", "b", 10.0),
    ]
    groups = parse_groups(
        {
            "x": {"id": "g", "name": "first", "members": []},
            "y": {"id": "g", "name": "second", "members": []},
        }
    )
    assert [(g.group_id, g.name) for g in groups] == [("g", "first")]
    snapshots = SnapshotStore(["w"])
    registry, _ = build_registry(snapshots, key_limits=True, group_limits=True)
    snapshots.publish(
        WorkspaceSnapshot.of(
            "w", ApiKeyLimitsPart(tuple(keys), 3), GroupLimitsPart(tuple(groups), 2)
        )
    )
    lint = promtool_lint(generate_latest(registry).decode())
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, "", "")


def test_underscored_spellings_are_read_too() -> None:
    """Should the API ever send Python's spelling of the keys, it is read the same."""
    body = {"service_accounts": [{"name": "s", "api_keys": [key({})]}]}
    assert [k.key_id for k in parse_service_accounts(body)] == ["key_1"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {},
        {"service-accounts": {}},
        {"service-accounts": ["x"]},
        {"service-accounts": [{"name": "s"}]},
        {"service-accounts": [{"name": "s", "api-keys": [1]}]},
    ],
    ids=repr,
)
def test_a_wrong_shape_of_the_service_accounts_answer_is_a_bad_response(body: Any) -> None:
    """The answer must be an object with a list of service accounts, each with a list of
    key objects; anything else rejects the whole answer (the poll applies nothing)."""
    with pytest.raises(ApiError) as caught:
        parse_service_accounts(body)
    assert caught.value.reason == "bad_response"


async def test_client_reads_groups_with_a_number_or_unlimited() -> None:
    """The groups dict: an int limit, "unlimited" (no limit, flagged), a numeric string,
    a missing or unreadable limit (neither); counts as numbers; ordered by id; the id
    from the entry, else its key in the dict; a nameless group named by its id."""
    body = {
        "g3": {"name": "Support", "id": "g3", "members": [], "group_usage_limit": "unlimited"},
        "g1": {
            "name": "Eng",
            "id": "g1",
            "members": ["u1"],
            "group_usage_limit": 500000,
            "character_count": 1234,
        },
        "g2": {"name": None, "members": [], "group_usage_limit": "60000"},
        "g4": {"name": "Odd", "id": "g4", "members": [], "group_usage_limit": "none"},
        "g5": {"name": "Unset", "id": "g5", "members": [], "character_count": "7"},
    }
    groups = await fetch(WORKSPACE_GROUPS_PATH, body)
    assert groups == [
        GroupLimit("g1", "Eng", 1234.0, 500000.0, False),
        GroupLimit("g2", "g2", None, 60000.0, False),
        GroupLimit("g3", "Support", None, None, True),
        GroupLimit("g4", "Odd", None, None, None),
        GroupLimit("g5", "Unset", 7.0, None, None),
    ]


@pytest.mark.parametrize("body", ["x", 3, {"g": "x"}, {"g": [1]}, [1]], ids=repr)
def test_a_wrong_shape_of_the_groups_answer_is_a_bad_response(body: Any) -> None:
    """Groups must come as objects (in a dict, or in a list); anything else is rejected."""
    with pytest.raises(ApiError) as caught:
        parse_groups(body)
    assert caught.value.reason == "bad_response"


async def test_a_missing_permission_is_classified_as_permission() -> None:
    """A 401 missing_permissions answer is reason permission (not auth)."""
    with respx.mock() as mock:
        mock.get(BASE + WORKSPACE_GROUPS_PATH).respond(401, content=MISSING.encode())
        async with httpx.AsyncClient() as http:
            client = ElevenLabsClient(workspace="w", base_url=BASE, api_key=lambda: "k", http=http)
            with pytest.raises(ApiError) as caught:
                await client.workspace_groups()
    assert caught.value.reason == "permission"


# Capping ------------------------------------------------------------------------------


def test_the_cap_keeps_the_keys_nearest_their_limit() -> None:
    """Over the cap, the enabled keys with a limit and the largest share of it are kept,
    then by credits used, then by id; disabled keys and keys without a limit go last."""
    keys = [
        ApiKeyLimit("no_cap", "", "", "", 9e6, None, False),
        ApiKeyLimit("half", "", "", "", 50, 100, False),
        ApiKeyLimit("disabled_full", "", "", "", 100, 100, True),
        ApiKeyLimit("nine_tenths", "", "", "", 900, 1000, False),
        ApiKeyLimit("half_more", "", "", "", 500, 1000, None),
        ApiKeyLimit("zero_cap", "", "", "", 5, 0, False),
    ]
    order = [k.key_id for k in nearest_first(keys, 10)]
    assert order == ["nine_tenths", "half_more", "half", "no_cap", "zero_cap", "disabled_full"]
    assert [k.key_id for k in nearest_first(keys, 2)] == ["nine_tenths", "half_more"]
    groups = [
        GroupLimit("a", "", 10, None, True),
        GroupLimit("b", "", 10, 20, False),
        GroupLimit("c", "", 19, 20, False),
    ]
    assert [g.group_id for g in nearest_first(groups, 2)] == ["c", "b"]


# Config -------------------------------------------------------------------------------


def load(tmp_path: Path, **workspace: Any) -> WorkspaceConfig:
    path = tmp_path / "config.yml"
    entry = {"name": "main", "api_key": "k", **workspace}
    path.write_text(json.dumps({"workspaces": [entry]}))
    return load_config(path, {}).workspaces[0]


def test_config_opts_in_per_workspace_with_caps(tmp_path: Path) -> None:
    """Off by default; key_limits and group_limits switch each on, max_keys and
    max_groups set their caps (defaults 100); --config.check shows them."""
    plain = load(tmp_path)
    assert (plain.key_limits, plain.group_limits) == (False, False)
    assert (
        (plain.max_keys, plain.max_groups) == (DEFAULT_MAX_KEYS, DEFAULT_MAX_GROUPS) == (100, 100)
    )
    ws = load(tmp_path, key_limits=True, group_limits=True, max_keys=5, max_groups="7")
    assert (ws.key_limits, ws.group_limits, ws.max_keys, ws.max_groups) == (True, True, 5, 7)
    described = Config(workspaces=(ws,)).describe()["workspaces"][0]
    assert described["key_limits"] is True
    assert (described["max_keys"], described["max_groups"]) == (5, 7)
    assert "key_limits" not in Config(workspaces=(plain,)).describe()["workspaces"][0]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"key_limits": "yes"}, "workspaces[0].key_limits: expected true or false"),
        ({"group_limits": 1}, "workspaces[0].group_limits: expected true or false"),
        ({"max_keys": 5}, "workspaces[0].max_keys: only with key_limits: true"),
        ({"group_limits": False, "max_groups": 5}, "max_groups: only with group_limits: true"),
        ({"key_limits": True, "max_keys": 0}, "workspaces[0].max_keys: must be at least 1"),
        ({"group_limits": True, "max_groups": "x"}, "max_groups: expected a whole number"),
    ],
)
def test_config_refuses_a_bad_opt_in_naming_the_key(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    """A wrong value, or a cap without its switch, is one line naming the key."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **settings)
    assert message in str(caught.value)


# Against the simulator -------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=START)).start()
    yield simulator
    simulator.stop()


async def no_sleep(_: float) -> None:
    return None


class Setup:
    """A registry with every collector and one workspace's loop, opted in to key and
    group limits (and grouping its credits by API key), on the simulator's clock."""

    def __init__(
        self, sim: Simulator, http: httpx.AsyncClient, log: Log | None = None, **settings: Any
    ) -> None:
        self.sim = sim
        self.log = log or Log()
        self.snapshots = SnapshotStore(["main"])
        self.registry, self.telemetry = build_registry(
            self.snapshots, key_limits=True, group_limits=True
        )
        options: dict[str, Any] = {
            "key_limits": True,
            "group_limits": True,
            "group_by": ("product_type", "hashed_xi_api_key"),
            **settings,
        }
        ws = WorkspaceConfig("main", Secret("demo"), KeySource("demo"), sim.url, **options)
        client = ElevenLabsClient(
            workspace="main",
            base_url=sim.url,
            api_key=lambda: "demo",
            http=http,
            telemetry=self.telemetry,
            limiter=asyncio.Semaphore(4),
            clock=sim.state.now,
            sleep=no_sleep,
        )
        self.loop = workspace_loop(
            ws,
            Config(workspaces=(ws,), state_file=None),
            client,
            snapshots=self.snapshots,
            telemetry=self.telemetry,
            log=self.log,
            clock=sim.state.now,
        )

    async def round(self) -> bool:
        """One round of every source; True when the required ones succeeded."""
        return bool(await self.loop.poll_once())

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"workspace": "main", **labels})

    def samples(self, name: str) -> dict[str, float]:
        """The samples of one family by their key_id or group_id."""
        return {
            s.labels.get("key_id") or s.labels["group_id"]: s.value
            for family in self.registry.collect()
            for s in family.samples
            if s.name == name
        }

    def labels(self, name: str) -> list[dict[str, str]]:
        return [
            s.labels for family in self.registry.collect() for s in family.samples if s.name == name
        ]


async def test_keys_and_groups_are_exported_as_the_simulator_counts_them(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Each key's credits this period (the usage of its hashed_xi_api_key this cycle)
    and cap, each group's credits (its members' usage) and limit, follow the simulator;
    a key without a cap and an "unlimited" group have no limit sample (never +Inf), the
    group says it is unlimited; the limits never touch elevenlabs_up."""
    setup = Setup(sim, http)
    for _ in range(2):
        assert await setup.round()
        by_key = sim.state.cycle_usage_by("hashed_xi_api_key")
        by_user = sim.state.cycle_usage_by("user_id")
        used = setup.samples("elevenlabs_api_key_credits_used")
        assert used == {
            "key_prod_tts": int(by_key["k_3f9a"]),
            "key_prod_agents": int(by_key["k_81c2"]),
            "key_batch": int(by_key["k_e07d"]),
        }
        assert all(v > 0 for v in used.values())
        assert setup.samples("elevenlabs_api_key_credits_limit") == {
            "key_prod_tts": 300_000,
            "key_batch": 250_000,
        }
        assert setup.samples("elevenlabs_api_key_disabled") == dict.fromkeys(used, 0)
        eng = sum(by_user.get(u, 0.0) for u in ("u_ada", "u_linus", "u_ken"))
        groups = setup.samples("elevenlabs_group_credits_used")
        assert groups["grp_eng"] == int(eng)
        assert groups["grp_contractors"] == int(by_user.get("u_barbara", 0.0))
        assert setup.samples("elevenlabs_group_credits_limit") == {
            "grp_eng": 500_000,
            "grp_contractors": 60_000,
        }
        assert setup.samples("elevenlabs_group_credits_unlimited") == {
            "grp_eng": 0,
            "grp_support": 1,
            "grp_contractors": 0,
        }
        assert setup.value("elevenlabs_up") == 1
        sim.state.frozen_at = sim.state.now() + 3600
    (prod,) = [
        s for s in setup.labels("elevenlabs_api_key_credits_used") if s["key_id"] == "key_prod_tts"
    ]
    assert prod == {
        "workspace": "main",
        "key_id": "key_prod_tts",
        "key_name": "prod-tts",
        "service_account": "Production backend",
        "hashed_xi_api_key": "k_3f9a",
    }
    for endpoint in ("service_accounts", "groups"):
        stamp = setup.value("elevenlabs_exporter_last_success_timestamp_seconds", endpoint=endpoint)
        assert stamp == sim.state.now() - 3600


async def test_a_key_joins_its_usage_breakdown_on_hashed_xi_api_key(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """The documented join: elevenlabs_cycle_credits_used of a workspace grouping by
    hashed_xi_api_key, summed per key, carries the same hashed_xi_api_key values as
    elevenlabs_api_key_credits_used, and the two agree on the credits this cycle."""
    setup = Setup(sim, http)
    assert await setup.round()
    breakdown: dict[str, float] = {}
    for labels in setup.labels("elevenlabs_cycle_credits_used"):
        value = setup.value(
            "elevenlabs_cycle_credits_used", **{k: v for k, v in labels.items() if k != "workspace"}
        )
        assert value is not None
        hashed = labels["hashed_xi_api_key"]
        breakdown[hashed] = breakdown.get(hashed, 0.0) + value
    keys = {
        s["hashed_xi_api_key"]: setup.value(
            "elevenlabs_api_key_credits_used", **{k: v for k, v in s.items() if k != "workspace"}
        )
        for s in setup.labels("elevenlabs_api_key_credits_used")
    }
    assert set(keys) == set(breakdown) == {"k_3f9a", "k_81c2", "k_e07d"}
    for hashed, used in keys.items():
        assert used == pytest.approx(breakdown[hashed], abs=1), hashed  # the API's int


async def test_a_missing_permission_keeps_every_other_metric_and_says_so_once(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """A key lacking the permission GET /v1/workspace/groups needs: every poll of it is
    counted under endpoint groups, reason permission; one warning names the permission;
    no group series, while the keys, the credits, the subscription and elevenlabs_up are
    untouched. Once the key has the permission the groups appear."""
    sim.state.faults.append(Fault(endpoint="groups", status=401, body=MISSING, times=-1))
    setup = Setup(sim, http)
    for _ in range(3):
        assert await setup.round()
    errors = "elevenlabs_exporter_poll_errors_total"
    assert setup.value(errors, endpoint="groups", reason="permission") == 3
    assert setup.value(errors, endpoint="service_accounts", reason="permission") == 0
    assert setup.value("elevenlabs_up") == 1
    for name in GROUP_METRICS:
        assert setup.samples(name) == {}, name
    assert len(setup.samples("elevenlabs_api_key_credits_used")) == 3
    assert setup.value("elevenlabs_subscription_credits_used")
    assert setup.labels("elevenlabs_cycle_credits_used")
    warnings = setup.log.events("warning", "poll failed")
    assert len(warnings) == 1
    assert (warnings[0]["endpoint"], warnings[0]["missing_permission"]) == (
        "groups",
        "workspace_read",
    )
    assert len(setup.log.events("debug", "poll failed")) == 2
    assert setup.value("elevenlabs_exporter_last_success_timestamp_seconds", endpoint="groups") == 0

    sim.state.faults.clear()
    assert await setup.round()
    assert setup.samples("elevenlabs_group_credits_limit")["grp_eng"] == 500_000


async def test_a_failed_poll_keeps_the_last_values(sim: Simulator, http: httpx.AsyncClient) -> None:
    """A 500 from the service accounts (retries included) counts one server_error and
    leaves the last keys exported with their last success time."""
    setup = Setup(sim, http)
    assert await setup.round()
    before = setup.samples("elevenlabs_api_key_credits_used")
    stamp = setup.value(
        "elevenlabs_exporter_last_success_timestamp_seconds", endpoint="service_accounts"
    )
    sim.state.faults.append(Fault(endpoint="service_accounts", status=500, times=-1))
    sim.state.frozen_at = sim.state.now() + 600
    assert await setup.round()
    errors = "elevenlabs_exporter_poll_errors_total"
    assert setup.value(errors, endpoint="service_accounts", reason="server_error") == 1
    assert setup.samples("elevenlabs_api_key_credits_used") == before
    assert (
        setup.value(
            "elevenlabs_exporter_last_success_timestamp_seconds", endpoint="service_accounts"
        )
        == stamp
    )


async def test_over_the_cap_the_nearest_are_exported_and_the_log_says_so_once(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """max_keys: 1 and max_groups: 2: only the key and the groups nearest their limits
    are exported; one warning per source says how many were left out, however many
    polls see the same."""
    setup = Setup(sim, http, max_keys=1, max_groups=2)
    for _ in range(3):
        assert await setup.round()
    used = sim.state.cycle_usage_by("hashed_xi_api_key")
    nearest = max(
        ("key_prod_tts", 300_000, "k_3f9a"),
        ("key_batch", 250_000, "k_e07d"),
        key=lambda k: used[k[2]] / k[1],
    )
    assert list(setup.samples("elevenlabs_api_key_credits_used")) == [nearest[0]]
    assert len(setup.samples("elevenlabs_group_credits_unlimited")) == 2
    assert "grp_support" not in setup.samples("elevenlabs_group_credits_used")  # unlimited
    capped = setup.log.events("warning", "cap reached, the rest are not exported")
    assert [(c["endpoint"], c["listed"], c["exported"], c["not_exported"]) for c in capped] == [
        ("service_accounts", 3, 1, 2),
        ("groups", 3, 2, 1),
    ]
    assert capped[0]["max_keys"] == 1
    assert capped[1]["max_groups"] == 2
    source = next(s for s in setup.loop.sources if isinstance(s, ApiKeyLimitsSource))
    part = source.part(0.0)
    assert part is not None
    assert part.listed == 3


async def test_the_limits_poll_on_the_subscription_interval_and_after_the_reset(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Both sources are optional, read on the subscription's interval (never faster
    than the workspace's poll interval), and due again just after the cycle's reset."""
    setup = Setup(sim, http, poll_interval=30)
    sources = [
        s for s in setup.loop.sources if isinstance(s, ApiKeyLimitsSource | GroupLimitsSource)
    ]
    assert [s.endpoint for s in sources] == ["service_accounts", "groups"]
    assert all(not s.required and s.interval() == 300 for s in sources)
    assert all(s.due_by() is None for s in sources)
    assert await setup.round()
    cycle = sources[0].facts.cycle
    assert isinstance(cycle, Cycle)
    assert all(s.due_by() == cycle.reset + 5 for s in sources)
    slow = Setup(sim, http, poll_interval=900)
    assert {
        s.interval()
        for s in slow.loop.sources
        if isinstance(s, ApiKeyLimitsSource | GroupLimitsSource)
    } == {900}


async def test_error_series_exist_at_zero_and_the_exposition_passes_promtool(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Every reason of both endpoints is exported at 0 from start-up; after a round the
    exposition with the key and group families passes promtool check metrics."""
    setup = Setup(sim, http)
    for endpoint in ("service_accounts", "groups"):
        for reason in REASONS:
            labels = {"endpoint": endpoint, "reason": reason}
            assert setup.value("elevenlabs_exporter_poll_errors_total", **labels) == 0
    await setup.round()
    text = generate_latest(setup.registry).decode()
    for name in (*KEY_METRICS, *GROUP_METRICS):
        assert f"\n{name}{{" in text, name
    lint = promtool_lint(text)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, "", "")


def promtool_lint(text: str) -> subprocess.CompletedProcess[str]:
    assert Path(PROMTOOL).exists(), "promtool (Debian package prometheus) is required"
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


def test_nothing_is_registered_or_polled_without_the_opt_in() -> None:
    """Without key_limits or group_limits the exposition has none of these families and
    the loop none of these sources (or their endpoints' error series)."""
    snapshots = SnapshotStore(["main"])
    registry, telemetry = build_registry(snapshots)
    ws = WorkspaceConfig("main", Secret("k"), KeySource("config"))
    loop = workspace_loop(
        ws,
        Config(workspaces=(ws,)),
        object(),  # type: ignore[arg-type]  # never called: nothing is polled here
        snapshots=snapshots,
        telemetry=telemetry,
        log=Log(),
        clock=time.time,
    )
    assert [s.endpoint for s in loop.sources] == ["subscription", "usage", "usage"]
    text = generate_latest(registry).decode()
    for name in (*KEY_METRICS, *GROUP_METRICS, "service_accounts", 'endpoint="groups"'):
        assert name not in text, name


# Values that must never become NaN or Inf --------------------------------------------------

number = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from(["unlimited", "NaN", "inf", "-1", "1e400", "12", " 7 ", "none", ""]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(number, number, st.sampled_from([True, False, None, "x"])), max_size=6),
    st.lists(st.tuples(number, number), max_size=6),
)
def test_no_key_or_group_sample_is_ever_nan_infinite_or_negative(
    keys: list[tuple[Any, Any, Any]], groups: list[tuple[Any, Any]]
) -> None:
    """Whatever numbers the answers carry, every exported key and group sample is finite
    and non-negative (an unreadable value is left out)."""
    accounts = {
        "service-accounts": [
            {
                "name": "s",
                "api-keys": [
                    key(
                        {
                            "key_id": f"k{i}",
                            "character_count": c,
                            "character_limit": lim,
                            "is_disabled": d,
                        }
                    )
                    for i, (c, lim, d) in enumerate(keys)
                ],
            }
        ]
    }
    answer = {
        f"g{i}": {
            "name": "g",
            "id": f"g{i}",
            "members": [],
            "character_count": c,
            "group_usage_limit": lim,
        }
        for i, (c, lim) in enumerate(groups)
    }
    parsed_keys = parse_service_accounts(json.loads(json.dumps(accounts)))
    parsed_groups = parse_groups(json.loads(json.dumps(answer)))
    snapshots = SnapshotStore(["w"])
    registry, _ = build_registry(snapshots, key_limits=True, group_limits=True)
    snapshots.publish(
        WorkspaceSnapshot.of(
            "w",
            ApiKeyLimitsPart(tuple(parsed_keys), len(parsed_keys)),
            GroupLimitsPart(tuple(parsed_groups), len(parsed_groups)),
        )
    )
    for family in registry.collect():
        for sample in family.samples:
            assert math.isfinite(sample.value), sample
            assert sample.value >= 0, sample


# The process -------------------------------------------------------------------------------


def test_the_process_shows_key_and_group_limits_and_a_missing_permission_once(
    tmp_path: Path,
) -> None:
    """The real exporter, opted in, against a simulator whose key lacks the permission
    for the groups: /metrics shows the keys' credits and caps and the permission errors
    of the groups endpoint, the workspace stays up and ready, and the log has exactly
    one warning about the groups naming the permission, however many polls failed."""
    simulator = Simulator(SimState()).start()
    simulator.state.faults.append(Fault(endpoint="groups", status=401, body=MISSING, times=-1))
    try:
        config = tmp_path / "config.yml"
        config.write_text(
            json.dumps(
                {
                    "state_file": None,
                    "poll_interval": "1s",
                    "subscription_interval": "1s",
                    "workspaces": [
                        {
                            "name": "main",
                            "api_key": "demo",
                            "base_url": simulator.url,
                            "key_limits": True,
                            "group_limits": True,
                        }
                    ],
                }
            )
        )
        errors = 'elevenlabs_exporter_poll_errors_total{endpoint="groups",reason="permission"'
        with run_exporter(
            ["--config.file", str(config), "--log.format", "json"], tmp_path
        ) as exporter:
            exporter.wait_ready()
            deadline = time.monotonic() + 60
            text = exporter.metrics()
            while time.monotonic() < deadline and not _at_least(text, errors, 3):
                time.sleep(0.3)
                text = exporter.metrics()
            assert _at_least(text, errors, 3), exporter.log()
            log = exporter.log()
    finally:
        simulator.stop()
    assert 'elevenlabs_up{workspace="main"} 1.0' in text
    assert (
        'elevenlabs_api_key_credits_limit{hashed_xi_api_key="k_3f9a",key_id="key_prod_tts"' in text
    )
    assert "\nelevenlabs_group_credits_used{" not in text
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    warned = [
        line
        for line in lines
        if line.get("event") == "poll failed" and line.get("endpoint") == "groups"
    ]
    assert len(warned) == 1, warned
    assert warned[0]["missing_permission"] == "workspace_read"
    assert warned[0]["level"] == "warning"


def _at_least(text: str, prefix: str, count: int) -> bool:
    """Whether the sample starting with ``prefix`` is there with a value >= ``count``."""
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1]) >= count
    return False
