"""scripts/gen_kubernetes.py: the PrometheusRule and dashboard ConfigMaps it writes.

The committed files are up to date; on awkward sources it copies rule groups and
dashboard texts exactly, is idempotent and has a working ``--check``; it refuses rule
group names used twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from deploy_support import GENERATOR, check_custom_resource, load_yaml, run, validate_objects


def test_generated_kubernetes_files_are_up_to_date() -> None:
    """scripts/gen_kubernetes.py --check finds the committed files equal to what the
    rule files and dashboards give (re-run the script after changing either)."""
    result = run([sys.executable, str(GENERATOR), "--check"])
    assert result.returncode == 0, result.stdout + result.stderr


def make_sources(root: Path) -> None:
    """Rule files and dashboards with the awkward bits: block scalars, quotes, colons,
    non-ASCII text, trailing spaces and tabs in JSON."""
    rules = root / "deploy" / "prometheus" / "rules"
    rules.mkdir(parents=True)
    (rules / "b.alerts.yml").write_text(
        "# a comment\n"
        "groups:\n"
        "  - name: b\n"
        "    rules:\n"
        "      - alert: Down\n"
        "        expr: |\n"
        '          up{job="elevenlabs-exporter"} == 0\n'
        '            or absent(up{job="elevenlabs-exporter"})\n'
        "        for: 5m\n"
        "        labels: {severity: critical}\n"
        "        annotations:\n"
        "          summary: 'Exporter down: “{{ $labels.instance }}” — ünïcode'\n",
        encoding="utf-8",
    )
    (rules / "a.rules.yml").write_text(
        "groups:\n  - name: a\n    rules:\n      - record: x:y:rate5m\n        expr: '1'\n",
        encoding="utf-8",
    )
    (rules / "ignored.txt").write_text("not a rule file", encoding="utf-8")
    dashboards = root / "grafana" / "dashboards"
    dashboards.mkdir(parents=True)
    (dashboards / "Credits_Overview.json").write_text(
        '{\n  "title": "Crédits", \n\t"panels": []\n}\n', encoding="utf-8"
    )
    (dashboards / "b.json").write_text('{"title": "b"}', encoding="utf-8")
    (root / "deploy" / "kubernetes" / "base").mkdir(parents=True)


def test_generator_copies_sources_exactly_and_is_idempotent(tmp_path: Path) -> None:
    """On awkward sources the generated objects hold the rule groups and dashboard texts
    unchanged; a second run writes nothing; --check then passes, and fails after a
    source changes."""
    make_sources(tmp_path)
    generate = [sys.executable, str(GENERATOR), "--root", str(tmp_path)]
    first = run(generate)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("wrote ") == 2
    base = tmp_path / "deploy" / "kubernetes" / "base"
    texts = {path.name: path.read_text(encoding="utf-8") for path in base.iterdir()}

    rule = yaml.safe_load(texts["prometheusrule.yaml"])
    expected = [
        *load_yaml(tmp_path / "deploy/prometheus/rules/a.rules.yml")["groups"],
        *load_yaml(tmp_path / "deploy/prometheus/rules/b.alerts.yml")["groups"],
    ]
    assert rule["spec"]["groups"] == expected
    configmaps = list(yaml.safe_load_all(texts["grafana-dashboards.yaml"]))
    assert [c["metadata"]["name"] for c in configmaps] == [
        "elevenlabs-exporter-dashboard-credits-overview",
        "elevenlabs-exporter-dashboard-b",
    ]
    assert configmaps[0]["data"] == {
        "Credits_Overview.json": (tmp_path / "grafana/dashboards/Credits_Overview.json").read_text(
            encoding="utf-8"
        )
    }
    validate_objects(configmaps)
    check_custom_resource(rule)

    second = run(generate)
    assert second.returncode == 0
    assert second.stdout == ""
    assert {p.name: p.read_text(encoding="utf-8") for p in base.iterdir()} == texts
    assert run([*generate, "--check"]).returncode == 0

    (tmp_path / "grafana/dashboards/b.json").write_text('{"title": "B"}', encoding="utf-8")
    stale = run([*generate, "--check"])
    assert stale.returncode == 1
    assert "grafana-dashboards.yaml" in stale.stdout


def test_generator_refuses_group_names_used_twice(tmp_path: Path) -> None:
    """Two rule files with a group of the same name cannot share one PrometheusRule:
    the generator exits 2 naming the group, and writes nothing."""
    make_sources(tmp_path)
    duplicate = tmp_path / "deploy/prometheus/rules/c.yml"
    duplicate.write_text("groups:\n  - name: a\n    rules: []\n", encoding="utf-8")
    result = run([sys.executable, str(GENERATOR), "--root", str(tmp_path)])
    assert result.returncode == 2
    assert "'a'" in result.stderr
    assert not list((tmp_path / "deploy/kubernetes/base").iterdir())
