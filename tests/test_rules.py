"""The Prometheus rules, their unit tests and the example Prometheus and Alertmanager configs.

The checks run the real `promtool` and `amtool` binaries (Debian packages `prometheus`
and `prometheus-alertmanager`) and fail when they are missing. The structural tests pin
the alerting contract (v2): alert names and severities, labels, annotations, the job
selector, the metrics the rules may use, `for:` limits, spend judged from the window
gauges (never rate()/increase() of the counter), no range selectors, the thresholds in
one place, and rule tests whose input series are what a real exporter would export.
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
from contract import ALERT_NAMES, ALERTS, SERIES_NAMES

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
MAX_FOR_SECONDS = 15 * 60

# The alerting contract: every alert the rules must define.
CONTRACT_ALERTS = frozenset(ALERT_NAMES)
# The alerts of elevenlabs-exporter.limits.yml (group elevenlabs-exporter.limits).
LIMIT_ALERTS = frozenset(
    {"ElevenLabsAPIKeyCreditLimitNearlyExhausted", "ElevenLabsGroupCreditLimitNearlyExhausted"}
)

# The two gauges the design's metric table added for alerting contract v2. They belong
# in tests/contract.py with the exporter that exports them; the union keeps this check
# right before and after they land there.
V2_METRICS = frozenset({"elevenlabs_window_credits_used", "elevenlabs_budget_credits"})

# The metric contract (every series the exporter exposes) plus Prometheus' own `up`.
EXPORTER_METRICS = SERIES_NAMES | V2_METRICS | {"up"}

# The counter by arrival time: no rule and no annotation may read it (a restart without
# state drops it, an outage's catch-up arrives in one poll).
ARRIVAL_COUNTER = "elevenlabs_credits_used_total"

# The windows of elevenlabs_window_credits_used, in minutes.
WINDOW_MINUTES = {"5m": 5, "30m": 30, "1h": 60, "6h": 360, "1d": 1440, "7d": 10080}

# The thresholds of the contract, in the one recording rule that holds them.
THRESHOLD_RULE = "elevenlabs:alert_threshold"
CONTRACT_THRESHOLDS = {
    "burn_rate_critical_runway_seconds": 3 * 86400,
    "burn_rate_warning_runway_seconds": 7 * 86400,
    "spike_factor": 5,
    "spike_share_of_left": 0.01,
    "spike_floor_credits": 10000,
    "quota_warning_ratio": 0.90,
    "quota_critical_ratio": 0.98,
}

# The situations of the contract and of issues 12 and 13 that need a rule test of their own:
# a phrase each test's promtool `name:` must contain.
SITUATIONS = (
    "10x runaway mid-cycle pages critically",
    "50x runaway mid-cycle pages critically",
    "runaway at 85% used with 10 days left",
    "budget lower than the plan limit",
    "team using its last credits without running out",
    "cycle reset",
    "exporter restart with or without its state file",
    "catch-up after an API outage of 3 hours or of a day",
    "on-budget daily rhythm or nightly batch",
    "office hours or a quiet weekend",
    "one 30-minute session on a 100k plan",
    "single 200-credit request on a 30k plan",
    "workspace without a quota at 50x its normal spend",
    "20M plan",
    "single failed poll",
    "single transient 401",
    # Key and group credit limits (issue 13).
    "a key at 95%",
    "a key without a limit",
    "a key whose limit was raised",
    'a group "unlimited"',
    "the endpoints failing on permission",
)

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
    | (?P<comment>\#[^\n]*)
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
        "elevenlabs-exporter.limits.yml",
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
    """The example prometheus.yml is valid and loads every rules file."""
    promtool = _binary("promtool")
    result = _run(promtool, "check", "config", "--lint=all", "--lint-fatal", str(PROMETHEUS_CONFIG))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in output
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
    """Each rule test loads exactly the files in deploy/prometheus/rules, recording rules
    first; a test of the key and group limit alerts evaluates their group last (it reads
    the thresholds the recording group records)."""
    spec = _load(path)
    loaded = sorted(
        match.resolve() for pattern in spec["rule_files"] for match in RULE_TESTS_DIR.glob(pattern)
    )
    assert loaded == [p.resolve() for p in RULE_FILES]
    order = spec["group_eval_order"]
    assert order[:2] == ["elevenlabs-exporter.recording", "elevenlabs-exporter.alerts"]
    tested = {case["alertname"] for name, case in _rule_test_cases() if name == path.name}
    assert order[2:] == (["elevenlabs-exporter.limits"] if tested & LIMIT_ALERTS else [])
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


def test_each_alert_has_exactly_the_contract_severities() -> None:
    """Every (alert, severity) row of the contract's table is one rule, and no rule adds one."""
    rows = sorted((a["alert"], a["labels"]["severity"]) for a in _alerts())
    assert rows == sorted(ALERTS)


