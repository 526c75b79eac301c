"""tests/contract.py against the copies of the contract that the code and artefacts keep.

The tests state the contract once, in contract.py; the exporter, the alert rules and the
dashboard generator each keep their own list. These tests fail as soon as one of them
drifts from the design's, whichever side moved.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml
from contract import ALERT_NAMES, ALERT_SEVERITIES, ALERTS, ENDPOINTS, REASONS
from prometheus_client import CollectorRegistry

from exporter.api import errors
from exporter.metrics.telemetry import Telemetry

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
GENERATOR = ROOT / "grafana" / "generate.py"


def rule_alerts() -> list[dict[str, Any]]:
    """Every alerting rule of deploy/prometheus/rules/*.yml."""
    alerts = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            alerts += [rule for rule in group["rules"] if "alert" in rule]
    return alerts


def generator_alert_names() -> tuple[str, ...]:
    """ALERT_NAMES of grafana/generate.py (a script, not a package: loaded from its file)."""
    spec = importlib.util.spec_from_file_location("grafana_generate", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names: tuple[str, ...] = module.ALERT_NAMES
    return names


def test_contract_lists_have_no_duplicates() -> None:
    """Each reason, endpoint and (alert, severity) row is listed once."""
    for listed in (REASONS, ENDPOINTS, ALERTS, ALERT_NAMES):
        assert len(set(listed)) == len(listed), listed
    assert set(ALERT_SEVERITIES) == set(ALERT_NAMES)
    assert all(s <= {"critical", "warning"} for s in ALERT_SEVERITIES.values())


def test_poll_error_reasons_are_the_exporters() -> None:
    """The exporter classifies failures into exactly the contract's reasons."""
    assert set(errors.REASONS) == set(REASONS)
    assert len(errors.REASONS) == len(REASONS)


def test_every_endpoint_and_reason_series_exists_from_start_up() -> None:
    """A registered workspace has every (endpoint, reason) poll-error series at 0, so
    increase() sees the first error, and the HELP text names every reason."""
    registry = CollectorRegistry()
    Telemetry(registry).register_workspace("main")
    for endpoint in ENDPOINTS:
        for reason in REASONS:
            labels = {"workspace": "main", "endpoint": endpoint, "reason": reason}
            value = registry.get_sample_value("elevenlabs_exporter_poll_errors_total", labels)
            assert value == 0.0, labels
    (family,) = [f for f in registry.collect() if f.name == "elevenlabs_exporter_poll_errors"]
    for reason in REASONS:
        assert reason in family.documentation


def test_alert_rules_define_exactly_the_contract_alerts() -> None:
    """deploy/prometheus/rules/*.yml define every alert of the design's table, and no other."""
    assert RULE_FILES
    assert {rule["alert"] for rule in rule_alerts()} == set(ALERT_NAMES)


def test_alert_rules_carry_the_contract_severities() -> None:
    """Each alert carries exactly the severities of its rows in the design's table."""
    found: dict[str, set[str]] = {}
    for rule in rule_alerts():
        found.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert found == {name: set(severities) for name, severities in ALERT_SEVERITIES.items()}


def test_dashboard_generator_shows_the_contract_alerts() -> None:
    """grafana/generate.py's ALERT_NAMES (the alert-state tiles) are the contract's alerts,
    each once."""
    names = generator_alert_names()
    assert len(set(names)) == len(names)
    assert set(names) == set(ALERT_NAMES)
