"""exporter/web/server.py: the WSGI app's routes, formats and headers, the listen address,
and the threaded server on loopback.

The app is called in-process with a WSGI environ; each test builds a fresh
``CollectorRegistry`` holding a stub collector and passes a stub ready-check, so the
server is tested apart from the pollers and the real collectors.
"""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from fakes import ReadyCheck
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.web.server import HttpServer, WSGIApp, make_app, parse_listen_address

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class StubCollector:
    """Yields a gauge, a counter and a histogram whose values the test sets."""

    def __init__(self) -> None:
        self.credits = 1.0
        self.collects = 0

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        self.collects += 1
        up = GaugeMetricFamily(
            "elevenlabs_up", "1 if the last poll succeeded.", labels=["workspace"]
        )
        up.add_metric(["main"], 1.0)
        credits = CounterMetricFamily(
            "elevenlabs_credits_used", "Credits used.", labels=["workspace", "product_type"]
        )
        credits.add_metric(["main", "tts"], self.credits)
        duration = HistogramMetricFamily(
            "elevenlabs_exporter_api_request_duration_seconds",
            "Request latency.",
            labels=["workspace"],
        )
        duration.add_metric(["main"], [("0.1", 1.0), ("+Inf", 2.0)], 0.5)
        yield from (up, credits, duration)


class Version:
    """The data version make_app caches by; bump() says the data changed."""

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1

    def __call__(self) -> int:
        return self.value


class Served:
    """A fresh registry with a stub collector, the app over it and its controls."""

    def __init__(self, ready: ReadyCheck | None = None, telemetry_path: str = "/metrics") -> None:
        self.registry = CollectorRegistry()
        self.collector = StubCollector()
        self.registry.register(self.collector)
        self.ready = ready or ReadyCheck()
        self.version = Version()
        self.app = make_app(self.registry, self.ready, telemetry_path, version=self.version)

    def call(self, path: str = "/metrics", **environ: str) -> tuple[str, dict[str, str], bytes]:
        return call(self.app, path, **environ)


def call(app: Any, path: str = "/metrics", **environ: str) -> tuple[str, dict[str, str], bytes]:
    env: dict[str, Any] = {"PATH_INFO": path, **environ}
    setup_testing_defaults(env)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    body = b"".join(app(env, start_response))
    return captured["status"], captured["headers"], body


