"""The broker's own packet path (broker/protocol.py), byte by byte through raw sockets.

This module's broker has small limits (1 s CONNECT timeout and QoS 1 resend,
1 KiB packets) and a plugin recording events. Nothing here asserts a
duration: a test waits for what must happen, bounded by ``raw_client.WAIT_S``.
"""

from __future__ import annotations

import asyncio

import pytest

from qris_soundbox.broker.server import PlatformBroker
from tests.broker import raw_client as raw
from tests.broker.conftest import PASSWORD, MqttFactory, test_broker_config
from tests.broker.raw_client import RawClient
from tests.broker.recording_plugin import RecordingPlugin
from tests.broker.test_routing import next_message
from tests.devices.helpers import eventually
from tests.support import PlatformFactory, RunningPlatform

MAX_PACKET = 1024
CONNACK_OK = b"\x20\x02\x00\x00"


@pytest.fixture(scope="module")
async def broker_platform(
    platform_factory: PlatformFactory, tmp_path_factory: pytest.TempPathFactory
) -> RunningPlatform:
    config = test_broker_config(
        tmp_path_factory.mktemp("broker-protocol"),
        extra_plugins=("tests.broker.recording_plugin.RecordingPlugin",),
        protocol={"connect_timeout": 1, "retry_interval": 1, "max_packet_size": MAX_PACKET},
    )
    return await platform_factory.start(roles=frozenset({"broker"}), broker_config=config)


@pytest.fixture
def recorder(broker: PlatformBroker) -> RecordingPlugin:
    plugin = broker.plugins_manager.get_plugin("RecordingPlugin")
    assert isinstance(plugin, RecordingPlugin)
    return plugin


async def connected(platform: RunningPlatform, client_id: str, **kwargs: object) -> RawClient:
    client = await RawClient.open(platform.mqtt_port)
    await client.send(raw.connect(client_id, PASSWORD, **kwargs))  # type: ignore[arg-type]
    connack = await client.read()
    assert (connack.kind, connack.body) == (2, b"\x00\x00")
    return client


async def subscribed(platform: RunningPlatform, client_id: str, topic_filter: str, **kwargs: object) -> RawClient:
    client = await connected(platform, client_id, **kwargs)
    await client.send(raw.subscribe(1, topic_filter, 1))
    suback = await client.read()
    assert (suback.kind, suback.body) == (9, b"\x00\x01\x01")
    return client


async def still_serving(platform: RunningPlatform, tag: str) -> None:
    """The broker goes on serving other clients: a round trip through it."""
    client = await subscribed(platform, f"alive-{tag}", f"sentinel/{tag}")
    await client.send(raw.publish(f"sentinel/{tag}", b"ok", 1, 7))
    kinds = {(await client.read()).kind for _ in range(2)}  # our PUBACK and the delivery, in either order
    assert kinds == {3, 4}
    await client.close()


# -- malformed, partial, oversized ------------------------------------------------------------------------------

FIRST_PACKET_VIOLATIONS = {
    "publish before connect": raw.publish("a/b", b"x"),
    "pingreq before connect": raw.PINGREQ,
    "connect reserved flag": raw.connect("bad-reserved", PASSWORD, flags=0x01),
    "connect wrong protocol name": raw.packet(0x10, raw.utf8("MQIsdp") + bytes([3, 2, 0, 60]) + raw.utf8("x")),
    "connect with bad fixed-header flags": bytes([0x11]) + raw.connect("bad-flags", PASSWORD)[1:],
    "connect cut short": raw.packet(0x10, raw.utf8("MQTT") + bytes([4])),
    "connect with trailing bytes": raw.packet(0x10, raw.connect("trailing", PASSWORD)[2:] + b"\x00"),
    "will qos 3": raw.connect("bad-will", PASSWORD, will=("w/t", b"bye", 3)),
    "will topic with a wildcard": raw.connect("bad-will-topic", PASSWORD, will=("w/#", b"bye", 1)),
    "client id not utf-8": raw.packet(0x10, raw.utf8("MQTT") + bytes([4, 2, 0, 60]) + raw.utf8(b"\xff\xfe")),
    "remaining length of five bytes": b"\x10\xff\xff\xff\xff\x01",
}

