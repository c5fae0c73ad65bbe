"""Fixtures for broker tests: the real platform whose broker runs the test auth plugin."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import aiomqtt
import pytest
import yaml

from qris_soundbox.broker.config import DEFAULT_CONFIG_PATH
from qris_soundbox.broker.server import PlatformBroker
from tests.support import PlatformFactory, RunningPlatform

PASSWORD = "broker-test-password"
PLUGIN = "bench.auth_plugin.SharedPasswordAuthPlugin"

MqttFactory = Callable[..., AbstractAsyncContextManager[aiomqtt.Client]]


def test_broker_config(
    directory: Path,
    password: str = PASSWORD,
    *,
    extra_plugins: tuple[str, ...] = (),
    protocol: dict[str, int] | None = None,
) -> Path:
    """The project's broker.yaml with the shared-password test plugin (plus ``extra_plugins``) as its plugins,
    and ``protocol`` settings overriding broker.yaml's."""
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    config["plugins"] = {PLUGIN: {"password": password}, **{name: {} for name in extra_plugins}}
    config["protocol"] = {**config.get("protocol", {}), **(protocol or {})}
    path = directory / "broker-test.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


test_broker_config.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="module")
async def broker_platform(
    platform_factory: PlatformFactory, tmp_path_factory: pytest.TempPathFactory
) -> RunningPlatform:
    """The platform (broker role only) with a broker that accepts the shared test password."""
    config = test_broker_config(tmp_path_factory.mktemp("broker"))
    return await platform_factory.start(roles=frozenset({"broker"}), broker_config=config)


@pytest.fixture
def broker(broker_platform: RunningPlatform) -> PlatformBroker:
    assert isinstance(broker_platform.platform.broker, PlatformBroker)
    return broker_platform.platform.broker


@pytest.fixture
def mqtt(broker_platform: RunningPlatform) -> MqttFactory:
    """``mqtt(client_id, **kwargs)``: an authenticated aiomqtt client on the test broker."""

    def connect(
        client_id: str, password: str = PASSWORD, **kwargs: object
    ) -> AbstractAsyncContextManager[aiomqtt.Client]:
        return broker_platform.mqtt(username=client_id, password=password, client_id=client_id, **kwargs)

    return connect
