"""MQTT 3.1.1 on the wire for ``PlatformBroker``: one ``asyncio.Protocol`` per TCP connection (bytes ↔ packets: ``codec``).

amqtt 0.12.1 serves a connection with two tasks (connection and reader),
decodes each packet field by field through ``StreamReader.readexactly``,
starts a task per received packet, writes and drains every packet on its own
under a lock, and waits for each PUBACK with a ``wait_for`` timer. Here:

- packets are parsed from the receive buffer in ``data_received``: a partial
  packet waits in a bytearray, many packets in one read are handled in one
  pass. Parsing is strict: anything malformed, or larger than
  ``max_packet_size``, closes the connection;
- what may await plugins (CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE,
  DISCONNECT, the end of the connection) is queued per connection and handled
  in arrival order by a task that exists only while there is work; PUBACK,
  PUBREL and PINGREQ are answered on the spot;
- writes are gathered per connection and flushed once per loop iteration;
- an outgoing QoS 1 message waits for its PUBACK in ``session.inflight_out``;
  one tick a second (``Hub``) resends overdue ones, and enforces keep-alive
  (1.5 × the client's value) and the CONNECT timeout.

An idle connection holds no task, no timer and no buffer. What the packets
mean (sessions, routing, plugins) is a ``PacketHandler``'s, the Protocol
below that ``server.PlatformBroker`` implements: this module knows no broker.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeAlias, cast

from amqtt.session import OutgoingApplicationMessage

from qris_soundbox.broker.codec import (
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PINGRESP_PACKET,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    REQUIRED_FLAGS,
    SUBSCRIBE,
    UNSUBSCRIBE,
    ConnectRequest,
    MalformedPacket,
    PublishPacket,
    SubscribePacket,
    UnsubscribePacket,
    decode_connect,
    decode_publish,
    decode_subscribe,
    decode_unsubscribe,
    encode_ack,
    encode_publish,
)
from qris_soundbox.broker.config import ProtocolSettings
from qris_soundbox.broker.session import QueuedMessage

if TYPE_CHECKING:
    from amqtt.broker import Server

    from qris_soundbox.broker.session import DeviceSession

log = logging.getLogger(__name__)

# A transport holding more than this unsent is a slow reader: QoS 0 messages to it are dropped.
WRITE_HIGH_WATER = 1 << 20
# Received packets waiting for their turn beyond which the connection stops reading.
PENDING_PAUSE = 512
# A fleet reconnecting at once (broker restart) must not overflow the accept queue.
LISTEN_BACKLOG = 4096

# Connection states.
_NEW, _CONNECTING, _CONNECTED, _CLOSING, _CLOSED = range(5)


class _Signal(NamedTuple):
    """Work without data: a PINGREQ answered in turn, a DISCONNECT, the end of the connection."""

    name: str


_PINGREQ, _DISCONNECT, _CLOSED_ITEM = _Signal("pingreq"), _Signal("disconnect"), _Signal("closed")
# Work queued per connection, handled in arrival order by ``Connection._work``.
_Work: TypeAlias = ConnectRequest | PublishPacket | SubscribePacket | UnsubscribePacket | _Signal


class InflightMessage(OutgoingApplicationMessage):
    """An outgoing QoS 1 message awaiting PUBACK: amqtt's message plus when it was last sent and who waits."""

    __slots__ = ("key", "sent_tick", "waiter")

    def __init__(
        self,
        packet_id: int,
        topic: str,
        data: bytes,
        retain: bool,
        tick: int,
        waiter: asyncio.Future[bool] | None,
        key: str | None = None,
    ) -> None:
        super().__init__(packet_id, topic, 1, data, retain)
        self.sent_tick = tick
        self.waiter = waiter
        self.key = key

    def settle(self, acknowledged: bool) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(acknowledged)


# ---- what all connections share --------------------------------------------------------------------------------


