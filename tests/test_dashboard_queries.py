"""Every dashboard query run as Grafana would run it, and the helper that lists them.

The helper (tests/dashboard_queries.py) is pinned on a small sample dashboard and on the
overview. Then a real Prometheus scrapes contract-shaped metrics: every substituted
query must parse, and every query that must show data returns series, for several
variable selections.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from contract import ENDPOINTS, REASONS
from dashboard_queries import (
    ALL,
    DashboardQuery,
    dashboard_queries,
    iter_panels,
    substitute,
    variable_replacements,
)
from dashboards_support import DASHBOARDS, OVERVIEW_PATH, dashboard_params
from support import free_port

from exporter.metrics.render import label_set, sample_line, type_line

# --- The query helper -----------------------------------------------------------------

SAMPLE_DASHBOARD: dict[str, Any] = {
    "uid": "elevenlabs-credits",
    "templating": {
        "list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {
                "name": "job",
                "type": "query",
                "multi": False,
                "includeAll": False,
                "query": {"query": "label_values(elevenlabs_up, job)", "refId": "V"},
            },
            {
                "name": "workspace",
                "type": "query",
                "multi": True,
                "includeAll": True,
                "allValue": ".*",
                "query": 'label_values(elevenlabs_up{job=~"$job"}, workspace)',
            },
            {
                "name": "bucket",
                "type": "custom",
                "query": "1h,1d",
                "current": {"text": "1d", "value": "1d"},
            },
        ]
    },
    "panels": [
        {
            "id": 1,
            "type": "timeseries",
            "title": "Top",
            "targets": [
                {"refId": "A", "expr": 'up{job=~"$job",workspace=~"${workspace}"}'},
                {"refId": "B", "expr": "hidden_metric", "hide": True},
            ],
        },
        {
            "id": 2,
            "type": "row",
            "title": "Collapsed",
            "collapsed": True,
            "panels": [
                {
                    "id": 3,
                    "type": "timeseries",
                    "title": "Credits revised downward",
                    "interval": "$bucket",
                    "targets": [
                        {
                            "refId": "A",
                            "expr": "increase(x[$__interval]) + rate(x[$__rate_interval])",
                            "instant": True,
                            "range": False,
                        }
                    ],
                }
            ],
        },
    ],
    "annotations": {
        "list": [
            {"name": "Built-in", "builtIn": 1},
            {"name": "Alerts", "expr": 'ALERTS{job=~"[[job]]"}'},
        ]
    },
}


def test_substitute_formats_single_multi_and_all_values_like_grafana() -> None:
    """Single values go in as they are; multi values become an escaped regex group; All
    becomes the variable's allValue."""
    single = {"name": "job", "multi": False, "includeAll": False}
    multi = {"name": "ws", "multi": True, "includeAll": True, "allValue": ".*"}
    dashboard = {"templating": {"list": [{**single, "type": "query"}, {**multi, "type": "query"}]}}
    expr = 'x{job=~"$job",ws=~"${ws}"}[$__rate_interval]'

    def render(values: Mapping[str, str | Sequence[str]]) -> str:
        return substitute(expr, variable_replacements(dashboard, values))

    assert render({"job": "a-b", "ws": "main"}) == 'x{job=~"a-b",ws=~"main"}[4m]'
    assert render({"job": "j", "ws": ["a.b", "c"]}) == 'x{job=~"j",ws=~"(a\\\\.b|c)"}[4m]'
    assert render({"job": "j", "ws": ALL}) == 'x{job=~"j",ws=~".*"}[4m]'
    assert render({"job": "j", "ws": [ALL]}) == 'x{job=~"j",ws=~".*"}[4m]'
    assert substitute("[[a]] $b ${c}", {"a": "1", "b": "2", "c": "3"}) == "1 2 3"


def test_substitute_rejects_undefined_variables_and_formats() -> None:
    """A query naming an unknown variable or a format fails loudly, never half-substituted."""
    with pytest.raises(KeyError, match="undefined variable"):
        substitute("x[$nope]", {"__range": "1h"})
    with pytest.raises(ValueError, match="format"):
        substitute("${job:regex}", {"job": "j"})
    single = {"name": "job", "type": "query", "multi": False}
    with pytest.raises(ValueError, match="single value"):
        variable_replacements({"templating": {"list": [single]}}, {"job": ["a", "b"]})
    with pytest.raises(KeyError, match="no value"):
        variable_replacements({"templating": {"list": [{**single, "name": "other"}]}})


