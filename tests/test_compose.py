"""deploy/docker-compose.yml: valid, and wired to the files each service reads.

The file is checked against the compose specification and rendered by docker-compose
itself; bind mounts exist and land where each image reads them; the exporter's
entrypoint is run under /bin/sh; the compose Prometheus config passes promtool and
loads the shared rules; Grafana is provisioned with the compose services.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from deploy_support import (
    COMPOSE_FILE,
    COMPOSE_PROMETHEUS,
    DASHBOARDS_DIR,
    EXAMPLE_PROMETHEUS,
    JOB,
    PORT,
    REPO,
    RULES_DIR,
    STATE_DIR,
    STATE_FILE,
    load_yaml,
    run,
    tool,
)


def compose() -> dict[str, Any]:
    """deploy/docker-compose.yml as data."""
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: container path to the host path they come from."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE_FILE.parent / source).resolve()
    return mounts


def test_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    """check-jsonschema with the compose-spec schema accepts the compose file (and
    rejects a service with an unknown key, so the schema really applies)."""
    checker = tool("check-jsonschema")
    result = run([checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr

    bad = tmp_path / "docker-compose.yml"
    broken = compose()
    broken["services"]["exporter"]["entrypont"] = ["elevenlabs-exporter"]
    bad.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run([checker, "--builtin-schema", "vendor.compose-spec", str(bad)])
    assert result.returncode != 0
    assert "entrypont" in result.stdout


@pytest.mark.parametrize("api_key", ["", "sk_compose_test"])
def test_docker_compose_renders_the_file(api_key: str) -> None:
    """`docker-compose config` accepts the file and passes ELEVENLABS_API_KEY from the
    environment (empty when unset) to the exporter."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    if api_key:
        env["ELEVENLABS_API_KEY"] = api_key
    result = run([tool("docker-compose"), "-f", str(COMPOSE_FILE), "config"], env=env)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert set(rendered["services"]) == {"exporter", "prometheus", "alertmanager", "grafana"}
    assert rendered["services"]["exporter"]["environment"]["ELEVENLABS_API_KEY"] == api_key
    assert Path(rendered["services"]["exporter"]["build"]["context"]) == REPO


