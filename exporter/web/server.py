"""HTTP: /metrics, /healthz, /readyz and a landing page, on a threaded WSGI server.

The server runs in its own threads and only reads snapshots, so scrapes answer in
milliseconds whatever the API is doing. The exposition cache negotiates the format
(text or OpenMetrics), renders each once per change of the data, and gzips it.
"""

from __future__ import annotations

import gzip
import html
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.metrics.exposition import GZIP_LEVEL, ExpositionCache, render_filtered

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
ReadyCheck = Callable[[], tuple[bool, list[str]]]
# Seconds a client gets to complete the TLS handshake before it is dropped.
TLS_HANDSHAKE_TIMEOUT = 10.0
# Connections the kernel queues until the accept loop takes them (the kernel caps it at
# net.core.somaxconn). socketserver's default of 5 made the kernel drop connection
# attempts from a burst of scrapers, which clients retry only after a second.
LISTEN_BACKLOG = 1024


def make_app(
    registry: CollectorRegistry,
    ready: ReadyCheck,
    telemetry_path: str = "/metrics",
    *,
    version: Callable[[], int],
) -> WSGIApp:
    """The exporter's WSGI application.

    ``version`` is a number that changes whenever any exported value may have changed;
    scrapes are served from bytes rendered once per version.
    """
    cache = ExpositionCache(registry, version)
    landing = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>ElevenLabs exporter</title></head>
<body><h1>ElevenLabs exporter</h1>
<p>Prometheus exporter for ElevenLabs credit usage, version {html.escape(__version__)}.</p>
<ul>
<li><a href="{html.escape(telemetry_path)}">{html.escape(telemetry_path)}</a>: metrics</li>
<li><a href="/healthz">/healthz</a>: the process is alive</li>
<li><a href="/readyz">/readyz</a>: every workspace has completed its first poll</li>
</ul></body></html>
""".encode()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _text(
                start_response,
                "405 Method Not Allowed",
                "method not allowed\n",
                [("Allow", "GET, HEAD")],
            )
        status, headers, body = route(path, environ)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [b""] if method == "HEAD" else [body]

    def route(path: str, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        if path == telemetry_path:
            compress = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
            accept = environ.get("HTTP_ACCEPT", "")
            if environ.get("QUERY_STRING"):  # name[] filters: render those series on demand
                body, content_type = render_filtered(registry, environ["QUERY_STRING"], accept)
                body = gzip.compress(body, GZIP_LEVEL) if compress else body
            else:
                body, content_type = cache.render(accept, compress)
            headers = [("Content-Type", content_type)]
            if compress:
                headers.append(("Content-Encoding", "gzip"))
            return "200 OK", headers, body
        if path == "/healthz":
            return "200 OK", _PLAIN, b"ok\n"
        if path == "/readyz":
            is_ready, waiting = ready()
            if is_ready:
                return "200 OK", _PLAIN, b"ready\n"
            text = "waiting for the first successful poll of: " + ", ".join(waiting) + "\n"
            return "503 Service Unavailable", _PLAIN, text.encode()
        if path == "/":
            return "200 OK", [("Content-Type", "text/html; charset=utf-8")], landing
        return "404 Not Found", _PLAIN, b"not found\n"

    return app


_PLAIN = [("Content-Type", "text/plain; charset=utf-8")]


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


def _text(
    start_response: StartResponse,
    status: str,
    body: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = body.encode()
    start_response(status, [*_PLAIN, ("Content-Length", str(len(data))), *(extra or [])])
    return [data]


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: scrapes every 15 s would drown the poll log."""

    def log_message(self, format: str, *args: Any) -> None:
        return


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG
    # Set for HTTPS (--web.config.file). The TLS handshake runs in the request's own
    # thread, not in the accept loop: a client that connects and stalls, or speaks
    # plain HTTP, then fails alone and never delays the next scrape.
    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            previous = request.gettimeout()
            request.settimeout(TLS_HANDSHAKE_TIMEOUT)
            try:
                request.do_handshake()
            except OSError:  # ssl.SSLError and timeouts included: drop this client only
                return
            request.settimeout(previous)
        super().finish_request(request, client_address)


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


def parse_listen_address(text: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` as (host, port); empty host means all."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {text!r}")
    return host.strip("[]"), int(port)


class HttpServer:
    """The running HTTP server, in a background thread; HTTPS with an ``ssl_context``."""

    def __init__(
        self, app: WSGIApp, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        server_class = _ThreadingServerV6 if ":" in host else _ThreadingServer
        self._server = make_server(host or "0.0.0.0", port, app, server_class, _QuietHandler)
        self._server.ssl_context = ssl_context
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        """Start answering requests."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the socket."""
        self._server.shutdown()
        self._server.server_close()
