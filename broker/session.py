"""Lighter per-device session and protocol handler for amqtt 0.12.1.

A stock amqtt session costs ~51 KB: a ``transitions.Machine`` per session, four
``asyncio.Queue`` objects (two on the session, two on the handler) and four
waiter tasks in the broker's per-client loop. Here a session carries a
three-state object instead of the Machine, one small inbox that holds
everything the client sent in arrival order (publishes, subscribe,
unsubscribe, disconnect), and its offline-message queue only once it needs
one. The broker's per-client loop (``PlatformBroker._client_message_loop``)
then waits on that one inbox instead of four tasks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from amqtt.errors import MQTTError
from amqtt.events import MQTTEvents
from amqtt.mqtt.connack import BAD_USERNAME_PASSWORD, IDENTIFIER_REJECTED, UNACCEPTABLE_PROTOCOL_VERSION, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler, Subscription, UnSubscription
from amqtt.mqtt.protocol.handler import ProtocolHandler
from amqtt.mqtt.subscribe import SubscribePacket
from amqtt.mqtt.unsubscribe import UnsubscribePacket
from amqtt.session import OUTGOING, Session
from transitions import MachineError

_MQTT_PROTOCOL_LEVEL_SUPPORTED = 4
# amqtt's PUBACK wait.
PUBACK_TIMEOUT_S = 5


class Inbox:
    """An unbounded FIFO with ``asyncio.Queue``'s methods used by amqtt, for one consumer.

    ``asyncio.Queue`` keeps three deques and an Event (~2.5 KB empty); a
    session needs one deque and, while its consumer waits, one future.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class SessionState:
    """The ``session.transitions`` amqtt reads: ``state``, ``connect()``, ``disconnect()``, ``is_connected()``.

    Same states and transitions as ``Session._init_states`` (connect from
    new/disconnected, disconnect from anywhere) and the same enter callbacks,
    without a ``transitions.Machine`` (~20 KB) per session.
    """

    __slots__ = ("_session", "state")

    def __init__(self, session: Session) -> None:
        self._session = session
        self.state = "new"

    def connect(self) -> None:
        if self.state == "connected":
            raise MachineError("Can't trigger event connect from state connected!")
        self.state = "connected"
        self._session._on_enter_connected()

    def disconnect(self) -> None:
        self.state = "disconnected"
        self._session._on_enter_disconnected()

    def is_new(self) -> bool:
        return self.state == "new"

    def is_connected(self) -> bool:
        return self.state == "connected"

    def is_disconnected(self) -> bool:
        return self.state == "disconnected"


class DeviceSession(Session):
    """amqtt's ``Session`` with the same attributes, built lighter (see the module docstring)."""

    def __init__(self) -> None:
        # Session.__init__ is not called: it builds the Machine and two Queues this class replaces.
        self.transitions = SessionState(self)  # type: ignore[assignment]
        self.remote_address: str | None = None
        self.remote_port: int | None = None
        self.client_id: str | None = None
        self.clean_session: bool | None = None
        self.will_flag = False
        self.will_message: bytes | bytearray | None = None
        self.will_qos: int | None = None
        self.will_retain: bool | None = None
        self.will_topic: str | None = None
        self.keep_alive = 0
        self.publish_retry_delay = 0
        self.broker_uri: str | None = None
        self.username: str | None = None
        self.password: str | None = None
        self.cafile: str | None = None
        self.capath: str | None = None
        self.cadata: bytes | None = None
        self._packet_id = 0
        self.parent = 0
        self.last_connect_time: int | None = None
        self.ssl_object: Any = None
        self.last_disconnect_time: int | None = None
        self.attributes: dict[str, Any] = {}
        # amqtt uses OrderedDicts but only dict operations; a dict keeps insertion order too.
        self.inflight_out: dict[int, Any] = {}  # type: ignore[assignment]
        self.inflight_in: dict[int, Any] = {}  # type: ignore[assignment]
        self._offline: Inbox | None = None
        self.delivered_message_queue = Inbox()  # type: ignore[assignment]
        self.is_anonymous = False

    @property  # type: ignore[override]
    def retained_messages(self) -> Inbox:
        """Messages queued while this persistent session is offline; created on first use."""
        if self._offline is None:
            self._offline = Inbox()
        return self._offline

    @retained_messages.setter
    def retained_messages(self, queue: Inbox) -> None:
        self._offline = queue

    @property
    def retained_messages_count(self) -> int:
        return 0 if self._offline is None else self._offline.qsize()

    def take_offline_messages(self) -> list[Any]:
        """Remove and return the messages queued while offline, oldest first."""
        if self._offline is None or self._offline.empty():
            return []
        messages = list(self._offline._items)
        self._offline._items.clear()
        return messages

    def clear_queues(self) -> None:
        self._offline = None
        # The end-of-connection marker must survive: the client loop is waiting for it.
        inbox: Inbox = self.delivered_message_queue  # type: ignore[assignment]
        inbox._items = deque(item for item in inbox._items if isinstance(item, Control))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_offline"], state["delivered_message_queue"], state["transitions"]
        state["_state"] = self.transitions.state
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_state")
        self.__dict__.update(state)
        self.transitions = SessionState(self)  # type: ignore[assignment]
        self.transitions.state = saved
        self._offline = None
        self.delivered_message_queue = Inbox()  # type: ignore[assignment]


