"""``qris-soundbox serve``: database, migrations, broker, HTTP API and jobs in one loop.

``--only api|broker|worker`` runs a subset so several processes can share one
database; ``--workers N`` starts such processes on this machine under a supervisor
(tools/workers.py), which runs each through ``serve`` here. SIGINT/SIGTERM stop the parts in reverse order, embedded PostgreSQL last;
SIGHUP reloads the broker's TLS certificate (connected devices stay connected).
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
from amqtt.errors import BrokerError, PluginError, PluginLoadError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from litestar import Litestar

from qris_soundbox.broker.config import (
    DEFAULT_CONFIG_PATH,
    BrokerConfigError,
    ListenerChoices,
    Listeners,
    load_broker_config,
    resolve_listeners,
)
from qris_soundbox.broker.dialects import DialectError, Dialects
from qris_soundbox.broker.server import PlatformBroker
from qris_soundbox.control_plane.app import METRICS_ONLY_MODULES, create_app
from qris_soundbox.core import runtime
from qris_soundbox.core.announcement_signing import load_announcement_signer
from qris_soundbox.core.config import Settings
from qris_soundbox.core.context import ROLES, PlatformContext
from qris_soundbox.core.demo import seed_demo
from qris_soundbox.core.jobs import scheduled_jobs
from qris_soundbox.core.net import HTTP_PORT_FLAG, MQTT_PORT_FLAG, PortInUse, Wanted, bind_listeners
from qris_soundbox.core.partners.notify import PartnerNotifier
from qris_soundbox.core.partners.platform_key import load_platform_key
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
    # None: MQTT_TLS_PORT, else broker.yaml's tls listener, else 8883 (served only with a certificate).
    mqtt_tls_port: int | None = None
    broker_config: Path = DEFAULT_CONFIG_PATH
    demo: bool = False
    # serve --workers (tools/workers.py): this API process shares its HTTP port with its siblings (SO_REUSEPORT) ...
    reuse_port: bool = False
    # ... and serves its own GET /metrics on this port beside it (METRICS_PORT + its number), if set;
    metrics_port: int | None = None
    # the supervisor has migrated the database already;
    migrate: bool = True
    # the broker runs in a sibling process, listening there: where this process's credentials send devices.
    sibling_broker: Listeners | None = None
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
    listeners = Listeners(plain=None, tls=None)
    http_socket: socket.socket | None = None
    metrics_socket: socket.socket | None = None
    try:
        # The broker's ports are only checked here (amqtt binds its own), the HTTP ones are kept bound.
        probed: list[Wanted] = []
        kept: list[Wanted] = []
        if "broker" in roles:
            broker_config, listeners = resolve_listeners(
                load_broker_config(options.broker_config), listener_choices(settings, options)
            )
            if listeners.plain is not None:
                probed.append(Wanted(*listeners.plain, MQTT_PORT_FLAG))
            if listeners.tls is not None:
                probed.append(Wanted(*listeners.tls, "--mqtt-tls-port (or MQTT_TLS_PORT)"))
        if "api" in roles:
            kept.append(Wanted(options.http_host, options.http_port, HTTP_PORT_FLAG, options.reuse_port))
            if options.metrics_port:
                kept.append(Wanted(options.http_host, options.metrics_port, "METRICS_PORT"))
        elif settings.metrics_port:
            # No API in this process: its own figures (broker sessions, acks) still reach Prometheus.
            kept.append(Wanted(options.http_host, settings.metrics_port, "METRICS_PORT"))
        sockets = bind_listeners([*kept, *probed])
        for sock in sockets[len(kept) :]:
            sock.close()
        http_socket = sockets[0] if kept else None
        metrics_socket = sockets[1] if len(kept) > 1 else None
    except (PortInUse, BrokerConfigError) as exc:
        raise StartupError(str(exc)) from None

    try:
        # Read (or, the first time, created) before anything starts: a bad key file stops serve here.
        platform_key = load_platform_key(settings, options.data_dir)
        announcement_signer = load_announcement_signer(settings, options.data_dir)
        dialects = Dialects.load()
    except DialectError as exc:
        raise StartupError(f"dialect file: {exc}") from None
    except ValueError as exc:
        raise StartupError(str(exc)) from None

    async with open_database(settings, options.data_dir, migrate_first=options.migrate) as db:
        platform = PlatformContext(
            settings=settings,
            db=db,
            roles=roles,
            instance_id=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
        )
        platform.platform_key = platform_key
        platform.announcement_signer = announcement_signer
        platform.unsigned_dialects = frozenset(d for d in dialects.ids() if not dialects.signs_announcements(d))
        if "api" in roles and settings.device_token and not settings.device_auth_allow_legacy_token:
            log.warning("DEVICE_TOKEN is set but refused on /device/*: DEVICE_AUTH_ALLOW_LEGACY_TOKEN is off")
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(platform.device_verifier.close)  # last: after the broker and HTTP stopped
            # Then what HTTP heartbeats and uplinks left in the node's batch (the broker's plugin flushes
            # it too; an --only api process has no broker to do it).
            stack.push_async_callback(platform.uplink_writes.close)
            stack.push_async_callback(platform.acquirer_clients.aclose)  # its HTTP pools to the acquirers
            # Registered before the broker listens: another node must see this one alive before it sees
            # devices online here, or it would take them for a dead node's.
            await runtime.register_instance(platform)
            stack.push_async_callback(runtime.unregister_instance, platform)
            heartbeat = asyncio.create_task(runtime.heartbeat_forever(platform))
            stack.callback(heartbeat.cancel)
            if broker_config is not None:
                try:
                    broker = PlatformBroker(broker_config, platform)
                except BrokerConfigError as exc:
                    raise StartupError(str(exc)) from None
                except (PluginError, PluginLoadError) as exc:
                    # A plugin's options in the broker config (an ACL rules file that cannot be read, ...).
                    reasons = (str(reason) for reason in (exc, exc.__cause__) if reason is not None and str(reason))
                    raise StartupError(f"{options.broker_config}: {': '.join(reasons)}") from None
                try:
                    await broker.start()
                except BrokerError as exc:
                    raise StartupError(
                        f"MQTT broker could not start on {options.mqtt_host}:{options.mqtt_port} ({exc});"
                        " choose another port with --mqtt-port"
                    ) from None
                platform.broker = broker
                platform.broker_listener = listeners.plain
                platform.broker_tls_listener = listeners.tls
                stack.push_async_callback(broker.shutdown)
                # Also without TLS: `systemctl reload` must not kill a broker (SIGHUP's default action).
                _reload_tls_on_sighup(broker, stack)
            elif options.sibling_broker is not None:
                platform.broker_listener = options.sibling_broker.plain
                platform.broker_tls_listener = options.sibling_broker.tls

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
                # Partners' notifications: woken on commit (LISTEN), so not a scheduled job.
                notifier = PartnerNotifier(platform, platform_key)
                notifier_task = asyncio.create_task(notifier.run_forever())
                stack.push_async_callback(notifier.close)
                stack.callback(notifier_task.cancel)

            # Seeded before the HTTP server answers: a client that waits for /health finds the demo data.
            demo_lines = await seed_demo(platform) if options.demo else []

            if http_socket is not None:
                app = create_app(platform) if "api" in roles else create_app(platform, METRICS_ONLY_MODULES)
                await _start_http(app, http_socket, stack)
            if metrics_socket is not None:
                await _start_http(create_app(platform, METRICS_ONLY_MODULES), metrics_socket, stack)

            metrics_port = options.metrics_port if "api" in roles else settings.metrics_port
            urls = describe(options, roles, listeners, metrics_port)
            log.info("platform started", extra={"roles": sorted(roles), **urls})
            if options.on_ready is not None:
                options.on_ready(platform, urls, demo_lines)
            await stop.wait()
            log.info("platform stopping")


async def _start_http(app: Litestar, sock: socket.socket, stack: contextlib.AsyncExitStack) -> None:
    """Serve ``app`` on ``sock`` in this loop until ``stack`` closes; returns once it answers."""
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        # X-Forwarded-For is read by control_plane/auth.client_ip (TRUST_PROXY, TRUSTED_PROXIES) alone.
        proxy_headers=False,
    )
    server = _EmbeddedUvicorn(config)
    http_task = asyncio.create_task(server.serve(sockets=[sock]))

    async def stop_http() -> None:
        server.should_exit = True
        await http_task

    stack.push_async_callback(stop_http)
    while not server.started and not http_task.done():
        await asyncio.sleep(0.01)


def listener_choices(settings: Settings, options: ServeOptions) -> ListenerChoices:
    return ListenerChoices(
        host=options.mqtt_host,
        port=options.mqtt_port,
        plain_enabled=settings.mqtt_plain_enabled,
        tls_port=options.mqtt_tls_port or settings.mqtt_tls_port,
        tls_certfile=settings.mqtt_tls_cert_file,
        tls_keyfile=settings.mqtt_tls_key_file,
        tls_client_cafile=settings.mqtt_tls_client_ca_file,
    )


def _reload_tls_on_sighup(broker: PlatformBroker, stack: contextlib.AsyncExitStack) -> None:
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[bool]] = set()

    def reload() -> None:
        task = asyncio.create_task(broker.reload_tls())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):  # no SIGHUP here, or not the main thread
        log.warning("SIGHUP cannot reload the TLS certificate in this process: restart to change it")
        return
    stack.callback(loop.remove_signal_handler, signal.SIGHUP)


def describe(
    options: ServeOptions, roles: frozenset[str], listeners: Listeners, metrics_port: int | None = None
) -> dict[str, str]:
    urls: dict[str, str] = {}
    host = "127.0.0.1" if options.http_host in ("0.0.0.0", "::") else options.http_host
    if "api" in roles:
        base = f"http://{host}:{options.http_port}"
        urls |= {
            "http": base,
            "console": f"{base}/ui",
            "openapi": f"{base}/schema/openapi.json",
            "docs": f"{base}/schema/swagger",
        }
    if metrics_port:  # a process without the api role, or an API worker's own (serve --workers)
        urls["metrics"] = f"http://{host}:{metrics_port}/metrics"
    for scheme, address in (("mqtt", listeners.plain), ("mqtts", listeners.tls)):
        if address is not None:
            host = "127.0.0.1" if address[0] in ("0.0.0.0", "::") else address[0]
            urls[scheme] = f"{scheme}://{host}:{address[1]}"
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
