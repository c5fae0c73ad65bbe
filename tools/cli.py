"""The ``qris-soundbox`` command: one subcommand per tool, thin over the services."""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from qris_soundbox.broker.config import DEFAULT_CONFIG_PATH, BrokerConfigError, default_bind, load_broker_config
from qris_soundbox.core.config import ConfigError, apply_env_file, parse_port, parse_positive_int
from qris_soundbox.core.context import ROLES
from qris_soundbox.core.demo import demo_overrides
from qris_soundbox.core.logging import configure_logging
from qris_soundbox.tools import acquirers as acquirers_tools
from qris_soundbox.tools import backup, loadtest, partners, seed, simulate, smoke, users
from qris_soundbox.tools import devices as devices_tools
from qris_soundbox.tools.common import CannotOpenDatabase, open_database, settings_or_exit


def _port(value: str) -> int:
    try:
        return parse_port(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    try:
        return parse_positive_int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc) if "zero" in str(exc) else "expected a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qris-soundbox", description="QRIS soundbox platform", parents=[_env_file_parser()]
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('qris-soundbox')}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run database, migrations, MQTT broker, HTTP API and jobs")
    serve.add_argument("--only", action="append", choices=ROLES, help="run only this part (repeatable)")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="N > 1: N API processes sharing the HTTP port, the broker and jobs in one more, under a supervisor"
        " (default: $SERVE_WORKERS or 1, one process for everything)",
    )
    serve.add_argument(
        "--data-dir", type=Path, default=Path("var"), help="embedded PostgreSQL and exports (default ./var)"
    )
    serve.add_argument("--http-host", default="127.0.0.1")
    serve.add_argument("--http-port", type=_port, default=None, help="default: $PORT or 8000")
    serve.add_argument("--mqtt-host", default=None, help="default: from broker.yaml")
    serve.add_argument("--mqtt-port", type=_port, default=None, help="default: $MQTT_PORT, else broker.yaml's (1883)")
    serve.add_argument(
        "--mqtt-tls-port",
        type=_port,
        default=None,
        help="MQTT over TLS, served when MQTT_TLS_CERT_FILE/KEY_FILE are set (default: $MQTT_TLS_PORT, broker.yaml, 8883)",
    )
    serve.add_argument("--broker-config", type=Path, default=DEFAULT_CONFIG_PATH)
    serve.add_argument(
        "--demo", action="store_true", help="development secrets if unset, demo data, credentials printed"
    )

    serve.set_defaults(handler=_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.add_argument("--data-dir", type=Path, default=Path("var"))
    migrate.set_defaults(handler=_migrate)

    # Each tool module adds its subcommands: register(subparsers) sets `handler`.
    for module in TOOL_MODULES:
        module.register(sub)
    return parser


# Tool modules (tools/<name>.py), each with ``register(subparsers)``.
TOOL_MODULES: list = [users, acquirers_tools, seed, devices_tools, backup, simulate, smoke, loadtest, partners]


# Read when --env-file is not given, and only if it exists.
DEFAULT_ENV_FILE = Path(".env")


def _env_file_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="NAME=value lines for variables the environment does not set (default: ./.env if it exists)",
    )
    return parser


def load_env_file(argv: list[str]) -> None:
    """Apply ``--env-file`` (or ./.env) before anything reads the environment: the tools'
    option defaults do, when the parser is built."""
    path = _env_file_parser().parse_known_args(argv)[0].env_file
    if path is None and not DEFAULT_ENV_FILE.is_file():
        return
    try:
        apply_env_file(path or DEFAULT_ENV_FILE)
    except ConfigError as exc:
        sys.exit(f"qris-soundbox: {exc}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    load_env_file(argv)
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except CannotOpenDatabase as exc:
        sys.exit(f"qris-soundbox: {exc}")


def _serve(args: argparse.Namespace) -> None:
    from qris_soundbox.tools.serve import ServeOptions, StartupError, run_until_signal

    settings = settings_or_exit()
    if args.demo:
        settings = settings_or_exit(**demo_overrides(msgspec.structs.asdict(settings)))
    configure_logging(settings.log_level)
    if args.only and args.workers not in (None, 1):
        sys.exit("qris-soundbox: --only runs one process; --workers starts every role: give one of them")
    # --only: this process alone, whatever SERVE_WORKERS says.
    workers = 1 if args.only else args.workers or settings.serve_workers
    try:
        mqtt_default_host, mqtt_default_port = default_bind(load_broker_config(args.broker_config))
    except (BrokerConfigError, ValueError) as exc:
        sys.exit(f"qris-soundbox: {exc}")
    options = ServeOptions(
        roles=frozenset(args.only or ROLES),
        data_dir=args.data_dir,
        http_host=args.http_host,
        http_port=args.http_port or settings.http_port,
        mqtt_host=args.mqtt_host or mqtt_default_host,
        mqtt_port=args.mqtt_port or settings.mqtt_port or mqtt_default_port,
        mqtt_tls_port=args.mqtt_tls_port,
        broker_config=args.broker_config,
        demo=args.demo,
        on_ready=lambda _platform, urls, demo_lines: _print_banner(urls, demo_lines),
    )
    try:
        if workers > 1:
            from qris_soundbox.tools.workers import run_supervisor

            run_supervisor(settings, options, workers, _print_banner)
        else:
            run_until_signal(settings, options)
    except StartupError as exc:
        sys.exit(f"qris-soundbox: {exc}")
    except KeyboardInterrupt:
        pass


def _print_banner(urls: dict[str, str], demo_lines: list[str]) -> None:
    lines = ["", "QRIS Soundbox Platform is running  (Ctrl-C stops everything)"]
    lines += [f"  {name:<8} {url}" for name, url in urls.items()]
    if demo_lines:
        lines += ["", "Demo credentials (development only):"] + [f"  {line}" for line in demo_lines]
        # The README's tour reads its ports from these, so it works on `make run PORT=... MQTT_PORT=...` too.
        ports = {
            name: urlsplit(urls[scheme]).port
            for name, scheme in (("PORT", "http"), ("MQTT_PORT", "mqtt"))
            if scheme in urls
        }
        if ports:
            lines.append("  export " + " ".join(f"{name}={port}" for name, port in ports.items()))
    print("\n".join(lines) + "\n", flush=True)


def _migrate(args: argparse.Namespace) -> None:
    settings = settings_or_exit()
    configure_logging(settings.log_level)

    async def run() -> None:
        async with open_database(settings, args.data_dir, pool_size=1):
            pass

    asyncio.run(run())
    print("migrations applied", flush=True)


if __name__ == "__main__":
    main()
