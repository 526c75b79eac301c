"""End to end with real binaries on loopback: exporter, Prometheus, Alertmanager.

The exporter runs with ``--demo --demo.scenario quota-nearly-exhausted``: its built-in
simulated API reports a cycle with over 98% of the credits used. A real Prometheus
scrapes it every second and evaluates the shipped rule files, unchanged. A real
Alertmanager runs the shipped configuration; the test points its webhook receivers
at a receiver of its own and shortens only the grouping timers (``group_wait``,
``group_interval``, ``repeat_interval``), which would otherwise hold a resolved
notification back for minutes. Routes, receivers and inhibitions stay as shipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboard_queries import dashboard_queries, load_dashboards
from support import REPO, ExporterProcess, free_port, http_get, run_exporter

pytestmark = pytest.mark.e2e

RULES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


class Webhook:
    """Collects Alertmanager webhook notifications."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    outer.notifications.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, name: str, status: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                a
                for n in self.notifications
                for a in n.get("alerts", [])
                if a["labels"].get("alertname") == name and a["status"] == status
            ]


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if http_get(url, timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready:\n{log.read_text()[-2000:]}")


def shorten_timers(route: dict[str, Any]) -> None:
    for key, value in (("group_wait", "1s"), ("group_interval", "2s"), ("repeat_interval", "1h")):
        if key in route:
            route[key] = value
    for child in route.get("routes", []) or []:
        shorten_timers(child)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prometheus_bin = shutil.which("prometheus")
    alertmanager_bin = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert prometheus_bin, "prometheus (Debian package prometheus) is required"
    assert alertmanager_bin, "alertmanager (Debian package prometheus-alertmanager) is required"
    tmp = tmp_path_factory.mktemp("e2e")
    webhook = Webhook()

    am_config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    receivers_with_webhooks = 0
    for receiver in am_config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []) or []:
            hook["url"] = webhook.url
            receivers_with_webhooks += 1
    assert receivers_with_webhooks, "the shipped Alertmanager config has no webhook receiver"
    shorten_timers(am_config["route"])
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
    am_port = free_port()
    am_log = tmp / "alertmanager.log"
    alertmanager = start(
        [
            alertmanager_bin,
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        am_log,
    )

    with run_exporter(
        ["--demo", "--demo.scenario", "quota-nearly-exhausted"],
        tmp,
        env={"ELEVENLABS_EXPORTER_POLL_INTERVAL": "2s"},
    ) as exporter:
        exporter.wait_ready(timeout=30)
        match = re.search(r'"simulator": "(http://127\.0\.0\.1:\d+)"', exporter.log())
        assert match, exporter.log()
        prom_config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULES],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
            },
            "scrape_configs": [
                {
                    "job_name": "elevenlabs-exporter",
                    "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}],
                }
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        prom_port = free_port()
        prom_log = tmp / "prometheus.log"
        prometheus = start(
            [
                prometheus_bin,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            prom_log,
        )
        try:
            wait_http(f"http://127.0.0.1:{am_port}/-/ready", alertmanager, am_log)
            wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prometheus, prom_log)
            yield {
                "exporter": exporter,
                "simulator": match.group(1),
                "webhook": webhook,
                "prometheus": f"http://127.0.0.1:{prom_port}",
                "prom_log": prom_log,
            }
        finally:
            for process in (prometheus, alertmanager):
                process.terminate()
                process.wait(timeout=15)
            webhook.server.shutdown()


def query(
    prometheus: str, expr: str, at: float | None = None, range_seconds: int = 0
) -> tuple[int, dict[str, Any]]:
    if range_seconds:
        end = time.time()
        params = {"query": expr, "start": str(end - range_seconds), "end": str(end), "step": "15"}
        path = "/api/v1/query_range"
    else:
        params = {"query": expr}
        path = "/api/v1/query"
    status, body = http_get(f"{prometheus}{path}?{urllib.parse.urlencode(params)}", timeout=10)
    return status, json.loads(body)


def wait_scrapes(prometheus: str, count: int) -> None:
    deadline = time.monotonic() + 60
    expr = 'count_over_time(elevenlabs_up{job="elevenlabs-exporter"}[5m])'
    while time.monotonic() < deadline:
        _, body = query(prometheus, expr)
        result = body.get("data", {}).get("result", [])
        if result and float(result[0]["value"][1]) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} scrapes of the exporter")


def test_every_dashboard_panel_shows_data_from_the_demo(stack: dict[str, Any]) -> None:
    """Every panel and variable query of every shipped dashboard parses against a real
    Prometheus that scraped the exporter in --demo mode, and every panel that must show
    data returns data."""
    wait_scrapes(stack["prometheus"], 8)
    empty, failed = [], []
    for dashboard in load_dashboards().values():
        for item in dashboard_queries(dashboard, {"workspace": "default"}):
            status, body = query(
                stack["prometheus"], item.expr, range_seconds=0 if item.instant else 300
            )
            if status != 200 or body.get("status") != "success":
                failed.append((item.title, item.expr, body))
            elif item.must_have_data and not body["data"]["result"]:
                empty.append(f"{item.title}: {item.expr}")
    assert failed == []
    assert empty == []


def test_quota_alert_is_delivered_with_labels_and_annotations_then_resolves(
    stack: dict[str, Any],
) -> None:
    """With over 98% of the cycle used, Alertmanager delivers ElevenLabsCreditQuotaNearlyExhausted
    (critical) to the webhook with the workspace label and filled-in annotations; when the
    quota is raised the alert resolves and the resolution is delivered too."""
    webhook: Webhook = stack["webhook"]
    exporter: ExporterProcess = stack["exporter"]
    name = "ElevenLabsCreditQuotaNearlyExhausted"
    deadline = time.monotonic() + 150
    while not [
        a for a in webhook.alerts(name, "firing") if a["labels"].get("severity") == "critical"
    ]:
        assert time.monotonic() < deadline, stack["prom_log"].read_text()[-2000:]
        assert exporter.process.poll() is None
        time.sleep(1)
    alert = next(
        a for a in webhook.alerts(name, "firing") if a["labels"].get("severity") == "critical"
    )
    assert alert["labels"]["workspace"] == "default"
    assert alert["labels"]["job"] == "elevenlabs-exporter"
    for key in ("summary", "description", "runbook_url", "dashboard_url"):
        text = alert["annotations"].get(key, "")
        assert text
        assert "{{" not in text
        assert "<no value>" not in text
    assert "%" in alert["annotations"]["summary"] + alert["annotations"]["description"]
    assert alert["annotations"]["runbook_url"].endswith("#elevenlabscreditquotanearlyexhausted")

    # Raise the quota: the simulator goes back to the normal plan limit.
    request = urllib.request.Request(  # noqa: S310 - loopback
        stack["simulator"] + "/_sim/scenario",
        data=json.dumps({"name": "normal"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass
    deadline = time.monotonic() + 120
    while not webhook.alerts(name, "resolved"):
        assert time.monotonic() < deadline, "the resolution was not delivered"
        time.sleep(1)
    resolved = webhook.alerts(name, "resolved")[-1]
    assert resolved["labels"]["workspace"] == "default"