def test_compose_mounts_exist_and_land_where_each_service_reads_them() -> None:
    """Every bind-mounted file or folder exists, at the path each image reads, and the
    exporter's state lives in a named volume at the image's VOLUME."""
    services = compose()["services"]
    for name, service in services.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"

    assert bind_mounts(services["prometheus"]) == {
        "/etc/prometheus/prometheus.yml": COMPOSE_PROMETHEUS,
        "/etc/prometheus/rules": RULES_DIR,
    }
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert bind_mounts(services["alertmanager"]) == {
        "/etc/alertmanager/alertmanager.yml": REPO / "deploy" / "alertmanager" / "alertmanager.yml"
    }
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in services["alertmanager"]["command"]
    assert bind_mounts(services["grafana"]) == {
        "/etc/grafana/provisioning": REPO / "grafana" / "provisioning",
        "/var/lib/grafana/dashboards": DASHBOARDS_DIR,
    }
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["alertmanager"]["image"].startswith("prom/alertmanager:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")

    exporter = services["exporter"]
    assert exporter["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert f"exporter-state:{STATE_DIR}" in exporter["volumes"]
    assert "exporter-state" in compose()["volumes"]


def run_compose_entrypoint(tmp_path: Path, api_key: str | None) -> list[str]:
    """Run the exporter service's entrypoint and command under /bin/sh with a stand-in
    elevenlabs-exporter that prints its arguments and its state file setting."""
    service = compose()["services"]["exporter"]
    # Compose turns $$ into $ before the container sees the command.
    entrypoint = [part.replace("$$", "$") for part in service["entrypoint"]]
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir(exist_ok=True)
    stub = stub_dir / "elevenlabs-exporter"
    stub.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@"\necho "state=${ELEVENLABS_EXPORTER_STATE_FILE-unset}"\n',
        encoding="utf-8",
    )
    stub.chmod(0o755)
    env = {"PATH": f"{stub_dir}:/usr/bin:/bin", "ELEVENLABS_EXPORTER_STATE_FILE": STATE_FILE}
    if api_key is not None:
        env["ELEVENLABS_API_KEY"] = api_key
    result = run([*entrypoint, *service["command"]], env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_compose_exporter_runs_the_demo_without_a_key_and_the_workspace_with_one(
    tmp_path: Path,
) -> None:
    """No key (unset or empty, as compose passes it): --demo without a state file.
    A key: the real workspace, the state file kept, the service's flags passed on."""
    command = compose()["services"]["exporter"]["command"]
    for missing in (None, ""):
        assert run_compose_entrypoint(tmp_path, missing) == ["--demo", *command, "state=unset"]
    assert run_compose_entrypoint(tmp_path, "sk_real") == [*command, f"state={STATE_FILE}"]


def rule_files_loaded(config_path: Path, mounts: dict[str, Path]) -> set[Path]:
    """The repository files that a Prometheus config's rule_files load."""
    loaded: set[Path] = set()
    for pattern in load_yaml(config_path).get("rule_files", []):
        directory, _, glob = pattern.rpartition("/")
        host = mounts.get(directory, config_path.parent / directory)
        loaded.update(path.resolve() for path in host.glob(glob))
    return loaded


def test_compose_prometheus_config_is_valid_and_loads_the_shared_rules(tmp_path: Path) -> None:
    """promtool accepts the compose Prometheus config with the mounted rule files; it
    scrapes exporter:9142 as job elevenlabs-exporter, alerts to alertmanager:9093, loads
    the same rule files as deploy/prometheus/prometheus.yml and otherwise equals it."""
    config = load_yaml(COMPOSE_PROMETHEUS)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs[JOB]["static_configs"] == [{"targets": [f"exporter:{PORT}"]}]
    targets = [
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert targets == ["alertmanager:9093"]

    mounts = bind_mounts(compose()["services"]["prometheus"])
    loaded = rule_files_loaded(COMPOSE_PROMETHEUS, mounts)
    assert loaded == {path.resolve() for path in RULES_DIR.glob("*.yml")}
    assert loaded == rule_files_loaded(EXAMPLE_PROMETHEUS, {})
    assert all(f'job="{JOB}"' in path.read_text(encoding="utf-8") for path in loaded)

    # Apart from those addresses and the rules' mount point, the two are the same.
    example = load_yaml(EXAMPLE_PROMETHEUS)
    addresses = {f"localhost:{PORT}": f"exporter:{PORT}", "localhost:9093": "alertmanager:9093"}
    translated = copy.deepcopy(example)
    for scrape in translated["scrape_configs"]:
        for static in scrape.get("static_configs", []):
            static["targets"] = [addresses.get(t, t) for t in static["targets"]]
    for manager in translated["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            static["targets"] = [addresses.get(t, t) for t in static["targets"]]
    translated["rule_files"] = config["rule_files"]
    assert config == translated

    local = copy.deepcopy(config)
    local["rule_files"] = [
        str(mounts[pattern.rpartition("/")[0]] / pattern.rpartition("/")[2])
        for pattern in config["rule_files"]
    ]
    local_file = tmp_path / "prometheus.yml"
    local_file.write_text(yaml.safe_dump(local), encoding="utf-8")
    result = run([tool("promtool"), "check", "config", str(local_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    for path in loaded:
        assert f"Checking {path}" in result.stdout + result.stderr


def test_compose_grafana_provisioning_uses_the_compose_services() -> None:
    """Grafana's provisioned dashboards come from the mounted dashboards folder and its
    Prometheus data source is the compose service prometheus:9090."""
    provisioning = REPO / "grafana" / "provisioning"
    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for provider in load_yaml(path).get("providers", [])
    ]
    assert providers, "no dashboard provider in grafana/provisioning/dashboards"
    for provider in providers:
        path = PurePosixPath(provider["options"]["path"])
        assert path == PurePosixPath("/var/lib/grafana/dashboards") or path.is_relative_to(
            "/var/lib/grafana/dashboards"
        )
    datasources = [
        source
        for path in sorted((provisioning / "datasources").glob("*.y*ml"))
        for source in load_yaml(path).get("datasources", [])
        if source.get("type") == "prometheus"
    ]
    assert datasources, "no Prometheus data source in grafana/provisioning/datasources"
    for source in datasources:
        assert source["url"].rstrip("/") == "http://prometheus:9090"