class PacketHandler(Protocol):
    """What a connection hands up once a packet is parsed (and, for CONNECT, what answers it).

    Each method is awaited in the connection's arrival order, one at a time;
    an exception costs that connection only (it is closed). PUBACK/PUBREC of a
    PUBLISH is the connection's, written after ``client_publish`` returns.
    """

    async def client_connect(self, connection: Connection, request: ConnectRequest) -> None:
        """Admit or refuse: ``connection.accept`` or ``connection.refuse``, then ``connection.start_reading``."""

    async def client_publish(self, connection: Connection, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """A PUBLISH from the connected client (topic already checked by the parser)."""

    async def client_subscribe(self, connection: Connection, packet_id: int, topics: list[tuple[str, int]]) -> None:
        """A SUBSCRIBE; the handler writes the SUBACK."""

    async def client_unsubscribe(self, connection: Connection, packet_id: int, filters: list[str]) -> None:
        """An UNSUBSCRIBE; the handler writes the UNSUBACK."""

    async def connection_closed(self, connection: Connection) -> None:
        """The connection ended (DISCONNECT, network, take-over, keep-alive): will, events, session state."""

    def listener_server(self, listener_name: str) -> Server | None:
        """amqtt's bookkeeping of the listener (connection count against its limit), once it is serving."""


class Hub:
    """What the connections of one broker share: settings, the one-second tick and the write flush.

    The tick drives a wheel of per-second buckets (CONNECT timeout, keep-alive:
    a connection is looked at only when its deadline comes, and re-filed if it
    was heard from since) and resends the overdue QoS 1 messages of the
    connections that have any (``unacked``).
    """

    def __init__(self, handler: PacketHandler, settings: ProtocolSettings) -> None:
        self.handler = handler
        self.settings = settings
        self.tick = 0
        self.unacked: set[Connection] = set()
        # QoS 1 messages dropped because a session's queue was full (the outbox delivers them again).
        self.dropped = 0
        # PUBLISH packets from clients to '$' topics: acknowledged as any PUBLISH, then dropped.
        self.refused_dollar = 0
        # PUBLISH packets received and sent (resends included), read by GET /metrics.
        self.messages_in = 0
        self.messages_out = 0
        # Told (client id, key) when a client PUBACKs a message delivered with a key, however late.
        self.keyed_puback: Callable[[str, str], None] | None = None
        self._wheel: dict[int, list[Connection]] = {}
        self._dirty: list[Connection] = []
        self._loop = asyncio.get_running_loop()
        self._origin = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._origin = self._loop.time() - self.tick
        self._timer = self._loop.call_at(self._origin + self.tick + 1, self._on_tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def at(self, tick: int, connection: Connection) -> None:
        """Look at ``connection`` (``Connection.on_timer``) when the clock reaches ``tick``."""
        bucket = self._wheel.get(tick)
        if bucket is None:
            self._wheel[tick] = [connection]
        else:
            bucket.append(connection)

    def _on_tick(self) -> None:
        self.tick += 1
        # Scheduled from the origin, so a slow tick does not make the clock drift.
        self._timer = self._loop.call_at(self._origin + self.tick + 1, self._on_tick)
        tick = self.tick
        try:
            for connection in self._wheel.pop(tick, ()):
                connection.on_timer(tick)
            interval = self.settings.retry_interval
            for connection in list(self.unacked):
                if not connection.resend_overdue(tick, interval):
                    self.unacked.discard(connection)
        except Exception:
            log.exception("broker tick failed")

    def mark_dirty(self, connection: Connection) -> None:
        if not self._dirty:
            self._loop.call_soon(self._flush)
        self._dirty.append(connection)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for connection in dirty:
            connection.flush()


# ---- one connection -----------------------------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One client's TCP connection: parser, writer, in-flight tracking. Also its handler in ``broker.sessions``."""

    __slots__ = (
        "_buffer",
        "_hub",
        "_keep_alive_ticks",
        "_last_heard",
        "_need",
        "_out",
        "_pending",
        "_read_paused",
        "_server",
        "_state",
        "_waiters",
        "_worker",
        "_write_paused",
        "graceful",
        "listener_name",
        "peer",
        "session",
        "transport",
    )

    def __init__(self, hub: Hub, listener_name: str) -> None:
        self._hub = hub
        self._server: Server | None = None
        self.listener_name = listener_name
        self.transport: asyncio.Transport | None = None
        self.session: DeviceSession | None = None
        self.peer: tuple[str, int] | None = None
        self._state = _NEW
        self._buffer: bytearray | None = None
        self._need = 0
        self._out: list[bytes | bytearray] | None = None
        self._pending: list[_Work] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[None]] | None = None
        self._read_paused = False
        self._write_paused = False
        self._last_heard = 0
        self._keep_alive_ticks = 0
        # A DISCONNECT packet was received (or the broker closed us): no will message.
        self.graceful = False

    def __repr__(self) -> str:
        client_id = self.session.client_id if self.session is not None else None
        return f"<Connection {client_id!r} from {self.peer}>"

    @property
    def client_id(self) -> str | None:
        return self.session.client_id if self.session is not None else None

    @property
    def closed(self) -> bool:
        return self._state >= _CLOSING

    # -- asyncio.Protocol ---------------------------------------------------------------------------------------

    def connection_made(self, base_transport: asyncio.BaseTransport) -> None:
        transport = self.transport = cast(asyncio.Transport, base_transport)  # a stream server's transport
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        # amqtt registers the listener's Server after it starts serving: the first connection may come earlier.
        server = self._server = self._hub.handler.listener_server(self.listener_name)
        if server is not None:
            server.conn_count += 1
            if 0 < server.max_connections < server.conn_count:
                log.warning(
                    "connection refused: listener full", extra={"listener": self.listener_name, "peer": self.peer}
                )
                self._state = _CLOSING
                transport.close()
                return
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        hub = self._hub
        self._last_heard = hub.tick
        hub.at(hub.tick + hub.settings.connect_timeout + 1, self)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer is not None:
            buffer += data
            if self._state == _CONNECTING:
                # A client sending ahead of its CONNACK: keep it, within reason.
                if len(buffer) > self._hub.settings.max_packet_size:
                    self._pause_reading()
                return
            if len(buffer) < self._need:
                return
            self._buffer = None
            data = bytes(buffer)
        try:
            self._parse(data)
        except MalformedPacket as exc:
            self._protocol_error(str(exc))
        except Exception:
            # A bug here must cost this connection, never the broker.
            log.exception("packet handling failed", extra={"client_id": self.client_id, "peer": self.peer})
            self._protocol_error("internal error")

    def eof_received(self) -> bool:
        return False  # close our side too: MQTT has no half-open use

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        if self._server is not None:
            self._server.conn_count -= 1
        self._out = self._buffer = None
        if self.session is not None:
            for message in self.session.inflight_out.values():
                if isinstance(message, InflightMessage):
                    message.settle(False)
        if self.session is not None or self._worker is not None:
            self._submit(_CLOSED_ITEM)
        else:
            self._finished()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False

    # -- parsing ------------------------------------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        position, end = 0, len(data)
        max_size = self._hub.settings.max_packet_size
        while position < end:
            state = self._state
            if state == _CONNECTING:
                break  # the rest waits until the CONNECT is answered
            if state != _NEW and state != _CONNECTED:
                return
            # Fixed header: type and flags, then 1-4 bytes of remaining length (§2.2.3).
            index, length, shift = position + 1, 0, 0
            while True:
                if index >= end:
                    self._keep(data, position, index + 1 - position)
                    return
                byte = data[index]
                length |= (byte & 0x7F) << shift
                index += 1
                if byte < 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise MalformedPacket("remaining length longer than four bytes")
            if length > max_size:
                raise MalformedPacket(f"packet of {length} bytes exceeds max_packet_size {max_size}")
            if state == _NEW and length > self._hub.settings.max_connect_size:
                # Before authentication a client may make the broker hold only a CONNECT's worth of bytes.
                raise MalformedPacket(f"first packet of {length} bytes exceeds max_connect_size")
            stop = index + length
            if stop > end:
                self._keep(data, position, stop - position)
                return
            # Keep-alive counts whole packets [MQTT-3.1.2-24]: a client trickling bytes is not heard from.
            self._last_heard = self._hub.tick
            self._packet(data[position], data, index, stop)
            position = stop
        if position < end:
            self._keep(data, position, 0)

    def _keep(self, data: bytes, start: int, need: int) -> None:
        """Keep ``data[start:]`` (a partial packet, or what arrived during CONNECT) until ``need`` bytes are in."""
        self._buffer = bytearray(memoryview(data)[start:])
        self._need = need

    def _packet(self, first: int, data: bytes, i: int, stop: int) -> None:
        kind, flags = first >> 4, first & 0x0F
        if kind == PUBLISH:
            self._publish_received(flags, data, i, stop)
            return
        if REQUIRED_FLAGS.get(kind, -1) != flags:
            raise MalformedPacket(f"packet type {kind} with flags {flags:#x} is not one a client sends")
        if kind == PUBACK:
            if stop - i != 2:
                raise MalformedPacket("PUBACK length")
            self._puback((data[i] << 8) | data[i + 1])
        elif self._state == _NEW:
            if kind != CONNECT:
                raise MalformedPacket("first packet is not CONNECT [MQTT-3.1.0-1]")
            request = decode_connect(data, i, stop)
            self._state = _CONNECTING
            self._submit(request)
        elif kind == PINGREQ:
            if stop != i:
                raise MalformedPacket("PINGREQ length")
            if self._worker is None:
                self.write(PINGRESP_PACKET)
            else:  # behind the answers still being worked out, so responses keep the requests' order
                self._submit(_PINGREQ)
        elif kind == SUBSCRIBE:
            self._submit(decode_subscribe(data, i, stop))
        elif kind == UNSUBSCRIBE:
            self._submit(decode_unsubscribe(data, i, stop))
        elif kind == PUBREL:
            if stop - i != 2:
                raise MalformedPacket("PUBREL length")
            packet_id = (data[i] << 8) | data[i + 1]
            assert self.session is not None
            self.session.inflight_in.pop(packet_id, None)
            self.write(encode_ack(PUBCOMP, packet_id))
        elif kind == DISCONNECT:
            if stop != i:
                raise MalformedPacket("DISCONNECT length")
            # [MQTT-3.14.4-3] the will is discarded; what came before is still handled, then we close.
            self.graceful = True
            self._state = _CLOSING
            self._submit(_DISCONNECT)
        else:  # a second CONNECT [MQTT-3.1.0-2], or a packet only a server sends
            raise MalformedPacket(f"unexpected packet type {kind}")

    def _publish_received(self, flags: int, data: bytes, i: int, stop: int) -> None:
        if self._state != _CONNECTED:
            raise MalformedPacket("first packet is not CONNECT [MQTT-3.1.0-1]")
        packet = decode_publish(flags, data, i, stop)
        if packet.qos == 2:
            assert self.session is not None
            inflight_in = self.session.inflight_in
            if packet.packet_id in inflight_in:
                self.write(
                    encode_ack(PUBREC, packet.packet_id)
                )  # a resend of a message already taken: not routed twice
                return
            # Method B of §4.3.3: route now, remember the id until PUBREL.
            inflight_in[packet.packet_id] = None
        self._hub.messages_in += 1
        self._submit(packet)

    def _puback(self, packet_id: int) -> None:
        session = self.session
        if session is None or self._state != _CONNECTED:
            raise MalformedPacket("PUBACK before CONNECT")
        inflight = session.inflight_out
        message = inflight.pop(packet_id, None)
        if message is None:
            log.debug("PUBACK for unknown packet id", extra={"client_id": session.client_id, "packet_id": packet_id})
            return
        if isinstance(message, InflightMessage):
            message.settle(True)
            if message.key is not None and self._hub.keyed_puback is not None:
                self._hub.keyed_puback(session.client_id or "", message.key)
        self._send_queued()
        if not inflight:
            self._hub.unacked.discard(self)

    def _protocol_error(self, reason: str) -> None:
        log.warning(
            "closing connection: protocol error",
            extra={"client_id": self.client_id, "peer": self.peer, "reason": reason},
        )
        self._mark_closing()
        if self.transport is not None:
            self.transport.abort()

    def _mark_closing(self) -> None:
        if self._state < _CLOSING:
            self._state = _CLOSING

    def _pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused and self._state == _CONNECTED and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()

    # -- work in arrival order ------------------------------------------------------------------------------------

    def _submit(self, item: _Work) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [item]
            if self._worker is None:
                self._worker = asyncio.get_running_loop().create_task(self._work())
        else:
            pending.append(item)
            if len(pending) >= PENDING_PAUSE:
                self._pause_reading()

    async def _work(self) -> None:
        handler = self._hub.handler
        try:
            while self._pending:
                batch, self._pending = self._pending, None
                for item in batch:
                    try:
                        match item:
                            case PublishPacket():
                                await handler.client_publish(self, item.topic, item.payload, item.qos, item.retain)
                                if item.qos == 1:
                                    self.write(encode_ack(PUBACK, item.packet_id))
                                elif item.qos == 2:
                                    self.write(encode_ack(PUBREC, item.packet_id))
                            case SubscribePacket():
                                await handler.client_subscribe(self, item.packet_id, item.topics)
                            case UnsubscribePacket():
                                await handler.client_unsubscribe(self, item.packet_id, item.filters)
                            case ConnectRequest():
                                await handler.client_connect(self, item)
                            case _Signal(name="pingreq"):
                                self.write(PINGRESP_PACKET)
                            case _Signal(name="disconnect"):
                                self.close()
                            case _:
                                await handler.connection_closed(self)
                                self._finished()
                    except Exception:
                        log.exception(
                            "client packet handling failed",
                            extra={"client_id": self.client_id, "peer": self.peer, "work": type(item).__name__},
                        )
                        if item is _CLOSED_ITEM:
                            self._finished()
                        else:
                            self.close()
                if self._pending is None:
                    self._resume_reading()
        finally:
            self._worker = None

    # -- called by the broker ---------------------------------------------------------------------------------------

    def accept(self, session: DeviceSession, session_present: bool) -> None:
        """CONNACK 0: the connection serves ``session`` from now on."""
        self.session = session
        self._state = _CONNECTED
        self.write(bytes((0x20, 2, int(session_present), 0)))
        if session.keep_alive > 0:
            hub = self._hub
            # [MQTT-3.1.2-24] 1.5 × keep-alive; +1 because a tick is a whole second.
            self._keep_alive_ticks = math.ceil(1.5 * session.keep_alive) + 1
            hub.at(self._last_heard + self._keep_alive_ticks, self)

    def start_reading(self) -> None:
        """After the CONNECT is answered: packets that came with or after it are handled now."""
        self._resume_reading()
        buffer = self._buffer
        if buffer is not None and self._state == _CONNECTED:
            self._buffer = None
            try:
                self._parse(bytes(buffer))
            except MalformedPacket as exc:
                self._protocol_error(str(exc))

    def refuse(self, return_code: int) -> None:
        """CONNACK with a refusal code, then close [MQTT-3.2.2-5]."""
        self.write(bytes((0x20, 2, 0, return_code)))
        self.close()

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        waiter: asyncio.Future[bool] | None = None,
        key: str | None = None,
    ) -> bool:
        """Send a PUBLISH at QoS 0 or 1; False if it was not written now.

        At QoS 1 the message stays in ``session.inflight_out`` until PUBACK;
        ``waiter`` gets True then, or False at the first resend or when the
        connection ends. Beyond ``protocol.max_inflight_messages`` awaiting
        PUBACK, a QoS 1 message waits in the session's queue (False, waiter
        unused) and goes out as PUBACKs make room; beyond
        ``protocol.max_queued_messages`` there it is dropped. A ``key`` (the
        outbox row's message id) already in flight or queued is not sent again:
        the broker's own resends (DUP=1, same packet id) carry it.
        False too when closed or, at QoS 0, for a slow reader.
        """
        if self._state != _CONNECTED:
            return False
        if not qos:
            if self._write_paused:
                log.debug("QoS 0 message dropped: slow reader", extra={"client_id": self.client_id, "topic": topic})
                return False
            self.write(encode_publish(topic.encode(), payload, 0, 0, retain, False))
            self._hub.messages_out += 1
            return True
        session = self.session
        assert session is not None
        if key is not None and session.holds(key):
            return False
        if len(session.inflight_out) >= self._hub.settings.max_inflight_messages:
            queued = session.queued_out
            if queued is None:
                queued = session.queued_out = deque()
            if len(queued) >= session.max_queued:
                self._hub.dropped += 1
                log.warning(
                    "QoS 1 message dropped: session queue full",
                    extra={"client_id": self.client_id, "topic": topic, "limit": session.max_queued},
                )
            else:
                queued.append(QueuedMessage(topic, payload, retain, key))
            return False
        self._send_qos1(session, topic, payload, retain, waiter, key)
        return True

    def _send_qos1(
        self,
        session: DeviceSession,
        topic: str,
        payload: bytes,
        retain: bool,
        waiter: asyncio.Future[bool] | None,
        key: str | None,
    ) -> None:
        # The in-flight window is far below 65,535, so a free packet id always exists.
        packet_id = session.next_packet_id
        inflight = session.inflight_out
        inflight[packet_id] = InflightMessage(packet_id, topic, payload, retain, self._hub.tick, waiter, key)
        if len(inflight) == 1:
            self._hub.unacked.add(self)
        self._hub.messages_out += 1
        self.write(encode_publish(topic.encode(), payload, 1, packet_id, retain, False))

    def _send_queued(self) -> None:
        """Queued QoS 1 messages into the in-flight window, oldest first, while it has room."""
        session = self.session
        if session is None or not session.queued_out or self._state != _CONNECTED:
            return
        queued, limit = session.queued_out, self._hub.settings.max_inflight_messages
        while queued and len(session.inflight_out) < limit:
            message = queued.popleft()
            self._send_qos1(session, message.topic, message.data, message.retain, None, message.key)

    def resend_inflight(self) -> None:
        """[MQTT-4.4.0-1] on resuming a session: every unacknowledged message again, DUP=1, same ids."""
        session = self.session
        assert session is not None
        inflight = session.inflight_out
        tick = self._hub.tick
        for packet_id, message in list(inflight.items()):
            if not isinstance(message, InflightMessage):  # a session made by stock amqtt code
                message = inflight[packet_id] = InflightMessage(
                    packet_id, message.topic, bytes(message.data), message.retain, tick, None
                )
            message.sent_tick = tick
            self.write(encode_publish(message.topic.encode(), bytes(message.data), 1, packet_id, message.retain, True))
        self._send_queued()
        if inflight:
            self._hub.unacked.add(self)

    def resend_overdue(self, tick: int, interval: int) -> bool:
        """Resend (DUP=1) what waited for PUBACK longer than ``interval``; False once nothing is in flight."""
        if self._state != _CONNECTED or self.session is None:
            return False
        inflight = self.session.inflight_out
        if self._write_paused:
            return bool(inflight)
        overdue = []
        for message in inflight.values():  # oldest first: a resend moves a message to the end
            if tick - message.sent_tick <= interval:
                break
            overdue.append(message)
        for message in overdue:
            packet_id = message.packet_id
            del inflight[packet_id]
            inflight[packet_id] = message
            message.sent_tick = tick
            message.settle(False)
            self.write(encode_publish(message.topic.encode(), message.data, 1, packet_id, message.retain, True))
        return bool(inflight)

    def on_timer(self, tick: int) -> None:
        state = self._state
        if state == _NEW:
            log.info("closing connection: no CONNECT in time", extra={"peer": self.peer})
            self._mark_closing()
            assert self.transport is not None
            self.transport.abort()
        elif state == _CONNECTED and self._keep_alive_ticks:
            due = self._last_heard + self._keep_alive_ticks
            if tick < due:
                self._hub.at(due, self)
                return
            log.info("closing connection: keep-alive expired", extra={"client_id": self.client_id, "peer": self.peer})
            self._mark_closing()
            assert self.transport is not None
            self.transport.abort()

    def write(self, packet: bytes | bytearray) -> None:
        out = self._out
        if out is None:
            if self._state == _CLOSED:
                return
            self._out = [packet]
            self._hub.mark_dirty(self)
        else:
            out.append(packet)

    def flush(self) -> None:
        out, self._out = self._out, None
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))

    def close(self) -> None:
        """Flush what is queued and close; the end of the connection is then handled like any other."""
        self._mark_closing()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.flush()
            transport.close()

    async def stop(self) -> None:
        """amqtt's ``handler.stop()`` (``Broker._cleanup_session``, shutdown): close without a will message."""
        self.graceful = True
        self.close()

    async def handle_connection_closed(self) -> None:
        """amqtt's name for dropping a connection as if the network failed (the will is published)."""
        self.close()

    async def wait_closed(self, timeout: float) -> None:
        """Until the broker has finished with this connection's end (will, events, session state)."""
        if self._state == _CLOSED and self._worker is None:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await asyncio.wait([waiter], timeout=timeout)

    def _finished(self) -> None:
        # A keep-alive bucket may hold this object until its deadline: let the session and transport go now.
        self.session = None
        self.transport = None
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)
