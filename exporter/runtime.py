"""Wiring the parts together and running them until a signal says stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, disable_created_metrics

from exporter import __version__
from exporter.api.backoff import RetryPolicy
from exporter.api.client import ElevenLabsClient
from exporter.api.decode import AnswerDecoder
from exporter.api.keys import KeyProvider
from exporter.config import Config
from exporter.core.snapshot import SnapshotStore
from exporter.core.state import StateStore
from exporter.log import Redactor
from exporter.metrics.charstats import CharacterStatsCollector
from exporter.metrics.cost import CostCollector
from exporter.metrics.exposition import OrderedRegistry
from exporter.metrics.health import BuildCollector, HealthCollector
from exporter.metrics.limits import ApiKeyLimitsCollector, GroupLimitsCollector
from exporter.metrics.subscription import SubscriptionCollector
from exporter.metrics.telemetry import Telemetry
from exporter.metrics.usage import UsageCollector
from exporter.polling.workspace import workspace_loop
from exporter.web.server import HttpServer, WSGIApp, make_app

# Seconds a graceful shutdown may take before in-flight requests are abandoned.
SHUTDOWN_GRACE = 3.0


def build_registry(
    snapshots: SnapshotStore,
    *,
    character_stats: bool = False,
    key_limits: bool = False,
    group_limits: bool = False,
) -> tuple[CollectorRegistry, Telemetry]:
    """The exporter's own registry: request telemetry, then one collector per source.

    The character-stats, key-limits and group-limits collectors only when some
    workspace opted in. ``_created``
    series are switched off: they double the series count and no rule or dashboard
    here reads them.
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    registry = OrderedRegistry()
    telemetry = Telemetry(registry)
    for collector in (UsageCollector, CostCollector, SubscriptionCollector, HealthCollector):
        registry.register(collector(snapshots.current))
    registry.register(BuildCollector())
    if character_stats:
        registry.register(CharacterStatsCollector(snapshots.current))
    if key_limits:
        registry.register(ApiKeyLimitsCollector(snapshots.current))
    if group_limits:
        registry.register(GroupLimitsCollector(snapshots.current))
    return registry, telemetry


async def serve(
    config: Config,
    *,
    host: str,
    port: int,
    telemetry_path: str,
    log: Any,
    redactor: Redactor,
    stop: asyncio.Event | None = None,
    ssl_context: ssl.SSLContext | None = None,
    wrap_app: Callable[[WSGIApp], WSGIApp] | None = None,
) -> int:
    """Serve metrics and poll every workspace until SIGTERM/SIGINT (or ``stop``).

    ``ssl_context`` turns on HTTPS; ``wrap_app`` wraps the WSGI app (basic auth and
    extra headers from ``--web.config.file``).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)

    snapshots = SnapshotStore([ws.name for ws in config.workspaces])
    registry, telemetry = build_registry(
        snapshots,
        character_stats=any(ws.character_stats for ws in config.workspaces),
        key_limits=any(ws.key_limits for ws in config.workspaces),
        group_limits=any(ws.group_limits for ws in config.workspaces),
    )
    state = StateStore(config.state_file, log)
    state.load(ws.name for ws in config.workspaces)
    try:
        app = make_app(
            registry,
            snapshots.ready,
            telemetry_path,
            version=lambda: snapshots.version + telemetry.version,
        )
        server = HttpServer(wrap_app(app) if wrap_app else app, host, port, ssl_context)
    except OSError as err:
        log.error("cannot listen", address=f"{host}:{port}", error=str(err))
        return 1
    server.start()
    scheme = "https" if ssl_context is not None else "http"
    shown = host if host and host not in ("0.0.0.0", "::") else "localhost"
    shown = f"[{shown}]" if ":" in shown else shown
    log.info(
        "listening",
        address=f"{host or '0.0.0.0'}:{server.port}",
        metrics=f"{scheme}://{shown}:{server.port}{telemetry_path}",
        landing_page=f"{scheme}://{shown}:{server.port}/",
        telemetry_path=telemetry_path,
        tls=ssl_context is not None,
        workspaces=[ws.name for ws in config.workspaces],
        version=__version__,
        state_file=str(config.state_file) if config.state_file else None,
    )

    limits = httpx.Limits(max_connections=config.max_concurrent_requests * 2)
    decoder = AnswerDecoder()  # large answers are parsed in one worker process
    async with httpx.AsyncClient(timeout=config.request_timeout, limits=limits) as http:
        limiter = asyncio.Semaphore(config.max_concurrent_requests)
        # Only as many workspaces seed at once as can have requests in flight: the others
        # wait without holding rows (all pollers seeding in lockstep held every workspace's
        # rows at once, and Python keeps such a peak).
        seed_limiter = asyncio.Semaphore(config.max_concurrent_requests)
        loops = []
        for ws in config.workspaces:
            client = ElevenLabsClient(
                workspace=ws.name,
                base_url=ws.base_url,
                api_key=KeyProvider(ws, on_new_key=lambda key: redactor.add([key])),
                http=http,
                telemetry=telemetry,
                limiter=limiter,
                retry=RetryPolicy(max_retries=config.max_retries),
                timeout=config.request_timeout,
                max_response_bytes=config.max_response_bytes,
                decoder=decoder,
            )
            loops.append(
                workspace_loop(
                    ws,
                    config,
                    client,
                    snapshots=snapshots,
                    telemetry=telemetry,
                    log=log,
                    clock=time.time,
                    state=state,
                    seed_limiter=seed_limiter,
                )
            )
        tasks = [asyncio.create_task(loop.run(stop), name=f"poll-{loop.name}") for loop in loops]
        tasks.append(asyncio.create_task(_flush_loop(state, config, stop), name="state-flush"))
        await stop.wait()
        log.info("shutting down")
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
    decoder.close()
    state.flush()
    server.stop()
    log.info("stopped")
    return 0


async def _flush_loop(state: StateStore, config: Config, stop: asyncio.Event) -> None:
    """Write the state file when it changed, at most every few seconds."""
    interval = min(config.poll_interval, 5.0)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        await asyncio.to_thread(state.flush)
