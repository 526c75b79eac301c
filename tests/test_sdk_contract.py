"""The simulator and our client held to the vendor's own SDK (``elevenlabs``, pinned).

Every answer the simulator gives must be one the SDK's response model accepts under
strict validation (see tests/sdk_contract.py), and every request our client sends
must be the one the SDK's method for that endpoint sends for the same parameters:
same method, path, field names, types and units. Drifted answers and requests are
shown to fail the checks. Everything stays on loopback: the SDK is given only the
simulator's URL, and its HTTP client refuses any other host.
"""

from __future__ import annotations

import inspect
import json
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from elevenlabs import (
    ColumnFilter,
    Subscription,
    UsageCharactersResponseModel,
    User,
    WorkspaceAnalyticsQueryResponseModel,
    WorkspaceApiKeyListResponseModel,
    WorkspaceApiKeyResponseModel,
    WorkspaceGroupResponseModel,
    WorkspaceServiceAccountListResponseModel,
)
from elevenlabs.client import ElevenLabs
from elevenlabs.usage.raw_client import RawUsageClient as RawCharacterStatsClient
from elevenlabs.workspace.usage.raw_client import RawUsageClient
from sdk_contract import (
    CURRENCIES,
    Capture,
    LeftLoopbackError,
    answer_problems,
    request_problems,
    sdk_client,
    series_problems,
    table_problems,
)

from exporter.api.client import ElevenLabsClient
from exporter.simulator import Fault, SimState, Simulator

ROOT = Path(__file__).resolve().parent.parent
# 2025-11-01T12:26:40Z: a Saturday, 25 days into the simulated billing cycle.
NOW = 1_762_000_000
END = NOW - NOW % 60 + 60  # the next minute boundary: the current bucket included
START = END - 2 * 3600
DAY_END = NOW - NOW % 86400 + 86400
DAY_START = DAY_END - 3 * 86400
HOUR_MS = 3_600_000
CREDITS = {"credits_used": ("Float", ("credits",))}
COST = {"total_cost": ("Float", CURRENCIES), "total_charge_count": ("Int", (None,))}
INTERVAL_NAMES = {3600: "hour", 86400: "day", 604800: "week"}
DEMO = {"xi-api-key": "demo"}


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    simulator = Simulator(SimState(frozen_at=NOW)).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def sim(server: Simulator) -> Simulator:
    """The module's simulator, back to its normal state for each test."""
    with server.state.lock:
        server.state.scenario = "normal"
        server.state.frozen_at = NOW
        server.state.faults.clear()
        server.state.requests.clear()
    return server


@pytest.fixture
def capture() -> Capture:
    return Capture()


@pytest.fixture
def sdk(sim: Simulator, capture: Capture) -> ElevenLabs:
    return sdk_client(sim.url, "demo", capture)


# ---- answers -------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerCase:
    """One endpoint: how the SDK calls it, its response model, the documented extras."""

    endpoint: str  # the simulator's endpoint name (for faults)
    call: Callable[[ElevenLabs], object]
    model: Any
    documented: Callable[[bytes], list[str]] = lambda raw: []
    scenario: str = "normal"


def _usage(group_by: list[str], filters: list[ColumnFilter] | None = None) -> AnswerCase:
    return AnswerCase(
        "usage",
        lambda sdk: sdk.workspace.usage.get_usage_by_product_over_time(
            start_time=START * 1000,
            end_time=END * 1000,
            interval_seconds=60,
            group_by=group_by,
            filters=filters,
            time_zone="UTC",
        ),
        WorkspaceAnalyticsQueryResponseModel,
        lambda raw: table_problems(raw, group_by, CREDITS),
    )


def _stats(metric: str, breakdown: str) -> AnswerCase:
    return AnswerCase(
        "character_stats",
        lambda sdk: sdk.usage.get(
            start_unix=START * 1000,
            end_unix=END * 1000,
            include_workspace_metrics=True,
            breakdown_type=breakdown,
            aggregation_interval="hour",
            aggregation_bucket_size=3600,
            metric=metric,
        ),
        UsageCharactersResponseModel,
        series_problems,
    )