class Control:
    """A SUBSCRIBE, UNSUBSCRIBE or end of connection, queued in the session inbox behind earlier publishes.

    ``result()`` mirrors the future amqtt's handlers (``_handle_subscription``,
    ``_handle_disconnect``) read their argument from.
    """

    __slots__ = ("handler", "kind", "payload")

    SUBSCRIBE = 1
    UNSUBSCRIBE = 2
    DISCONNECT = 3

    def __init__(self, handler: DeviceProtocolHandler, kind: int, payload: Any) -> None:
        self.handler = handler
        self.kind = kind
        self.payload = payload

    def result(self) -> Any:
        return self.payload


class DeviceProtocolHandler(BrokerProtocolHandler):
    """amqtt's broker-side protocol handler, feeding the session inbox instead of its own queues."""

    def __init__(self, plugins_manager: Any, session: Session | None = None, loop: asyncio.AbstractEventLoop | None = None) -> None:
        # BrokerProtocolHandler.__init__ only adds two Queues and a disconnect future; the inbox replaces them.
        ProtocolHandler.__init__(self, plugins_manager, session, loop)
        self._disconnect_waiter = None
        self._closed = False
        # The task serving this connection, so a take-over can wait for it to finish.
        self.connection_task: asyncio.Task[Any] | None = None

    @classmethod
    async def init_from_connect(cls, reader: Any, writer: Any, plugins_manager: Any,
                                loop: asyncio.AbstractEventLoop | None = None) -> tuple[DeviceProtocolHandler, Session]:
        """``BrokerProtocolHandler.init_from_connect`` with the same checks, building a ``DeviceSession``.

        The stock version builds a plain ``Session`` (360 µs and 23 KB for its
        ``transitions.Machine``), which would cap connects near 2,700/s.
        """
        connect = await ConnectPacket.from_stream(reader)
        await plugins_manager.fire_event(MQTTEvents.PACKET_RECEIVED, packet=connect)
        if connect.variable_header is None or connect.payload is None:
            raise MQTTError("CONNECT packet: header or payload not initialized")
        if connect.payload.client_id is None:
            raise MQTTError("[[MQTT-3.1.3-3]] : Client identifier must be present")
        if connect.variable_header.will_flag and (connect.payload.will_topic is None or connect.payload.will_message is None):
            raise MQTTError("Will flag set, but will topic/message not present in payload")
        if connect.variable_header.reserved_flag:
            raise MQTTError("[MQTT-3.1.2-3] CONNECT reserved flag must be set to 0")
        if connect.proto_name != "MQTT":
            raise MQTTError(f'[MQTT-3.1.2-1] Incorrect protocol name: "{connect.proto_name}"')

        remote_address, remote_port = writer.get_peer_info() or (None, None)
        refusal = None
        if connect.proto_level != _MQTT_PROTOCOL_LEVEL_SUPPORTED:
            refusal = UNACCEPTABLE_PROTOCOL_VERSION
        elif (not connect.username_flag and connect.password_flag) or (connect.username_flag and connect.username is None) \
                or (connect.password_flag and connect.password is None):
            refusal = BAD_USERNAME_PASSWORD  # [MQTT-3.1.2-22]
        elif connect.clean_session_flag is False and connect.payload.client_id_is_random:
            refusal = IDENTIFIER_REJECTED  # [MQTT-3.1.3-8] [MQTT-3.1.3-9]
        if refusal is not None:
            connack = ConnackPacket.build(0, refusal)
            await plugins_manager.fire_event(MQTTEvents.PACKET_SENT, packet=connack)
            await connack.to_stream(writer)
            await writer.close()
            raise MQTTError(f"CONNECT from {remote_address}:{remote_port} refused with return code {refusal}")

        session = DeviceSession()
        session.client_id = connect.client_id
        session.clean_session = connect.clean_session_flag
        session.will_flag = connect.will_flag
        session.will_retain = connect.will_retain_flag
        session.will_qos = connect.will_qos
        session.will_topic = connect.will_topic
        session.will_message = connect.will_message
        session.username = connect.username
        session.password = connect.password
        session.remote_address = remote_address
        session.remote_port = remote_port
        session.ssl_object = writer.get_ssl_info()
        session.keep_alive = max(connect.keep_alive, 0)
        return cls(plugins_manager, loop=loop), session

    async def _handle_qos1_message_flow(self, app_message: Any) -> None:
        """Outgoing QoS 1 as in amqtt, except an unacknowledged message stays in flight.

        amqtt dropped it from ``session.inflight_out`` when the connection
        ended or the PUBACK timed out, so a persistent session never got it
        again; kept, ``_retry_deliveries`` resends it (DUP=1) on reconnect
        [MQTT-4.4.0-1]. Incoming QoS 1 is unchanged.
        """
        if app_message.direction != OUTGOING or self.session is None:
            await super()._handle_qos1_message_flow(app_message)
            return
        packet_id = app_message.packet_id
        self.session.inflight_out[packet_id] = app_message
        packet = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        await self._send_packet(packet)
        app_message.publish_packet = packet
        waiter = self._puback_waiters[packet_id] = self._loop.create_future()
        try:
            app_message.puback_packet = await asyncio.wait_for(waiter, timeout=PUBACK_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise TimeoutError(f"Timeout waiting for PUBACK for packet ID {packet_id}") from None
        finally:
            self._puback_waiters.pop(packet_id, None)
        self.session.inflight_out.pop(packet_id, None)

    def _enqueue(self, kind: int, payload: Any) -> None:
        if self.session is not None:
            self.session.delivered_message_queue.put_nowait(Control(self, kind, payload))

    async def start(self) -> None:
        self._closed = False
        await ProtocolHandler.start(self)

    async def stop(self) -> None:
        await ProtocolHandler.stop(self)
        await self.handle_disconnect(None)

    async def handle_disconnect(self, disconnect: DisconnectPacket | None) -> None:
        # Called for DISCONNECT, end of stream, take-over and stop(); the loop needs to hear it once.
        if not self._closed:
            self._closed = True
            self._enqueue(Control.DISCONNECT, disconnect)

    async def handle_connect(self, connect: ConnectPacket) -> None:
        # [MQTT-3.1.0-2] a second CONNECT is a protocol violation: end the connection.
        self.logger.error("CONNECT received during message handling [MQTT-3.1.0-2]")
        await self.handle_disconnect(None)

    async def handle_subscribe(self, subscribe: SubscribePacket) -> None:
        if subscribe.variable_header is None or subscribe.payload is None:
            return
        self._enqueue(Control.SUBSCRIBE, Subscription(subscribe.variable_header.packet_id, subscribe.payload.topics))

    async def handle_unsubscribe(self, unsubscribe: UnsubscribePacket) -> None:
        if unsubscribe.variable_header is None or unsubscribe.payload is None:
            return
        self._enqueue(Control.UNSUBSCRIBE, UnSubscription(unsubscribe.variable_header.packet_id, unsubscribe.payload.topics))
