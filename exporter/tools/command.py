"""What every one-off command does around its own work, written once.

``report`` and ``backfill`` parse their flags, read the exporter's config (or the
demo), read each chosen workspace and report failures the same way, with the same
exit statuses: 0 ok, 1 an API or network error (said by the command), 2 a bad flag
or config (one line naming it), 130 interrupted. A command supplies its parser and
its body; :func:`run_command` does the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from exporter.api.client import ElevenLabsClient
from exporter.config import Config, ConfigError, WorkspaceConfig
from exporter.flags import FlagParser, UsageError
from exporter.tools.workspaces import for_each_workspace, workspaces

T = TypeVar("T")


def add_source_flags(
    parser: FlagParser,
    *,
    workspace_help: str,
    since_help: str,
    until_default: str,
    until_help: str,
) -> None:
    """The flags that say what to read: the config, the workspace, the period."""
    parser.add_argument(
        "--config.file", dest="config_file", type=Path, default=None, help="the exporter's config"
    )
    parser.add_argument("--workspace", default=None, help=workspace_help)
    parser.add_argument("--since", required=True, metavar="WHEN", help=since_help)
    parser.add_argument("--until", default=until_default, metavar="WHEN", help=until_help)


def add_run_flags(parser: FlagParser, *, quiet_help: str) -> None:
    """The flags that say how to run: against the demo, and how much to say on stderr."""
    parser.add_argument(
        "--demo", action="store_true", help="read the built-in simulated API (no key needed)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet_help)


@dataclass(frozen=True)
class Invocation:
    """One run of a command: its flags, the time it started and where it writes.

    ``args`` holds at least the flags of :func:`add_source_flags` and
    :func:`add_run_flags`.
    """

    args: argparse.Namespace
    now: float
    out: TextIO
    err: TextIO

    def read_workspaces(
        self,
        read: Callable[[ElevenLabsClient, WorkspaceConfig, Config], Awaitable[T]],
        *,
        stop_on_error: bool,
    ) -> tuple[list[T], bool]:
        """Load the config (or start the demo), then ``read`` each chosen workspace in
        turn; returns the results and whether any workspace failed (said on stderr)."""
        args = self.args
        with workspaces(args.config_file, args.workspace, demo=args.demo) as (config, chosen):

            async def each(client: ElevenLabsClient, ws: WorkspaceConfig) -> T:
                return await read(client, ws, config)

            return asyncio.run(
                for_each_workspace(config, chosen, each, self.err, stop_on_error=stop_on_error)
            )


def run_command(
    parser: FlagParser,
    argv: Sequence[str] | None,
    body: Callable[[Invocation], int],
    *,
    clock: Callable[[], float],
    stdout: TextIO | None,
    stderr: TextIO | None,
) -> int:
    """Parse the flags and run ``body``; returns the exit status.

    A bad flag or config, from argparse, the body or the config loader, is one line
    on stderr and status 2; ``--help`` prints usage and returns 0; Ctrl-C returns 130.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help
            return exc.code if isinstance(exc.code, int) else 2
        return body(Invocation(args, clock(), out, err))
    except (UsageError, ConfigError) as exc:
        print(exc, file=err)
        return 2
    except KeyboardInterrupt:
        return 130