ANSWERS: dict[str, AnswerCase] = {
    "subscription": AnswerCase(
        "subscription", lambda sdk: sdk.user.subscription.get(), Subscription
    ),
    "user": AnswerCase("user", lambda sdk: sdk.user.get(), User),
    "usage by product": _usage(["product_type"]),
    "usage by product, voice, user": _usage(["product_type", "voice_id", "user_id"]),
    "usage by key, filtered": _usage(
        ["hashed_xi_api_key"],
        [ColumnFilter(column="product_type", operation="in", values=["text_to_speech"])],
    ),
    "cost table": AnswerCase(
        "cost_usage",
        lambda sdk: sdk.workspace.usage.get_usage(
            start_time=DAY_START * 1000,
            end_time=DAY_END * 1000,
            interval_seconds=86400,
            group_by=["product_type"],
        ),
        WorkspaceAnalyticsQueryResponseModel,
        lambda raw: table_problems(raw, ["product_type"], COST),
        scenario="cost-billed",
    ),
    "character stats, credits": _stats("credits", "none"),
    "character stats, ttfb by product": _stats("ttfb_p95", "product_type"),
    "character stats, concurrency": _stats("concurrency_average", "none"),
    "service accounts": AnswerCase(
        "service_accounts",
        lambda sdk: sdk.service_accounts.list(),
        WorkspaceServiceAccountListResponseModel,
    ),
    "service account keys": AnswerCase(
        "api_keys",
        lambda sdk: sdk.service_accounts.api_keys.list(service_account_user_id="sa_backend"),
        WorkspaceApiKeyListResponseModel,
    ),
    "workspace groups": AnswerCase(
        "groups", lambda sdk: sdk.workspace.groups.list(), dict[str, WorkspaceGroupResponseModel]
    ),
}


def answer_check(case: AnswerCase, sim: Simulator, sdk: ElevenLabs, capture: Capture) -> list[str]:
    """Everything wrong with the simulator's answer to the SDK's call (empty: none)."""
    sim.state.scenario = case.scenario
    case.call(sdk)
    response = capture.last
    if response.status_code != 200:
        return [f"status {response.status_code}: {response.text[:200]}"]
    return answer_problems(case.model, response.content) + case.documented(response.content)


@pytest.mark.parametrize("name", list(ANSWERS))
def test_simulator_answers_parse_with_the_sdk_models(
    name: str, sim: Simulator, sdk: ElevenLabs, capture: Capture
) -> None:
    """Each answer the simulator gives is valid for the SDK's own response model under
    strict validation (every required field, exact types, wire names, known enum
    values), plus what the SDK documents about its shape."""
    assert answer_check(ANSWERS[name], sim, sdk, capture) == []


def test_answers_are_not_empty(sim: Simulator, sdk: ElevenLabs) -> None:
    """The contract is checked on real content: the tables have rows, the lists items."""
    table = sdk.workspace.usage.get_usage_by_product_over_time(
        start_time=START * 1000, end_time=END * 1000, interval_seconds=60, group_by=["product_type"]
    )
    assert len(table.rows) > 100
    accounts = sdk.service_accounts.list().service_accounts
    assert sum(len(a.api_keys) for a in accounts) == 3
    assert len(sdk.workspace.groups.list()) == 3


