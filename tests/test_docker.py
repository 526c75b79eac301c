"""The container image: the Dockerfile, its build context, and the installed wheel.

No Docker engine is needed: hadolint lints the Dockerfile, its stages are read as
instructions, the build context is computed from .dockerignore, and the image's install
and start steps are replayed in a fresh virtual environment, which then runs the demo,
the image's HEALTHCHECK and the sharded overlay's ``--config.check``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker.utils.build  # type: ignore[import-untyped]
import pytest
import yaml
from deploy_support import (
    DOCKERFILE,
    K8S_OVERLAY,
    PORT,
    REPO,
    STATE_DIR,
    STATE_FILE,
    container,
    kustomize,
    one,
    run,
    tool,
)
from support import free_port

from exporter.core.shard import select


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


def http_get(url: str) -> tuple[int, str]:
    """Status and body of a GET; HTTP errors are answers too, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback URL)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


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
