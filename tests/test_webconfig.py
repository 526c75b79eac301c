"""``--web.config.file``: real TLS and basic auth against the real exporter process.

A CA and server certificates are made with trustme, passwords are hashed with bcrypt,
and every request goes over loopback to ``python -m exporter --demo``.
"""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import trustme
import yaml
from support import ExporterProcess, free_port, run_exporter

ALICE_PASSWORD = "correct horse battery staple"  # noqa: S105 - test credentials, hashed below
CAROL_PASSWORD = "carol-only-used-by-the-cache-test"  # noqa: S105 - test credentials
CHALLENGE = 'Basic realm="elevenlabs-exporter"'


@dataclass
class Pki:
    """A test CA and the files a web config points at."""

    ca: trustme.CA
    directory: Path

    def client_context(self, *, trust: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if trust:
            self.ca.configure_trust(context)
        return context


def make_pki(directory: Path) -> Pki:
    """CA in ca.crt, server certificate for 127.0.0.1 in server.crt / server.key."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    return Pki(ca, directory)


def hash_password(password: str, cost: int = 10) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def https_url(exporter: ExporterProcess, path: str) -> str:
    return f"https://127.0.0.1:{exporter.port}{path}"


def get(
    url: str,
    context: ssl.SSLContext | bool,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> httpx.Response:
    """One GET on a fresh connection (the exporter closes it after each response)."""
    with httpx.Client(verify=context, trust_env=False, timeout=timeout) as client:
        return client.get(url, auth=auth, headers=headers)


def wait_ready(
    exporter: ExporterProcess,
    context: ssl.SSLContext | bool,
    auth: tuple[str, str] | None,
    base_url: str | None = None,
) -> None:
    """Poll /readyz (over HTTPS unless ``base_url`` says otherwise) until it is 200."""
    url = (base_url or f"https://127.0.0.1:{exporter.port}") + "/readyz"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if exporter.process.poll() is not None:
            raise AssertionError(f"exporter exited early:\n{exporter.log()}")
        try:
            if get(url, context, auth, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"exporter not ready at {url}:\n{exporter.log()}")


@dataclass
class Running:
    exporter: ExporterProcess
    pki: Pki
    context: ssl.SSLContext
    carol_hash: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One exporter with TLS, users alice (cost 10) and carol (cost 12), extra headers."""
    tmp_path = tmp_path_factory.mktemp("webconfig")
    pki = make_pki(tmp_path / "tls")
    carol_hash = hash_password(CAROL_PASSWORD, cost=12)
    web = tmp_path / "web.yml"
    # Relative paths: resolved against web.yml's directory, not the exporter's cwd.
    web.write_text(
        "tls_server_config:\n"
        "  cert_file: tls/server.crt\n"
        "  key_file: tls/server.key\n"
        "basic_auth_users:\n"
        f"  alice: {hash_password(ALICE_PASSWORD)}\n"
        f"  carol: {carol_hash}\n"
        "http_server_config:\n"
        "  headers:\n"
        "    X-Frame-Options: deny\n"
        "    X-Content-Type-Options: nosniff\n"
    )
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    with run_exporter(
        ["--demo", "--log.level", "debug", "--web.config.file", str(web)], workdir
    ) as exporter:
        context = pki.client_context()
        wait_ready(exporter, context, ("alice", ALICE_PASSWORD))
        yield Running(exporter, pki, context, carol_hash)


def test_https_scrape_with_trusted_ca_and_credentials_serves_metrics(running: Running) -> None:
    """With the CA trusted and alice's password, /metrics answers 200 over TLS with
    the usage metrics and the configured extra headers."""
    response = get(
        https_url(running.exporter, "/metrics"), running.context, ("alice", ALICE_PASSWORD)
    )
    assert response.status_code == 200
    assert "elevenlabs_credits_used_total{" in response.text
    assert response.headers["X-Frame-Options"] == "deny"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "WWW-Authenticate" not in response.headers


def test_server_certificate_is_the_configured_one(running: Running) -> None:
    """A client that does not trust the test CA refuses the server: the exporter
    presents the certificate from cert_file, not some default."""
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get(
            https_url(running.exporter, "/metrics"),
            running.pki.client_context(trust=False),
            ("alice", ALICE_PASSWORD),
        )


def test_plain_http_to_the_tls_port_gets_no_http_answer(running: Running) -> None:
    """A plain-HTTP request to the TLS port gets no HTTP response (let alone metrics),
    and HTTPS keeps working afterwards."""
    with socket.create_connection(("127.0.0.1", running.exporter.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    assert not received.startswith(b"HTTP/")
    assert b"elevenlabs_" not in received
    response = get(
        https_url(running.exporter, "/healthz"), running.context, ("alice", ALICE_PASSWORD)
    )
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/", "/nope"])
def test_missing_credentials_get_401_with_challenge_on_every_path(
    running: Running, path: str
) -> None:
    """Without credentials every path, /healthz included, is 401 with the Basic
    challenge and the extra headers, and reveals no metric."""
    response = get(https_url(running.exporter, path), running.context)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert response.headers["X-Frame-Options"] == "deny"
    assert "elevenlabs_" not in response.text


def test_wrong_password_or_unknown_user_gets_401(running: Running) -> None:
    """A wrong password is refused, also right after the right one was accepted (the
    cache must not admit another password for the same user), and so is an unknown
    user."""
    url = https_url(running.exporter, "/metrics")
    assert get(url, running.context, ("alice", ALICE_PASSWORD)).status_code == 200
    wrong = get(url, running.context, ("alice", ALICE_PASSWORD + "x"))
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == CHALLENGE
    assert get(url, running.context, ("alice", "")).status_code == 401
    assert get(url, running.context, ("mallory", ALICE_PASSWORD)).status_code == 401
    assert get(url, running.context, ("ALICE", ALICE_PASSWORD)).status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + ALICE_PASSWORD,
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"alice" + ALICE_PASSWORD.encode()).decode(),
        "Basic " + base64.b64encode(b"alice:" + b"x" * 100).decode(),
        "Basic",
    ],
)
def test_malformed_authorization_gets_401(running: Running, authorization: str) -> None:
    """Authorization headers that are not well-formed Basic credentials (other scheme,
    bad base64, no colon, a password over bcrypt's 72 bytes, nothing) are refused
    with 401, not a server error."""
    response = get(
        https_url(running.exporter, "/metrics"),
        running.context,
        headers={"Authorization": authorization},
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE


def test_second_scrape_with_the_same_credentials_skips_bcrypt(running: Running) -> None:
    """The first scrape as carol (cost-12 hash) pays for bcrypt; the second is served
    from the verification cache in well under 50 ms."""
    started = time.perf_counter()
    assert bcrypt.checkpw(CAROL_PASSWORD.encode(), running.carol_hash.encode())
    bcrypt_seconds = time.perf_counter() - started
    url = https_url(running.exporter, "/metrics")
    auth = ("carol", CAROL_PASSWORD)

    started = time.perf_counter()
    assert get(url, running.context, auth).status_code == 200
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert get(url, running.context, auth).status_code == 200
    second = time.perf_counter() - started

    assert first >= bcrypt_seconds * 0.5, (first, bcrypt_seconds)
    assert second < 0.05, (first, second)
    assert second < bcrypt_seconds / 2, (second, bcrypt_seconds)


def test_stalled_and_garbage_clients_do_not_block_the_next_scrape(running: Running) -> None:
    """Clients that connect and never handshake, or send garbage, are dealt with in
    their own threads: while they hang on, a scrape still answers at once, the server
    keeps serving after they give up, and their failures leave no traceback."""
    port = running.exporter.port
    url = https_url(running.exporter, "/metrics")
    auth = ("alice", ALICE_PASSWORD)
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    garbage = socket.create_connection(("127.0.0.1", port), timeout=5)
    garbage.sendall(b"\x16\x03\x01\x00\x05hello garbage that is not a ClientHello\r\n\r\n")
    half = socket.create_connection(("127.0.0.1", port), timeout=5)
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a truncated ClientHello
    try:
        started = time.perf_counter()
        response = get(url, running.context, auth, timeout=3)
        assert response.status_code == 200
        assert time.perf_counter() - started < 2
    finally:
        for sock in (*silent, garbage, half):
            sock.close()
    assert get(url, running.context, auth).status_code == 200
    time.sleep(0.5)  # the closed clients' handshakes fail in their own threads
    assert "Traceback" not in running.exporter.log()


def test_passwords_never_reach_the_log(running: Running) -> None:
    """At debug level, after right and wrong logins, the log holds neither password
    nor any bcrypt hash."""
    url = https_url(running.exporter, "/metrics")
    get(url, running.context, ("alice", ALICE_PASSWORD))
    get(url, running.context, ("alice", "wrong-" + ALICE_PASSWORD))
    log = running.exporter.log()
    assert "web config loaded" in log  # the log is really being read
    assert ALICE_PASSWORD not in log
    assert CAROL_PASSWORD not in log
    assert "$2b$" not in log


@pytest.mark.e2e
def test_prometheus_scrapes_with_the_documented_scrape_config(
    running: Running, tmp_path: Path
) -> None:
    """A real Prometheus with the scrape config of docs/security.md (scheme https,
    tls_config.ca_file, basic_auth with password_file) scrapes the exporter: up is 1 and
    the usage metrics arrive; the same job with a wrong password is down."""
    binary = shutil.which("prometheus")
    assert binary, "the prometheus binary must be on PATH (scripts/apt-packages.txt)"
    (tmp_path / "right.password").write_text(ALICE_PASSWORD + "\n")
    (tmp_path / "wrong.password").write_text("not-" + ALICE_PASSWORD + "\n")
    target = {"targets": [f"127.0.0.1:{running.exporter.port}"]}

    def job(name: str, password_file: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "scheme": "https",
            "tls_config": {"ca_file": str(running.pki.directory / "ca.crt")},
            "basic_auth": {"username": "alice", "password_file": str(tmp_path / password_file)},
            "static_configs": [target],
        }

    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            job("elevenlabs-exporter", "right.password"),
            job("wrong-password", "wrong.password"),
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    query = (
        'up{job="elevenlabs-exporter"} == 1 and on() up{job="wrong-password"} == 0'
        ' and on() count(elevenlabs_credits_used_total{job="elevenlabs-exporter"}) > 0'
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query",
                    params={"query": query},
                    timeout=2,
                    trust_env=False,
                )
                if response.status_code == 200 and response.json()["data"]["result"]:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_client_certificates_and_tls13_only(tmp_path: Path) -> None:
    """With RequireAndVerifyClientCert and min_version TLS13, a client holding a
    certificate from client_ca_file gets in; one without a certificate, or limited to
    TLS 1.2, is refused during the handshake. No basic auth: TLS alone protects."""
    pki = make_pki(tmp_path)
    (tmp_path / "web.yml").write_text(
        "tls_server_config:\n"
        "  cert_file: server.crt\n"
        "  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: ca.crt\n"
        "  min_version: TLS13\n"
    )
    with_cert = pki.client_context()
    pki.ca.issue_cert("prometheus@example.com").configure_cert(with_cert)
    tls12 = pki.client_context()
    pki.ca.issue_cert("prometheus@example.com").configure_cert(tls12)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with run_exporter(["--demo", "--web.config.file", str(tmp_path / "web.yml")], tmp_path) as ex:
        wait_ready(ex, with_cert, None)
        assert get(https_url(ex, "/metrics"), with_cert).status_code == 200
        with pytest.raises(httpx.HTTPError):
            get(https_url(ex, "/metrics"), pki.client_context())
        with pytest.raises(httpx.ConnectError):
            get(https_url(ex, "/metrics"), tls12)
        assert get(https_url(ex, "/metrics"), with_cert).status_code == 200


def test_basic_auth_without_tls_works_and_warns(tmp_path: Path) -> None:
    """basic_auth_users without tls_server_config protects plain HTTP (as the toolkit
    does) and the log warns that passwords travel in clear text."""
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  alice: '{hash_password('pw')}'\n")
    with run_exporter(["--demo", "--web.config.file", str(tmp_path / "web.yml")], tmp_path) as ex:
        wait_ready(ex, False, ("alice", "pw"), base_url=ex.url)
        assert get(ex.url + "/metrics", False).status_code == 401
        assert get(ex.url + "/metrics", False, ("alice", "pw")).status_code == 200
        assert "basic auth without TLS" in ex.log()


GOOD_HASH = "$2b$10$/8Pcht3VW20qgmPcPmYOxO.IFQ1rx4JP6zyF9evFg2NS7m8fawd9y"
TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"


@pytest.mark.parametrize(
    ("web_yml", "key", "reason"),
    [
        (TLS + "basic_auth_user: {}\n", "basic_auth_user", "unknown key"),
        (TLS.replace("key_file", "keyfile"), "tls_server_config.keyfile", "unknown key"),
        (TLS + "  cipher_suites: [x]\n", "tls_server_config.cipher_suites", "not supported"),
        (
            "basic_auth_users:\n  alice: hunter2-plain-text\n",
            "basic_auth_users.alice",
            "bcrypt hash",
        ),
        ("tls_server_config:\n  cert_file: server.crt\n", "tls_server_config.key_file", "required"),
        (
            TLS.replace("server.crt", "missing.crt"),
            "tls_server_config.cert_file",
            "No such file",
        ),
        (TLS.replace("server.crt", "."), "tls_server_config.cert_file", "Is a directory"),
        (TLS.replace("server.crt", "garbage.crt"), "tls_server_config.cert_file", "no valid"),
        (TLS.replace("server.key", "other.key"), "tls_server_config.key_file", "does not match"),
        (TLS + "  min_version: TLS10\n", "tls_server_config.min_version", "TLS12 or TLS13"),
        (
            TLS + "  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_ca_file",
            "required",
        ),
        (
            f"basic_auth_users: {{a: '{GOOD_HASH}'}}\n"
            "http_server_config:\n  headers:\n    Server: nginx\n",
            "http_server_config.headers.Server",
            "cannot be configured",
        ),
        ("tls_server_config: [\n", "", "not valid YAML"),
        ("- a list\n", "", "mapping"),
    ],
)
def test_bad_web_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, web_yml: str, key: str, reason: str
) -> None:
    """Each mistake stops the exporter at start-up with exit code 2 and one line that
    names the key and the reason, no traceback, and never the rejected value when it
    may be a password."""
    pki = make_pki(tmp_path)
    (tmp_path / "garbage.crt").write_text("this is not a certificate\n")
    pki.ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(tmp_path / "other.key"))
    (tmp_path / "web.yml").write_text(web_yml)
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--demo", "--web.config.file", "web.yml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    expected = (
        f"config error: web.config.file: {key}: " if key else "config error: web.config.file: "
    )
    assert lines[0].startswith(expected), lines[0]
    assert reason in lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
