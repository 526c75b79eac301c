"""Every dashboard query run as Grafana would run it, against a real Prometheus.

The Prometheus (without the project's rules) scrapes the real exporter polling the
simulated API for two workspaces, one with a budget and opt-in dimensions: every
substituted query (tests/dashboard_queries.py) must parse, every query that must show
data returns series, for several variable selections, and the panels compute what they
say (allowance, pace, projection, sorted bars, the top-N table, "rules not loaded").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
import yaml
from dashboard_queries import DashboardQuery, dashboard_queries, iter_panels
from dashboards_support import DASHBOARDS, OVERVIEW_PATH, ROOT, dashboard_params
from support import ExporterProcess, free_port, run_exporter

from exporter.simulator import SimState, Simulator

WORKSPACES = ("default", "second")
# "default" has its own budget, breaks its credits down by voice, model and API key, and
# exports its API keys' and groups' credit limits; "second" is the plain case: the plan's
# limit, products only.
BUDGET = 800_000
GROUP_BY = ["voice_id", "model", "hashed_xi_api_key"]
# The join docs/limits.md documents: each key's credits this cycle by product, named.
KEY_JOIN = """\
  sum by (workspace, hashed_xi_api_key, product_type) (
    elevenlabs_cycle_credits_used{job="elevenlabs-exporter"}
  )
