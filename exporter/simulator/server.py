"""The simulated API on a loopback port, served from a background thread."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

from exporter.simulator.handler import make_handler
from exporter.simulator.model import SimState


class Simulator:
    """The simulated API on a loopback port, in a background thread."""

    def __init__(
        self, state: SimState | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = state or SimState()
        self._server = ThreadingHTTPServer((host, port), make_handler(self.state))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="simulator", daemon=True
        )

    def start(self) -> Simulator:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (``python -m exporter.simulator``)."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