def test_dashboard_queries_lists_variables_panels_rows_and_annotations() -> None:
    """Every query comes back substituted: variable selectors, panel targets (nested in
    collapsed rows too, hidden ones left out), and annotations; a panel's min interval
    raises $__interval and $__rate_interval; panels allowed to be empty need no data."""
    queries = dashboard_queries(
        SAMPLE_DASHBOARD,
        {"job": "exp", "workspace": "default"},
        may_be_empty={"Credits revised downward"},
    )
    summary = [
        (q.source, q.title, q.ref_id, q.expr, q.instant, q.must_have_data, q.label) for q in queries
    ]
    assert summary == [
        ("variable", "job", "job", "elevenlabs_up", True, True, "job"),
        (
            "variable",
            "workspace",
            "workspace",
            'elevenlabs_up{job=~"exp"}',
            True,
            True,
            "workspace",
        ),
        ("panel", "Top", "A", 'up{job=~"exp",workspace=~"default"}', False, True, None),
        (
            "panel",
            "Credits revised downward",
            "A",
            "increase(x[1d]) + rate(x[1d])",
            True,
            False,
            None,
        ),
        ("annotation", "Alerts", "Alerts", 'ALERTS{job=~"exp"}', False, False, None),
    ]
    assert [q.panel_id for q in queries] == [None, None, 1, 3, None]


def test_dashboard_queries_of_the_overview_are_fully_substituted() -> None:
    """Each overview target, query variable and annotation yields one query, no `$` left."""
    dashboard = DASHBOARDS[OVERVIEW_PATH]
    queries = dashboard_queries(dashboard)
    targets = sum(len(p.get("targets", [])) for p in iter_panels(dashboard))
    variables = sum(v["type"] == "query" for v in dashboard["templating"]["list"])
    annotations = len(dashboard["annotations"]["list"])
    assert len(queries) == targets + variables + annotations
    assert all("$" not in q.expr for q in queries), [q.expr for q in queries if "$" in q.expr]
    per_bucket = [q for q in queries if q.title == "Credits per ${usage_bucket} by product"]
    assert [q.expr.endswith("[1d]))") for q in per_bucket] == [True]


# --- Against a real Prometheus --------------------------------------------------------

WORKSPACES = ("default", "second")
PRODUCTS = ("text_to_speech", "speech_to_text", "dubbing")
BUCKETS = ("0.05", "0.1", "0.5", "1.0", "+Inf")
Sample = tuple[str, Mapping[str, str], float]  # name suffix, labels, value


