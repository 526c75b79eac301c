"""Tests for the deployment files: Dockerfile, docker-compose and the Kubernetes manifests.

No Docker engine or cluster is needed: the image's install and start steps are replayed
in a fresh virtual environment, the compose file is checked against the compose
specification and by docker-compose itself, and the Kubernetes manifests are built with
kustomize (kubectl) and validated against the Kubernetes API schemas.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import docker.utils.build  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from exporter.core.shard import parse_shard, select

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


# --- helpers -------------------------------------------------------------------------


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


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continuation line"
    return instructions


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, each list starting with its FROM."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in dockerfile_instructions(path):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def project_version() -> str:
    """The version in pyproject.toml."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    version = data["project"]["version"]
    assert isinstance(version, str)
    return version


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


def env_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env entries by name."""
    return {item["name"]: item for item in spec.get("env", [])}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector selects these labels."""
    return all(labels.get(key) == value for key, value in selector.items())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str) -> tuple[int, str]:
    """Status and body of a GET; HTTP errors are answers too, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback URL)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


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


# --- Dockerfile ------------------------------------------------------------------------


def test_hadolint_passes_on_the_dockerfile(tmp_path: Path) -> None:
    """hadolint reports nothing on the Dockerfile (and does report a known-bad one)."""
    hadolint = tool("hadolint")
    result = run([hadolint, "--no-color", "--disable-ignore-pragma", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""

    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n", encoding="utf-8")
    result = run([hadolint, "--no-color", str(bad)])
    assert result.returncode != 0
    assert "DL3006" in result.stdout


def test_dockerfile_builds_a_wheel_and_the_final_stage_installs_only_wheels() -> None:
    """Two python:3.11-slim stages: the builder makes wheels, the final stage installs
    them from the builder with --no-index and copies no source."""
    stages = dockerfile_stages(DOCKERFILE)
    assert len(stages) == 2
    builder, final = stages
    assert builder[0] == ("FROM", "python:3.11-slim AS builder")
    assert final[0] == ("FROM", "python:3.11-slim")
    builder_runs = [args for keyword, args in builder if keyword == "RUN"]
    assert any("pip wheel" in args and "--wheel-dir /wheels" in args for args in builder_runs)

    final_keywords = [keyword for keyword, _ in final]
    assert "COPY" not in final_keywords
    assert "ADD" not in final_keywords
    installs = [args for keyword, args in final if keyword == "RUN" and "pip install" in args]
    assert len(installs) == 1
    install = installs[0]
    assert "--mount=type=bind,from=builder,source=/wheels,target=/wheels" in install
    assert "--no-index" in install
    assert "--find-links=/wheels" in install
    assert '"elevenlabs-exporter==${VERSION}"' in install

    args = dict(arg.split("=", 1) for keyword, arg in final if keyword == "ARG" and "=" in arg)
    assert args["VERSION"] == project_version()


def test_dockerfile_runs_as_non_root_and_declares_its_interface() -> None:
    """Final stage: numeric non-root USER, EXPOSE 9142, the state file in a VOLUME,
    ENTRYPOINT elevenlabs-exporter, a /healthz HEALTHCHECK without curl, OCI labels."""
    final = dockerfile_stages(DOCKERFILE)[-1]
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in final:
        by_keyword.setdefault(keyword, []).append(args)

    user = by_keyword["USER"][-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) > 0
    assert gid.isdigit()
    assert int(gid) > 0
    assert by_keyword["EXPOSE"] == [str(PORT)]
    assert json.loads(by_keyword["ENTRYPOINT"][-1]) == ["elevenlabs-exporter"]
    assert json.loads(by_keyword["CMD"][-1]) == []

    env = " ".join(by_keyword["ENV"])
    assert f"ELEVENLABS_EXPORTER_STATE_FILE={STATE_FILE}" in shlex.split(env)
    assert json.loads(by_keyword["VOLUME"][-1]) == [STATE_DIR]
    owner = f"install -d -o {uid} -g {gid}"
    assert any(owner in args and args.endswith(STATE_DIR) for args in by_keyword["RUN"])

    healthcheck = by_keyword["HEALTHCHECK"][-1]
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"
    assert f"http://127.0.0.1:{PORT}/healthz" in command[-1]
    assert "curl" not in healthcheck

    labels = " ".join(by_keyword["LABEL"])
    for name in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{name}=" in labels


def test_dockerignore_sends_only_the_build_inputs() -> None:
    """The build context holds what the Dockerfile copies and leaves out the virtual
    environment, git data, caches, tests and deploy files."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    context = docker.utils.build.exclude_paths(str(REPO), patterns)
    for keyword, args in dockerfile_stages(DOCKERFILE)[0]:
        if keyword == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert source.rstrip("/") in context, f"{source} is not in the build context"
    assert "exporter/__init__.py" in context
    assert "exporter/cli.py" in context
    for path in context:
        top = path.split("/", 1)[0]
        assert top in {"pyproject.toml", "README.md", "exporter", "Dockerfile", ".dockerignore"}
        assert "__pycache__" not in path