AFTER_CONNECT_VIOLATIONS = {
    "second connect": raw.connect("again", PASSWORD),
    "publish qos 3": bytes([0x36]) + raw.publish("a/b", b"x", 1, 1)[1:],
    "publish to a wildcard topic": raw.publish("a/+", b"x"),
    "publish to an empty topic": raw.publish("", b"x"),
    "publish topic not utf-8": raw.publish(b"a/\xc3", b"x"),
    "publish topic with U+0000": raw.publish("a/\x00", b"x"),
    "publish qos 1 with packet id 0": raw.publish("a/b", b"x", 1, 0),
    "subscribe with flags 0": raw.packet(0x80, b"\x00\x01" + raw.utf8("a/b") + b"\x01"),
    "subscribe without a filter": raw.packet(0x82, b"\x00\x01"),
    "subscribe requesting qos 3": raw.packet(0x82, b"\x00\x01" + raw.utf8("a/b") + b"\x03"),
    "subscribe to an empty filter": raw.packet(0x82, b"\x00\x01" + raw.utf8("") + b"\x01"),
    "unsubscribe without a filter": raw.packet(0xA2, b"\x00\x01"),
    "puback of wrong length": raw.packet(0x40, b"\x00\x01\x00"),
    "pingreq with a body": raw.packet(0xC0, b"\x00"),
    "connack from a client": b"\x20\x02\x00\x00",
    "reserved packet type 15": b"\xf0\x00",
}


@pytest.mark.parametrize("data", FIRST_PACKET_VIOLATIONS.values(), ids=FIRST_PACKET_VIOLATIONS.keys())
async def test_malformed_first_packet_closes_the_connection_without_connack(
    broker_platform: RunningPlatform, data: bytes
) -> None:
    client = await RawClient.open(broker_platform.mqtt_port)
    await client.send(data)
    assert await client.closed_by_broker() == b""
    await still_serving(broker_platform, "first")


@pytest.mark.parametrize("data", AFTER_CONNECT_VIOLATIONS.values(), ids=AFTER_CONNECT_VIOLATIONS.keys())
async def test_protocol_violation_after_connect_closes_the_connection(
    broker_platform: RunningPlatform, broker: PlatformBroker, data: bytes
) -> None:
    client = await connected(broker_platform, "violator")
    await client.send(data)
    await client.closed_by_broker()
    await still_serving(broker_platform, "after")
    assert not broker.is_device_online("violator")


async def test_every_qos1_publish_is_acknowledged_even_to_a_dollar_topic_which_is_dropped(
    broker_platform: RunningPlatform, broker: PlatformBroker
) -> None:
    """A client keeps an unacknowledged QoS 1 PUBLISH in flight for ever: one the broker will not route (a '$'
    topic is the broker's own) still gets its PUBACK, in order, and is dropped and counted."""
    listener = await subscribed(broker_platform, "dollar-listener", "$SYS/#")
    client = await connected(broker_platform, "dollar-publisher")
    refused = broker._hub.refused_dollar
    await client.send(raw.publish("$SYS/broker/load", b"forged", 1, 11) + raw.publish("$share/x", b"forged", 2, 12))
    await client.send(raw.publish("sentinel/dollar", b"after", 1, 13))
    answers = [await client.read() for _ in range(3)]
    assert [(answer.kind, answer.packet_id) for answer in answers] == [(4, 11), (5, 12), (4, 13)]
    assert broker._hub.refused_dollar == refused + 2
    # Nothing reached the '$SYS/#' subscriber; the broker's own '$SYS' message still does.
    await broker.internal_message_broadcast("$SYS/broker/uptime", b"1", 0)
    delivered = await listener.read()
    assert (delivered.topic, delivered.payload) == ("$SYS/broker/uptime", b"1")
    await client.close()
    await listener.close()


