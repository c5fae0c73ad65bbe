"""The project's broker: amqtt 0.12.1's ``Broker`` made to cost O(1) per message and per connect.

Plugins are built by amqtt's plugin manager inside ``Broker.__init__``; they
reach the database and settings through ``broker.platform`` (see
``plugins``), which is why it is set before ``super().__init__``.

Each override below names what it replaces; docs/broker.md is the overview.
``self._subscriptions`` keeps amqtt's shape (filter -> [(session, qos)]) for
amqtt and its plugins, and two indexes sit beside it: a trie of the wildcard
filters and, per client id, that client's own filters. Retained messages are
kept in a dict that maintains a topic trie (``topics.RetainedMessages``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from amqtt.broker import AMQTT_MAGIC_VALUE_RET_SUBSCRIBED, Broker, Server
from amqtt.contexts import Action
from amqtt.errors import MQTTError
from amqtt.events import BrokerEvents, MQTTEvents
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.constants import QOS_0, QOS_1, QOS_2
from amqtt.session import ApplicationMessage, Session
from amqtt.utils import gen_client_id

from qris_soundbox.broker.session import Control, DeviceProtocolHandler, DeviceSession
from qris_soundbox.broker.topics import FilterTrie, RetainedMessages, has_wildcard

if TYPE_CHECKING:
    from amqtt.adapters import ReaderAdapter, WriterAdapter
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler

    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)

# How long a take-over waits for the displaced connection to finish its disconnect handling.
TAKEOVER_TIMEOUT_S = 5.0


class _Ready:
    """A finished 'future' for amqtt handlers that read their argument with ``.result()``."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value


def _valid_filter(topic_filter: str) -> bool:
    levels = topic_filter.split("/")
    last = len(levels) - 1
    for index, level in enumerate(levels):
        # [MQTT-4.7.1-2] '#' alone on the last level; [MQTT-4.7.1-3] '+' a whole level.
        if "#" in level and (level != "#" or index != last):
            return False
        if "+" in level and level != "+":
            return False
    return True