def names_in(body: bytes) -> set[str]:
    """The sample names of a text exposition."""
    return {
        sample.name
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


# --- /metrics ------------------------------------------------------------------------------


def test_formats_and_gzip_through_the_app() -> None:
    """The app serves text, OpenMetrics and gzip from the cache, and name[] filters."""
    app = Served().app
    status, headers, body = call(app)
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("text/plain")
    assert b"elevenlabs_up" in body
    _, headers, body = call(app, HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    _, headers, body = call(app, HTTP_ACCEPT_ENCODING="gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert b"elevenlabs_up" in gzip.decompress(body)
    _, _, body = call(app, QUERY_STRING="name[]=elevenlabs_up")
    assert b"elevenlabs_up" in body
    assert b"elevenlabs_credits_used_total" not in body


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("", "text/plain; version=0.0.4; charset=utf-8"),
        ("*/*", "text/plain; version=0.0.4; charset=utf-8"),
        ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "text/plain; version=0.0.4; charset=utf-8"),
        (OPENMETRICS, "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (
            f"{OPENMETRICS};q=0.9,text/plain;version=0.0.4;q=0.5",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    ],
)
def test_metrics_negotiates_the_format_from_accept(accept: str, content_type: str) -> None:
    """The text format unless the scraper accepts OpenMetrics, which then ends in # EOF;
    the Content-Type says which, and Content-Length is the body's."""
    status, headers, body = Served().call(HTTP_ACCEPT=accept)
    assert status == "200 OK"
    assert headers["Content-Type"].startswith(content_type)
    assert headers["Content-Length"] == str(len(body))
    assert body.endswith(b"# EOF\n") == content_type.startswith("application/openmetrics-text")
    assert b"elevenlabs_up" in body


def test_metrics_is_gzipped_only_when_accepted() -> None:
    """With Accept-Encoding gzip the body is gzip (Content-Length of the compressed bytes)
    and decompresses to the plain exposition; without it, no Content-Encoding."""
    served = Served()
    _, plain_headers, plain = served.call()
    assert "Content-Encoding" not in plain_headers
    _, headers, zipped = served.call(HTTP_ACCEPT_ENCODING="deflate, gzip;q=1.0, br")
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Length"] == str(len(zipped))
    assert gzip.decompress(zipped) == plain
    _, headers, zipped = served.call(HTTP_ACCEPT_ENCODING="gzip", HTTP_ACCEPT=OPENMETRICS)
    assert gzip.decompress(zipped).endswith(b"# EOF\n")


def test_gzip_refused_with_q0_is_not_used() -> None:
    """Accept-Encoding: gzip;q=0 refuses gzip: the body is sent uncompressed."""
    _, headers, body = Served().call(HTTP_ACCEPT_ENCODING="gzip;q=0, identity")
    assert "Content-Encoding" not in headers
    assert b"elevenlabs_up" in body


def test_scrapes_are_rendered_once_per_data_version() -> None:
    """Scrapes between two data changes reuse one rendering (the registry is collected
    once); after the version moves, the next scrape shows the new values."""
    served = Served()
    first = served.call()[2]
    for _ in range(3):
        assert served.call()[2] == first
    assert served.collector.collects == 1
    served.collector.credits = 42.0
    assert served.call()[2] == first  # same version: same bytes
    served.version.bump()
    body = served.call()[2]
    assert b'elevenlabs_credits_used_total{product_type="tts",workspace="main"} 42.0' in body
    assert served.collector.collects == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("name[]=elevenlabs_up", {"elevenlabs_up"}),
        ("name[]=elevenlabs_credits_used_total", {"elevenlabs_credits_used_total"}),
        (
            "name[]=elevenlabs_up&name[]=elevenlabs_credits_used_total",
            {"elevenlabs_up", "elevenlabs_credits_used_total"},
        ),
        (
            "name[]=elevenlabs_exporter_api_request_duration_seconds",
            {
                "elevenlabs_exporter_api_request_duration_seconds_bucket",
                "elevenlabs_exporter_api_request_duration_seconds_sum",
                "elevenlabs_exporter_api_request_duration_seconds_count",
            },
        ),
        (
            "name%5B%5D=elevenlabs_exporter_api_request_duration_seconds_count",
            {
                "elevenlabs_exporter_api_request_duration_seconds_bucket",
                "elevenlabs_exporter_api_request_duration_seconds_sum",
                "elevenlabs_exporter_api_request_duration_seconds_count",
            },
        ),
        ("name[]=no_such_metric", set()),
    ],
)
def test_name_filter_serves_only_the_named_families(query: str, expected: set[str]) -> None:
    """name[] (plain or URL-encoded, repeatable) keeps the families named by their family
    name or any of their sample names; an unknown name gives an empty exposition."""
    status, headers, body = Served().call(QUERY_STRING=query)
    assert status == "200 OK"
    assert headers["Content-Length"] == str(len(body))
    assert names_in(body) == expected


def test_name_filter_negotiates_format_and_gzip_too() -> None:
    """A filtered scrape is served in the negotiated format and gzipped when accepted."""
    _, headers, body = Served().call(
        QUERY_STRING="name[]=elevenlabs_up", HTTP_ACCEPT=OPENMETRICS, HTTP_ACCEPT_ENCODING="gzip"
    )
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(body)
    assert text.endswith(b"# EOF\n")
    assert b"elevenlabs_up" in text
    assert b"elevenlabs_credits_used" not in text


def test_a_query_without_names_serves_everything() -> None:
    """A query string without name[] (say a cache buster) serves the whole exposition."""
    served = Served()
    assert names_in(served.call(QUERY_STRING="_=123")[2]) == names_in(served.call()[2])


def test_head_on_metrics_has_the_headers_and_no_body() -> None:
    """HEAD /metrics answers 200 with the GET's Content-Type and Content-Length, no body."""
    served = Served()
    _, get_headers, get_body = served.call()
    status, headers, body = served.call(REQUEST_METHOD="HEAD")
    assert status == "200 OK"
    assert body == b""
    assert headers["Content-Type"] == get_headers["Content-Type"]
    assert headers["Content-Length"] == str(len(get_body))


def test_a_custom_telemetry_path_replaces_metrics() -> None:
    """With --web.telemetry-path /stats the exposition is at /stats only, and the landing
    page links there."""
    served = Served(telemetry_path="/stats")
    status, _, body = served.call("/stats")
    assert status == "200 OK"
    assert b"elevenlabs_up" in body
    assert served.call("/metrics")[0] == "404 Not Found"
    assert b'href="/stats"' in served.call("/")[2]


# --- /healthz, /readyz, landing page, errors -----------------------------------------------


def test_healthz_is_ok_whether_or_not_ready() -> None:
    """/healthz says the process is alive: 200 even before any poll succeeded."""
    served = Served(ReadyCheck("main"))
    status, headers, body = served.call("/healthz")
    assert (status, body) == ("200 OK", b"ok\n")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert served.ready.calls == 0


