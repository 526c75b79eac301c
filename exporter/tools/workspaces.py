"""The workspaces a command reads, and a client for each, as the exporter makes them.

A one-off command loads the exporter's own config and key handling, so a key that
works for the exporter works here, and reads each workspace through the exporter's
client with its retries and timeout. Workspaces are read one after another, one
request at a time: ElevenLabs limits concurrency, and a one-off report must not
starve the running exporter.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO, TypeVar

import httpx

from exporter.api.backoff import RetryPolicy
from exporter.api.client import ElevenLabsClient
from exporter.api.decode import AnswerDecoder
from exporter.api.errors import ApiError
from exporter.api.keys import KeyProvider
from exporter.config import Config, WorkspaceConfig, demo_config, load_config
from exporter.flags import UsageError

T = TypeVar("T")


@contextmanager
def workspaces(
    config_file: Path | None,
    name: str | None,
    *,
    demo: bool,
    environ: Mapping[str, str] | None = None,
) -> Iterator[tuple[Config, tuple[WorkspaceConfig, ...]]]:
    """The config and the workspaces to read, as the exporter would load them.

    With ``demo`` the exporter's demo workspace reads the embedded simulator, which
    runs for as long as the context is open. Raises ConfigError for a bad config
    and UsageError for an unknown ``--workspace``.
    """
    config = load_config(config_file, os.environ if environ is None else environ, demo=demo)
    simulator = None
    if demo:
        from exporter.simulator import SimState, Simulator

        simulator = Simulator(SimState()).start()
        config = demo_config(config, simulator.url)
    try:
        chosen = config.workspaces
        if name is not None:
            chosen = tuple(ws for ws in config.workspaces if ws.name == name)
            if not chosen:
                known = ", ".join(ws.name for ws in config.workspaces)
                raise UsageError(
                    "--workspace", f"no workspace named {name!r} (configured: {known})"
                )
        yield config, chosen
    finally:
        if simulator is not None:
            simulator.stop()


def http_client(config: Config) -> httpx.AsyncClient:
    """The HTTP client for one run: the configured timeout, one connection is enough."""
    return httpx.AsyncClient(timeout=config.request_timeout)


def make_client(
    ws: WorkspaceConfig,
    http: httpx.AsyncClient,
    config: Config,
    decoder: AnswerDecoder | None = None,
) -> ElevenLabsClient:
    """A client for one workspace, with the exporter's retries, deadlines and answer cap."""
    return ElevenLabsClient(
        workspace=ws.name,
        base_url=ws.base_url,
        api_key=KeyProvider(ws),
        http=http,
        retry=RetryPolicy(max_retries=config.max_retries),
        timeout=config.request_timeout,
        max_response_bytes=config.max_response_bytes,
        decoder=decoder,
    )


def describe_error(ws: WorkspaceConfig, err: ApiError, secrets: Sequence[str] = ()) -> str:
    """One line naming the workspace, the reason and what the API said; never the key."""
    text = f"workspace {ws.name}: {err.reason}: {err}"
    if err.reason in ("network", "timeout"):
        text += f" (base URL {ws.base_url})"
    elif err.reason == "auth":
        text += f" (check the API key, {ws.key_source.describe()})"
    for secret in (ws.api_key.reveal(), *secrets):
        if secret:
            text = text.replace(secret, "********")
    return " ".join(text.split())


async def for_each_workspace(
    config: Config,
    chosen: Sequence[WorkspaceConfig],
    read: Callable[[ElevenLabsClient, WorkspaceConfig], Awaitable[T]],
    err: TextIO,
    *,
    stop_on_error: bool,
) -> tuple[list[T], bool]:
    """Run ``read`` for each workspace in turn, each with its own client.

    An API error becomes one line on ``err`` naming the workspace and the reason (never
    the key). With ``stop_on_error`` the first one ends the run; otherwise the other
    workspaces are still read. Returns the results and whether anything failed.
    """
    results: list[T] = []
    failed = False
    decoder = AnswerDecoder()
    try:
        async with http_client(config) as http:
            for ws in chosen:
                try:
                    results.append(await read(make_client(ws, http, config, decoder), ws))
                except ApiError as exc:
                    print(f"error: {describe_error(ws, exc, config.secrets())}", file=err)
                    failed = True
                    if stop_on_error:
                        break
    finally:
        decoder.close()
    return results, failed