* on (workspace, hashed_xi_api_key) group_left (key_name, service_account)
  group by (workspace, hashed_xi_api_key, key_name, service_account) (
    elevenlabs_api_key_credits_used{job="elevenlabs-exporter"}
  )"""


class Prometheus:
    """A Prometheus on loopback, queried like Grafana queries it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Status code and JSON body of a GET request."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:  # noqa: S310
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def run(self, query: DashboardQuery) -> tuple[int, dict[str, Any]]:
        """Run `query` as Grafana would: instant, or a range over the last five minutes."""
        if query.instant:
            return self.get("/api/v1/query", {"query": query.expr})
        end = time.time()
        params = {"query": query.expr, "start": str(end - 300), "end": str(end), "step": "15"}
        return self.get("/api/v1/query_range", params)

    def instant(self, expr: str) -> list[dict[str, Any]]:
        """The series of an instant query, which must succeed."""
        status, body = self.get("/api/v1/query", {"query": expr})
        assert status == 200, (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    """The real exporter polling the simulated API every 2s for two workspaces."""
    simulator = Simulator(SimState()).start()
    directory = tmp_path_factory.mktemp("exporter")
    config = directory / "config.yml"
    workspace = {"api_key": "demo", "base_url": simulator.url}
    config.write_text(
        yaml.safe_dump(
            {
                "poll_interval": "2s",
                "state_file": None,
                "workspaces": [
                    {
                        **workspace,
                        "name": WORKSPACES[0],
                        "budget_credits": BUDGET,
                        "group_by": GROUP_BY,
                        "key_limits": True,
                        "group_limits": True,
                    },
                    {**workspace, "name": WORKSPACES[1]},
                ],
            }
        ),
        encoding="utf-8",
    )
    try:
        with run_exporter(["--config.file", str(config)], directory) as process:
            process.wait_ready(timeout=120)
            yield process
    finally:
        simulator.stop()


@pytest.fixture(scope="module")
def prometheus(
    exporter: ExporterProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    """A real Prometheus scraping the exporter every second as job elevenlabs-exporter,
    without the project's rules."""
    binary = shutil.which("prometheus")
    assert binary, "the prometheus binary must be on PATH (scripts/apt-packages.txt)"
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "elevenlabs-exporter",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    port = free_port()
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (directory / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(f"{client.url}/-/ready", timeout=1):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline, "prometheus did not become ready"
                time.sleep(0.2)
        wait_for_scrapes(client, 4)
        yield client
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def wait_for_scrapes(prometheus: Prometheus, count: int) -> None:
    """Block until Prometheus holds `count` scrapes of every workspace."""
    deadline = time.monotonic() + 60
    query = 'min(count_over_time(elevenlabs_up{job="elevenlabs-exporter"}[5m]))'
    while True:
        status, body = prometheus.get("/api/v1/query", {"query": query})
        result = body["data"]["result"] if status == 200 else []
        if result and float(result[0]["value"][1]) >= count:
            return
        assert time.monotonic() < deadline, f"fewer than {count} scrapes after 60s"
        time.sleep(0.5)


def overview_query(
    title: str, ref_id: str = "A", values: Mapping[str, str | Sequence[str]] | None = None
) -> DashboardQuery:
    """One query of the overview, substituted for `values`."""
    (query,) = [
        q
        for q in dashboard_queries(DASHBOARDS[OVERVIEW_PATH], values)
        if q.source == "panel" and q.title == title and q.ref_id == ref_id
    ]
    return query


def by_workspace(result: list[dict[str, Any]]) -> dict[str, float]:
    """Instant series by their workspace label."""
    return {series["metric"]["workspace"]: float(series["value"][1]) for series in result}


@dashboard_params
def test_every_substituted_query_parses_in_prometheus(
    dashboard: dict[str, Any], prometheus: Prometheus
) -> None:
    """Prometheus accepts every panel, variable and annotation query (no parse error),
    for every choice of the breakdown variable too."""
    selections: list[dict[str, str | list[str]]] = [
        {},
        {"workspace": ["default", "second"], "product_type": "dubbing"},
    ]
    selections += [{"breakdown": label} for label in custom_values(dashboard, "breakdown")]
    for values in selections:
        for query in dashboard_queries(dashboard, values):
            status, body = prometheus.run(query)
            assert status == 200, (query.title, query.expr, body)
            assert body["status"] == "success", (query.title, query.expr, body)


def custom_values(dashboard: Mapping[str, Any], name: str) -> list[str]:
    """The choices of a custom variable (none where the dashboard has no such variable)."""
    for variable in dashboard["templating"]["list"]:
        if variable["name"] == name:
            return [str(option["value"]) for option in variable["options"]]
    return []


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"workspace": "default", "product_type": ["text_to_speech", "dubbing"]},
        {"workspace": ["default", "second"], "product_type": "speech_to_text"},
        {"workspace": "default", "breakdown": "voice_id", "top_n": "5"},
    ],
    ids=["all", "one-workspace-two-products", "two-workspaces-one-product", "by-voice"],
)
@dashboard_params
def test_panels_that_must_show_data_do_on_the_real_exporter(
    dashboard: dict[str, Any], values: dict[str, str | list[str]], prometheus: Prometheus
) -> None:
    """With the real exporter scraped a few times, every query that must show data
    returns at least one series, and variable queries return the label they list."""
    empty = []
    for query in dashboard_queries(dashboard, values):
        if not query.must_have_data:
            continue
        status, body = prometheus.run(query)
        assert status == 200, (query.title, body)
        result = body["data"]["result"]
        if not result:
            empty.append(f"{query.title} [{query.ref_id}]: {query.expr}")
        elif query.label:
            assert all(query.label in series["metric"] for series in result), query.title
    assert empty == []


def test_allowance_is_the_budget_where_set_else_the_plan_limit(prometheus: Prometheus) -> None:
    """The allowance, what is left and the share used read the budget where a workspace
    has one and the plan's limit elsewhere; the plan's limit shows beside a budget."""
    limit = by_workspace(prometheus.instant("elevenlabs_subscription_credits_limit"))
    used = by_workspace(prometheus.instant("elevenlabs_subscription_credits_used"))
    allowance = by_workspace(prometheus.instant(overview_query("Cycle credit allowance").expr))
    assert allowance == {"default": BUDGET, "second": limit["second"]}
    plan = prometheus.instant(overview_query("Cycle credit allowance", "B").expr)
    assert by_workspace(plan) == {"default": limit["default"]}
    left = by_workspace(prometheus.instant(overview_query("Credits left").expr))
    share = by_workspace(prometheus.instant(overview_query("Share of allowance used").expr))
    for workspace, value in allowance.items():
        # used grows between queries: within a poll's worth of credits
        assert left[workspace] == pytest.approx(max(value - used[workspace], 0), abs=500)
        assert share[workspace] == pytest.approx(100 * used[workspace] / value, abs=0.1)