async def test_unsupported_protocol_level_gets_connack_1_then_close(broker_platform: RunningPlatform) -> None:
    client = await RawClient.open(broker_platform.mqtt_port)
    await client.send(raw.connect("mqtt-3.1", PASSWORD, level=3))
    assert await client.closed_by_broker() == b"\x20\x02\x00\x01"


async def test_packets_split_at_every_byte_are_reassembled(broker_platform: RunningPlatform) -> None:
    client = await RawClient.open(broker_platform.mqtt_port)
    stream = (
        raw.connect("dribble", PASSWORD) + raw.subscribe(1, "dribble/#", 1) + raw.publish("dribble/a", b"x" * 300, 1, 9)
    )  # 300 bytes: a two-byte remaining length
    for index in range(len(stream)):
        await client.send(stream[index : index + 1])
    packets = [await client.read() for _ in range(4)]
    assert [p.kind for p in packets[:2]] == [2, 9]
    assert sorted(p.kind for p in packets[2:]) == [3, 4]  # our PUBACK and the delivery to ourselves
    delivery = next(p for p in packets if p.kind == 3)
    assert (delivery.topic, delivery.payload, delivery.qos) == ("dribble/a", b"x" * 300, 1)
    await client.close()


async def test_many_packets_in_one_segment_are_all_handled_in_order(broker_platform: RunningPlatform) -> None:
    client = await RawClient.open(broker_platform.mqtt_port)
    # CONNECT and everything after it in one write: what follows the CONNECT waits for its answer.
    await client.send(
        raw.connect("burst", PASSWORD)
        + raw.subscribe(1, "burst/#", 1)
        + b"".join(raw.publish("burst/n", str(n).encode(), 0) for n in range(50))
        + raw.PINGREQ
    )
    assert (await client.read()).kind == 2
    assert (await client.read()).kind == 9
    payloads = [(await client.read()).payload for _ in range(50)]
    assert payloads == [str(n).encode() for n in range(50)]
    assert (await client.read()).kind == 13  # PINGRESP
    await client.close()


async def test_oversized_packet_closes_the_connection_before_its_body_arrives(broker_platform: RunningPlatform) -> None:
    client = await connected(broker_platform, "oversized")
    # Only the fixed header: the broker must not wait for (or buffer) the announced body.
    await client.send(b"\x30" + raw.remaining_length(MAX_PACKET + 1))
    await client.closed_by_broker()
    await still_serving(broker_platform, "oversized")


async def test_packet_at_the_size_limit_is_accepted(broker_platform: RunningPlatform) -> None:
    client = await subscribed(broker_platform, "at-limit", "limit/t")
    body_without_payload = len(raw.utf8("limit/t")) + 2
    await client.send(raw.publish("limit/t", b"y" * (MAX_PACKET - body_without_payload), 1, 3))
    received = {p.kind: p for p in [await client.read(), await client.read()]}
    assert len(received[3].payload) == MAX_PACKET - body_without_payload
    await client.close()


# -- timers: CONNECT timeout, keep-alive -------------------------------------------------------------------------


async def test_connection_that_never_sends_connect_is_closed(broker_platform: RunningPlatform) -> None:
    client = await RawClient.open(broker_platform.mqtt_port)
    assert await client.closed_by_broker() == b""


async def test_half_a_connect_is_closed_too(broker_platform: RunningPlatform) -> None:
    client = await RawClient.open(broker_platform.mqtt_port)
    await client.send(raw.connect("slowloris", PASSWORD)[:5])
    assert await client.closed_by_broker() == b""


