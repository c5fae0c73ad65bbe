"""A slow reader cannot make the broker pile up messages: bounded in-flight window and queue, one copy per key.

This module's broker allows 3 QoS 1 messages awaiting PUBACK and 4 queued
behind them per session, and resends after 1 s. The client is a raw socket
that reads but does not acknowledge until the test says so.
"""

from __future__ import annotations

import asyncio

import pytest

from qris_soundbox.broker.server import PlatformBroker
from tests.broker import raw_client as raw
from tests.broker.conftest import test_broker_config
from tests.broker.raw_client import Packet, RawClient
from tests.broker.test_protocol import subscribed
from tests.devices.helpers import eventually
from tests.support import PlatformFactory, RunningPlatform

PUBLISH, PUBACK = 3, 4
IN_FLIGHT, QUEUED = 3, 4


@pytest.fixture(scope="module")
async def broker_platform(
    platform_factory: PlatformFactory, tmp_path_factory: pytest.TempPathFactory
) -> RunningPlatform:
    config = test_broker_config(
        tmp_path_factory.mktemp("broker-flow"),
        protocol={"retry_interval": 1, "max_inflight_messages": IN_FLIGHT, "max_queued_messages": QUEUED},
    )
    return await platform_factory.start(roles=frozenset({"broker"}), broker_config=config)


async def _publishes(client: RawClient, count: int) -> list[Packet]:
    packets = [await client.read() for _ in range(count)]
    assert all(p.kind == PUBLISH for p in packets), [p.kind for p in packets]
    return packets


async def _nothing_more(client: RawClient, seconds: float = 0.5) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.read(), seconds)


async def test_a_slow_reader_holds_at_most_the_window_and_the_queue(
    broker_platform: RunningPlatform, broker: PlatformBroker
) -> None:
    device = "flow-slow"
    topic = f"devices/{device}/downlink/payment"
    client = await subscribed(broker_platform, device, f"devices/{device}/downlink/#")
    dropped_before = broker._hub.dropped
    deliveries = [
        asyncio.create_task(broker.deliver_to_client(device, topic, f"m{i}".encode(), key=f"m{i}")) for i in range(10)
    ]
    first = await _publishes(client, IN_FLIGHT)
    assert [p.payload for p in first] == [b"m0", b"m1", b"m2"]
    assert broker.downlink_room(device) == 0
    assert broker._hub.dropped - dropped_before == 10 - IN_FLIGHT - QUEUED

    # A second delivery of a message still held (in flight or queued) sends nothing new.
    assert broker.holds_downlink(device, "m0") and broker.holds_downlink(device, "m5")
    assert not await broker.deliver_to_client(device, topic, b"m0", key="m0")
    # The broker's own resend: the same packet ids with DUP=1, and only the window's messages.
    resent = await _publishes(client, IN_FLIGHT)
    assert {(p.packet_id, p.payload) for p in resent} == {(p.packet_id, p.payload) for p in first}
    assert all(p.dup for p in resent) and not any(p.dup for p in first)

    # Each PUBACK lets one queued message into the window, oldest first.
    await client.send(raw.ack(PUBACK, first[0].packet_id))
    (next_one,) = await _publishes(client, 1)
    assert (next_one.payload, next_one.dup) == (b"m3", False)
    # Acknowledge everything: the queued messages follow; the dropped ones never come.
    expected = {f"m{i}".encode() for i in range(IN_FLIGHT + QUEUED)}
    seen = {p.payload for p in (*first, next_one)}
    for packet in (*first[1:], next_one):
        await client.send(raw.ack(PUBACK, packet.packet_id))
    while seen != expected:
        packet = await client.read()
        assert packet.kind == PUBLISH and packet.payload in expected, packet.payload
        await client.send(raw.ack(PUBACK, packet.packet_id))
        seen.add(packet.payload)
    await asyncio.gather(*deliveries)
    assert await eventually(lambda: _room_is(broker, device, IN_FLIGHT + QUEUED))  # the last PUBACKs in transit
    await client.close()


async def _room_is(broker: PlatformBroker, device: str, room: int) -> bool:
    return broker.downlink_room(device) == room


async def test_room_is_zero_for_a_device_that_is_not_connected(broker: PlatformBroker) -> None:
    assert broker.downlink_room("flow-nobody") == 0
    assert not broker.holds_downlink("flow-nobody", "m0")
