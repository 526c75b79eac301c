"""The Prometheus rules, their unit tests and the example Prometheus and Alertmanager configs.

The checks run the real `promtool` and `amtool` binaries (Debian packages `prometheus`
and `prometheus-alertmanager`) and fail when they are missing. The structural tests pin
the alerting contract: alert names, labels, annotations, the job selector, the metrics
the rules may use, and `for:` limits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from contract import ALERT_NAMES, SERIES_NAMES

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"

RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TEST_FILES = sorted(RULE_TESTS_DIR.glob("*.yml"))

JOB = "elevenlabs-exporter"
JOB_SELECTOR = f'job="{JOB}"'
RUNBOOK_URL = (
    "https://github.com/elevenlabs-exporter/elevenlabs-exporter/blob/main/docs/runbook.md#"
)
DASHBOARD_URL = "http://localhost:3000/d/elevenlabs-credits/elevenlabs-credits"
WEBHOOK_URL = "http://127.0.0.1:9095/alerts"
MAX_FOR_SECONDS = 10 * 60

# The alerting contract: every alert the rules must define.
CONTRACT_ALERTS = frozenset(ALERT_NAMES)

# The metric contract (every series the exporter exposes) plus Prometheus' own `up`.
EXPORTER_METRICS = SERIES_NAMES | {"up"}

_AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    }
)
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan"})

_TOKEN = re.compile(
    r"""
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<matchers>\{[^}]*\})
    | (?P<range>\[[^\]]*\])
    | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Z]*)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<other>\S)
    """,
    re.VERBOSE,
)
_PRINTF_QUERY = re.compile(r'printf\s+"((?:[^"\\]|\\.)*)"[^|}]*\|\s*query\b')
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}


def _binary(name: str) -> str:
    """The path of a required binary; the test fails (never skips) without it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: install the packages in scripts/apt-packages.txt")
    return path


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in _load(path)["groups"]:
            yield from group["rules"]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _recorded_names() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def _selectors(expr: str) -> Iterator[tuple[str, str]]:
    """(metric name, label matchers or "") for every series selector in a PromQL expression."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr)]
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else (None, "")
        if kind != "ident":
            i += 1
        elif text in _LABEL_LIST_KEYWORDS:
            # Skip the parenthesised label list: by (job, workspace).
            i += 1
            if i < len(tokens) and tokens[i][1] == "(":
                while i < len(tokens) and tokens[i][1] != ")":
                    i += 1
            i += 1
        elif text in _KEYWORDS or text in _AGGREGATIONS or following[1] == "(":
            i += 1
        else:
            matchers = following[1] if following[0] == "matchers" else ""
            yield text, matchers
            i += 1


def _annotation_queries(alert: dict[str, Any]) -> list[str]:
    """The PromQL of every `printf "..." | query` in an alert's annotations."""
    queries: list[str] = []
    for text in alert.get("annotations", {}).values():
        queries.extend(q.replace('\\"', '"') for q in _PRINTF_QUERY.findall(text))
    return queries


