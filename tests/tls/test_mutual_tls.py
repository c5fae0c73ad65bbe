"""Mutual TLS with plain MQTT off: a device needs a certificate from the device CA, and it must name it."""

from __future__ import annotations

import aiomqtt
import pytest

from tests.devices.helpers import provisioned_device
from tests.support import PlatformFactory
from tests.tls.conftest import TlsPlatform, start_tls_platform
from tests.tls.pki import Pki

REFUSED = (aiomqtt.MqttError, OSError)


class Mtls:
    def __init__(self, platform: TlsPlatform, devices_ca: Pki) -> None:
        self.platform = platform
        self.devices_ca = devices_ca  # the CA given as MQTT_TLS_CLIENT_CA_FILE


@pytest.fixture(scope="module")
async def mtls(platform_factory: PlatformFactory, tmp_path_factory: pytest.TempPathFactory) -> Mtls:
    directory = tmp_path_factory.mktemp("mtls")
    devices_ca = Pki(directory, "devices")
    platform = await start_tls_platform(
        platform_factory,
        directory,
        Pki(directory, "server"),
        mqtt_tls_client_ca_file=str(devices_ca.ca_file),
        mqtt_plain_enabled=False,
    )
    return Mtls(platform, devices_ca)


async def test_a_device_with_its_own_certificate_connects(mtls: Mtls) -> None:
    tls = mtls.platform
    device_id, secret = await provisioned_device(tls.running)
    context = tls.trusting(cert=mtls.devices_ca.device_files(device_id))
    async with tls.device(device_id, secret, context) as client:
        await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        assert tls.broker.is_device_online(device_id)


async def test_one_devices_certificate_cannot_log_in_as_another_device(mtls: Mtls) -> None:
    tls = mtls.platform
    device_a, _ = await provisioned_device(tls.running)
    device_b, secret_b = await provisioned_device(tls.running)
    a_certificate = tls.trusting(cert=mtls.devices_ca.device_files(device_a))
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with tls.device(device_b, secret_b, a_certificate):  # B's right secret, A's certificate
            pass
    assert str(refused.value.rc) == "Not authorized"  # CONNACK return code 5
    assert not tls.broker.is_device_online(device_b)


async def test_a_device_without_a_certificate_or_with_a_foreign_one_is_refused(mtls: Mtls, tmp_path) -> None:
    tls = mtls.platform
    device_id, secret = await provisioned_device(tls.running)
    with pytest.raises(REFUSED):
        async with tls.device(device_id, secret, tls.trusting()):
            pass
    foreign = Pki(tmp_path, "foreign").device_files(device_id)  # names the device, signed by another CA
    with pytest.raises(REFUSED):
        async with tls.device(device_id, secret, tls.trusting(cert=foreign)):
            pass
    assert not tls.broker.is_device_online(device_id)


async def test_plain_mqtt_is_off_and_the_profile_asks_for_a_client_certificate(mtls: Mtls) -> None:
    tls = mtls.platform
    assert tls.running.platform.broker_listener is None
    device_id, secret = await provisioned_device(tls.running)
    with pytest.raises(REFUSED):  # nothing listens where plain MQTT would have
        async with tls.running.mqtt(device_id, secret):
            pass
    profile = tls.running.platform.device_broker_address()
    assert (profile.scheme, profile.port, profile.client_certificate_required) == ("mqtts", tls.tls_port, True)