async def test_silent_client_is_dropped_after_keep_alive_and_its_will_published(
    broker_platform: RunningPlatform, mqtt: MqttFactory, broker: PlatformBroker
) -> None:
    async with mqtt("ka-watcher") as watcher:
        await watcher.subscribe("devices/ka/uplink/status", qos=1)
        client = await connected(broker_platform, "ka", keep_alive=1, will=("devices/ka/uplink/status", b"gone", 1))
        assert broker.is_device_online("ka")
        await client.closed_by_broker()
        assert (await next_message(watcher, timeout=raw.WAIT_S)).payload == b"gone"
        assert not broker.is_device_online("ka")


async def test_pings_keep_a_client_connected_past_its_keep_alive(
    broker_platform: RunningPlatform, broker: PlatformBroker
) -> None:
    client = await connected(broker_platform, "pinger", keep_alive=1)
    ticks = broker._hub.tick
    while broker._hub.tick < ticks + 5:  # several keep-alive periods, by the broker's own clock
        await client.send(raw.PINGREQ)
        assert (await client.read()).kind == 13
        await asyncio.sleep(0.3)
    assert broker.is_device_online("pinger")
    await client.send(raw.DISCONNECT)
    await client.closed_by_broker()


# -- QoS 1 in flight -------------------------------------------------------------------------------------------


async def downlink_in_flight(
    platform: RunningPlatform, broker: PlatformBroker, device: str
) -> tuple[RawClient, asyncio.Task[bool], raw.Packet]:
    """A subscribed raw device, a ``deliver_to_client`` to it still waiting, and the PUBLISH the device got."""
    client = await subscribed(platform, device, f"devices/{device}/downlink/#")
    delivery = asyncio.create_task(broker.deliver_to_client(device, f"devices/{device}/downlink/payment", b"pay"))
    publish = await client.read()
    assert (publish.kind, publish.qos, publish.dup, publish.payload) == (3, 1, False, b"pay")
    return client, delivery, publish


async def test_unacknowledged_qos1_is_resent_with_dup_until_acknowledged(
    broker_platform: RunningPlatform, broker: PlatformBroker
) -> None:
    client, delivery, first = await downlink_in_flight(broker_platform, broker, "no-ack")
    again = await client.read()  # no PUBACK from us: the broker's tick sends it again
    assert (again.kind, again.dup, again.packet_id, again.payload) == (3, True, first.packet_id, b"pay")
    assert await delivery is False  # deliver_to_client stops waiting at the first resend
    await client.send(raw.ack(4, first.packet_id))
    await client.send(raw.PINGREQ)
    assert (await client.read()).kind == 13  # nothing else was resent before our PINGRESP...
    session = broker.sessions["no-ack"][0]
    assert session.inflight_out == {}  # ...because the PUBACK settled it
    await client.close()


async def test_deliver_to_client_is_true_once_acknowledged(
    broker_platform: RunningPlatform, broker: PlatformBroker
) -> None:
    client, delivery, publish = await downlink_in_flight(broker_platform, broker, "acker")
    await client.send(raw.ack(4, publish.packet_id))
    assert await delivery is True
    await client.close()


async def test_deliver_to_client_is_false_when_the_connection_ends_first(
    broker_platform: RunningPlatform, broker: PlatformBroker
) -> None:
    client, delivery, _ = await downlink_in_flight(broker_platform, broker, "vanisher")
    client.abort()
    assert await delivery is False


# -- QoS 2 received, granted QoS ---------------------------------------------------------------------------------


async def test_qos2_publish_is_routed_once_and_completed(broker_platform: RunningPlatform) -> None:
    subscriber = await RawClient.open(broker_platform.mqtt_port)
    await subscriber.send(raw.connect("qos2-sub", PASSWORD) + raw.subscribe(1, "qos2/t", 2))
    assert (await subscriber.read()).kind == 2
    suback = await subscriber.read()
    assert suback.body == b"\x00\x01\x01"  # QoS 2 is granted as QoS 1
    publisher = await connected(broker_platform, "qos2-pub")
    await publisher.send(raw.publish("qos2/t", b"once", 2, 5))
    assert (await publisher.read()).body == b"\x00\x05"  # PUBREC
    await publisher.send(raw.publish("qos2/t", b"once", 2, 5, dup=True))  # a resend before PUBREL
    pubrec = await publisher.read()
    assert (pubrec.kind, pubrec.packet_id) == (5, 5)
    await publisher.send(raw.ack(6, 5))  # PUBREL
    pubcomp = await publisher.read()
    assert (pubcomp.kind, pubcomp.packet_id) == (7, 5)
    await publisher.send(raw.publish("qos2/t", b"sentinel", 0))
    first = await subscriber.read()
    assert (first.payload, first.qos) == (b"once", 1)
    await subscriber.send(raw.ack(4, first.packet_id))
    assert (await subscriber.read()).payload == b"sentinel"  # the resend was not routed again
    await publisher.close()
    await subscriber.close()


