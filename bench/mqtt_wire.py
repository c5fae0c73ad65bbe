"""MQTT 3.1.1 on the wire, the few pieces a load generator and a raw test client both need: the
remaining length, a length-prefixed string, and a received packet's fields.

Pure (no sibling imports), so the benchmarks import it as ``mqtt_wire`` and the broker tests as
``bench.mqtt_wire``.
"""

from __future__ import annotations

import struct


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return struct.pack(">H", len(data)) + data


class Packet:
    def __init__(self, first: int, body: bytes) -> None:
        self.kind, self.flags, self.body = first >> 4, first & 0x0F, body

    @property
    def packet_id(self) -> int:
        if self.kind == 3:
            start = 2 + struct.unpack_from(">H", self.body)[0]
            return struct.unpack_from(">H", self.body, start)[0]
        return struct.unpack_from(">H", self.body)[0]

    @property
    def topic(self) -> str:
        return self.body[2 : 2 + struct.unpack_from(">H", self.body)[0]].decode()

    @property
    def payload(self) -> bytes:
        start = 2 + struct.unpack_from(">H", self.body)[0]
        return self.body[start + (2 if self.qos else 0) :]

    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 3

    @property
    def dup(self) -> bool:
        return bool(self.flags & 0x08)