def test_pace_and_projection_read_the_window_gauges(prometheus: Prometheus) -> None:
    """Pace (credits per hour) is the window gauge summed over products ÷ the window; the
    paces at which what is left lasts are what is left ÷ the time; the projection at the
    reset is used plus the 1d (and the 7d) pace times the time left."""

    def instant(expr: str) -> dict[str, float]:
        return by_workspace(prometheus.instant(expr))

    def window(name: str) -> dict[str, float]:
        return instant(f'sum by (workspace) (elevenlabs_window_credits_used{{window="{name}"}})')

    hours = {"1h": 1, "6h": 6, "1d": 24, "7d": 168}
    for ref, name in zip("ABCD", hours, strict=True):
        paces = instant(overview_query("Pace against what is left", ref).expr)
        expected = window(name)
        assert set(paces) == set(WORKSPACES)
        for workspace, value in paces.items():
            assert value == pytest.approx(expected[workspace] / hours[name], rel=0.05, abs=5)
    left = instant(overview_query("Credits left").expr)
    for ref, days in (("F", 3), ("G", 7)):
        lasting = instant(overview_query("Pace against what is left", ref).expr)
        for workspace in WORKSPACES:
            assert lasting[workspace] == pytest.approx(left[workspace] / (24 * days), rel=0.01)
    reset = instant("elevenlabs_subscription_cycle_reset_timestamp_seconds")
    used = instant("elevenlabs_subscription_credits_used")
    for ref, name in (("A", "1d"), ("B", "7d")):
        projected = instant(overview_query("Projected use at reset", ref).expr)
        pace = window(name)
        for workspace in WORKSPACES:
            seconds_left = reset[workspace] - time.time()
            at_reset = used[workspace] + pace[workspace] / hours[name] / 3600 * seconds_left
            assert projected[workspace] == pytest.approx(at_reset, rel=0.02), (name, workspace)


