"""A device cannot make another device hear a message: every way a message enters the broker is checked.

The fraud this guards against: device A makes the merchant's soundbox B
announce a payment that never happened. Each path by which a client puts a
message into the broker is tried against B's topics — PUBLISH at every QoS,
retained or not, and the will (retained or not), which the broker publishes
on A's behalf after A drops. B must hear only what the platform sent it.
"""

from __future__ import annotations

import json

import aiomqtt
import pytest

from qris_soundbox.broker.server import PlatformBroker
from tests.broker import raw_client
from tests.devices.helpers import device_detail, eventually, first_message, provisioned_device
from tests.support import RunningPlatform

CONNACK = 2
NOT_AUTHORIZED = 5
WILL_RETAIN = 0x20
FORGED = json.dumps({"message_id": "forged", "type": "payment", "amount": 5_000_000, "currency": "IDR"}).encode()
SENTINEL = b'{"message_id": "sentinel"}'


def _broker(running: RunningPlatform) -> PlatformBroker:
    broker = running.platform.broker
    assert isinstance(broker, PlatformBroker)
    return broker


async def _hears_only_the_platform(running: RunningPlatform, victim: aiomqtt.Client, victim_id: str) -> None:
    """The platform sends the victim a sentinel: it must be the next (and only) thing the victim hears."""
    assert await _broker(running).deliver_to_client(victim_id, f"devices/{victim_id}/downlink/config", SENTINEL)
    message = await first_message(victim, timeout=5)
    assert message is not None and message.payload == SENTINEL, message and message.payload
    assert await first_message(victim, timeout=0.3) is None


async def _no_retained_copy(running: RunningPlatform, victim_id: str, secret: str) -> None:
    """A fresh subscription of the victim's gets no retained forgery."""
    async with running.mqtt(victim_id, secret) as again:
        await again.subscribe(f"devices/{victim_id}/downlink/#", qos=1)
        await _hears_only_the_platform(running, again, victim_id)


async def _denials(running: RunningPlatform, device_id: str) -> int:
    return int((await device_detail(running, device_id))["acl_denials"])


@pytest.mark.parametrize("retain", [False, True], ids=["will", "retained-will"])
@pytest.mark.parametrize("qos", [0, 1])
@pytest.mark.parametrize("suffix", ["downlink/payment", "uplink/payment/ack"])
async def test_connect_with_a_will_on_another_devices_topic_is_refused(
    running: RunningPlatform, retain: bool, qos: int, suffix: str
) -> None:
    attacker, attacker_secret = await provisioned_device(running)
    victim, victim_secret = await provisioned_device(running)
    async with running.mqtt(victim, victim_secret) as listener:
        await listener.subscribe(f"devices/{victim}/downlink/#", qos=1)
        raw = await raw_client.RawClient.open(running.mqtt_port)
        try:
            await raw.send(
                raw_client.connect(
                    attacker,
                    attacker_secret,
                    will=(f"devices/{victim}/{suffix}", FORGED, qos),
                    flags=WILL_RETAIN if retain else 0,
                )
            )
            connack = await raw.read()
            assert (connack.kind, connack.body[1]) == (CONNACK, NOT_AUTHORIZED)
        finally:
            raw.abort()  # were the CONNECT accepted, this drop would publish the will
        await _hears_only_the_platform(running, listener, victim)
    await _no_retained_copy(running, victim, victim_secret)
    assert await eventually(lambda: _has_denials(running, attacker))


async def _has_denials(running: RunningPlatform, device_id: str) -> bool:
    return await _denials(running, device_id) >= 1


async def test_a_real_client_with_a_forged_will_is_refused(running: RunningPlatform) -> None:
    attacker, attacker_secret = await provisioned_device(running)
    victim, _ = await provisioned_device(running)
    will = aiomqtt.Will(f"devices/{victim}/downlink/payment", FORGED, qos=1, retain=True)
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with running.mqtt(attacker, attacker_secret, will=will):
            pass
    assert str(refused.value.rc) == "Not authorized"


async def test_a_will_on_the_devices_own_uplink_is_accepted_and_dropping_it_harms_no_one(
    running: RunningPlatform,
) -> None:
    device, secret = await provisioned_device(running)
    raw = await raw_client.RawClient.open(running.mqtt_port)
    await raw.send(raw_client.connect(device, secret, will=(f"devices/{device}/uplink/heartbeat", b"{}", 1)))
    connack = await raw.read()
    assert (connack.kind, connack.body[1]) == (CONNACK, 0)
    raw.abort()
    async with running.mqtt(device, secret) as client:
        await client.subscribe(f"devices/{device}/downlink/#", qos=1)
        await _hears_only_the_platform(running, client, device)


@pytest.mark.parametrize("retain", [False, True], ids=["plain", "retained"])
@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publish_to_another_devices_downlink_is_dropped_at_every_qos(
    running: RunningPlatform, qos: int, retain: bool
) -> None:
    attacker, attacker_secret = await provisioned_device(running)
    victim, victim_secret = await provisioned_device(running)
    async with running.mqtt(victim, victim_secret) as listener, running.mqtt(attacker, attacker_secret) as forger:
        await listener.subscribe(f"devices/{victim}/downlink/#", qos=1)
        # Acknowledged like any publish (the attacker learns nothing), but routed nowhere.
        await forger.publish(f"devices/{victim}/downlink/payment", FORGED, qos=qos, retain=retain)
        await _hears_only_the_platform(running, listener, victim)
    await _no_retained_copy(running, victim, victim_secret)
    assert await eventually(lambda: _has_denials(running, attacker))
