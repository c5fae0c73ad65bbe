"""MQTT over TLS on the real platform: payments reach a device over TLS; what is not trusted is refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from qris_soundbox.tools.api import DeviceCredential
from tests.devices.helpers import eventually, first_message
from tests.onboarding import admin_api, onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.tls.conftest import TlsPlatform, closed_by_peer
from tests.tls.pki import Pki

REFUSED = (aiomqtt.MqttError, OSError)  # a failed handshake surfaces as an ssl/OS error or an MQTT one


async def bound_device(tls: TlsPlatform) -> tuple[DeviceCredential, str]:
    """A device bound to a fresh terminal, provisioned through the admin API: (credential, terminal id)."""
    terminal_id = (await onboarded_terminal(tls.running))["terminal_id"]
    credential = await admin_api(tls.running).provision_device(f"TLS-{terminal_id[-8:]}", "generic-audio", terminal_id)
    return credential, terminal_id


async def pay_and_hear(tls: TlsPlatform, client: aiomqtt.Client, terminal_id: str) -> dict:
    paid = await post_callback(tls.running, callback_body(amount=25_000, terminal_id=terminal_id))
    assert paid.status_code == 200, paid.text
    message = await first_message(client, 10)
    assert message is not None, "no payment announcement over TLS"
    body = json.loads(message.payload)  # type: ignore[arg-type]
    assert message.topic.value.endswith("/downlink/payment")
    assert body["transaction_id"] == paid.json()["transaction_id"]
    return body


async def test_a_device_hears_a_payment_over_tls(tls: TlsPlatform) -> None:
    credential, terminal_id = await bound_device(tls)
    async with tls.device(credential.device_id, credential.secret) as client:
        await client.subscribe(f"devices/{credential.device_id}/downlink/#", qos=1)
        body = await pay_and_hear(tls, client, terminal_id)
    assert body["amount"] == 25_000


async def test_the_credential_names_the_tls_listener_and_its_ca(tls: TlsPlatform) -> None:
    credential, _ = await bound_device(tls)
    issued = (
        await tls.running.http.post(
            f"/admin/devices/{credential.device_id}/credentials/rotate", headers=tls.running.admin_headers
        )
    ).json()
    broker = issued["broker"]
    assert (broker["scheme"], broker["host"], broker["port"]) == ("mqtts", "127.0.0.1", tls.tls_port)
    assert broker["url"] == f"mqtts://127.0.0.1:{tls.tls_port}"
    assert broker["ca_pem"].strip() == tls.pki.ca_file.read_text().strip()
    assert len(broker["ca_sha256"].split(":")) == 32
    assert broker["client_certificate_required"] is False
    # MQTT_PUBLIC_HOST is not set in the tests: the loopback address is handed out, and the answer says so.
    assert any("MQTT_PUBLIC_HOST" in warning for warning in broker["warnings"])


async def test_a_plain_mqtt_client_on_the_tls_port_is_refused(tls: TlsPlatform) -> None:
    credential, _ = await bound_device(tls)
    with pytest.raises(REFUSED):
        async with aiomqtt.Client(
            "127.0.0.1",
            tls.tls_port,
            username=credential.device_id,
            password=credential.secret,
            identifier=credential.device_id,
            timeout=5,
        ):
            pass
    assert not tls.broker.is_device_online(credential.device_id)


async def test_a_client_trusting_another_ca_refuses_the_broker(tls: TlsPlatform, tmp_path) -> None:
    credential, _ = await bound_device(tls)
    stranger = Pki(tmp_path, "stranger")
    with pytest.raises(REFUSED):
        async with tls.device(credential.device_id, credential.secret, tls.trusting(stranger.ca_file)):
            pass
    assert not tls.broker.is_device_online(credential.device_id)


async def test_a_connection_that_never_handshakes_is_closed_and_others_are_served_meanwhile(
    tls: TlsPlatform,
) -> None:
    credential, terminal_id = await bound_device(tls)
    reader, writer = await asyncio.open_connection("127.0.0.1", tls.tls_port)  # TCP only, no ClientHello
    try:
        async with tls.device(credential.device_id, credential.secret) as client:
            await client.subscribe(f"devices/{credential.device_id}/downlink/#", qos=1)
            await pay_and_hear(tls, client, terminal_id)
        assert await closed_by_peer(reader), "a connection that never handshakes was kept open"
    finally:
        writer.close()


@pytest.fixture
async def restore_certificate(tls: TlsPlatform) -> AsyncIterator[None]:
    """Tests that change the served certificate put the original back (and reload) afterwards."""
    original = tls.certfile.read_bytes(), tls.keyfile.read_bytes()
    yield
    tls.certfile.write_bytes(original[0])
    tls.keyfile.write_bytes(original[1])
    assert await tls.broker.reload_tls()


def install(tls: TlsPlatform, files: tuple[Path, Path]) -> None:
    """Put a new certificate and key where the broker reads them, as an operator renewing does."""
    tls.certfile.write_bytes(files[0].read_bytes())
    tls.keyfile.write_bytes(files[1].read_bytes())


async def handshake_succeeds(tls: TlsPlatform, cafile: Path) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", tls.tls_port, ssl=tls.trusting(cafile))
    except ssl.SSLError:
        return False
    writer.close()
    return True


async def test_an_expired_server_certificate_is_refused_by_devices(tls: TlsPlatform, restore_certificate: None) -> None:
    credential, _ = await bound_device(tls)
    install(tls, tls.pki.server_files("expired", expired=True))
    assert await tls.broker.reload_tls()
    with pytest.raises(REFUSED):
        async with tls.device(credential.device_id, credential.secret):
            pass
    assert not await handshake_succeeds(tls, tls.pki.ca_file)


async def test_sighup_reloads_the_certificate_without_dropping_connected_devices(
    tls: TlsPlatform, restore_certificate: None, tmp_path: Path
) -> None:
    credential, terminal_id = await bound_device(tls)
    renewed = Pki(tmp_path, "renewed")  # a certificate from another CA: who sees which is unmistakable
    async with tls.device(credential.device_id, credential.secret) as client:
        await client.subscribe(f"devices/{credential.device_id}/downlink/#", qos=1)
        install(tls, renewed.server_files())
        os.kill(os.getpid(), signal.SIGHUP)  # serve's handler: broker.reload_tls()

        assert await eventually(lambda: handshake_succeeds(tls, renewed.ca_file), timeout=10), "not reloaded"
        assert not await handshake_succeeds(tls, tls.pki.ca_file), "a new handshake still got the old certificate"
        # The device connected before the reload kept its connection and still hears payments on it.
        assert tls.broker.is_device_online(credential.device_id)
        await pay_and_hear(tls, client, terminal_id)


async def test_a_reload_with_unusable_files_keeps_serving_the_previous_certificate(
    tls: TlsPlatform, restore_certificate: None, tmp_path: Path
) -> None:
    _, other_key = Pki(tmp_path, "other").server_files()
    tls.keyfile.write_bytes(other_key.read_bytes())  # a key that does not match the certificate
    assert not await tls.broker.reload_tls()
    assert await handshake_succeeds(tls, tls.pki.ca_file)


# mosquitto_sub comes from Debian's mosquitto-clients, which make install-test installs: never skipped.
async def test_mosquitto_sub_with_cafile_receives_a_payment(tls: TlsPlatform) -> None:
    credential, terminal_id = await bound_device(tls)
    device_id = credential.device_id
    sub = await asyncio.create_subprocess_exec(
        "mosquitto_sub",
        *("-h", "127.0.0.1", "-p", str(tls.tls_port), "--cafile", str(tls.pki.ca_file)),
        *("-i", device_id, "-u", device_id, "-P", credential.secret),
        *("-q", "1", "-t", f"devices/{device_id}/downlink/#", "-C", "1", "-v"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert await eventually(lambda: _online(tls, device_id), timeout=10), "mosquitto_sub did not connect"
        paid = await post_callback(tls.running, callback_body(amount=25_000, terminal_id=terminal_id))
        out, err = await asyncio.wait_for(sub.communicate(), 20)
    finally:
        if sub.returncode is None:
            sub.kill()
            await sub.wait()
    topic, _, payload = out.decode().partition(" ")
    assert topic == f"devices/{device_id}/downlink/payment", out + err
    assert json.loads(payload)["transaction_id"] == paid.json()["transaction_id"]


async def _online(tls: TlsPlatform, device_id: str) -> bool:
    return tls.broker.is_device_online(device_id)


async def test_plain_mqtt_is_still_served_beside_tls(tls: TlsPlatform) -> None:
    credential, _ = await bound_device(tls)
    async with tls.running.mqtt(credential.device_id, credential.secret):
        assert tls.broker.is_device_online(credential.device_id)