# --- the image's install and start steps, without a Docker engine ------------------------


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding what the image's two stages install: the
    wheels built from exactly the files the builder stage copies, installed --no-index.
    Returns its bin directory."""
    root = tmp_path_factory.mktemp("image")
    context, wheels, venv = root / "src", root / "wheels", root / "venv"
    context.mkdir()
    for keyword, args in dockerfile_stages(DOCKERFILE)[0]:
        if keyword == "COPY":
            *sources, _ = args.split()
            for source in sources:
                if (REPO / source).is_dir():
                    shutil.copytree(
                        REPO / source,
                        context / source,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    )
                else:
                    shutil.copy2(REPO / source, context / source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    result = run([*pip, "wheel", "--quiet", "--wheel-dir", str(wheels), str(context)])
    assert result.returncode == 0, result.stderr
    assert list(wheels.glob(f"elevenlabs_exporter-{project_version()}-*.whl"))

    result = run([sys.executable, "-m", "venv", str(venv)])
    assert result.returncode == 0, result.stderr
    result = run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "--disable-pip-version-check",
            "install",
            "--quiet",
            "--no-index",
            f"--find-links={wheels}",
            f"elevenlabs-exporter=={project_version()}",
        ]
    )
    assert result.returncode == 0, result.stderr
    return venv / "bin"


def test_installed_wheel_answers_help(image_venv: Path) -> None:
    """The installed console script starts and lists the flags the deploy files use."""
    result = run([str(image_venv / "elevenlabs-exporter"), "--help"], cwd=image_venv)
    assert result.returncode == 0, result.stderr
    for flag in ("--config.file", "--web.listen-address", "--log.format", "--demo", "--shard"):
        assert flag in result.stdout


@contextlib.contextmanager
def running_exporter(
    binary: Path, args: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start the exporter; on the way out make sure it is gone."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(binary), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.mark.e2e
def test_installed_wheel_runs_the_demo_and_passes_the_image_healthcheck(
    image_venv: Path, tmp_path: Path
) -> None:
    """`elevenlabs-exporter --demo` from the installed wheel becomes ready within 30 s,
    exports elevenlabs_up 1 for the default workspace, passes the Dockerfile's own
    HEALTHCHECK command, and exits 0 on SIGTERM."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "ELEVENLABS_EXPORTER_STATE_FILE": str(tmp_path / "state" / "state.json"),
    }
    log = tmp_path / "exporter.log"
    base = f"http://127.0.0.1:{port}"
    args = ["--demo", "--web.listen-address", f"127.0.0.1:{port}"]
    with running_exporter(image_venv / "elevenlabs-exporter", args, env, log) as process:
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")
            with contextlib.suppress(OSError):
                status, _ = http_get(f"{base}/readyz")
                if status == 200:
                    break
            time.sleep(0.2)
        assert status == 200, f"/readyz never answered 200\n{log.read_text(errors='replace')}"

        status, body = http_get(f"{base}/metrics")
        assert status == 200
        assert 'elevenlabs_up{workspace="default"} 1.0' in body.splitlines()
        assert http_get(f"{base}/healthz")[0] == 200

        healthcheck = dict(dockerfile_instructions(DOCKERFILE))["HEALTHCHECK"]
        command = json.loads(healthcheck.split(" CMD ", 1)[1])
        assert f"127.0.0.1:{PORT}/" in command[-1]
        probe = [
            str(image_venv / "python"),
            *command[1:-1],
            command[-1].replace(f"127.0.0.1:{PORT}/", f"127.0.0.1:{port}/"),
        ]
        result = run(probe)
        assert result.returncode == 0, result.stderr
        closed = [
            *probe[:-1],
            command[-1].replace(f"127.0.0.1:{PORT}/", f"127.0.0.1:{free_port()}/"),
        ]
        assert run(closed).returncode != 0

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text(errors="replace")


@pytest.mark.e2e
def test_overlay_config_passes_the_exporters_config_check(image_venv: Path, tmp_path: Path) -> None:
    """The sharded overlay's config.yml, with the key files in place, passes
    `--config.check`; with each replica's exact --shard argument the exporter keeps
    the workspaces of that shard, together all of them once; no key is printed."""
    config_text = (K8S_OVERLAY / "config.yml").read_text(encoding="utf-8")
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    config = yaml.safe_load(config_text)
    names = [ws["name"] for ws in config["workspaces"]]
    for name in names:
        (keys_dir / name).write_text(f"sk_test_key_of_{name}\n", encoding="utf-8")
    config_file = tmp_path / "config.yml"
    config_file.write_text(
        config_text.replace("/etc/elevenlabs-exporter/keys/", f"{keys_dir}/"), encoding="utf-8"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    binary = str(image_venv / "elevenlabs-exporter")

    def checked_workspaces(*flags: str) -> list[str]:
        result = run([binary, f"--config.file={config_file}", *flags, "--config.check"], env=env)
        assert result.returncode == 0, result.stderr
        assert "sk_test_key_of_" not in result.stdout + result.stderr
        return [workspace["name"] for workspace in yaml.safe_load(result.stdout)["workspaces"]]

    assert checked_workspaces() == names

    statefulset = one(kustomize(K8S_OVERLAY), "StatefulSet")
    shard_args = [arg for arg in container(statefulset)["args"] if arg.startswith("--shard")]
    assert len(shard_args) == 1
    replicas = statefulset["spec"]["replicas"]
    polled: list[str] = []
    for ordinal in range(replicas):
        kept = checked_workspaces(shard_args[0].replace("$(SHARD_INDEX)", str(ordinal)))
        assert kept == select(names, ordinal, replicas)
        polled.extend(kept)
    assert sorted(polled) == sorted(names)


# --- docker compose --------------------------------------------------------------------


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


# --- Kubernetes ------------------------------------------------------------------------


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
