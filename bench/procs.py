"""The processes a benchmark run starts, and how to read them from outside.

Every process is registered with a :class:`ProcessSet` and stopped when the set
closes, also on errors and Ctrl-C; each child also gets a parent-death signal, so
even a killed benchmark leaves nothing behind. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import yaml

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ProcessSet:
    """Starts processes and stops every one of them on close, newest first."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._files: list[IO[bytes]] = []

    def start(
        self,
        command: Sequence[str],
        *,
        log: Path,
        stdout_pipe: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``command`` from the repository root; stderr (and stdout) go to ``log``."""
        handle = log.open("ab")
        self._files.append(handle)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ELEVENLABS")}
        full_env.update(env or {})
        proc = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE if stdout_pipe else handle,
            stderr=handle,
            cwd=REPO,
            env=full_env,
            preexec_fn=_die_with_parent,  # the benchmark starts no threads of its own
        )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        with contextlib.suppress(ValueError):
            self._procs.remove(proc)
        return int(proc.returncode)

    def stop_pid(self, pid: int, timeout: float = 15.0) -> int | None:
        """Stop the process with this id, if this set started it."""
        for proc in list(self._procs):
            if proc.pid == pid:
                return self.stop(proc, timeout)
        return None

    def close(self) -> None:
        """Stop everything still running."""
        for proc in reversed(list(self._procs)):
            self.stop(proc)
        for handle in self._files:
            handle.close()
        self._files.clear()

    def __enter__(self) -> ProcessSet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# HTTP on loopback ---------------------------------------------------------------


def http(
    url: str,
    body: Any = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """GET (or POST ``body`` as JSON); (status, body) even for error statuses."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback URLs built here
        url, data=data, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as err:
        return int(err.code), bytes(err.read())


# /proc -------------------------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


# The simulator -----------------------------------------------------------------


@dataclass
class Simulator:
    """A running ``python -m exporter.simulator`` process."""

    proc: subprocess.Popen[bytes]
    url: str

    def faults(self, *faults: dict[str, Any]) -> None:
        """Queue scripted faults (e.g. ``{"endpoint": "*", "times": -1, "delay": 5}``)."""
        status, body = http(self.url + "/_sim/faults", {"faults": list(faults)})
        assert status == 200, body

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        status, body = http(self.url + "/_sim/faults/clear", {})
        assert status == 200, body

    def request_count(self) -> int:
        """How many API requests the simulator has received so far."""
        status, body = http(self.url + "/_sim/requests")
        assert status == 200, body
        return len(json.loads(body)["requests"])

    def wait_for_requests(self, more_than: int, timeout: float) -> bool:
        """Wait until the simulator has received more than ``more_than`` requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.request_count() > more_than:
                return True
            time.sleep(0.1)
        return False


def start_simulator(procs: ProcessSet, workdir: Path, frozen_at: float | None = None) -> Simulator:
    """Start the simulator on a free loopback port and read its URL."""
    command = [PYTHON, "-m", "exporter.simulator", "--port", "0"]
    if frozen_at is not None:
        command += ["--frozen-at", str(frozen_at)]
    proc = procs.start(command, log=workdir / "simulator.log", stdout_pipe=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("http://127.0.0.1:"):
        procs.stop(proc)
        raise RuntimeError(f"simulator did not start: {line!r}")
    return Simulator(proc, line)


# The exporter --------------------------------------------------------------------


def write_config(
    path: Path,
    sim_url: str,
    workspaces: int,
    *,
    state_file: Path | None,
    poll_interval: str = "60s",
    request_timeout: str = "10s",
) -> Path:
    """An exporter config with ``workspaces`` workspaces, all on one simulator."""
    config = {
        "poll_interval": poll_interval,
        "request_timeout": request_timeout,
        "state_file": str(state_file) if state_file else None,
        "workspaces": [
            {"name": f"ws{i:04d}", "api_key": "demo", "base_url": sim_url}
            for i in range(workspaces)
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Exporter:
    """A running exporter process."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float  # time.time() just before the process was started
    url: str = ""

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    out.append(item)
        return out

    def wait_listening(self, timeout: float = 60.0) -> str:
        """Wait for the 'listening' log line and return the base URL."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited early; see {self.log_path}")
            for item in self.log_lines():
                if item.get("event") == "listening":
                    match = re.search(r":(\d+)$", str(item.get("address", "")))
                    assert match, item
                    self.url = f"http://127.0.0.1:{match.group(1)}"
                    return self.url
            time.sleep(0.02)
        raise RuntimeError(f"exporter not listening after {timeout}s; see {self.log_path}")

    def wait_ready(self, timeout: float) -> float:
        """Wait for /readyz 200; seconds since the process was started."""
        if not self.url:
            self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exporter exited early; see {self.log_path}")
            with contextlib.suppress(OSError):
                status, _ = http(self.url + "/readyz", timeout=5)
                if status == 200:
                    return time.time() - self.started
            time.sleep(0.02)
        raise RuntimeError(f"exporter not ready after {timeout}s; see {self.log_path}")

    def metrics(self) -> str:
        """One plain-text scrape."""
        status, body = http(self.url + "/metrics", timeout=60)
        assert status == 200, body[:200]
        return body.decode()


def start_exporter(procs: ProcessSet, config: Path, log: Path) -> Exporter:
    """Start ``python -m exporter`` on a free loopback port (JSON logs to ``log``)."""
    started = time.time()
    proc = procs.start(
        [
            PYTHON,
            "-m",
            "exporter",
            "--config.file",
            str(config),
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ],
        log=log,
    )
    return Exporter(proc, log, started)


# The bare baseline -----------------------------------------------------------------


def start_baseline(
    procs: ProcessSet, spec: Path, log: Path, kind: str = "gauges"
) -> tuple[subprocess.Popen[bytes], str]:
    """Start bench/baseline.py on ``spec``; (process, metrics URL)."""
    proc = procs.start(
        [PYTHON, str(BENCH / "baseline.py"), "--spec", str(spec), "--kind", kind],
        log=log,
        stdout_pipe=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.isdigit():
        procs.stop(proc)
        raise RuntimeError(f"baseline did not start: {line!r}; see {log}")
    return proc, f"http://127.0.0.1:{line}/metrics"


def run_loadgen(mode: str, url: str, threads: int, duration: float, *extra: str) -> dict[str, Any]:
    """Run bench/loadgen.py in its own process and return its summary."""
    command = [
        PYTHON,
        str(BENCH / "loadgen.py"),
        mode,
        "--url",
        url,
        "--threads",
        str(threads),
        "--duration",
        str(duration),
        *extra,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        check=False,
        timeout=duration + 120,
        cwd=REPO,
        preexec_fn=_die_with_parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
