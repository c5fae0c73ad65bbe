"""A raw-socket MQTT 3.1.1 client for tests that need bytes a real client would never send."""

from __future__ import annotations

import asyncio
import struct

from bench.mqtt_wire import Packet, remaining_length, utf8

# Generous bounds for the broker's one-second tick; tests wait on events, never assert durations.
WAIT_S = 10.0


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + remaining_length(len(body)) + body


def connect(
    client_id: str,
    password: str | None = None,
    *,
    keep_alive: int = 60,
    clean: bool = True,
    will: tuple[str, bytes, int] | None = None,
    level: int = 4,
    flags: int = 0,
) -> bytes:
    flags |= 0x02 if clean else 0
    payload = utf8(client_id)
    if will is not None:
        topic, message, qos = will
        flags |= 0x04 | (qos << 3)
        payload += utf8(topic) + utf8(message)
    if password is not None:
        flags |= 0xC0
        payload += utf8(client_id) + utf8(password)
    return packet(0x10, utf8("MQTT") + bytes([level, flags]) + struct.pack(">H", keep_alive) + payload)


def subscribe(packet_id: int, topic_filter: str, qos: int = 1) -> bytes:
    return packet(0x82, struct.pack(">H", packet_id) + utf8(topic_filter) + bytes([qos]))


def publish(topic: str | bytes, payload: bytes, qos: int = 0, packet_id: int = 0, *, dup: bool = False) -> bytes:
    body = utf8(topic) + (struct.pack(">H", packet_id) if qos else b"") + payload
    return packet(0x30 | (dup << 3) | (qos << 1), body)


def ack(kind: int, packet_id: int) -> bytes:
    return packet((kind << 4) | (2 if kind == 6 else 0), struct.pack(">H", packet_id))


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self) -> Packet:
        async def one() -> Packet:
            first = (await self.reader.readexactly(1))[0]
            length, shift = 0, 0
            while True:
                byte = (await self.reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            return Packet(first, await self.reader.readexactly(length))

        return await asyncio.wait_for(one(), WAIT_S)

    async def closed_by_broker(self, timeout: float = WAIT_S) -> bytes:
        """Everything the broker still sends, until it closes the connection (raises if it does not within
        ``timeout``)."""
        received = bytearray()

        async def until_eof() -> None:
            try:
                while chunk := await self.reader.read(65536):
                    received.extend(chunk)
            except ConnectionResetError:
                pass

        await asyncio.wait_for(until_eof(), timeout)
        return bytes(received)

    def abort(self) -> None:
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