async def test_qos0_publish_reaches_a_qos1_subscriber_at_qos0(broker_platform: RunningPlatform) -> None:
    client = await subscribed(broker_platform, "downgrade", "downgrade/t")
    await client.send(raw.publish("downgrade/t", b"zero", 0))
    delivery = await client.read()
    assert (delivery.payload, delivery.qos) == (b"zero", 0)  # [MQTT-3.8.4-6] the minimum of both
    await client.close()


# -- will --------------------------------------------------------------------------------------------------------


async def test_will_is_published_on_abrupt_close_and_not_after_disconnect(
    broker_platform: RunningPlatform, mqtt: MqttFactory
) -> None:
    async with mqtt("will-raw-watcher") as watcher:
        await watcher.subscribe("devices/w/uplink/status", qos=1)
        polite = await connected(broker_platform, "w-polite", will=("devices/w/uplink/status", b"polite", 1))
        await polite.send(raw.DISCONNECT)
        await polite.closed_by_broker()
        rude = await connected(broker_platform, "w-rude", will=("devices/w/uplink/status", b"rude", 1))
        rude.abort()
        # Messages to one subscriber arrive in order: the polite client's will would have come first.
        assert (await next_message(watcher, timeout=raw.WAIT_S)).payload == b"rude"


async def test_will_is_published_when_the_connection_breaks_the_protocol(
    broker_platform: RunningPlatform, mqtt: MqttFactory
) -> None:
    async with mqtt("will-violation-watcher") as watcher:
        await watcher.subscribe("devices/wv/uplink/status", qos=1)
        client = await connected(broker_platform, "wv", will=("devices/wv/uplink/status", b"broken", 0))
        await client.send(b"\xf0\x00")
        await client.closed_by_broker()
        assert (await next_message(watcher, timeout=raw.WAIT_S)).payload == b"broken"


# -- plugin events -----------------------------------------------------------------------------------------------


async def test_plugins_hear_a_clients_events_in_arrival_order(
    broker_platform: RunningPlatform, recorder: RecordingPlugin
) -> None:
    client = await RawClient.open(broker_platform.mqtt_port)
    uplinks = [raw.publish("devices/ev/uplink/heartbeat", str(n).encode(), 1, n + 1) for n in range(20)]
    await client.send(
        raw.connect("ev", PASSWORD)
        + raw.subscribe(1, "devices/ev/downlink/#", 1)
        + b"".join(uplinks)
        + raw.packet(0xA2, b"\x00\x02" + raw.utf8("devices/ev/downlink/#"))
        + raw.DISCONNECT
    )
    await client.closed_by_broker()
    expected = [("connected", "ev", "ev"), ("subscribed", "ev", "devices/ev/downlink/#", 1)]
    for n in range(20):
        payload = str(n).encode()
        expected += [
            ("received", "ev", "devices/ev/uplink/heartbeat", payload),
            ("broadcast", "ev", "devices/ev/uplink/heartbeat", payload),
        ]
    expected += [("unsubscribed", "ev", "devices/ev/downlink/#"), ("disconnected", "ev", "ev")]

    async def all_heard() -> bool:
        return len(recorder.of("ev")) >= len(expected)

    assert await eventually(all_heard)
    assert recorder.of("ev") == expected
