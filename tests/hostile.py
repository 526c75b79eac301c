"""A hostile ElevenLabs lookalike on 127.0.0.1, for the tests that attack the exporter.

It answers the subscription and the usage table like a small, healthy workspace
(``credits`` used in one minute, ``usage_at``, so every way of reading it sums to the
same total) until a test switches the usage endpoint to a hostile ``mode``:

* ``huge``: a 200 whose body is ``size`` bytes of a valid table (``Content-Length``
  announced, or chunked without one), e.g. 50 MB;
* ``drip``: headers at once, then the body one byte every ``drip_interval`` seconds;
* ``hang``: the connection is accepted and nothing is ever sent;
* ``values``: a valid table whose credits are ``values`` (e.g. two rows of "1e308").

It imports nothing of the exporter: what it sends is exactly what a broken or
malicious server could send.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SUBSCRIPTION_PATH = "/v1/user/subscription"
USAGE_PATH = "/v1/workspace/analytics/query/usage-by-product-over-time"
PRODUCT = "text_to_speech"


def iso(seconds: float) -> str:
    """A bucket start as the API writes it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(rows: list[list[Any]]) -> dict[str, Any]:
    """A usage-by-product table with these rows."""
    return {
        "columns": ["timestamp", "product_type", "credits_used"],
        "column_types": ["DateTime", "String", "Float"],
        "column_units": ["s", "", "credits"],
        "rows": rows,
    }


def big_table(size: int, start: int) -> bytes:
    """A valid usage table of about ``size`` bytes: one bucket's row, repeated (the rows
    add up to one small value per bucket, so the answer is costly to parse, not to keep)."""
    row = json.dumps([iso(start), PRODUCT, "0.000001"]).encode()
    head = json.dumps(table([]))[:-2].encode()  # everything up to the rows' closing "]}"
    count = max(1, (size - len(head)) // (len(row) + 1))
    return head + b",".join([row] * count) + b"]}"


class Hostile:
    """The server, its switchable behaviour and what it was asked."""

    def __init__(self) -> None:
        self.mode = "normal"
        self.size = 50_000_000
        self.chunked = False
        self.values: list[str] = ["1e308", "1e308"]
        self.drip_interval = 1.0
        self.credits = "5"  # the workspace's whole usage, all in the minute usage_at
        self.usage_at = int(time.time() // 60 * 60) - 20 * 60
        self.requests: list[tuple[str, float]] = []
        self.sent: list[float] = []  # time.monotonic() when each huge answer was all sent
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._big: dict[tuple[int, int], bytes] = {}
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Hostile:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; dripping and hanging answers end at once."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def record(self, endpoint: str) -> None:
        """Note one request."""
        with self._lock:
            self.requests.append((endpoint, time.time()))

    def count(self, endpoint: str) -> int:
        """Requests answered so far on one endpoint."""
        with self._lock:
            return sum(1 for e, _ in self.requests if e == endpoint)

    def big(self, start: int) -> bytes:
        """The huge answer for a window starting at ``start`` (built once)."""
        key = (self.size, start)
        with self._lock:
            if key not in self._big:
                self._big = {key: big_table(self.size, start)}
            return self._big[key]


def _make_handler(hostile: Hostile) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != SUBSCRIPTION_PATH:
                self.send_error(404)
                return
            hostile.record("subscription")
            self._json(
                {
                    "tier": "pro",
                    "status": "active",
                    "character_count": 5,
                    "character_limit": 1_000_000,
                    "next_character_count_reset_unix": int(time.time()) + 10 * 86400,
                    "billing_period": "monthly_period",
                }
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            if self.path != USAGE_PATH:
                self.send_error(404)
                return
            hostile.record("usage")
            start = int(request["start_time"]) // 1000
            mode = hostile.mode
            if mode == "hang":
                hostile.stopping.wait(600)
                self.close_connection = True
                return
            if mode == "drip":
                self._drip(start)
                return
            if mode == "huge":
                self._huge(start)
                return
            if mode == "values":
                interval = int(request["interval_seconds"])
                rows = [
                    [iso(start + i * interval), PRODUCT, value]
                    for i, value in enumerate(hostile.values)
                ]
                self._json(table(rows))
                return
            end = int(request["end_time"]) // 1000
            interval = int(request["interval_seconds"])
            at = hostile.usage_at
            rows = []
            if start <= at < end:
                rows.append([iso(at - (at - start) % interval), PRODUCT, hostile.credits])
            self._json(table(rows))

        def _drip(self, start: int) -> None:
            data = json.dumps(table([[iso(start), PRODUCT, "1"]])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.flush()
            for index in range(len(data)):
                if hostile.stopping.wait(hostile.drip_interval):
                    break
                try:
                    self.wfile.write(data[index : index + 1])
                    self.wfile.flush()
                except OSError:
                    break
            self.close_connection = True

        def _huge(self, start: int) -> None:
            data = hostile.big(start)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if hostile.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            step = 1 << 20
            try:
                for offset in range(0, len(data), step):
                    piece = data[offset : offset + step]
                    if hostile.chunked:
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    else:
                        self.wfile.write(piece)
                if hostile.chunked:
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                hostile.sent.append(time.monotonic())
            except OSError:  # the client hung up on a body it refused: expected
                self.close_connection = True

    return Handler
