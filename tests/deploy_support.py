"""What the deployment test modules share: where the deploy files are, running the
tools that check them, and reading and validating Kubernetes objects.

No Docker engine or cluster is needed: the tools (kubectl for kustomize, promtool,
hadolint, check-jsonschema, docker-compose) come from the virtual environment or PATH,
and objects are validated against the Kubernetes API schemas offline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_FILE = REPO / "deploy" / "docker-compose.yml"
COMPOSE_PROMETHEUS = REPO / "deploy" / "compose" / "prometheus.yml"
EXAMPLE_PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
RULES_DIR = REPO / "deploy" / "prometheus" / "rules"
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
K8S_BASE = REPO / "deploy" / "kubernetes" / "base"
K8S_OVERLAY = REPO / "deploy" / "kubernetes" / "overlays" / "multi-workspace"
GENERATOR = REPO / "scripts" / "gen_kubernetes.py"

JOB = "elevenlabs-exporter"
STATE_DIR = "/var/lib/elevenlabs-exporter"
STATE_FILE = f"{STATE_DIR}/state.json"
PORT = 9142
# Kubernetes versions the manifests must validate against: the oldest with the
# apps.kubernetes.io/pod-index label the sharded overlay relies on, and the newest known.
K8S_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


def tool(name: str) -> str:
    """A binary from the virtual environment or PATH; a missing one fails the test."""
    search = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        pytest.fail(
            f"{name} not found: install the test dependencies "
            "(pip install -e '.[test]' and the packages in scripts/apt-packages.txt)"
        )
    return found


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output as text."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


def load_yaml(path: Path) -> Any:
    """One YAML document from a file."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- Kubernetes objects -----------------------------------------------------------------


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` builds from a kustomization directory."""
    result = run([tool("kubectl"), "kustomize", str(directory)])
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    assert docs, f"kustomize built nothing from {directory}"
    return docs


def objects_of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of one kind."""
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single object of a kind; fails if there are none or several."""
    found = objects_of(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    """The exporter container of a Deployment or StatefulSet."""
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["exporter"]
    result: dict[str, Any] = containers[0]
    return result


DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)


def check_custom_resource(doc: dict[str, Any]) -> None:
    """Structural check of the Prometheus Operator objects against the fields and types
    of monitoring.coreos.com/v1 (their schemas are not in kubernetes-validate)."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    spec = doc["spec"]
    if doc["kind"] == "ServiceMonitor":
        assert set(spec) <= {"jobLabel", "selector", "endpoints", "namespaceSelector"}
        assert isinstance(spec["jobLabel"], str)
        assert set(spec["selector"]) == {"matchLabels"}
        assert spec["endpoints"]
        for endpoint in spec["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "scheme"}
            assert isinstance(endpoint["port"], str)
            assert endpoint["path"].startswith("/")
            for key in ("interval", "scrapeTimeout"):
                assert re.fullmatch(DURATION, endpoint[key]), endpoint[key]
    elif doc["kind"] == "PrometheusRule":
        assert set(spec) == {"groups"}
        for group in spec["groups"]:
            assert isinstance(group["name"], str)
            assert group["name"]
            assert set(group) <= {
                "name",
                "rules",
                "interval",
                "limit",
                "partial_response_strategy",
                "query_offset",
                "labels",
            }
            for rule in group["rules"]:
                assert set(rule) <= {
                    "alert",
                    "record",
                    "expr",
                    "for",
                    "keep_firing_for",
                    "labels",
                    "annotations",
                }
                assert ("alert" in rule) != ("record" in rule)
                assert isinstance(rule["expr"], str | int)
                for key in ("for", "keep_firing_for"):
                    if key in rule:
                        assert re.fullmatch(DURATION, rule[key]), rule[key]
                for key in ("labels", "annotations"):
                    assert all(isinstance(v, str) for v in rule.get(key, {}).values())
    else:
        pytest.fail(f"no structural check for {doc['kind']}")


def validate_objects(docs: list[dict[str, Any]]) -> None:
    """Validate built-in kinds against the Kubernetes schemas (strict: unknown fields
    are errors) and the Prometheus Operator kinds structurally."""
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            check_custom_resource(doc)
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(
                    f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): {err}"
                )