def contract_exposition(scrape: int, now: float) -> str:
    """Metrics shaped like the contract's, with usage growing at every scrape, written
    with the exporter's own line primitives."""
    lines: list[str] = []

    def family(name: str, kind: str, samples: Sequence[Sample]) -> None:
        lines.append(type_line(name, kind))
        lines.extend(
            sample_line(name + suffix, label_set(labels), repr(value))
            for suffix, labels, value in samples
        )

    per_product = [
        ({"workspace": w, "product_type": p}, 100.0 * (i + 1) + scrape * (i + 1))
        for w in WORKSPACES
        for i, p in enumerate(PRODUCTS)
    ]
    family("elevenlabs_credits_used", "counter", [("_total", lbl, v) for lbl, v in per_product])
    family(
        "elevenlabs_credits_downward_revision",
        "counter",
        [("_total", labels, 0.0) for labels, _ in per_product],
    )
    family("elevenlabs_cycle_credits_used", "gauge", [("", lbl, v) for lbl, v in per_product])
    per_ws = [{"workspace": w} for w in WORKSPACES]
    for name, value in (
        ("elevenlabs_subscription_credits_used", 1000.0 + scrape),
        ("elevenlabs_subscription_credits_limit", 100000.0),
        ("elevenlabs_subscription_cycle_reset_timestamp_seconds", now + 10 * 86400),
        ("elevenlabs_subscription_cycle_length_seconds", 30 * 86400.0),
        ("elevenlabs_subscription_voice_slots_used", 3.0),
        ("elevenlabs_subscription_voice_slots_limit", 10.0),
        ("elevenlabs_subscription_professional_voice_slots_used", 1.0),
        ("elevenlabs_subscription_professional_voice_slots_limit", 1.0),
        ("elevenlabs_up", 1.0),
    ):
        family(name, "gauge", [("", labels, value) for labels in per_ws])
    family(
        "elevenlabs_subscription_info",
        "gauge",
        [
            (
                "",
                {
                    "workspace": w,
                    "tier": "creator",
                    "status": "active",
                    "currency": "usd",
                    "billing_period": "monthly_period",
                },
                1.0,
            )
            for w in WORKSPACES
        ],
    )
    per_endpoint = [{"workspace": w, "endpoint": e} for w in WORKSPACES for e in ENDPOINTS]
    family(
        "elevenlabs_exporter_last_success_timestamp_seconds",
        "gauge",
        [("", labels, now) for labels in per_endpoint],
    )
    family(
        "elevenlabs_exporter_api_requests",
        "counter",
        [("_total", {**labels, "code": "200"}, float(scrape)) for labels in per_endpoint],
    )
    family(
        "elevenlabs_exporter_poll_errors",
        "counter",
        [("_total", {**labels, "reason": r}, 0.0) for labels in per_endpoint for r in REASONS],
    )
    histogram: list[Sample] = []
    for labels in per_endpoint:
        histogram += [("_bucket", {**labels, "le": le}, float(scrape)) for le in BUCKETS]
        histogram += [("_sum", labels, 0.2 * scrape), ("_count", labels, float(scrape))]
    family("elevenlabs_exporter_api_request_duration_seconds", "histogram", histogram)
    family("elevenlabs_exporter_build_info", "gauge", [("", {"version": "0.1.0"}, 1.0)])
    return "".join(lines)


class ContractMetricsHandler(BaseHTTPRequestHandler):
    """Serves :func:`contract_exposition` at any path, one scrape more each time."""

    scrapes = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        """Answer a scrape."""
        with self.lock:
            type(self).scrapes += 1
            scrape = self.scrapes
        body = contract_exposition(scrape, time.time()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


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


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus scraping contract-shaped metrics every second as job
    elevenlabs-exporter."""
    binary = shutil.which("prometheus")
    assert binary, "the prometheus binary must be on PATH (scripts/apt-packages.txt)"
    server = ThreadingHTTPServer(("127.0.0.1", 0), ContractMetricsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "elevenlabs-exporter",
                        "static_configs": [{"targets": [f"127.0.0.1:{server.server_port}"]}],
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
        yield client
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
        server.shutdown()
        server.server_close()


def wait_for_scrapes(prometheus: Prometheus, count: int) -> None:
    """Block until Prometheus holds `count` scrapes of the contract metrics."""
    deadline = time.monotonic() + 60
    query = 'count_over_time(elevenlabs_up{job="elevenlabs-exporter",workspace="default"}[5m])'
    while True:
        status, body = prometheus.get("/api/v1/query", {"query": query})
        result = body["data"]["result"] if status == 200 else []
        if result and float(result[0]["value"][1]) >= count:
            return
        assert time.monotonic() < deadline, f"fewer than {count} scrapes after 60s"
        time.sleep(0.5)


@dashboard_params
def test_every_substituted_query_parses_in_prometheus(
    dashboard: dict[str, Any], prometheus: Prometheus
) -> None:
    """Prometheus accepts every panel, variable and annotation query (no parse error)."""
    for values in ({}, {"workspace": ["default", "second"], "product_type": "dubbing"}):
        for query in dashboard_queries(dashboard, values):
            status, body = prometheus.run(query)
            assert status == 200, (query.title, query.expr, body)
            assert body["status"] == "success", (query.title, query.expr, body)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"workspace": "default", "product_type": ["text_to_speech", "dubbing"]},
        {"workspace": ["default", "second"], "product_type": "speech_to_text"},
    ],
    ids=["all", "one-workspace-two-products", "two-workspaces-one-product"],
)
@dashboard_params
def test_panels_that_must_show_data_do_on_contract_metrics(
    dashboard: dict[str, Any], values: dict[str, str | list[str]], prometheus: Prometheus
) -> None:
    """With the contract's metrics scraped a few times, every query that must show data
    returns at least one series, and variable queries return the label they list."""
    wait_for_scrapes(prometheus, 4)
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