def test_readyz_is_503_naming_the_waiting_workspaces_then_200() -> None:
    """/readyz asks the ready-check on every request: 503 naming the workspaces still
    waiting for their first successful poll, then 200 once none is."""
    served = Served(ReadyCheck("main", "eu"))
    status, headers, body = served.call("/readyz")
    assert status == "503 Service Unavailable"
    assert body == b"waiting for the first successful poll of: main, eu\n"
    assert headers["Content-Length"] == str(len(body))
    served.ready.waiting.remove("main")
    assert served.call("/readyz")[2] == b"waiting for the first successful poll of: eu\n"
    served.ready.waiting.clear()
    assert served.call("/readyz")[:3:2] == ("200 OK", b"ready\n")
    assert served.ready.calls == 3


def test_landing_page_links_the_endpoints() -> None:
    """/ is a small HTML page with the version that links /metrics, /healthz and /readyz."""
    status, headers, body = Served().call("/")
    assert status == "200 OK"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))
    for path in ("/metrics", "/healthz", "/readyz"):
        assert f'href="{path}"'.encode() in body
    assert __version__.encode() in body


def test_landing_page_escapes_the_telemetry_path() -> None:
    """A telemetry path with HTML characters is escaped on the landing page."""
    body = Served(telemetry_path='/m"<x>').call("/")[2]
    assert b"<x>" not in body
    assert b'href="/m&quot;&lt;x&gt;"' in body


@pytest.mark.parametrize("path", ["/nope", "/metrics/", "/healthz/x", "/index.html", "//"])
def test_unknown_paths_are_404(path: str) -> None:
    """Any other path, a trailing slash included, is 404 with a short text body."""
    status, headers, body = Served().call(path)
    assert status == "404 Not Found"
    assert body == b"not found\n"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/"])
def test_methods_other_than_get_and_head_are_405(method: str, path: str) -> None:
    """Only GET and HEAD are served; anything else is 405 and never renders metrics."""
    served = Served()
    status, _, body = served.call(path, REQUEST_METHOD=method)
    assert status == "405 Method Not Allowed"
    assert b"elevenlabs_" not in body
    assert served.collector.collects == 0


def test_405_says_which_methods_are_allowed() -> None:
    """A 405 carries Allow: GET, HEAD."""
    _, headers, _ = Served().call(REQUEST_METHOD="POST")
    assert {m.strip() for m in headers.get("Allow", "").split(",")} == {"GET", "HEAD"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/nope"])
def test_head_never_sends_a_body(path: str) -> None:
    """HEAD on any path answers with headers only."""
    assert Served().call(path, REQUEST_METHOD="HEAD")[2] == b""


# --- parse_listen_address ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":9142", ("", 9142)),
        ("0.0.0.0:9142", ("0.0.0.0", 9142)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::1]:9142", ("::1", 9142)),
        ("[::]:80", ("::", 80)),
    ],
)
def test_listen_address_is_host_and_port(text: str, expected: tuple[str, int]) -> None:
    """host:port, :port (every interface) and [v6]:port are read as (host, port)."""
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize(
    "text", ["", "localhost", "9142", ":", "localhost:", "host:http", "host:65536", "host:-1"]
)
def test_bad_listen_addresses_are_value_errors(text: str) -> None:
    """A missing, non-numeric or out-of-range port is a ValueError quoting the input."""
    with pytest.raises(ValueError, match="expected host:port") as caught:
        parse_listen_address(text)
    assert repr(text) in str(caught.value)


# --- The threaded server on loopback -------------------------------------------------------


def request(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request to 127.0.0.1:port on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def serve(app: WSGIApp) -> HttpServer:
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    return server


def test_http_server_serves_the_app_on_loopback_and_stops() -> None:
    """HttpServer on 127.0.0.1 port 0 picks a free port, answers GET and HEAD as the app
    does, and refuses connections once stopped."""
    served = Served(ReadyCheck("main"))
    server = serve(served.app)
    try:
        assert server.port > 0
        status, headers, body = request(server.port, "GET", "/metrics")
        assert status == 200
        assert b"elevenlabs_up" in body
        assert headers["Content-Length"] == str(len(body))
        status, headers, body = request(server.port, "HEAD", "/metrics")
        assert (status, body) == (200, b"")
        assert request(server.port, "GET", "/readyz")[0] == 503
        assert request(server.port, "GET", "/healthz")[:3:2] == (200, b"ok\n")
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        request(server.port, "GET", "/healthz")