# Each drift is one way the simulator could come to differ from the real API.
DRIFTS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "subscription",
        "drop",
        {"drop": ["professional_voice_slots_used_in_workspace"]},
        "professional_voice_slots_used_in_workspace: Field required",
    ),
    ("subscription", "string count", {"set": {"character_count": "12000"}}, "character_count"),
    ("subscription", "overage as number", {"set": {"current_overage.amount": 0.0}}, "amount"),
    ("subscription", "status case", {"set": {"status": "Active"}}, "'Active'"),
    ("user", "drop workspace", {"drop": ["workspace_id"]}, "workspace_id"),
    (
        "usage by product",
        "credits renamed",
        {"rename_columns": {"credits_used": "credits"}},
        "no 'credits_used' column",
    ),
    ("usage by product", "units dropped", {"drop": ["column_units"]}, "column_units"),
    ("usage by product", "ragged row", {"drop": ["rows.0.1"]}, "rows.0"),
    ("cost table", "cost renamed", {"rename_columns": {"total_cost": "cost"}}, "no 'total_cost'"),
    ("character stats, credits", "ms as float", {"set": {"time.0": 1.5}}, "time.0"),
    ("character stats, credits", "ragged", {"drop": ["usage.All.0"]}, "usage.All"),
    (
        "service accounts",
        "python name",
        {"set": {"service_accounts": []}, "drop": ["service-accounts"]},
        "'service-accounts'",
    ),
    (
        "service account keys",
        "hash dropped",
        {"drop": ["api-keys.0.hashed_xi_api_key"]},
        "hashed_xi_api_key",
    ),
    (
        "workspace groups",
        "limit word",
        {"set": {"grp_eng.group_usage_limit": "none"}},
        "group_usage_limit",
    ),
]


@pytest.mark.parametrize(
    ("name", "spec", "expected"),
    [(n, s, e) for n, _, s, e in DRIFTS],
    ids=[f"{n}: {d}" for n, d, _, _ in DRIFTS],
)
def test_a_drifted_answer_fails_the_contract(
    name: str,
    spec: dict[str, Any],
    expected: str,
    sim: Simulator,
    sdk: ElevenLabs,
    capture: Capture,
) -> None:
    """The contract check can fail: one answer drifted through the simulator's fault
    machinery (a field dropped, renamed or of the wrong type) is reported, naming it."""
    case = ANSWERS[name]
    sim.state.faults.append(Fault(endpoint=case.endpoint, action="drift", drift=spec))
    problems = answer_check(case, sim, sdk, capture)
    assert problems, f"the drift {spec} went unnoticed"
    assert any(expected in p for p in problems), problems
    sim.state.faults.clear()
    assert answer_check(case, sim, sdk, capture) == []


def test_lax_validation_would_miss_a_string_count(
    sim: Simulator, sdk: ElevenLabs, capture: Capture
) -> None:
    """Why strict: the SDK's own parse and pydantic's default mode both quietly turn
    ``"12000"`` into an int, so only strict validation reports the drift."""
    sim.state.faults.append(
        Fault(endpoint="subscription", action="drift", drift={"set": {"character_count": "12000"}})
    )
    parsed = sdk.user.subscription.get()
    assert parsed.character_count == 12000
    assert Subscription.model_validate(json.loads(capture.last.content)).character_count == 12000