def _seconds(duration: str) -> float:
    parts = _DURATION_PART.findall(duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a Prometheus duration: {duration}"
    return sum(int(n) * _DURATION_SECONDS[u] for n, u in parts)


def _github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            text = heading.group(1).strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return anchors


def _rule_test_cases() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in RULE_TEST_FILES:
        for test in _load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                yield path.name, case


# --- The real binaries -------------------------------------------------------


def test_there_are_rule_files_and_rule_tests() -> None:
    """The rules and their unit tests live where the layout says, as YAML files."""
    assert [p.name for p in RULE_FILES] == [
        "elevenlabs-exporter.alerts.yml",
        "elevenlabs-exporter.rules.yml",
    ]
    assert len(RULE_TEST_FILES) >= 6


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules_is_clean(path: Path) -> None:
    """`promtool check rules` accepts each rules file, with every lint check fatal."""
    promtool = _binary("promtool")
    result = _run(promtool, "check", "rules", "--lint=all", "--lint-fatal", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output
    assert not re.search(r"FAILED|WARN|lint", output, re.IGNORECASE), output


def test_promtool_check_config_accepts_the_example_prometheus_config() -> None:
    """The example prometheus.yml is valid and loads both rules files."""
    promtool = _binary("promtool")
    result = _run(promtool, "check", "config", "--lint=all", "--lint-fatal", str(PROMETHEUS_CONFIG))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS: 2 rule files found" in output
    assert not re.search(r"FAILED|WARN", output, re.IGNORECASE), output


def test_amtool_check_config_accepts_the_example_alertmanager_config() -> None:
    """The example alertmanager.yml is valid for Alertmanager."""
    amtool = _binary("amtool")
    result = _run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output


@pytest.mark.parametrize("path", RULE_TEST_FILES, ids=lambda p: p.name)
def test_promtool_rule_unit_tests_pass(path: Path) -> None:
    """Every spend profile in deploy/prometheus/tests fires (or stays silent) as written."""
    promtool = _binary("promtool")
    result = _run(promtool, "test", "rules", path.name, cwd=RULE_TESTS_DIR)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output


@pytest.mark.parametrize("path", RULE_TEST_FILES, ids=lambda p: p.name)
def test_rule_tests_load_the_real_rules_in_order(path: Path) -> None:
    """Each rule test loads exactly the files in deploy/prometheus/rules, recording rules first."""
    spec = _load(path)
    loaded = sorted(
        match.resolve() for pattern in spec["rule_files"] for match in RULE_TESTS_DIR.glob(pattern)
    )
    assert loaded == [p.resolve() for p in RULE_FILES]
    assert spec["group_eval_order"] == [
        "elevenlabs-exporter.recording",
        "elevenlabs-exporter.alerts",
    ]
    assert spec["evaluation_interval"] == "1m"


# --- The alerting contract ---------------------------------------------------


def test_every_contract_alert_is_defined_and_nothing_else() -> None:
    """The rules define exactly the alerts of the alerting contract."""
    assert {alert["alert"] for alert in _alerts()} == CONTRACT_ALERTS


def test_every_alert_carries_severity_and_all_annotations() -> None:
    """Each alert has a severity and non-empty summary, description, runbook and dashboard links."""
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        annotations = alert["annotations"]
        for key in ("summary", "description", "runbook_url", "dashboard_url"):
            assert annotations.get(key, "").strip(), f"{name} lacks {key}"
        # ElevenLabsExporterDown is about a scrape target and has no workspace label.
        expected = DASHBOARD_URL
        if name != "ElevenLabsExporterDown":
            expected += "?var-workspace={{ $labels.workspace }}"
        assert annotations["dashboard_url"] == expected, name


def test_every_runbook_url_points_at_a_section_of_the_runbook() -> None:
    """runbook_url is the repository's docs/runbook.md with an anchor that exists there."""
    anchors = _github_anchors(RUNBOOK.read_text(encoding="utf-8"))
    for alert in _alerts():
        url = alert["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_URL), url
        anchor = url.removeprefix(RUNBOOK_URL)
        assert anchor == alert["alert"].lower()
        assert anchor in anchors, f"docs/runbook.md has no section #{anchor}"


def test_descriptions_use_humanized_numbers() -> None:
    """Spend alerts describe rates, shares and durations in human form, not raw floats."""
    for alert in _alerts():
        description = alert["annotations"]["description"]
        if alert["alert"].startswith("ElevenLabsCredit"):
            for function in ("humanize", "humanizePercentage", "humanizeDuration"):
                assert re.search(rf"\|\s*{function}\b", description), (alert["alert"], function)


def test_burn_rate_and_quota_have_their_severity_levels() -> None:
    """Burn rate: 1h/5m and 6h/30m critical, 1d/2h warning; quota: warning and critical."""
    burn = {
        a["labels"]["window"]: a["labels"]["severity"]
        for a in _alerts()
        if a["alert"] == "ElevenLabsCreditBurnRate"
    }
    assert burn == {"1h/5m": "critical", "6h/30m": "critical", "1d/2h": "warning"}
    quota = {
        a["labels"]["severity"]: a["expr"]
        for a in _alerts()
        if a["alert"] == "ElevenLabsCreditQuotaNearlyExhausted"
    }
    assert quota == {
        "warning": "workspace:elevenlabs_credits_quota_used:ratio >= 0.90",
        "critical": "workspace:elevenlabs_credits_quota_used:ratio >= 0.98",
    }


def test_for_durations_stay_at_or_below_ten_minutes() -> None:
    """No alert waits longer than 10m before firing."""
    for alert in _alerts():
        assert _seconds(alert.get("for", "0s")) <= MAX_FOR_SECONDS, alert["alert"]


def test_rules_use_only_contract_metrics_and_their_own_recordings() -> None:
    """Rules and annotation queries read only contract metrics, `up`, and their own recordings."""
    allowed = EXPORTER_METRICS | _recorded_names()
    seen: set[str] = set()
    for rule in _rules():
        exprs = [rule["expr"], *_annotation_queries(rule)]
        for expr in exprs:
            for name, _ in _selectors(expr):
                assert name in allowed, f"{rule.get('alert') or rule.get('record')} reads {name}"
                seen.add(name)
    # The parser really found the selectors (a broken tokenizer would find nothing).
    assert {"elevenlabs_credits_used_total", "up", "elevenlabs_up"} <= seen


def test_every_annotation_query_is_seen_by_the_metric_check() -> None:
    """Each `| query` in an annotation is fed by a printf the metric check can read."""
    for alert in _alerts():
        text = "".join(alert["annotations"].values())
        assert len(_annotation_queries(alert)) == text.count("| query"), alert["alert"]


def test_every_exporter_selector_in_an_expression_uses_the_job_selector() -> None:
    """Rule expressions select the exporter's series only through job="elevenlabs-exporter"."""
    selections = 0
    for rule in _rules():
        for name, matchers in _selectors(rule["expr"]):
            if name in EXPORTER_METRICS:
                selections += 1
                assert JOB_SELECTOR in matchers, (
                    f"{rule.get('alert') or rule.get('record')}: {name}"
                )
    assert selections >= 10


def test_selector_parser_sees_names_matchers_and_skips_label_lists() -> None:
    """The PromQL scan behind the metric checks finds selectors and ignores grouping labels."""
    expr = (
        'sum by (job, workspace) (rate(foo_total{job="x"}[5m] offset 1d)) '
        "/ on (job) group_left () bar:baz:rate1h > 0.5 and time() - up"
    )
    assert list(_selectors(expr)) == [
        ("foo_total", '{job="x"}'),
        ("bar:baz:rate1h", ""),
        ("up", ""),
    ]


# --- The rule tests cover every alert -------------------------------------------


def test_every_alert_has_a_firing_case_with_annotations_and_a_silent_case() -> None:
    """Each alert is proven to fire (labels and annotations pinned) and to stay silent."""
    fires_with_annotations: set[str] = set()
    silent: set[str] = set()
    for _, case in _rule_test_cases():
        expected = case.get("exp_alerts") or []
        if not expected:
            silent.add(case["alertname"])
        if any(alert.get("exp_annotations") for alert in expected):
            fires_with_annotations.add(case["alertname"])
    assert fires_with_annotations == CONTRACT_ALERTS
    assert silent == CONTRACT_ALERTS


def test_each_burn_window_and_quota_severity_has_its_own_firing_case() -> None:
    """Every burn-rate window pair, and both quota severities, fire in some rule test."""
    fired: set[tuple[str, str]] = set()
    for _, case in _rule_test_cases():
        for alert in case.get("exp_alerts") or []:
            labels = alert.get("exp_labels", {})
            fired.add((case["alertname"], labels.get("window") or labels.get("severity", "")))
    assert {
        ("ElevenLabsCreditBurnRate", "1h/5m"),
        ("ElevenLabsCreditBurnRate", "6h/30m"),
        ("ElevenLabsCreditBurnRate", "1d/2h"),
        ("ElevenLabsCreditQuotaNearlyExhausted", "warning"),
        ("ElevenLabsCreditQuotaNearlyExhausted", "critical"),
    } <= fired


# --- The example configurations --------------------------------------------------


def test_example_prometheus_config_scrapes_the_job_the_rules_select() -> None:
    """prometheus.yml scrapes localhost:9142 every 60s as job elevenlabs-exporter."""
    config = _load(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["rules/*.yml"]
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["localhost:9093"]
    (job,) = [s for s in config["scrape_configs"] if s["job_name"] == JOB]
    assert job["scrape_interval"] == "60s"
    assert job["static_configs"][0]["targets"] == ["localhost:9142"]


def test_alertmanager_groups_by_workspace_and_inhibits_warnings_under_criticals() -> None:
    """Alertmanager groups per alert and workspace, and a critical silences its warning."""
    config = _load(ALERTMANAGER_CONFIG)
    route = config["route"]
    assert {"alertname", "workspace"} <= set(route["group_by"])
    severities = {tuple(r["matchers"]) for r in route["routes"]}
    assert {('severity="critical"',), ('severity="warning"',)} <= severities
    assert {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname", "workspace"],
    } in config["inhibit_rules"]
    (default,) = [r for r in config["receivers"] if r["name"] == route["receiver"]]
    assert default["webhook_configs"][0]["url"] == WEBHOOK_URL
    # The end-to-end test swaps this URL by plain text replacement.
    assert ALERTMANAGER_CONFIG.read_text(encoding="utf-8").count(WEBHOOK_URL) == 1
