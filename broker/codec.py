"""MQTT 3.1.1 packets as bytes: the encoders and strict decoders ``protocol.Connection`` uses.

Pure functions over ``bytes`` and positions, no I/O and no state, so each
rule can be tested on its own (``tests/broker/test_codec.py``). A decoder
raises ``MalformedPacket`` for anything the specification forbids; the
connection then closes.
"""

from __future__ import annotations

from typing import NamedTuple

# Packet types (MQTT 3.1.1 §2.2.1).
CONNECT, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 3, 4, 5, 6, 7
SUBSCRIBE, UNSUBSCRIBE, UNSUBACK, PINGREQ, DISCONNECT = 8, 10, 11, 12, 14
# Fixed-header flags every packet but PUBLISH must carry [MQTT-2.2.2-2].
REQUIRED_FLAGS = {PUBACK: 0, PUBREL: 2, SUBSCRIBE: 2, UNSUBSCRIBE: 2, PINGREQ: 0, DISCONNECT: 0, CONNECT: 0}

PINGRESP_PACKET = b"\xd0\x00"


class MalformedPacket(Exception):
    """The peer broke the protocol; the connection is closed."""


class PublishPacket(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int  # 0 at QoS 0


class SubscribePacket(NamedTuple):
    packet_id: int
    topics: list[tuple[str, int]]  # (filter, requested QoS)


class UnsubscribePacket(NamedTuple):
    packet_id: int
    filters: list[str]


class ConnectRequest:
    """A decoded CONNECT (variable header and payload); checks with CONNACK codes are the broker's."""

    __slots__ = (
        "clean_session",
        "client_id",
        "keep_alive",
        "password",
        "protocol_level",
        "username",
        "will_message",
        "will_qos",
        "will_retain",
        "will_topic",
    )

    def __init__(self) -> None:
        self.protocol_level = 4
        self.clean_session = True
        self.keep_alive = 0
        self.client_id = ""
        self.will_topic: str | None = None
        self.will_message: bytes | None = None
        self.will_qos = 0
        self.will_retain = False
        self.username: str | None = None
        self.password: str | None = None


# ---- encoding -------------------------------------------------------------------------------------------------


def encode_remaining_length(header: bytearray, length: int) -> None:
    while True:
        byte, length = length & 0x7F, length >> 7
        if length:
            header.append(byte | 0x80)
        else:
            header.append(byte)
            return


def encode_publish(topic: bytes, payload: bytes, qos: int, packet_id: int, retain: bool, dup: bool) -> bytearray:
    packet = bytearray((0x30 | (dup << 3) | (qos << 1) | retain,))
    encode_remaining_length(packet, 2 + len(topic) + (2 if qos else 0) + len(payload))
    packet += len(topic).to_bytes(2, "big")
    packet += topic
    if qos:
        packet += packet_id.to_bytes(2, "big")
    packet += payload
    return packet


def encode_ack(kind: int, packet_id: int) -> bytes:
    """PUBACK, PUBREC, PUBCOMP or UNSUBACK: a packet id and nothing else."""
    return bytes((kind << 4 | (2 if kind == PUBREL else 0), 2, packet_id >> 8, packet_id & 0xFF))


def encode_suback(packet_id: int, codes: list[int]) -> bytes:
    packet = bytearray((0x90,))
    encode_remaining_length(packet, 2 + len(codes))
    packet += packet_id.to_bytes(2, "big")
    packet += bytes(codes)
    return bytes(packet)


# ---- decoding -------------------------------------------------------------------------------------------------


def read_string(data: bytes, i: int, stop: int) -> tuple[str, int]:
    if i + 2 > stop:
        raise MalformedPacket("string length past the end of the packet")
    end = i + 2 + ((data[i] << 8) | data[i + 1])
    if end > stop:
        raise MalformedPacket("string past the end of the packet")
    try:
        text = data[i + 2 : end].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("string is not well-formed UTF-8 [MQTT-1.5.3-1]") from None
    if "\x00" in text:
        raise MalformedPacket("string contains U+0000 [MQTT-1.5.3-2]")
    return text, end


def read_packet_id(data: bytes, i: int, stop: int) -> int:
    if i + 2 > stop:
        raise MalformedPacket("packet identifier missing")
    packet_id = (data[i] << 8) | data[i + 1]
    if not packet_id:
        raise MalformedPacket("packet identifier 0 [MQTT-2.3.1-1]")
    return packet_id


def topic_name(topic: str) -> str:
    """A topic name as MQTT allows one in a PUBLISH: not empty, no wildcard. A '$' topic is well formed: the
    broker acknowledges such a PUBLISH and drops it (``PlatformBroker._client_publish``)."""
    if not topic:
        raise MalformedPacket("empty topic name [MQTT-4.7.3-1]")
    if "+" in topic or "#" in topic:
        raise MalformedPacket("wildcard in a topic name [MQTT-3.3.2-2]")
    return topic


def client_topic_name(topic: str) -> str:
    """A will's topic: a topic name, and no '$' topic (amqtt's rule; a CONNECT carries no packet to acknowledge)."""
    if topic_name(topic)[0] == "$":
        raise MalformedPacket("clients may not publish to '$' topics (amqtt's rule)")
    return topic


def decode_connect(data: bytes, i: int, stop: int) -> ConnectRequest:
    request = ConnectRequest()
    name, i = read_string(data, i, stop)
    if name != "MQTT":
        raise MalformedPacket(f"protocol name {name!r} [MQTT-3.1.2-1]")
    if i + 4 > stop:
        raise MalformedPacket("CONNECT variable header cut short")
    request.protocol_level, flags = data[i], data[i + 1]
    request.keep_alive = (data[i + 2] << 8) | data[i + 3]
    i += 4
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag set [MQTT-3.1.2-3]")
    request.clean_session = bool(flags & 0x02)
    will = flags & 0x04
    request.will_qos = (flags >> 3) & 3
    request.will_retain = bool(flags & 0x20)
    if request.will_qos == 3 or (not will and (request.will_qos or request.will_retain)):
        raise MalformedPacket("will QoS/retain flags invalid [MQTT-3.1.2-13/14/15]")
    request.client_id, i = read_string(data, i, stop)
    if will:
        topic, i = read_string(data, i, stop)
        request.will_topic = client_topic_name(topic)
        if i + 2 > stop or i + 2 + ((data[i] << 8) | data[i + 1]) > stop:
            raise MalformedPacket("will message past the end of the packet")
        end = i + 2 + ((data[i] << 8) | data[i + 1])
        request.will_message = bytes(data[i + 2 : end])
        i = end
    if flags & 0x80:
        request.username, i = read_string(data, i, stop)
    if flags & 0x40:
        request.password, i = read_string(data, i, stop)
    if i != stop:
        raise MalformedPacket("bytes after the CONNECT payload")
    return request


def decode_publish(flags: int, data: bytes, i: int, stop: int) -> PublishPacket:
    qos = (flags >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
    topic, i = read_string(data, i, stop)
    topic_name(topic)
    packet_id = 0
    if qos:
        packet_id = read_packet_id(data, i, stop)
        i += 2
    return PublishPacket(topic, bytes(data[i:stop]), qos, bool(flags & 1), packet_id)


def decode_subscribe(data: bytes, i: int, stop: int) -> SubscribePacket:
    packet_id = read_packet_id(data, i, stop)
    i += 2
    topics: list[tuple[str, int]] = []
    while i < stop:
        topic_filter, i = read_string(data, i, stop)
        if not topic_filter:
            raise MalformedPacket("empty topic filter [MQTT-4.7.3-1]")
        if i >= stop or data[i] > 2:
            raise MalformedPacket("requested QoS missing or invalid [MQTT-3.8.3-4]")
        topics.append((topic_filter, data[i]))
        i += 1
    if not topics:
        raise MalformedPacket("SUBSCRIBE without a topic filter [MQTT-3.8.3-3]")
    return SubscribePacket(packet_id, topics)


def decode_unsubscribe(data: bytes, i: int, stop: int) -> UnsubscribePacket:
    packet_id = read_packet_id(data, i, stop)
    i += 2
    filters: list[str] = []
    while i < stop:
        topic_filter, i = read_string(data, i, stop)
        if not topic_filter:
            raise MalformedPacket("empty topic filter [MQTT-4.7.3-1]")
        filters.append(topic_filter)
    if not filters:
        raise MalformedPacket("UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]")
    return UnsubscribePacket(packet_id, filters)