def _thresholds() -> dict[str, float]:
    (rule,) = [r for r in _rules() if r.get("record") == THRESHOLD_RULE]
    found = re.findall(
        r'label_replace\(vector\(([0-9.]+)\),\s*"threshold",\s*"(\w+)",\s*"",\s*""\)',
        rule["expr"],
    )
    return {name: float(value) for value, name in found}


def test_thresholds_are_the_contracts_and_live_in_one_rule() -> None:
    """3 days, 7 days, 5×, 1%, the floor and 90%/98% are one recording rule's series, and
    every one of them is read by an alert (or by the spike's materiality rule)."""
    assert _thresholds() == CONTRACT_THRESHOLDS
    texts = [r["expr"] for r in _rules() if r.get("record") != THRESHOLD_RULE]
    for name in CONTRACT_THRESHOLDS:
        reads = f'scalar(max({THRESHOLD_RULE}{{threshold="{name}"}}))'
        assert any(reads in text for text in texts), name


def test_quota_alert_compares_the_share_of_the_allowance_with_its_thresholds() -> None:
    """Quota: the used share of the allowance against quota_warning_ratio and
    quota_critical_ratio."""
    quota = {
        a["labels"]["severity"]: " ".join(a["expr"].split())
        for a in _alerts()
        if a["alert"] == "ElevenLabsCreditQuotaNearlyExhausted"
    }
    assert quota == {
        sev: "workspace:elevenlabs_credits_used:ratio >= "
        f'scalar(max({THRESHOLD_RULE}{{threshold="quota_{sev}_ratio"}}))'
        for sev in ("warning", "critical")
    }


def test_for_durations_stay_at_or_below_fifteen_minutes() -> None:
    """No alert waits longer than 15m before firing."""
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
    assert {"elevenlabs_window_credits_used", "elevenlabs_budget_credits", "up"} <= seen
    assert {"elevenlabs_up", "elevenlabs_exporter_poll_errors_total"} <= seen


def test_spend_is_never_read_from_the_arrival_counter() -> None:
    """No rule or annotation reads elevenlabs_credits_used_total, and none uses rate(),
    increase() or another function over a range: spend comes from the window gauges."""
    for rule in _rules():
        for expr in [rule["expr"], *_annotation_queries(rule)]:
            names = {name for name, _ in _selectors(expr)}
            assert ARRIVAL_COUNTER not in names, rule.get("alert") or rule.get("record")
            assert not re.search(r"\b(i?rate|increase|delta|deriv)\s*\(", expr), expr