def test_bar_gauges_list_their_series_largest_first(prometheus: Prometheus) -> None:
    """Each bar gauge's instant query returns its series sorted by value, largest first,
    the order Grafana draws the bars in."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    gauges = [p["title"] for p in iter_panels(dashboard) if p["type"] == "bargauge"]
    assert len(gauges) == 5
    for title in gauges:
        result = prometheus.instant(overview_query(title).expr)
        values = [float(series["value"][1]) for series in result]
        # The simulator has two keys and two groups with a limit, and seven products.
        assert len(values) >= (2 if "share of their limit" in title else 3), title
        assert values == sorted(values, reverse=True), (title, values)


def test_top_table_lists_the_top_values_with_names_and_shares(prometheus: Prometheus) -> None:
    """By voice: at most top_n voices, each with its display name, the most credits
    first, shares of the total; with every value listed the shares add up to 100%. By
    model (no display names): the values still show. By a dimension no workspace groups
    by: nothing, and no error."""
    title = "Top ${top_n} by ${breakdown} this cycle"

    def rows(label: str, top: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        values = {"breakdown": label, "top_n": top}
        credits = prometheus.instant(overview_query(title, "A", values).expr)
        shares = prometheus.instant(overview_query(title, "B", values).expr)
        return credits, shares

    credits, shares = rows("voice_id", "5")
    assert 1 <= len(credits) <= 5
    assert {s["metric"]["voice_id"] for s in credits} == {s["metric"]["voice_id"] for s in shares}
    assert all(s["metric"].get("name") for s in credits if s["metric"]["voice_id"] != "other")
    assert all(0 < float(s["value"][1]) <= 100 for s in shares)

    credits, shares = rows("voice_id", "50")
    assert sum(float(s["value"][1]) for s in shares) == pytest.approx(100)
    cycle = prometheus.instant('sum(elevenlabs_cycle_credits_used{workspace="default"})')
    total = sum(float(s["value"][1]) for s in credits)
    assert total == pytest.approx(float(cycle[0]["value"][1]), rel=0.01)

    credits, shares = rows("model", "10")
    assert credits
    assert all("model" in s["metric"] and "name" not in s["metric"] for s in credits)

    assert rows("user_id", "10") == ([], [])


def test_alert_state_reads_rules_not_loaded_without_the_rules(prometheus: Prometheus) -> None:
    """Without the project's rules (no marker series, no ALERTS) every alert tile reads
    -1, "Rules not loaded", never 0 ("OK")."""
    panel = [p for p in iter_panels(DASHBOARDS[OVERVIEW_PATH]) if p["title"] == "Alert state"]
    (alert_state,) = panel
    for target in alert_state["targets"]:
        result = prometheus.instant(overview_query("Alert state", target["refId"]).expr)
        assert [float(series["value"][1]) for series in result] == [-1.0], target["legendFormat"]


def test_key_and_group_shares_are_used_over_limit_as_the_exporter_reports_them(
    prometheus: Prometheus,
) -> None:
    """The bars and tables of the API keys and groups row: the share is used ÷ limit in
    percent, for the keys and groups with a limit (a key without one and the "unlimited"
    group are left out of the bars, and listed in the tables with no limit)."""

    def by(label: str, expr: str) -> dict[str, float]:
        return {s["metric"][label]: float(s["value"][1]) for s in prometheus.instant(expr)}

    used = by("key_id", 'elevenlabs_api_key_credits_used{workspace="default"}')
    limit = by("key_id", 'elevenlabs_api_key_credits_limit{workspace="default"}')
    assert set(used) == {"key_prod_tts", "key_prod_agents", "key_batch"}
    assert set(limit) == {"key_prod_tts", "key_batch"}
    shares = by("key_id", overview_query("API keys by share of their limit").expr)
    assert shares == pytest.approx({k: 100 * used[k] / limit[k] for k in limit})
    table = by("key_id", overview_query("API keys: used and limit", "A").expr)
    assert table == used
    assert by("key_id", overview_query("API keys: used and limit", "D").expr) == dict.fromkeys(
        used, 0.0
    )
    group_used = by("group_id", 'elevenlabs_group_credits_used{workspace="default"}')
    group_limit = by("group_id", 'elevenlabs_group_credits_limit{workspace="default"}')
    assert set(group_limit) == {"grp_eng", "grp_contractors"}
    group_shares = by("group_id", overview_query("Groups by share of their limit").expr)
    assert group_shares == pytest.approx(
        {g: 100 * group_used[g] / group_limit[g] for g in group_limit}
    )
    unlimited = by("group_id", overview_query("Groups: used and limit", "D").expr)
    assert unlimited == {"grp_eng": 0.0, "grp_support": 1.0, "grp_contractors": 0.0}


def test_a_key_joins_its_usage_breakdown_in_promql(prometheus: Prometheus) -> None:
    """The join docs/limits.md documents runs as written: every key's credits this cycle
    by product carry the key's name, and per key they add up to what the key's own
    count says (both read from ElevenLabs; the key's at most one limits poll older)."""
    assert KEY_JOIN in (ROOT / "docs" / "limits.md").read_text(encoding="utf-8")
    joined: dict[str, float] = {}
    for series in prometheus.instant(KEY_JOIN):
        assert series["metric"]["key_name"], series
        name = series["metric"]["key_name"]
        joined[name] = joined.get(name, 0.0) + float(series["value"][1])
    own = {
        s["metric"]["key_name"]: float(s["value"][1])
        for s in prometheus.instant('elevenlabs_api_key_credits_used{workspace="default"}')
    }
    assert set(joined) == set(own) == {"prod-tts", "prod-agents", "batch-dubbing"}
    for name, value in own.items():
        assert joined[name] == pytest.approx(value, rel=0.01), name
