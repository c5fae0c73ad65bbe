"""A refused CONNECT touches no existing session; an accepted one takes it over (amqtt 0.12.1 did both before auth)."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from qris_soundbox.broker.server import PlatformBroker
from tests.broker import raw_client
from tests.broker.conftest import PASSWORD, MqttFactory
from tests.broker.test_routing import next_message
from tests.support import RunningPlatform


@pytest.mark.parametrize("clean_session", [True, False])
async def test_refused_connect_with_a_devices_client_id_leaves_the_device_connected_and_subscribed(
    mqtt: MqttFactory, broker: PlatformBroker, clean_session: bool
) -> None:
    device = f"victim-{int(clean_session)}"
    async with mqtt(device, clean_session=False) as victim, mqtt(f"{device}-pub") as pub:
        await victim.subscribe(f"devices/{device}/downlink/#", qos=1)
        with pytest.raises(aiomqtt.MqttCodeError) as refused:
            async with mqtt(device, password="wrong", clean_session=clean_session):
                pass
        assert str(refused.value.rc) == "Not authorized"  # CONNACK return code 5
        session, _ = broker.sessions[device]
        assert session.transitions.state == "connected"
        await pub.publish(f"devices/{device}/downlink/payment", b"still here", qos=1)
        assert (await next_message(victim)).payload == b"still here"


async def test_connect_without_credentials_is_refused(broker_platform: object) -> None:
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with aiomqtt.Client("127.0.0.1", broker_platform.mqtt_port, identifier="nobody", timeout=5):  # type: ignore[attr-defined]
            pass
    assert str(refused.value.rc) == "Not authorized"


async def test_authenticated_connect_takes_over_the_connected_session(
    mqtt: MqttFactory, broker: PlatformBroker
) -> None:
    async with mqtt("takeover", clean_session=False) as first:
        await first.subscribe("devices/takeover/downlink/#", qos=1)
        async with mqtt("takeover", clean_session=False) as second, mqtt("takeover-pub") as pub:
            # The resumed session kept the subscription made over the first connection.
            await pub.publish("devices/takeover/downlink/payment", b"to the new connection", qos=1)
            assert (await next_message(second)).payload == b"to the new connection"
            assert broker.sessions["takeover"][0].transitions.state == "connected"
            with pytest.raises(aiomqtt.MqttError):
                await first.publish("devices/takeover/uplink/heartbeat", b"", qos=1, timeout=2)


async def test_deliver_to_client_reaches_only_that_client(mqtt: MqttFactory, broker: PlatformBroker) -> None:
    async with mqtt("direct-1") as one, mqtt("direct-2") as two:
        await one.subscribe("devices/direct-1/downlink/#", qos=1)
        await two.subscribe("devices/+/downlink/#", qos=1)
        await two.subscribe("sentinel/direct", qos=1)
        assert await broker.deliver_to_client("direct-1", "devices/direct-1/downlink/payment", b"pay", qos=1)
        message = await next_message(one)
        assert (message.payload, message.qos) == (b"pay", 1)
        await broker.internal_message_broadcast("sentinel/direct", b"end", 1)
        assert (await next_message(two)).payload == b"end"


async def test_deliver_to_client_refuses_what_the_client_did_not_subscribe(
    mqtt: MqttFactory, broker: PlatformBroker
) -> None:
    async with mqtt("direct-3") as client:
        await client.subscribe("devices/direct-3/downlink/payment", qos=1)
        assert not await broker.deliver_to_client("direct-3", "devices/direct-3/downlink/config", b"{}")
        assert not await broker.deliver_to_client("nobody-here", "devices/nobody-here/downlink/payment", b"{}")
        with pytest.raises(ValueError):
            await broker.deliver_to_client("direct-3", "devices/direct-3/downlink/#", b"{}")


async def test_deliver_to_client_queues_for_an_offline_persistent_session(
    mqtt: MqttFactory, broker: PlatformBroker
) -> None:
    async with mqtt("direct-offline", clean_session=False) as client:
        await client.subscribe("devices/direct-offline/downlink/#", qos=1)
    assert not await broker.deliver_to_client("direct-offline", "devices/direct-offline/downlink/payment", b"later")
    async with mqtt("direct-offline", clean_session=False) as client:
        assert (await next_message(client)).payload == b"later"


async def test_many_concurrent_connects_all_land_in_the_index(mqtt: MqttFactory, broker: PlatformBroker) -> None:
    async def device(number: int, ready: asyncio.Event, done: asyncio.Event) -> None:
        async with mqtt(f"crowd-{number}") as client:
            await client.subscribe(f"devices/crowd-{number}/downlink/#", qos=1)
            ready.set()
            await done.wait()

    done = asyncio.Event()
    readies = [asyncio.Event() for _ in range(30)]
    tasks = [asyncio.create_task(device(n, readies[n], done)) for n in range(30)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
    delivered = [
        await broker.deliver_to_client(f"crowd-{n}", f"devices/crowd-{n}/downlink/payment", b"x") for n in range(30)
    ]
    done.set()
    await asyncio.gather(*tasks)
    assert all(delivered)


async def test_a_dropped_connection_publishes_its_will_but_a_revoked_one_does_not(
    broker_platform: RunningPlatform, mqtt: MqttFactory, broker: PlatformBroker
) -> None:
    async with mqtt("will-watcher") as watcher:
        await watcher.subscribe("wills/#", qos=1)
        for client_id in ("will-dropped", "will-revoked"):
            raw = await raw_client.RawClient.open(broker_platform.mqtt_port)
            await raw.send(raw_client.connect(client_id, PASSWORD, will=(f"wills/{client_id}", b"gone", 1)))
            assert (await raw.read()).kind == 2
            if client_id == "will-dropped":
                raw.abort()  # as if the network failed: the will is published
                assert (await next_message(watcher)).topic.value == "wills/will-dropped"
            else:
                # The platform revoked its credential: nothing more is published on its behalf.
                assert await broker.disconnect_client(client_id)
                await raw.closed_by_broker()
        await broker.internal_message_broadcast("wills/sentinel", b"end", 1)
        assert (await next_message(watcher)).topic.value == "wills/sentinel"
