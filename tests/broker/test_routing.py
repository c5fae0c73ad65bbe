"""MQTT behaviour the indexed broker must keep, through a real client (aiomqtt) against the real broker.

A message that must NOT arrive is checked by publishing a sentinel afterwards
on a topic the client does match: the first message received must be the
sentinel (messages to one subscriber arrive in order), so no test waits on a
clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import aiomqtt

from qris_soundbox.broker.server import PlatformBroker
from tests.broker.conftest import MqttFactory
from tests.devices.helpers import eventually


async def next_message(client: aiomqtt.Client, timeout: float = 5) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(aiter(client.messages)), timeout)


async def test_plus_matches_exactly_one_level(mqtt: MqttFactory) -> None:
    async with mqtt("plus-sub") as sub, mqtt("plus-pub") as pub:
        await sub.subscribe("devices/+/uplink/heartbeat", qos=1)
        await sub.subscribe("sentinel/plus", qos=1)
        await pub.publish("devices/d1/extra/uplink/heartbeat", b"too deep", qos=1)
        await pub.publish("devices/uplink/heartbeat", b"too shallow", qos=1)
        await pub.publish("devices/d1/uplink/heartbeat", b"hit", qos=1)
        await pub.publish("sentinel/plus", b"end", qos=1)
        assert (await next_message(sub)).payload == b"hit"
        assert (await next_message(sub)).payload == b"end"


async def test_hash_matches_the_level_itself_and_everything_below(mqtt: MqttFactory) -> None:
    async with mqtt("hash-sub") as sub, mqtt("hash-pub") as pub:
        await sub.subscribe("devices/d2/downlink/#", qos=1)
        await sub.subscribe("sentinel/hash", qos=1)
        await pub.publish("devices/d2/downlink", b"parent", qos=1)
        await pub.publish("devices/d2/downlink/payment", b"child", qos=1)
        await pub.publish("devices/d2/downlink/dynamic-qr/response", b"grandchild", qos=1)
        await pub.publish("devices/d3/downlink/payment", b"other device", qos=1)
        await pub.publish("sentinel/hash", b"end", qos=1)
        received = [(await next_message(sub)).payload for _ in range(4)]
        assert received == [b"parent", b"child", b"grandchild", b"end"]


async def test_exact_and_wildcard_subscribers_each_get_one_copy(mqtt: MqttFactory) -> None:
    async with mqtt("fan-exact") as exact, mqtt("fan-wild") as wild, mqtt("fan-pub") as pub:
        await exact.subscribe("devices/d4/uplink/heartbeat", qos=1)
        await wild.subscribe("devices/+/uplink/#", qos=1)
        await pub.publish("devices/d4/uplink/heartbeat", b"beat", qos=1)
        assert (await next_message(exact)).payload == b"beat"
        assert (await next_message(wild)).payload == b"beat"


async def test_dollar_topics_are_not_matched_by_leading_wildcards(mqtt: MqttFactory, broker: PlatformBroker) -> None:
    async with mqtt("dollar-hash") as hash_sub, mqtt("dollar-plus") as plus_sub, mqtt("dollar-sys") as sys_sub:
        await hash_sub.subscribe("#", qos=0)
        await plus_sub.subscribe("+/broker/load", qos=0)
        await sys_sub.subscribe("$SYS/#", qos=0)
        # Clients may not publish to '$' topics; the broker itself may.
        await broker.internal_message_broadcast("$SYS/broker/load", b"0.5", 0)
        await broker.internal_message_broadcast("sentinel/broker/load", b"end", 0)
        assert (await next_message(sys_sub)).payload == b"0.5"
        assert (await next_message(hash_sub)).payload == b"end"
        assert (await next_message(plus_sub)).payload == b"end"


async def test_qos1_delivery_is_acknowledged_at_qos1(mqtt: MqttFactory) -> None:
    async with mqtt("qos1-sub") as sub, mqtt("qos1-pub") as pub:
        await sub.subscribe("devices/d5/downlink/payment", qos=1)
        await pub.publish("devices/d5/downlink/payment", b'{"amount": 25000}', qos=1)
        message = await next_message(sub)
        assert message.qos == 1
        assert message.payload == b'{"amount": 25000}'


async def test_unacknowledged_qos1_is_redelivered_to_the_resumed_session(mqtt: MqttFactory) -> None:
    async with mqtt("redeliver", clean_session=False) as sub:
        await sub.subscribe("devices/d6/downlink/#", qos=1)
    async with mqtt("redeliver", clean_session=False) as sub, mqtt("redeliver-pub") as pub:
        sub._client.manual_ack_set(True)  # paho underneath: hold the PUBACK back
        await pub.publish("devices/d6/downlink/payment", b"pay-1", qos=1)
        first = await next_message(sub)
        assert first.payload == b"pay-1"
    async with mqtt("redeliver", clean_session=False) as sub:
        again = await next_message(sub)
        assert again.payload == b"pay-1"
        assert again.qos == 1


async def test_retained_message_is_set_received_on_subscribe_and_cleared(mqtt: MqttFactory) -> None:
    async with mqtt("retain-pub") as pub:
        await pub.publish("devices/d7/downlink/config", b'{"volume": 3}', qos=1, retain=True)
    async with mqtt("retain-sub-1") as sub:
        await sub.subscribe("devices/d7/downlink/#", qos=1)
        message = await next_message(sub)
        assert message.payload == b'{"volume": 3}'
        assert message.retain
    async with mqtt("retain-clear") as pub:
        await pub.publish("devices/d7/downlink/config", b"", qos=1, retain=True)
    async with mqtt("retain-sub-2") as sub, mqtt("retain-sentinel") as pub:
        await sub.subscribe("devices/d7/downlink/#", qos=1)
        await pub.publish("devices/d7/downlink/sentinel", b"end", qos=1)
        assert (await next_message(sub)).payload == b"end"


async def test_persistent_session_gets_messages_sent_while_offline(mqtt: MqttFactory) -> None:
    async with mqtt("persistent", clean_session=False) as sub:
        await sub.subscribe("devices/d8/downlink/#", qos=1)
    async with mqtt("persistent-pub") as pub:
        await pub.publish("devices/d8/downlink/payment", b"while-offline-1", qos=1)
        await pub.publish("devices/d8/downlink/payment", b"while-offline-2", qos=1)
    async with mqtt("persistent", clean_session=False) as sub:
        first, second = await next_message(sub), await next_message(sub)
        assert [first.payload, second.payload] == [b"while-offline-1", b"while-offline-2"]
        # Queued for an established subscription, not retained: [MQTT-3.3.1-9].
        assert not first.retain


async def test_clean_session_forgets_subscriptions(mqtt: MqttFactory, broker: PlatformBroker) -> None:
    async with mqtt("forgetful", clean_session=False) as sub:
        await sub.subscribe("devices/d9/downlink/#", qos=1)
    assert broker.subscription_index.holds_any("forgetful")
    async with mqtt("forgetful", clean_session=True):
        assert not broker.subscription_index.holds_any("forgetful")
        assert "devices/d9/downlink/#" not in broker.subscriptions


async def test_will_is_published_when_a_client_vanishes(mqtt: MqttFactory, broker_platform: object) -> None:
    async with mqtt("will-watcher") as watcher:
        await watcher.subscribe("devices/d10/uplink/status", qos=1)
        will = aiomqtt.Will("devices/d10/uplink/status", b"offline", qos=1)
        client = aiomqtt.Client(
            "127.0.0.1",
            broker_platform.mqtt_port,
            username="d10",  # type: ignore[attr-defined]
            password="broker-test-password",
            identifier="d10",
            will=will,
            timeout=5,
        )
        await client.__aenter__()
        # End the TCP connection without DISCONNECT (shutdown, not close: the event loop still watches the fd).
        client._client.socket().shutdown(socket.SHUT_RDWR)
        assert (await next_message(watcher)).payload == b"offline"
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


async def test_unsubscribe_stops_delivery(mqtt: MqttFactory, broker: PlatformBroker) -> None:
    async with mqtt("unsub") as sub, mqtt("unsub-pub") as pub:
        await sub.subscribe("devices/d11/downlink/#", qos=1)
        await sub.subscribe("sentinel/unsub", qos=1)
        await sub.unsubscribe("devices/d11/downlink/#")
        await pub.publish("devices/d11/downlink/payment", b"after unsubscribe", qos=1)
        await pub.publish("sentinel/unsub", b"end", qos=1)
        assert (await next_message(sub)).payload == b"end"
        assert "devices/d11/downlink/#" not in broker.subscriptions


async def test_disconnected_clean_sessions_leave_nothing_in_the_indexes(
    mqtt: MqttFactory, broker: PlatformBroker
) -> None:
    for device in range(20):
        async with mqtt(f"transient-{device}") as client:
            await client.subscribe(f"devices/transient-{device}/downlink/#", qos=1)
    async with mqtt("transient-sentinel"):
        pass

    # The session monitor drops disconnected clean sessions within a second or so.
    async def dropped() -> bool:
        return not any(f.startswith("devices/transient-") for f in broker.subscriptions)

    assert await eventually(dropped)
    assert not any(c.startswith("transient-") for c in broker.subscription_index.clients())
    assert broker.subscription_index.wildcard_filters_matching("devices/transient-3/downlink/payment") == []
