"""Command line: parse flags, load the config, wire the parts, run.

Flags follow the Prometheus exporter conventions (``--config.file``,
``--web.listen-address``, ...). A bad config or flag exits 2 with one line, argparse's
own mistakes included (see :mod:`exporter.flags`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

import yaml

from exporter import __version__
from exporter.config import DEMO_WORKSPACE, ConfigError, demo_config, load_config
from exporter.core.shard import parse_shard, select
from exporter.flags import FlagParser, UsageError
from exporter.log import configure_logging, get_logger
from exporter.web.server import parse_listen_address
from exporter.web.webconfig import load_web_config


def build_parser() -> FlagParser:
    """The exporter's flags."""
    parser = FlagParser(
        prog="elevenlabs-exporter",
        description="Prometheus exporter for ElevenLabs credit usage.",
        epilog="Subcommands: 'elevenlabs-exporter report --help' prints a period's credits "
        "by product, voice or source next to the plan (table, CSV or JSON); "
        "'elevenlabs-exporter backfill --help' writes past usage as OpenMetrics for "
        "promtool, so a new install shows history at once.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=None,
        help="YAML config file (optional; see README)",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the config, print it without secrets, and exit (0 or 2)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=":9142",
        help="address to listen on (default :9142)",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        help="path of the metrics endpoint (default /metrics)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        default=None,
        help="TLS and basic auth config in the Prometheus exporter-toolkit format",
    )
    parser.add_argument(
        "--log.level", dest="log_level", default="info", choices=["debug", "info", "warn", "error"]
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default=None,
        choices=["json", "logfmt", "console"],
        help="log line format (default: console when stderr is a terminal, else json)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="serve realistic metrics from a built-in simulated API (no key needed)",
    )
    parser.add_argument(
        "--demo.scenario",
        dest="demo_scenario",
        default="normal",
        help="simulator scenario for --demo (normal, quota-nearly-exhausted, "
        "key-rejected, missing-permission)",
    )
    parser.add_argument(
        "--shard",
        default=None,
        metavar="INDEX/COUNT",
        help="poll only this shard's workspaces (e.g. 0/3), hashed by name",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the exporter; returns the process exit code."""
    rest = sys.argv[1:] if argv is None else argv
    if rest and rest[0] == "report":
        from exporter.tools import report

        return report.main(rest[1:])
    if rest and rest[0] == "backfill":
        from exporter.tools import backfill

        return backfill.main(rest[1:])
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        return _fail(str(err))
    # Flags first, then the files they name: a flag mistake is reported as such even
    # when the config (or a missing key) would fail too.
    try:
        host, port = parse_listen_address(args.listen_address)
    except ValueError as err:
        return _fail(f"flag error: --web.listen-address: {err}")
    from exporter.simulator.model import SCENARIOS

    if args.demo and args.demo_scenario not in SCENARIOS:
        return _fail(
            f"flag error: --demo.scenario: unknown scenario {args.demo_scenario!r}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    shard = None
    if args.shard is not None:
        try:
            shard = parse_shard(args.shard)
        except ValueError as err:
            return _fail(f"flag error: --shard: {err}")
    if not args.telemetry_path.startswith("/") or args.telemetry_path in (
        "/",
        "/healthz",
        "/readyz",
    ):
        return _fail("flag error: --web.telemetry-path: must be a path like /metrics")
    try:
        config = load_config(args.config_file, os.environ, demo=args.demo)
        web_config = load_web_config(args.web_config_file) if args.web_config_file else None
        ssl_context = web_config.ssl_context() if web_config else None
    except ConfigError as err:
        return _fail(str(err))
    if shard is not None:
        index, count = shard
        mine = set(select([ws.name for ws in config.workspaces], index, count))
        config = dataclasses.replace(
            config, workspaces=tuple(ws for ws in config.workspaces if ws.name in mine)
        )

    if args.config_check:
        described = (demo_config(config, "") if args.demo else config).describe()
        if args.demo:
            described["workspaces"] = [
                {
                    "name": DEMO_WORKSPACE,
                    "api_key": "built-in demo key",
                    "base_url": "embedded simulator",
                }
            ]
        print(yaml.safe_dump(described, sort_keys=False), end="")
        return 0

    log_format = args.log_format or ("console" if sys.stderr.isatty() else "json")
    redactor = configure_logging(args.log_level, log_format)
    redactor.add(config.secrets())
    log = get_logger()
    if web_config is not None:
        log.info("web config loaded", **web_config.describe())
        if web_config.basic_auth_users and ssl_context is None:
            log.warning("basic auth without TLS: passwords cross the network in clear text")

    simulator = None
    if args.demo:
        from exporter.simulator import SimState, Simulator

        simulator = Simulator(SimState(scenario=args.demo_scenario)).start()
        config = demo_config(config, simulator.url)
        log.info(
            "demo mode: polling the built-in simulated API",
            simulator=simulator.url,
            scenario=args.demo_scenario,
        )

    from exporter.runtime import serve

    try:
        return asyncio.run(
            serve(
                config,
                host=host,
                port=port,
                telemetry_path=args.telemetry_path,
                log=log,
                redactor=redactor,
                ssl_context=ssl_context,
                wrap_app=web_config.protect if web_config else None,
            )
        )
    finally:
        if simulator is not None:
            simulator.stop()