class PlatformBroker(Broker):
    def __init__(self, config: dict[str, Any], platform: PlatformContext) -> None:
        self.platform = platform
        self._wildcard_filters = FilterTrie()
        self._filters_by_client: dict[str, dict[str, int]] = {}
        super().__init__(config)
        self._retained_messages = RetainedMessages()

    @property
    def is_running(self) -> bool:
        return self.transitions.state == "started"

    async def start(self) -> None:
        # Broker.start clears the subscription table; the indexes beside it follow.
        self._wildcard_filters.clear()
        self._filters_by_client.clear()
        await super().start()

    # -- public API for the platform ---------------------------------------------------------

    def is_device_online(self, client_id: str) -> bool:
        session = self._sessions.get(client_id, (None, None))[0]
        return session is not None and session.transitions.is_connected()

    async def disconnect_client(self, client_id: str) -> bool:
        """Close the live connection of ``client_id`` (e.g. its credential was rotated).

        The client's message loop then runs amqtt's normal disconnect handling
        (handler stopped, socket closed, ``broker_client_disconnected`` fired).
        Returns False when no connected session has that id.
        """
        session, handler = self.sessions.get(client_id, (None, None))
        if session is None or handler is None or not session.transitions.is_connected():
            return False
        await handler.handle_connection_closed()
        return True

    async def deliver_to_client(self, client_id: str, topic: str, payload: bytes, qos: int = QOS_1) -> bool:
        """Publish ``topic`` to ``client_id`` alone, if one of its subscriptions matches.

        No broadcast queue and no scan: the session is found by id and the topic
        checked against that session's own filters. A connected session gets the
        PUBLISH; the call returns True once the client acknowledged it (QoS 1/2)
        or it was written (QoS 0), False on timeout or disconnect. An offline
        persistent session (clean_session=False) gets it queued for its
        reconnect, as amqtt does for broadcasts; that, or no matching
        subscription, returns False.
        """
        if has_wildcard(topic) or not topic:
            raise ValueError(f"cannot publish to topic filter {topic!r}")
        entry = self._sessions.get(client_id)
        own = self._filters_by_client.get(client_id)
        if entry is None or not own or not any(self._matches(topic, f) for f in own):
            return False
        session, handler = entry
        if not await self._topic_filtering(session, topic=topic, action=Action.RECEIVE):
            return False
        if session.transitions.state != "connected":
            if not session.clean_session and qos in (QOS_1, QOS_2) and not session.is_anonymous:
                await self._retain_broadcast_message({"session": None, "topic": topic, "data": payload}, qos, session)
            return False
        try:
            await handler.mqtt_publish(topic, payload, qos, retain=False)
        except asyncio.CancelledError:
            # amqtt cancels the PUBACK waiter when the connection ends; only our own cancellation propagates.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        except (TimeoutError, MQTTError, OSError) as exc:
            log.info("downlink not acknowledged", extra={"client_id": client_id, "topic": topic, "error": repr(exc)})
        else:
            return True
        return False

    # -- subscriptions: indexed instead of scanned ---------------------------------------------

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        """Replaces ``Broker.add_subscription``: same checks and return codes, plus the indexes.

        Unlike amqtt, a repeated SUBSCRIBE to the same filter replaces the
        granted QoS, as MQTT 3.1.1 §3.8.4 requires.
        """
        topic_filter, qos = subscription
        if not _valid_filter(topic_filter):
            return AMQTT_MAGIC_VALUE_RET_SUBSCRIBED
        if not await self._topic_filtering(session, topic_filter, Action.SUBSCRIBE):
            return AMQTT_MAGIC_VALUE_RET_SUBSCRIBED
        max_qos = self.config.get("max-qos", qos)
        qos = min(qos, max_qos if isinstance(max_qos, int) else qos)

        client_id = session.client_id or ""
        subscribers = self._subscriptions.get(topic_filter)
        if subscribers is None:
            subscribers = self._subscriptions[topic_filter] = []
            if has_wildcard(topic_filter):
                self._wildcard_filters.add(topic_filter)
        own = self._filters_by_client.setdefault(client_id, {})
        if topic_filter in own:
            subscribers[:] = [(s, q) for s, q in subscribers if s.client_id != client_id]
        subscribers.append((session, qos))
        own[topic_filter] = qos
        return qos

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        """Replaces ``Broker._del_subscription``; also drops emptied filters from the table and the trie."""
        client_id = session.client_id or ""
        own = self._filters_by_client.get(client_id)
        if own is None or own.pop(a_filter, None) is None:
            return 0
        if not own:
            del self._filters_by_client[client_id]
        subscribers = self._subscriptions.get(a_filter, [])
        subscribers[:] = [(s, q) for s, q in subscribers if s.client_id != client_id]
        if not subscribers:
            self._subscriptions.pop(a_filter, None)
            self._wildcard_filters.discard(a_filter)
        return 1

    async def _del_all_subscriptions(self, session: Session) -> None:
        """Replaces ``Broker._del_all_subscriptions``: the session's own filters, not every filter."""
        for topic_filter in list(self._filters_by_client.get(session.client_id or "", ())):
            self._del_subscription(topic_filter, session)

    def _subscribers(self, topic: str) -> list[tuple[Session, int]]:
        """(session, qos) of every subscription matching ``topic``: one dict lookup plus one trie walk."""
        found = list(self._subscriptions.get(topic, ()))
        for topic_filter in self._wildcard_filters.matching(topic):
            found.extend(self._subscriptions.get(topic_filter, ()))
        return found

    # -- routing ---------------------------------------------------------------------------------

    async def _run_broadcast(self, running_tasks: deque[asyncio.Task[Any]]) -> None:
        """Replaces ``Broker._run_broadcast``: matching subscriptions come from the index.

        Per target the stock rules are kept: the RECEIVE topic check, queueing
        for an offline persistent session, delivery at the forced QoS if any,
        else the subscription's.
        """
        broadcast = await self._broadcast_queue.get()
        topic = broadcast["topic"]
        for target_session, sub_qos in self._subscribers(topic):
            qos = broadcast.get("qos", sub_qos)
            if not await self._topic_filtering(target_session, topic=topic, action=Action.RECEIVE):
                continue
            state = target_session.transitions.state
            if state != "connected":
                if not target_session.clean_session and qos in (QOS_1, QOS_2) and not target_session.is_anonymous:
                    await self._retain_broadcast_message(broadcast, qos, target_session)
                continue
            handler = self._get_handler(target_session)
            if handler is not None:
                running_tasks.append(asyncio.ensure_future(handler.mqtt_publish(topic, broadcast["data"], qos, retain=False)))

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        """Replaces ``Broker._topic_filtering``: same verdict, without a task per plugin per call.

        amqtt wraps every topic plugin call in a task and a gather; this runs
        on every delivery, so the plugins are awaited in turn instead. As in
        amqtt, every plugin must answer truthy (None counts as a refusal).
        """
        plugins = self.plugins_manager._topic_plugins
        if plugins and not self.plugins_manager.is_topic_filtering_enabled():
            return True
        for plugin in plugins:
            if not await plugin.topic_filtering(session=session, topic=topic, action=action):
                return False
        return True

    # -- retained messages -----------------------------------------------------------------------

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Session) -> None:
        """Replaces the stock version, which string-matched every retained topic, with a trie lookup."""
        topic_filter, qos = subscription
        handler = self._get_handler(session)
        matching = self._retained_messages.matching(topic_filter)  # type: ignore[attr-defined]
        if handler is None or not matching:
            return
        await asyncio.wait([
            asyncio.ensure_future(handler.mqtt_publish(r.topic, r.data, min(qos, r.qos or qos), retain=True))
            for r in matching
        ])

    async def _publish_session_retained_messages(self, session: Session) -> None:
        """Replaces the stock version: messages queued offline go out in order, with RETAIN=0.

        They matched an established subscription, so [MQTT-3.3.1-9] wants
        RETAIN=0 (amqtt sends 1). Writes are ordered by the handler's lock.
        """
        handler = self._get_handler(session)
        taken = session.take_offline_messages() if isinstance(session, DeviceSession) else []
        if handler is None or not taken:
            return
        await asyncio.wait([
            asyncio.ensure_future(handler.mqtt_publish(m.topic, m.data, m.qos, retain=False)) for m in taken
        ])

    # -- connect: authenticate first, then touch existing sessions -------------------------------

    def create_offline_session(self, client_id: str) -> tuple[BrokerProtocolHandler, Session]:
        """Replaces the stock version to build the lighter session and handler."""
        session = DeviceSession()
        session.client_id = client_id
        session.transitions.disconnect()
        return DeviceProtocolHandler(self.plugins_manager, session), session

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        """Replaces the stock version, which took over or deleted a client's session before authenticating.

        amqtt 0.12.1 deleted the existing session of a clean-session CONNECT
        here, and took over a connected one in ``_handle_client_session``,
        before asking the auth plugins: anyone could knock a device offline or
        erase its session with its client id. Now: parse, authenticate, and
        only an accepted CONNECT takes over (and waits for the displaced
        connection to finish), deletes or resumes the existing session. A
        refused CONNECT gets CONNACK 5 and changes nothing.
        """
        try:
            handler, incoming = await DeviceProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
        except MQTTError:
            self.logger.warning("invalid CONNECT from %s:%s", remote_address, remote_port)
            await writer.close()
            raise
        if not incoming.client_id:
            incoming.client_id = gen_client_id()

        if not await self._authenticate(incoming, None):  # type: ignore[arg-type]
            connack = ConnackPacket.build(0, NOT_AUTHORIZED)
            await self.plugins_manager.fire_event(MQTTEvents.PACKET_SENT, packet=connack)
            await connack.to_stream(writer)
            await writer.close()
            raise MQTTError(f"CONNECT refused for client {incoming.client_id!r} from {remote_address}:{remote_port}")

        client_id = incoming.client_id
        for _ in range(3):  # another CONNECT for the same id may slip in while we wait
            existing = self._sessions.get(client_id)
            if existing is None or existing[0].transitions.state != "connected":
                break
            await self._take_over(client_id, existing[1])

        session: Session = incoming
        existing = self._sessions.get(client_id)
        if incoming.clean_session:
            await self._delete_session(client_id)
            session.parent = 0
        elif existing is not None:
            # A resumed session keeps its subscriptions and queues but takes this CONNECT's will,
            # keep-alive and credentials, and what the auth plugins attached to it just now.
            session = existing[0]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain", "keep_alive",
                         "username", "password", "remote_address", "remote_port", "ssl_object", "is_anonymous"):
                setattr(session, name, getattr(incoming, name))
            session.attributes.update(incoming.attributes)
            session.parent = 1
        else:
            session.parent = 0

        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _take_over(self, client_id: str, handler: BrokerProtocolHandler) -> None:
        self.logger.warning("client %s is already connected: taking over its session", client_id)
        await handler.handle_connection_closed()
        await handler.stop()
        task = getattr(handler, "connection_task", None)
        if task is not None and task is not asyncio.current_task() and not task.done():
            await asyncio.wait([task], timeout=TAKEOVER_TIMEOUT_S)

    async def _handle_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        client_session: Session,
        handler: BrokerProtocolHandler,
        server: Server,
        listener_name: str,
    ) -> None:
        """Replaces the stock version: the client is authenticated already (see above), and
        on resume only this session's own filters are looked up for retained messages
        (amqtt looped over every filter of every client on each connect)."""
        if client_session.transitions.state == "connected":
            # The displaced connection did not finish within TAKEOVER_TIMEOUT_S.
            client_session.transitions.disconnect()
        client_session.transitions.connect()
        handler.attach(client_session, reader, writer)
        handler.connection_task = asyncio.current_task()  # type: ignore[attr-defined]
        self._sessions[client_session.client_id] = (client_session, handler)  # type: ignore[index]

        await handler.mqtt_connack_authorize(True)
        await self.plugins_manager.fire_event(BrokerEvents.CLIENT_CONNECTED, client_id=client_session.client_id,
                                              client_session=client_session)
        await handler.start()
        await self._publish_session_retained_messages(client_session)
        if client_session.parent:
            for topic_filter in list(self._filters_by_client.get(client_session.client_id or "", ())):
                await self._publish_retained_messages_for_subscription((topic_filter, QOS_0), client_session)
        await self._client_message_loop(client_session, handler)

    async def _client_message_loop(self, client_session: Session, handler: BrokerProtocolHandler) -> None:
        """Replaces the stock loop, which kept four waiter tasks per client and rebuilt an
        ``asyncio.wait`` over them for every packet, and ran ``repr(self._subscriptions)``
        (the whole table) after each SUBSCRIBE.

        The handler queues publishes, SUBSCRIBE, UNSUBSCRIBE and the end of the
        connection in one inbox, so they are also handled in arrival order.
        """
        inbox = client_session.delivered_message_queue
        try:
            while True:
                item = await inbox.get()
                if isinstance(item, Control):
                    if item.handler is not handler:
                        continue  # left over from an earlier connection of this persistent session
                    if item.kind == Control.DISCONNECT:
                        await self._handle_disconnect(client_session, handler, item)  # type: ignore[arg-type]
                        return
                    if item.kind == Control.SUBSCRIBE:
                        await self._handle_subscription(client_session, handler, item)  # type: ignore[arg-type]
                    else:
                        await self._handle_unsubscription(client_session, handler, item)  # type: ignore[arg-type]
                elif isinstance(item, ApplicationMessage):
                    if not await self._handle_message_delivery(client_session, handler, _Ready(item)):  # type: ignore[arg-type]
                        # A forbidden topic closes the connection (amqtt left it open with no loop).
                        await self._handle_disconnect(client_session, handler, _Ready(None))  # type: ignore[arg-type]
                        return
        except asyncio.CancelledError:
            self.logger.debug("client loop cancelled")

