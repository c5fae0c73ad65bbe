"""The MQTT 3.1.1 codec (broker/codec.py) on its own: bytes in, packets or MalformedPacket out.

The connection-level behaviour (what the broker does with a malformed
packet) is in test_protocol.py; here each decoding rule is checked directly.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qris_soundbox.broker import codec
from qris_soundbox.broker.codec import MalformedPacket
from tests.broker import raw_client as raw


def _body(packet: bytes) -> tuple[int, bytes, int, int]:
    """(first byte, packet, start of the variable header, end) of one whole encoded packet."""
    length, index, shift = 0, 1, 0
    while True:
        byte = packet[index]
        length |= (byte & 0x7F) << shift
        index += 1
        if byte < 0x80:
            return packet[0], packet, index, index + length
        shift += 7


topics = st.text(
    st.characters(blacklist_characters="+#\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40
)  # '$' topics are well formed in a PUBLISH


@given(
    topic=topics,
    payload=st.binary(max_size=300),
    qos=st.integers(0, 1),
    packet_id=st.integers(1, 65535),
    retain=st.booleans(),
    dup=st.booleans(),
)
def test_a_publish_decodes_to_what_was_encoded(
    topic: str, payload: bytes, qos: int, packet_id: int, retain: bool, dup: bool
) -> None:
    first, data, start, stop = _body(bytes(codec.encode_publish(topic.encode(), payload, qos, packet_id, retain, dup)))
    assert first >> 4 == codec.PUBLISH and bool(first & 0x08) == dup
    assert codec.decode_publish(first & 0x0F, data, start, stop) == codec.PublishPacket(
        topic, payload, qos, retain, packet_id if qos else 0
    )


@pytest.mark.parametrize(
    ("topic", "flags", "reason"),
    [
        ("a/+/b", 0x02, "wildcard"),
        ("a/#", 0x02, "wildcard"),
        ("", 0x02, "empty"),
        ("a/b", 0x06, "QoS 3"),
    ],
)
def test_a_publish_the_specification_forbids_is_malformed(topic: str, flags: int, reason: str) -> None:
    first, data, start, stop = _body(raw.publish(topic, b"x", qos=1, packet_id=7))
    with pytest.raises(MalformedPacket, match=reason):
        codec.decode_publish(flags, data, start, stop)


def test_packet_id_zero_and_bad_strings_are_malformed() -> None:
    first, data, start, stop = _body(raw.publish("a/b", b"x", qos=1, packet_id=0))
    with pytest.raises(MalformedPacket, match="packet identifier 0"):
        codec.decode_publish(first & 0x0F, data, start, stop)
    for bad in (b"\xff\xfe", b"a\x00b"):
        first, data, start, stop = _body(raw.publish(bad, b"", qos=0))
        with pytest.raises(MalformedPacket, match="UTF-8|U\\+0000"):
            codec.decode_publish(first & 0x0F, data, start, stop)


def test_a_connect_decodes_its_flags_will_and_credentials() -> None:
    first, data, start, stop = _body(
        raw.connect("dev_1", "secret", keep_alive=30, clean=False, will=("devices/dev_1/uplink/gone", b"bye", 1))
    )
    request = codec.decode_connect(data, start, stop)
    assert (request.client_id, request.username, request.password) == ("dev_1", "dev_1", "secret")
    assert (request.keep_alive, request.clean_session, request.protocol_level) == (30, False, 4)
    assert (request.will_topic, request.will_message, request.will_qos, request.will_retain) == (
        "devices/dev_1/uplink/gone",
        b"bye",
        1,
        False,
    )


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (raw.connect("c", will=("a/#", b"", 0)), "wildcard"),
        (raw.connect("c", will=("$SYS/x", b"", 0)), "'\\$'"),
        (raw.connect("c", flags=0x01), "reserved flag"),
        (raw.connect("c", flags=0x08), "will QoS/retain"),
        (raw.connect("c", "secret")[:-1], "past the end"),
        (raw.connect("c") + b"x", "bytes after"),
    ],
)
def test_a_connect_the_specification_forbids_is_malformed(packet: bytes, reason: str) -> None:
    _, data, start, _ = _body(packet)
    with pytest.raises(MalformedPacket, match=reason):
        codec.decode_connect(data, start, len(data))  # what arrived, whatever the header announced


def test_subscribe_and_unsubscribe_decode_and_refuse_empty_lists() -> None:
    first, data, start, stop = _body(raw.subscribe(9, "devices/d/downlink/#", 1))
    assert codec.decode_subscribe(data, start, stop) == codec.SubscribePacket(9, [("devices/d/downlink/#", 1)])
    with pytest.raises(MalformedPacket, match="without a topic filter"):
        codec.decode_subscribe(b"\x00\x09", 0, 2)
    with pytest.raises(MalformedPacket, match="requested QoS"):
        codec.decode_subscribe(b"\x00\x09" + raw.utf8("a") + b"\x03", 0, 6)
    assert codec.decode_unsubscribe(b"\x00\x05" + raw.utf8("a/b"), 0, 7) == codec.UnsubscribePacket(5, ["a/b"])
    with pytest.raises(MalformedPacket, match="without a topic filter"):
        codec.decode_unsubscribe(b"\x00\x05", 0, 2)


@given(st.integers(0, 268_435_455))
def test_remaining_length_takes_one_to_four_bytes_and_reads_back(length: int) -> None:
    header = bytearray()
    codec.encode_remaining_length(header, length)
    assert 1 <= len(header) <= 4
    assert _body(bytes([0x30]) + bytes(header) + b"")[3] - len(header) - 1 == length


def test_acks_and_suback_are_what_clients_expect() -> None:
    assert codec.encode_ack(codec.PUBACK, 0x1234) == b"\x40\x02\x12\x34"
    assert codec.encode_ack(codec.PUBREL, 1) == b"\x62\x02\x00\x01"
    assert codec.encode_suback(3, [1, 0x80]) == b"\x90\x04\x00\x03\x01\x80"
