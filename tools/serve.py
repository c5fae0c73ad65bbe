"""``qris-soundbox serve``: database, migrations, broker, HTTP API and jobs in one loop.

``--only api|broker|worker`` runs a subset so several processes can share one
database. SIGINT/SIGTERM stop the parts in reverse order, embedded PostgreSQL last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from amqtt.errors import BrokerError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from qris_soundbox.broker.config import DEFAULT_CONFIG_PATH, BrokerConfigError, load_broker_config, with_bind
from qris_soundbox.broker.server import PlatformBroker
from qris_soundbox.control_plane.app import create_app
from qris_soundbox.core import runtime
from qris_soundbox.core.config import Settings
from qris_soundbox.core.context import ROLES, PlatformContext
from qris_soundbox.core.demo import seed_demo
from qris_soundbox.core.jobs import scheduled_jobs
from qris_soundbox.core.net import PortInUse, bind_listener, ensure_port_free
from qris_soundbox.tools.common import open_database

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Start-up cannot go on; the message is one line for the operator."""


@dataclass
class ServeOptions:
    roles: frozenset[str] = frozenset(ROLES)
    data_dir: Path = Path("var")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    mqtt_host: str = "0.0.0.0"
    mqtt_port: int = 1883
    broker_config: Path = DEFAULT_CONFIG_PATH
    demo: bool = False
    # Called once everything is up, with the context, the URLs and the demo credential lines.
    on_ready: Callable[[PlatformContext, dict[str, str], list[str]], object] | None = field(default=None)


class _EmbeddedUvicorn(uvicorn.Server):
    # The runtime owns SIGINT/SIGTERM for all parts; uvicorn must not take them.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(settings: Settings, options: ServeOptions, stop: asyncio.Event) -> None:
    roles = options.roles
    broker_config = None
    http_socket: socket.socket | None = None
    try:
        if "broker" in roles:
            broker_config = with_bind(load_broker_config(options.broker_config), options.mqtt_host, options.mqtt_port)
            ensure_port_free(options.mqtt_host, options.mqtt_port, "--mqtt-port")
        if "api" in roles:
            http_socket = bind_listener(options.http_host, options.http_port, "--http-port (or PORT)")
    except (PortInUse, BrokerConfigError) as exc:
        raise StartupError(str(exc)) from None

    async with open_database(settings, options.data_dir) as db:
        platform = PlatformContext(
            settings=settings,
            db=db,
            roles=roles,
            instance_id=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
        )
        if "api" in roles and settings.device_token and not settings.device_auth_allow_legacy_token:
            log.warning("DEVICE_TOKEN is set but refused on /device/*: DEVICE_AUTH_ALLOW_LEGACY_TOKEN is off")
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(platform.device_verifier.close)  # last: after the broker and HTTP stopped
            if broker_config is not None:
                try:
                    broker = PlatformBroker(broker_config, platform)
                except BrokerConfigError as exc:
                    raise StartupError(str(exc)) from None
                try:
                    await broker.start()
                except BrokerError as exc:
                    raise StartupError(
                        f"MQTT broker could not start on {options.mqtt_host}:{options.mqtt_port} ({exc});"
                        " choose another port with --mqtt-port"
                    ) from None
                platform.broker = broker
                platform.broker_listener = (options.mqtt_host, options.mqtt_port)
                stack.push_async_callback(broker.shutdown)

            if "worker" in roles:
                scheduler = AsyncIOScheduler()
                for job in scheduled_jobs(platform):
                    scheduler.add_job(
                        job.run,
                        "interval",
                        seconds=job.interval_s,
                        id=job.name,
                        name=job.name,
                        max_instances=1,
                        coalesce=True,
                    )
                scheduler.start()
                stack.callback(scheduler.shutdown, wait=False)

            # Seeded before the HTTP server answers: a client that waits for /health finds the demo data.
            demo_lines = await seed_demo(platform) if options.demo else []

            if http_socket is not None:
                config = uvicorn.Config(
                    create_app(platform),
                    lifespan="off",
                    log_config=None,
                    access_log=False,
                    server_header=False,
                    proxy_headers=settings.trust_proxy,
                )
                server = _EmbeddedUvicorn(config)
                http_task = asyncio.create_task(server.serve(sockets=[http_socket]))

                async def stop_http() -> None:
                    server.should_exit = True
                    await http_task

                stack.push_async_callback(stop_http)
                while not server.started and not http_task.done():
                    await asyncio.sleep(0.01)

            await runtime.register_instance(platform)
            stack.push_async_callback(runtime.unregister_instance, platform)
            heartbeat = asyncio.create_task(runtime.heartbeat_forever(platform))
            stack.callback(heartbeat.cancel)

            urls = describe(options, roles)
            log.info("platform started", extra={"roles": sorted(roles), **urls})
            if options.on_ready is not None:
                options.on_ready(platform, urls, demo_lines)
            await stop.wait()
            log.info("platform stopping")


def describe(options: ServeOptions, roles: frozenset[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    if "api" in roles:
        host = "127.0.0.1" if options.http_host in ("0.0.0.0", "::") else options.http_host
        base = f"http://{host}:{options.http_port}"
        urls |= {
            "http": base,
            "console": f"{base}/ui",
            "openapi": f"{base}/schema/openapi.json",
            "docs": f"{base}/schema/swagger",
        }
    if "broker" in roles:
        host = "127.0.0.1" if options.mqtt_host in ("0.0.0.0", "::") else options.mqtt_host
        urls["mqtt"] = f"mqtt://{host}:{options.mqtt_port}"
    return urls


def run_until_signal(settings: Settings, options: ServeOptions) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, options, stop)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
