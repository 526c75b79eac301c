"""Helpers for tests that run real processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(
    url: str, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """GET a URL; (status, body) even for error statuses."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
        return int(err.code), bytes(err.read())


@dataclass
class ExporterProcess:
    """A running ``python -m exporter`` and where it listens."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> str:
        status, body = http_get(self.url + "/metrics")
        assert status == 200, body
        return body.decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = 30.0) -> None:
        """Block until /healthz answers (the process is up), whatever the API does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exporter exited early:\n{self.log()}")
            try:
                if http_get(self.url + "/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"exporter not listening after {timeout}s:\n{self.log()}")

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Seconds until /readyz answered 200; fails the test after ``timeout``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"exporter exited early:\n{self.log()}")
            try:
                status, _ = http_get(self.url + "/readyz", timeout=1)
            except OSError:
                status = 0
            if status == 200:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"exporter not ready after {timeout}s:\n{self.log()}")


@contextmanager
def run_exporter(
    args: Sequence[str],
    tmp_path: Path,
    env: dict[str, str] | None = None,
    executable: Sequence[str] | None = None,
) -> Iterator[ExporterProcess]:
    """Start the exporter on a free loopback port; stop it (SIGTERM) afterwards."""
    port = free_port()
    log_path = tmp_path / f"exporter-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ELEVENLABS")}
    full_env.update(env or {})
    command = [
        *(executable or [sys.executable, "-m", "exporter"]),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        *args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=tmp_path
        )
    exporter = ExporterProcess(process, port, log_path)
    try:
        yield exporter
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sim_poller(
    sim: Any,
    http: Any,
    state: Any = None,
    *,
    workspace: str = "main",
    config: dict[str, Any] | None = None,
    **settings: Any,
) -> Any:
    """A real workspace loop and client polling the in-test simulator over loopback,
    on the simulator's (frozen) clock. ``settings`` are WorkspaceConfig fields,
    ``config`` Config fields."""
    from prometheus_client import CollectorRegistry

    from exporter.api.client import ElevenLabsClient
    from exporter.config import Config, KeySource, Secret, WorkspaceConfig
    from exporter.core.snapshot import SnapshotStore
    from exporter.log import get_logger
    from exporter.metrics.telemetry import Telemetry
    from exporter.polling.workspace import workspace_loop

    ws = WorkspaceConfig(workspace, Secret("demo"), KeySource("demo"), sim.url, **settings)
    telemetry = Telemetry(CollectorRegistry())

    async def no_sleep(_: float) -> None:  # retries within a poll happen at once
        return None

    client = ElevenLabsClient(
        workspace=workspace,
        base_url=sim.url,
        api_key=lambda: "demo",
        http=http,
        telemetry=telemetry,
        clock=sim.state.now,
        sleep=no_sleep,
    )
    return workspace_loop(
        ws,
        Config(workspaces=(ws,), **(config or {})),
        client,
        snapshots=SnapshotStore([workspace]),
        telemetry=telemetry,
        log=get_logger(),
        clock=sim.state.now,
        state=state,
    )


def source_of(loop: Any, kind: type) -> Any:
    """The loop's source of this type."""
    return next(source for source in loop.sources if isinstance(source, kind))


def credits_of(loop: Any) -> Any:
    """The loop's credits source (its ``counted`` holds the ledger and the counters)."""
    from exporter.polling.credits import CreditsSource

    return source_of(loop, CreditsSource)


def credits_part(loop: Any) -> Any:
    """The credits part of the loop's current snapshot."""
    from exporter.polling.credits import CreditsPart

    return loop.snapshot().part(CreditsPart)
