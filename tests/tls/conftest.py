"""The platform serving MQTT over TLS with certificates made by the test's own CA."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
import yaml

from qris_soundbox.broker.config import DEFAULT_CONFIG_PATH
from qris_soundbox.broker.server import PlatformBroker
from tests.support import PlatformFactory, RunningPlatform, free_port
from tests.tls.pki import Pki, client_context

# A connection that never finishes its handshake (or never sends CONNECT) is closed after this many seconds.
CONNECT_TIMEOUT_S = 2


@dataclass
class TlsPlatform:
    running: RunningPlatform
    pki: Pki
    tls_port: int
    certfile: Path
    keyfile: Path

    @property
    def broker(self) -> PlatformBroker:
        broker = self.running.platform.broker
        assert isinstance(broker, PlatformBroker)
        return broker

    def trusting(self, cafile: Path | None = None, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        return client_context(cafile or self.pki.ca_file, cert)

    @asynccontextmanager
    async def device(
        self, device_id: str, secret: str, context: ssl.SSLContext | None = None, **kwargs: object
    ) -> AsyncIterator[aiomqtt.Client]:
        """A device's MQTT session over TLS (trusting the test CA unless ``context`` says otherwise)."""
        async with aiomqtt.Client(
            "127.0.0.1",
            self.tls_port,
            username=device_id,
            password=secret,
            identifier=device_id,
            tls_context=context or self.trusting(),
            timeout=5,
            **kwargs,  # type: ignore[arg-type]
        ) as client:
            yield client


def short_timeout_config(directory: Path) -> Path:
    """The project's broker.yaml with a short connect (and handshake) timeout."""
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    config["protocol"]["connect_timeout"] = CONNECT_TIMEOUT_S
    path = directory / "broker-tls-test.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def start_tls_platform(factory: PlatformFactory, directory: Path, pki: Pki, **settings: object) -> TlsPlatform:
    certfile, keyfile = pki.server_files()
    tls_port = free_port()
    running = await factory.start(
        broker_config=short_timeout_config(directory),
        mqtt_tls_cert_file=str(certfile),
        mqtt_tls_key_file=str(keyfile),
        mqtt_tls_port=tls_port,
        mqtt_tls_server_ca_file=str(pki.ca_file),
        **settings,
    )
    return TlsPlatform(running, pki, tls_port, certfile, keyfile)


@pytest.fixture(scope="module")
async def tls(platform_factory: PlatformFactory, tmp_path_factory: pytest.TempPathFactory) -> TlsPlatform:
    directory = tmp_path_factory.mktemp("tls")
    return await start_tls_platform(platform_factory, directory, Pki(directory))


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 15) -> bool:
    """True once the other side closes (EOF or reset) within ``timeout``; nothing is expected to arrive."""
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass
    except (ConnectionError, ssl.SSLError):
        return True
    except TimeoutError:
        return False
    return True