async def test_our_client_needs_no_field_the_sdk_calls_optional(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """The other direction: a subscription carrying only the fields the SDK's model
    requires is enough for our client (it never relies on an optional field)."""
    optional = [n for n, f in Subscription.model_fields.items() if not f.is_required()]
    assert "currency" in optional
    sim.state.faults.append(
        Fault(endpoint="subscription", action="drift", drift={"drop": optional})
    )
    client = ElevenLabsClient(workspace="w", base_url=sim.url, api_key=lambda: "demo", http=http)
    subscription = await client.subscription()
    assert subscription.credits_limit == 1_000_000
    assert subscription.reset_at is None


async def test_our_client_reads_the_subscription_fields_the_sdk_requires(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """The fields of issue 13 as the SDK's model types them: the overage amount is a
    string (read as a number), max_credit_limit_extension an int or "unlimited", and
    the workspace's own professional voice slots beside the billing group's."""
    client = ElevenLabsClient(workspace="w", base_url=sim.url, api_key=lambda: "demo", http=http)
    sub = await client.subscription()
    assert (sub.overage_amount, sub.overage_currency) == (0.0, "usd")
    assert (sub.credit_limit_extension, sub.credit_limit_extension_unlimited) == (0.0, False)
    assert sub.has_open_invoices is False
    assert (sub.professional_voice_slots_used_in_workspace, sub.professional_voice_slots_used) == (
        1.0,
        2.0,
    )
    drift = {"set": {"max_credit_limit_extension": "unlimited", "current_overage.amount": "12.5"}}
    sim.state.faults.append(Fault(endpoint="subscription", action="drift", drift=drift))
    answer = (await http.get(sim.url + "/v1/user/subscription", headers=DEMO)).content
    assert answer_problems(Subscription, answer) == []  # still an answer the SDK accepts
    sim.state.faults.append(Fault(endpoint="subscription", action="drift", drift=drift))
    sub = await client.subscription()
    assert (sub.credit_limit_extension, sub.credit_limit_extension_unlimited) == (None, True)
    assert sub.overage_amount == 12.5


async def test_our_client_needs_no_key_or_group_field_the_sdk_calls_optional(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    """Keys and groups carrying only the fields the SDK's models require are read: their
    counts and limits are absent (None), never an error."""
    key_optional = [
        n for n, f in WorkspaceApiKeyResponseModel.model_fields.items() if not f.is_required()
    ]
    group_optional = [
        n for n, f in WorkspaceGroupResponseModel.model_fields.items() if not f.is_required()
    ]
    assert {"character_limit", "character_count", "is_disabled"} <= set(key_optional)
    assert {"group_usage_limit", "character_count"} <= set(group_optional)
    keys = [
        f"service-accounts.{a}.api-keys.{k}.{name}"
        for a, k in ((0, 0), (0, 1), (1, 0))
        for name in key_optional
    ]
    groups = [f"{g}.{name}" for g in ("grp_eng", "grp_support") for name in group_optional]
    sim.state.faults += [
        Fault(endpoint="service_accounts", action="drift", drift={"drop": keys}),
        Fault(endpoint="groups", action="drift", drift={"drop": groups}),
    ]
    client = ElevenLabsClient(workspace="w", base_url=sim.url, api_key=lambda: "demo", http=http)
    read_keys = await client.service_accounts()
    assert [k.key_id for k in read_keys] == ["key_prod_tts", "key_prod_agents", "key_batch"]
    assert all((k.used, k.limit, k.disabled) == (None, None, None) for k in read_keys)
    read_groups = {g.group_id: g for g in await client.workspace_groups()}
    assert (read_groups["grp_eng"].limit, read_groups["grp_eng"].unlimited) == (None, None)
    assert read_groups["grp_contractors"].limit == 60_000


# ---- requests ------------------------------------------------------------------------


def request_diff(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """Where two captured requests differ, field by field, as JSON (so that ``1.0``
    for ``1``, or any other change of type, shows)."""

    def flat(value: Any, path: str) -> dict[str, str]:
        if isinstance(value, dict) and value:
            return {
                k: v for key, item in value.items() for k, v in flat(item, f"{path}.{key}").items()
            }
        return {path: json.dumps(value, sort_keys=True)}

    mine, sdks = flat(dict(ours), ""), flat(dict(theirs), "")
    return [
        f"{path[1:]}: ours {mine.get(path, '(absent)')}, the SDK's {sdks.get(path, '(absent)')}"
        for path in sorted(set(mine) | set(sdks))
        if mine.get(path) != sdks.get(path)
    ]


def _sent(sim: Simulator) -> list[dict[str, Any]]:
    """The requests the simulator received (method, path, query, body), then forgotten."""
    with sim.state.lock:
        sent = [
            {k: r[k] for k in ("method", "path", "query", "body")}
            for r in sim.state.requests
            if not r["path"].startswith("/_sim/")
        ]
        sim.state.requests.clear()
    return sent


@dataclass(frozen=True)
class RequestCase:
    """One call of our client and the SDK call that must send the same request."""

    ours: Callable[[ElevenLabsClient], Any]
    sdk: Callable[[ElevenLabs], object]
    raw: Callable[..., Any] | None  # the SDK raw method whose parameters the fields are
    scenario: str = "normal"


FILTER = {"column": "product_type", "operation": "in", "values": ["text_to_speech"]}


def _stats_case(metric: str, bucket: int, breakdown: str, hours: int) -> RequestCase:
    start_ms, end_ms = START * 1000, START * 1000 + hours * HOUR_MS
    return RequestCase(
        lambda client: client.character_stats(start_ms, end_ms, metric, bucket, breakdown),
        lambda sdk: sdk.usage.get(
            start_unix=start_ms,
            end_unix=end_ms,
            include_workspace_metrics=True,
            breakdown_type=breakdown,
            aggregation_interval=INTERVAL_NAMES.get(bucket),
            aggregation_bucket_size=bucket,
            metric=metric,
        ),
        RawCharacterStatsClient.get,
    )


REQUESTS: dict[str, RequestCase] = {
    "usage": RequestCase(
        lambda client: client.usage(START, END, 60),
        lambda sdk: sdk.workspace.usage.get_usage_by_product_over_time(
            start_time=START * 1000,
            end_time=END * 1000,
            interval_seconds=60,
            group_by=["product_type"],
            time_zone="UTC",
        ),
        RawUsageClient.get_usage_by_product_over_time,
    ),
    "usage_table with dimensions and a filter": RequestCase(
        lambda client: client.usage_table(
            START, END, 300, ("product_type", "voice_id", "hashed_xi_api_key"), [FILTER]
        ),
        lambda sdk: sdk.workspace.usage.get_usage_by_product_over_time(
            start_time=START * 1000,
            end_time=END * 1000,
            interval_seconds=300,
            group_by=["product_type", "voice_id", "hashed_xi_api_key"],
            filters=[
                ColumnFilter(column="product_type", operation="in", values=["text_to_speech"])
            ],
            time_zone="UTC",
        ),
        RawUsageClient.get_usage_by_product_over_time,
    ),
    "cost_usage": RequestCase(
        lambda client: client.cost_usage(DAY_START, DAY_END, 86400),
        lambda sdk: sdk.workspace.usage.get_usage(
            start_time=DAY_START * 1000,
            end_time=DAY_END * 1000,
            interval_seconds=86400,
            group_by=["product_type"],
        ),
        RawUsageClient.get_usage,
        scenario="cost-billed",
    ),
    "subscription": RequestCase(
        lambda client: client.subscription(), lambda sdk: sdk.user.subscription.get(), None
    ),
    "character_stats hourly": _stats_case("credits", 3600, "none", 3),
    "character_stats daily by product": _stats_case("ttfb_p95", 86400, "product_type", 48),
    "character_stats in 2h buckets": _stats_case("concurrency", 7200, "none", 6),
    "character_stats weekly": _stats_case("request_count", 604800, "product_type", 24 * 14),
    "service_accounts": RequestCase(
        lambda client: client.service_accounts(), lambda sdk: sdk.service_accounts.list(), None
    ),
    "workspace_groups": RequestCase(
        lambda client: client.workspace_groups(), lambda sdk: sdk.workspace.groups.list(), None
    ),
}
# Our client's public methods and the cases that pin the requests each one sends.
COVERED = {
    "usage": ["usage"],
    "usage_table": ["usage_table with dimensions and a filter"],
    "cost_usage": ["cost_usage"],
    "subscription": ["subscription"],
    "character_stats": [name for name in REQUESTS if name.startswith("character_stats")],
    "service_accounts": ["service_accounts"],
    "workspace_groups": ["workspace_groups"],
}


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_our_requests_are_the_sdks(
    name: str, sim: Simulator, sdk: ElevenLabs, http: httpx.AsyncClient
) -> None:
    """For the same parameters our client sends exactly the request the SDK's method
    sends (method, path, query, JSON body: names, types, units such as ms), and each
    field is one of that SDK method's parameters with a value of its type."""
    case = REQUESTS[name]
    sim.state.scenario = case.scenario
    client = ElevenLabsClient(workspace="w", base_url=sim.url, api_key=lambda: "demo", http=http)
    _sent(sim)
    await case.ours(client)
    ours = _sent(sim)
    case.sdk(sdk)
    theirs = _sent(sim)
    assert len(ours) == len(theirs) == 1
    assert request_diff(ours[0], theirs[0]) == []
    if case.raw is not None:
        request = ours[0]
        fields = request["body"] if request["method"] == "POST" else None
        if fields is None:
            fields = {k: v[0] for k, v in request["query"].items()}
        assert request_problems(case.raw, fields, query=request["method"] == "GET") == []


def test_every_client_method_is_compared() -> None:
    """A new request method of our client needs its SDK comparison here: list it in
    COVERED with a RequestCase calling the SDK's method for that endpoint."""
    methods = {
        name
        for name, member in inspect.getmembers(ElevenLabsClient, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }
    assert methods == set(COVERED)
    assert sorted(n for names in COVERED.values() for n in names) == sorted(REQUESTS)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"start_time": START, "end_time": END}, None),  # seconds pass the type check ...
        ({"start_time": str(START * 1000), "end_time": END * 1000}, "start_time"),
        ({"start_time": START * 1000, "end_time": END * 1000, "interval": 60}, "interval"),
        ({"start_time": START * 1000, "end_time": END * 1000, "group_by": ["product"]}, "product"),
        ({"end_time": END * 1000}, "start_time"),
        (
            {"start_time": START * 1000, "end_time": END * 1000, "filters": [{"column": "x"}]},
            "filters",
        ),
    ],
)
def test_a_drifted_request_fails_the_check(fields: Mapping[str, Any], expected: str | None) -> None:
    """The request check can fail: a field the SDK does not have, a wrong type, an enum
    value it does not know, a required field left out are each reported. (A wrong
    unit of the right type, seconds for ms, is what the comparison with the SDK's own
    request catches: see test_a_drifted_request_fails_the_comparison.)"""
    problems = request_problems(RawUsageClient.get_usage_by_product_over_time, fields, query=False)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        ({"start_time": START, "end_time": END}, "body.start_time: ours 1761992820,"),
        ({"interval_seconds": 60.0}, "body.interval_seconds: ours 60.0, the SDK's 60"),
        ({"time_zone": None}, "body.time_zone: ours null"),
    ],
)
def test_a_drifted_request_fails_the_comparison(
    drift: dict[str, Any], expected: str, sim: Simulator, sdk: ElevenLabs
) -> None:
    """The comparison can fail: a request sent in seconds where the SDK sends ms, a
    float for an int, a null for a value, each differs from the SDK's own request."""
    kwargs: dict[str, Any] = {
        "start_time": START * 1000,
        "end_time": END * 1000,
        "interval_seconds": 60,
        "group_by": ["product_type"],
        "time_zone": "UTC",
    }
    sdk.workspace.usage.get_usage_by_product_over_time(**kwargs)
    theirs = _sent(sim)[0]
    httpx.post(sim.url + theirs["path"], json={**kwargs, **drift}, headers={"xi-api-key": "demo"})
    ours = _sent(sim)[0]
    differences = request_diff(ours, theirs)
    assert any(d.startswith(expected) for d in differences), differences


# ---- the SDK itself ------------------------------------------------------------------


def test_the_pinned_sdk_is_the_one_installed() -> None:
    """The contract is the SDK version pinned in pyproject's test extra."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [
        d
        for d in pyproject["project"]["optional-dependencies"]["test"]
        if d.startswith("elevenlabs")
    ]
    assert len(pins) == 1
    match = re.fullmatch(r"elevenlabs==([\w.]+)", pins[0])
    assert match, f"the SDK must be pinned exactly: {pins[0]!r}"
    assert version("elevenlabs") == match.group(1)


def test_the_sdk_never_leaves_loopback(capture: Capture) -> None:
    """The SDK's client refuses, before sending, any request that would leave loopback
    (here: its default, the real API's host)."""
    sdk = sdk_client("https://api.elevenlabs.io", "demo", capture)
    with pytest.raises(LeftLoopbackError):
        sdk.user.subscription.get()
    assert capture.responses == []
