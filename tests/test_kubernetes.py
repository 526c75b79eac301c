"""The Kubernetes manifests: the kustomize base and the sharded multi-workspace overlay.

kubectl kustomize builds both; every object validates against the Kubernetes schemas
(the Prometheus Operator kinds structurally); the workloads are hardened and read their
keys from the example Secrets; the ServiceMonitor yields the rules' job; the generated
PrometheusRule and dashboard ConfigMaps carry exactly the shipped files; the overlay's
StatefulSet polls each workspace from exactly one replica.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from deploy_support import (
    DASHBOARDS_DIR,
    JOB,
    K8S_BASE,
    K8S_OVERLAY,
    PORT,
    RULES_DIR,
    STATE_DIR,
    STATE_FILE,
    check_custom_resource,
    container,
    kustomize,
    load_yaml,
    objects_of,
    one,
    run,
    tool,
    validate_objects,
)

from exporter.core.shard import parse_shard, select


def env_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env entries by name."""
    return {item["name"]: item for item in spec.get("env", [])}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector selects these labels."""
    return all(labels.get(key) == value for key, value in selector.items())


def shipped_rule_groups() -> list[dict[str, Any]]:
    """The rule groups of deploy/prometheus/rules/*.yml, in file name order."""
    files = sorted(RULES_DIR.glob("*.yml"))
    assert files, "no rule files in deploy/prometheus/rules"
    groups: list[dict[str, Any]] = []
    for path in files:
        groups.extend(load_yaml(path)["groups"])
    return groups


def shipped_dashboards() -> dict[str, str]:
    """File name to text of grafana/dashboards/*.json."""
    files = sorted(DASHBOARDS_DIR.glob("*.json"))
    assert files, "no dashboards in grafana/dashboards"
    return {path.name: path.read_text(encoding="utf-8") for path in files}


@pytest.fixture(scope="module")
def base_docs() -> list[dict[str, Any]]:
    """The objects of the kustomize base."""
    return kustomize(K8S_BASE)


@pytest.fixture(scope="module")
def overlay_docs() -> list[dict[str, Any]]:
    """The objects of the multi-workspace overlay."""
    return kustomize(K8S_OVERLAY)


def example_secrets() -> list[dict[str, Any]]:
    """The example Secrets shipped beside the kustomizations (not applied by them)."""
    return [
        load_yaml(K8S_BASE / "secret.example.yaml"),
        load_yaml(K8S_OVERLAY / "secret.example.yaml"),
    ]


@pytest.mark.parametrize("which", ["base", "overlay"])
def test_kustomize_builds_objects_that_validate(
    which: str, base_docs: list[dict[str, Any]], overlay_docs: list[dict[str, Any]]
) -> None:
    """kubectl kustomize builds the base and the overlay, and every object validates
    (Kubernetes 1.28 and the newest schemas; a misspelt field is caught)."""
    docs = base_docs if which == "base" else overlay_docs
    validate_objects(docs)
    kinds = {doc["kind"] for doc in docs}
    assert {"Service", "ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    assert ("Deployment" in kinds) == (which == "base")
    assert ("StatefulSet" in kinds) == (which == "overlay")

    broken = copy.deepcopy(docs)
    workload = next(doc for doc in broken if doc["kind"] in {"Deployment", "StatefulSet"})
    container(workload)["readinesProbe"] = container(workload)["readinessProbe"]
    with pytest.raises(pytest.fail.Exception, match="readinesProbe"):
        validate_objects(broken)


def test_example_secrets_validate_and_hold_what_the_workloads_read(
    base_docs: list[dict[str, Any]], overlay_docs: list[dict[str, Any]]
) -> None:
    """The example Secrets are valid and have the names and keys the Deployment's env
    and the StatefulSet's key files use; neither kustomization applies them."""
    base_secret, overlay_secret = example_secrets()
    validate_objects([base_secret, overlay_secret])
    assert not objects_of(base_docs, "Secret")
    assert not objects_of(overlay_docs, "Secret")

    ref = env_of(container(one(base_docs, "Deployment")))["ELEVENLABS_API_KEY"]
    key_ref = ref["valueFrom"]["secretKeyRef"]
    assert key_ref["name"] == base_secret["metadata"]["name"]
    assert key_ref["key"] in base_secret["stringData"]

    statefulset = one(overlay_docs, "StatefulSet")
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container(statefulset)["volumeMounts"]}
    keys_volume = next(v for v in volumes.values() if "secret" in v)
    assert keys_volume["secret"]["secretName"] == overlay_secret["metadata"]["name"]
    keys_dir = PurePosixPath(mounts[keys_volume["name"]])
    config = overlay_config(overlay_docs)
    for workspace in config["workspaces"]:
        key_file = PurePosixPath(workspace["api_key_file"])
        assert key_file.parent == keys_dir
        assert key_file.name in overlay_secret["stringData"]


def check_hardened(workload: dict[str, Any]) -> None:
    """Non-root, read-only root filesystem, resources, probes, port and state volume."""
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False
    spec = container(workload)
    security = spec["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert set(spec["resources"][kind]) == {"cpu", "memory"}
    assert spec["ports"] == [{"name": "http-metrics", "containerPort": PORT, "protocol": "TCP"}]
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    assert env_of(spec)["ELEVENLABS_EXPORTER_STATE_FILE"]["value"] == STATE_FILE
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    state_volume = mounts[STATE_DIR]
    pod_volumes = {v["name"] for v in pod.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
    assert state_volume in pod_volumes | claims
    # Everything the process may write is a volume, since the root filesystem is read-only.
    assert "/tmp" in mounts  # noqa: S108 (a path inside the container)


def test_base_deployment_is_hardened_and_reads_the_key_from_a_secret(
    base_docs: list[dict[str, Any]],
) -> None:
    """The base Deployment: one replica, non-root, read-only root, requests and limits,
    /healthz liveness, /readyz readiness, port 9142 named http-metrics, a state volume,
    and ELEVENLABS_API_KEY from a Secret."""
    deployment = one(base_docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    check_hardened(deployment)
    key = env_of(container(deployment))["ELEVENLABS_API_KEY"]
    assert set(key) == {"name", "valueFrom"}
    assert "secretKeyRef" in key["valueFrom"]


@pytest.mark.parametrize("which", ["base", "overlay"])
def test_servicemonitor_scrapes_the_exporter_as_job_elevenlabs_exporter(
    which: str, base_docs: list[dict[str, Any]], overlay_docs: list[dict[str, Any]]
) -> None:
    """The ServiceMonitor selects exactly one Service, which selects the exporter pods
    and has the http-metrics port, and the job label it yields is the rules' job."""
    docs = base_docs if which == "base" else overlay_docs
    monitor = one(docs, "ServiceMonitor")
    selected = [
        service
        for service in objects_of(docs, "Service")
        if matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    ]
    assert len(selected) == 1, [s["metadata"]["name"] for s in selected]
    service = selected[0]
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == JOB
    ports = {port["name"]: port for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert ports[endpoint["port"]]["targetPort"] == "http-metrics"
        assert endpoint["path"] == "/metrics"

    workload = next(doc for doc in docs if doc["kind"] in {"Deployment", "StatefulSet"})
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    assert matches(service["spec"]["selector"], pod_labels)
    assert f'job="{JOB}"' in "".join(path.read_text() for path in RULES_DIR.glob("*.yml"))


# --- Generated objects ------------------------------------------------------------------


def test_prometheusrule_carries_exactly_the_shipped_rules(
    base_docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The PrometheusRule's groups equal those of deploy/prometheus/rules/*.yml, in file
    name order, and promtool accepts them as a rule file."""
    rule = one(base_docs, "PrometheusRule")
    assert rule["spec"]["groups"] == shipped_rule_groups()
    check_custom_resource(rule)
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    result = run([tool("promtool"), "check", "rules", str(rule_file)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_configmaps_carry_exactly_the_shipped_dashboards(
    base_docs: list[dict[str, Any]],
) -> None:
    """Every dashboard of grafana/dashboards/*.json is in a ConfigMap labelled for
    Grafana's sidecar, byte for byte, and there is no other dashboard."""
    configmaps = [
        doc
        for doc in objects_of(base_docs, "ConfigMap")
        if doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    found: dict[str, str] = {}
    for configmap in configmaps:
        assert len(configmap["data"]) == 1
        found.update(configmap["data"])
        assert len(json.dumps(configmap)) < 256 * 1024
    assert found == shipped_dashboards()


# --- The sharded overlay ----------------------------------------------------------------


def overlay_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The exporter config the overlay's StatefulSet mounts, read from its ConfigMap."""
    statefulset = one(docs, "StatefulSet")
    spec = container(statefulset)
    config_arg = next(a for a in spec["args"] if a.startswith("--config.file="))
    config_path = PurePosixPath(config_arg.split("=", 1)[1])
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    volume = volumes[mounts[str(config_path.parent)]]
    configmap = next(
        doc
        for doc in objects_of(docs, "ConfigMap")
        if doc["metadata"]["name"] == volume["configMap"]["name"]
    )
    config: dict[str, Any] = yaml.safe_load(configmap["data"][config_path.name])
    assert config == load_yaml(K8S_OVERLAY / "config.yml")
    return config


def test_overlay_replaces_the_deployment_with_a_sharded_statefulset(
    overlay_docs: list[dict[str, Any]],
) -> None:
    """The overlay runs a StatefulSet of N hardened replicas, each started with
    --shard=<its pod index>/N (the index from the pod-index label), with its own
    state volume; the base's Deployment is gone."""
    assert not objects_of(overlay_docs, "Deployment")
    statefulset = one(overlay_docs, "StatefulSet")
    check_hardened(statefulset)
    replicas = statefulset["spec"]["replicas"]
    assert replicas > 1
    spec = container(statefulset)
    assert f"--shard=$(SHARD_INDEX)/{replicas}" in spec["args"]
    index = env_of(spec)["SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert index == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert list(env_of(spec)).index("SHARD_INDEX") == 0
    for ordinal in range(replicas):
        assert parse_shard(f"{ordinal}/{replicas}") == (ordinal, replicas)

    claims = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    assert [claim["metadata"]["name"] for claim in claims] == [mounts[STATE_DIR]]
    governing = [
        service
        for service in objects_of(overlay_docs, "Service")
        if service["metadata"]["name"] == statefulset["spec"]["serviceName"]
    ]
    assert len(governing) == 1
    assert governing[0]["spec"]["clusterIP"] == "None"
    assert "ELEVENLABS_API_KEY" not in env_of(spec)


def test_overlay_polls_each_workspace_from_exactly_one_replica(
    overlay_docs: list[dict[str, Any]],
) -> None:
    """With the overlay's replica count, the shards of its workspace list are disjoint,
    cover every workspace, and none is empty."""
    statefulset = one(overlay_docs, "StatefulSet")
    replicas = statefulset["spec"]["replicas"]
    names = [workspace["name"] for workspace in overlay_config(overlay_docs)["workspaces"]]
    assert len(set(names)) == len(names)
    shards = [select(names, ordinal, replicas) for ordinal in range(replicas)]
    assert all(shards)
    assert sorted(name for shard in shards for name in shard) == sorted(names)