def test_no_condition_depends_on_a_range_selectors_start() -> None:
    """No rule expression or annotation query has a range selector, so no outcome depends
    on whether a sample exactly at a range's start is included (Prometheus 2 includes
    it, Prometheus 3 does not): lookups into the past are instant, with `offset`."""
    for rule in _rules():
        for expr in [rule["expr"], *_annotation_queries(rule)]:
            ranges = [m.group() for m in _TOKEN.finditer(expr) if m.lastgroup == "range"]
            assert ranges == [], (rule.get("alert") or rule.get("record"), ranges)


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
    """The PromQL scan behind the metric checks finds selectors and ignores grouping
    labels and comments."""
    expr = (
        "# a comment naming no_metric\n"
        'sum by (job, workspace) (rate(foo_total{job="x"}[5m] offset 1d)) '
        "/ on (job) group_left () bar:baz:rate1h > 0.5 and time() - up  # trailing words"
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


def test_each_alert_severity_has_its_own_firing_case() -> None:
    """Every (alert, severity) row of the contract fires in some rule test."""
    fired: set[tuple[str, str]] = set()
    for _, case in _rule_test_cases():
        for alert in case.get("exp_alerts") or []:
            fired.add((case["alertname"], alert.get("exp_labels", {}).get("severity", "")))
    assert set(ALERTS) <= fired


def _rule_tests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in RULE_TEST_FILES:
        for test in _load(path)["tests"]:
            yield path.name, test


def test_every_rule_test_is_named_after_its_situation() -> None:
    """Each promtool test has a name of its own, and every situation the contract and
    issues 12 and 13 list has a test named after it."""
    names = [test.get("name", "") for _, test in _rule_tests()]
    assert all(names), "a rule test without a name"
    assert len(set(names)) == len(names)
    for situation in SITUATIONS:
        assert any(situation in name for name in names), situation


_SERIES_ITEM = re.compile(
    r"^(?:(?P<missing>_)(?:x(?P<mcount>\d+))?|(?P<stale>stale)"
    r"|(?P<start>-?[0-9.]+)(?:(?P<sign>[+-])(?P<step>[0-9.]+))?(?:x(?P<count>\d+))?)$"
)


def _expand(values: str) -> list[float | None]:
    """promtool's expanding notation (`a+bxn`, `axn`, `_xn`, `stale`) as one value per
    interval, None where there is no sample."""
    out: list[float | None] = []
    for item in values.split():
        match = _SERIES_ITEM.match(item)
        assert match, f"not promtool series notation: {item}"
        if match["missing"]:
            out += [None] * int(match["mcount"] or 1)
        elif match["stale"]:
            out.append(None)
        else:
            start = float(match["start"])
            step = float(match["step"] or 0) * (-1 if match["sign"] == "-" else 1)
            count = int(match["count"] or 0)
            out += [start + step * i for i in range(count + 1)]
    return out


def _labels(selector: str) -> tuple[str, dict[str, str]]:
    name, _, rest = selector.partition("{")
    return name.strip(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


def _polled_at(last_success: list[float | None], t: int) -> bool:
    """Whether the usage endpoint was polled successfully at step t (one step a minute)."""
    if t >= len(last_success):
        return False
    value = last_success[t]
    return value is not None and value >= t * 60


def _window_series() -> Iterator[tuple[str, str, dict[str, list[float | None]], list[bool]]]:
    """Per rule test and workload (labels but the window): the window gauges by window,
    and whether the usage data is current at each step (a successful usage poll at that
    step; always, where the test has no last-success series)."""
    for path, test in _rule_tests():
        assert test.get("interval", "1m") == "1m", (path, test["name"])
        windows: dict[tuple[tuple[str, str], ...], dict[str, list[float | None]]] = {}
        success: dict[tuple[tuple[str, str], ...], list[float | None]] = {}
        for item in test["input_series"]:
            name, labels = _labels(item["series"])
            if name == "elevenlabs_window_credits_used":
                window = labels.pop("window")
                windows.setdefault(tuple(sorted(labels.items())), {})[window] = _expand(
                    item["values"]
                )
            elif (
                name == "elevenlabs_exporter_last_success_timestamp_seconds"
                and labels.pop("endpoint") == "usage"
            ):
                success[tuple(sorted(labels.items()))] = _expand(item["values"])
        for key, by_window in windows.items():
            labels = dict(key)
            labels.pop("product_type", None)
            last = success.get(tuple(sorted(labels.items())))
            steps = max(len(v) for v in by_window.values())
            current = [last is None or _polled_at(last, t) for t in range(steps)]
            yield f"{path}: {test['name']}", str(dict(key)), by_window, current


def test_rule_tests_have_every_window_of_each_workload() -> None:
    """Every workload in the rule tests has all six windows of elevenlabs_window_credits_used,
    each ordered: a longer window never holds fewer credits than a shorter one."""
    count = 0
    for test, workload, by_window, _ in _window_series():
        assert set(by_window) == set(WINDOW_MINUTES), (test, workload)
        ordered = sorted(by_window, key=WINDOW_MINUTES.__getitem__)
        for t in range(min(len(v) for v in by_window.values())):
            values = [by_window[w][t] for w in ordered]
            present = [v for v in values if v is not None]
            if len(present) < len(values):
                assert present == [], (test, workload, t)
                continue
            assert present == sorted(present), (test, workload, t, values)
        count += 1
    assert count >= 30


def test_rule_test_windows_hold_the_same_minute_buckets() -> None:
    """By bucket time the windows of one workload agree: while the data is current, a
    window is the sum of the shorter window at its multiples back in time (30m = six 5m,
    1h = two 30m, 6h = six 1h, 1d = four 6h, 7d = seven 1d), wherever the test has those
    samples; frozen values (polls failing) and missing ones (exporter down) are skipped."""
    pairs = (("5m", "30m"), ("30m", "1h"), ("1h", "6h"), ("6h", "1d"), ("1d", "7d"))
    checked = 0
    for test, workload, by_window, current in _window_series():
        for short, long_ in pairs:
            step = WINDOW_MINUTES[short]
            k = WINDOW_MINUTES[long_] // step
            for t in range((k - 1) * step, len(by_window[long_])):
                times = [t - i * step for i in range(k)]
                parts = [by_window[short][u] for u in times]
                whole = by_window[long_][t]
                if whole is None or any(p is None for p in parts):
                    continue
                if not all(current[u] for u in times):
                    continue
                assert whole == pytest.approx(sum(p for p in parts if p is not None)), (
                    test,
                    workload,
                    long_,
                    t,
                )
                checked += 1
    assert checked > 10000


def test_rule_test_subscription_usage_matches_the_windows() -> None:
    """Within one billing cycle, what the subscription counts between two current samples
    is what the window gauges of all products hold for that span (both by bucket time)."""
    checked = 0
    for path, test in _rule_tests():
        series: dict[tuple[str, str], dict[str, Any]] = {}
        for item in test["input_series"]:
            name, labels = _labels(item["series"])
            key = (labels.get("instance", ""), labels.get("workspace", ""))
            entry = series.setdefault(key, {"windows": {}})
            if name == "elevenlabs_window_credits_used":
                per = entry["windows"].setdefault(labels["window"], [])
                per.append(_expand(item["values"]))
            elif name in {
                "elevenlabs_subscription_credits_used",
                "elevenlabs_subscription_cycle_reset_timestamp_seconds",
            }:
                entry[name] = _expand(item["values"])
            elif (
                name == "elevenlabs_exporter_last_success_timestamp_seconds"
                and labels.get("endpoint") == "usage"
            ):
                entry["success"] = _expand(item["values"])
        for key, entry in series.items():
            used = entry.get("elevenlabs_subscription_credits_used")
            reset = entry.get("elevenlabs_subscription_cycle_reset_timestamp_seconds")
            if used is None or reset is None or not entry["windows"]:
                continue
            last = entry.get("success")

            def current(t: int, last: list[float | None] | None = last) -> bool:
                return last is None or _polled_at(last, t)

            for window in ("30m", "1h", "6h", "1d"):
                w = WINDOW_MINUTES[window]
                for t in range(w, len(used)):
                    then, now = used[t - w], used[t]
                    parts = [values[t] for values in entry["windows"][window]]
                    if then is None or now is None or any(p is None for p in parts):
                        continue
                    if reset[t] != reset[t - w] or not (current(t) and current(t - w)):
                        continue
                    total = sum(p for p in parts if p is not None)
                    assert now - then == pytest.approx(total, abs=1e-6), (
                        path,
                        test["name"],
                        key,
                        window,
                        t,
                    )
                    checked += 1
    assert checked > 10000


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
    """Alertmanager groups per alert and workspace, and a critical silences its warning
    (of the same API key or group for the limit alerts, never another key's)."""
    config = _load(ALERTMANAGER_CONFIG)
    route = config["route"]
    assert {"alertname", "workspace"} <= set(route["group_by"])
    severities = {tuple(r["matchers"]) for r in route["routes"]}
    assert {('severity="critical"',), ('severity="warning"',)} <= severities
    assert {
        "source_matchers": ['severity="critical"'],
        "target_matchers": ['severity="warning"'],
        "equal": ["alertname", "workspace", "key_id", "group_id"],
    } in config["inhibit_rules"]
    (default,) = [r for r in config["receivers"] if r["name"] == route["receiver"]]
    assert default["webhook_configs"][0]["url"] == WEBHOOK_URL
    # The end-to-end test swaps this URL by plain text replacement.
    assert ALERTMANAGER_CONFIG.read_text(encoding="utf-8").count(WEBHOOK_URL) == 1
