"""Helpers the fixtures and tests share: starting the real platform, MQTT clients."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiomqtt
import httpx

from qris_soundbox.core.config import Settings, load_settings
from qris_soundbox.core.context import ROLES, PlatformContext
from qris_soundbox.tools.serve import ServeOptions, serve

ADMIN_TOKEN = "test-admin-token"
DEVICE_TOKEN = "test-device-token"  # the legacy shared token: set only by the tests about it
WEBHOOK_SECRET = "test-webhook-secret"
# A Fernet key (URL-safe Base64 of 32 bytes) for acquirers' and partners' secrets at rest.
SECRETS_ENCRYPTION_KEY = "dGVzdC1zZWNyZXRzLWVuY3J5cHRpb24ta2V5LTMyYiE="


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_for_tests(database_url: str, **overrides: object) -> Settings:
    defaults: dict[str, object] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "integration_webhook_secret": WEBHOOK_SECRET,
        "secrets_encryption_key": SECRETS_ENCRYPTION_KEY,
        "log_level": "WARNING",
    }
    return load_settings({}, **(defaults | overrides))


@dataclass
class RunningPlatform:
    platform: PlatformContext
    http_url: str
    mqtt_host: str
    mqtt_port: int
    http: httpx.AsyncClient
    admin_headers: dict[str, str]

    @asynccontextmanager
    async def mqtt(
        self, username: str | None = None, password: str | None = None, client_id: str | None = None, **kwargs: object
    ) -> AsyncIterator[aiomqtt.Client]:
        """A real MQTT client session against this platform's broker."""
        async with aiomqtt.Client(
            self.mqtt_host,
            self.mqtt_port,
            username=username,
            password=password,
            identifier=client_id or username,
            timeout=5,
            **kwargs,  # type: ignore[arg-type]
        ) as client:
            yield client


@asynccontextmanager
async def serve_app(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """Serve an app built by ``create_app`` (plus test-only routes) on a real socket."""
    import uvicorn

    from qris_soundbox.tools.serve import _EmbeddedUvicorn

    port = free_port()
    server = _EmbeddedUvicorn(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await task


class PlatformFactory:
    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self._running: list[tuple[asyncio.Event, asyncio.Task[None], httpx.AsyncClient]] = []

    async def start(
        self, roles: frozenset[str] = frozenset(ROLES), broker_config: Path | None = None, **setting_overrides: object
    ) -> RunningPlatform:
        settings = settings_for_tests(self.database_url, **setting_overrides)
        options = ServeOptions(
            roles=roles,
            data_dir=self.data_dir,
            http_host="127.0.0.1",
            http_port=free_port(),
            mqtt_host="127.0.0.1",
            mqtt_port=free_port(),
        )
        if broker_config is not None:
            options.broker_config = broker_config
        ready: asyncio.Future[PlatformContext] = asyncio.get_running_loop().create_future()
        options.on_ready = lambda platform, _urls, _demo: ready.set_result(platform)
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, options, stop))
        done, _ = await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED, timeout=30)
        if task in done:
            task.result()  # raises the start-up error
        platform = ready.result()
        base_url = f"http://127.0.0.1:{options.http_port}"
        client = httpx.AsyncClient(base_url=base_url, timeout=10)
        self._running.append((stop, task, client))
        return RunningPlatform(
            platform=platform,
            http_url=base_url,
            mqtt_host="127.0.0.1",
            mqtt_port=options.mqtt_port,
            http=client,
            admin_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )

    async def stop(self, running: RunningPlatform) -> None:
        for entry in list(self._running):
            stop, task, client = entry
            if client is running.http:
                self._running.remove(entry)
                await self._stop_one(stop, task, client)

    async def stop_all(self) -> None:
        while self._running:
            await self._stop_one(*self._running.pop())

    @staticmethod
    async def _stop_one(stop: asyncio.Event, task: asyncio.Task[None], client: httpx.AsyncClient) -> None:
        await client.aclose()
        stop.set()
        await asyncio.wait_for(task, timeout=30)
