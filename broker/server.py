"""The project's broker: amqtt 0.12.1's ``Broker`` with its own packet path and O(1) routing.

Plugins are built by amqtt's plugin manager inside ``Broker.__init__``; they
reach the database and settings through ``broker.platform`` (see
``plugins``), which is why it is set before ``super().__init__``.

amqtt's (run as amqtt runs them): the plugin manager (authentication, topic
plugins, events), configuration, listeners' lifecycle, and the session table
(``self.sessions``, amqtt's public view of it: client id -> (session,
handler)). The project's own: the wire (``protocol.Connection``, the
"handler" in that table, which calls this broker through the
``protocol.PacketHandler`` methods ``client_*`` and ``connection_closed``),
CONNECT admission (``admission.py``), the subscription indexes
(``subscriptions.py``, writing amqtt's table in its shape), routing, the
lighter session (``session.py``) and retained messages kept with a topic trie
(``topics.RetainedMessages``). Every other amqtt internal it touches goes
through ``amqtt_compat``. docs/broker.md is the overview.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from amqtt.broker import AMQTT_MAGIC_VALUE_RET_SUBSCRIBED, Broker
from amqtt.contexts import Action, ListenerType
from amqtt.errors import BrokerError
from amqtt.events import BrokerEvents
from amqtt.mqtt.constants import QOS_0, QOS_1
from amqtt.session import IncomingApplicationMessage, Session

from qris_soundbox.broker import amqtt_compat
from qris_soundbox.broker.admission import Admission
from qris_soundbox.broker.codec import UNSUBACK, ConnectRequest, encode_ack, encode_suback
from qris_soundbox.broker.config import BrokerConfigError, split_protocol_settings
from qris_soundbox.broker.dialects import Dialect, DialectError, Dialects, Refused
from qris_soundbox.broker.protocol import LISTEN_BACKLOG, Connection, Hub
from qris_soundbox.broker.session import DeviceSession
from qris_soundbox.broker.subscriptions import SubscriptionIndex, valid_filter
from qris_soundbox.broker.tls import ReloadableContext, TlsConfigError, TlsFiles
from qris_soundbox.broker.topics import RetainedMessages, has_wildcard
from qris_soundbox.core.devices.uplink_budget import Verdict
from qris_soundbox.core.metrics import BrokerFigures

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

    from amqtt.broker import Server

    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)

# How long a take-over (or shutdown) waits for a closed connection's end to be handled.
TAKEOVER_TIMEOUT_S = 5.0
# A plugin event waiting in a client's lane: the handlers, their keyword arguments, and the future
# ``_fire(handled=True)`` returned, done once they have run.
_LaneEvent = tuple[list[Any], dict[str, Any], "asyncio.Future[None] | None"]
# Outgoing QoS 2 is not implemented: subscriptions are granted at most QoS 1 (docs/broker.md).
MAX_QOS = QOS_1


class PlatformBroker(Broker):
    def __init__(self, config: dict[str, Any], platform: PlatformContext) -> None:
        self.platform = platform
        amqtt_config, settings = split_protocol_settings(config)
        try:
            self.dialects = Dialects.load()
        except DialectError as exc:
            raise BrokerConfigError(f"dialect file: {exc}") from None
        super().__init__(amqtt_config)
        self.subscription_index = SubscriptionIndex(self._subscriptions)
        # amqtt's dict, kept as the indexed kind (a typed reference for the lookups amqtt's dict lacks).
        self._retained_messages = self._retained = RetainedMessages()
        self._hub = Hub(self, settings)
        # Listener name -> its TLS context, for reloads and the client-certificate check (see _create_server_instance).
        self._tls: dict[str, ReloadableContext] = {}
        # Per client id, plugin events not yet delivered (see _fire).
        self._lanes: dict[str, deque[_LaneEvent]] = {}
        self._admission = Admission(
            tls=self._tls,
            authenticate=lambda session, listener: self._authenticate(session, self.listeners_config[listener]),
            may_publish=self._may_publish,
            connects=platform.metrics.broker_connects,
            max_queued_messages=settings.max_queued_messages,
        )
        manager = self.plugins_manager
        for event in amqtt_compat.packet_event_listeners(manager):
            raise BrokerConfigError(
                f"a plugin listens to '{event}': PlatformBroker's packet path builds no"
                " amqtt packet objects, so it does not fire packet events (docs/broker.md)"
            )
        self._auth_plugins = amqtt_compat.auth_plugins(manager)
        self._topic_plugins = amqtt_compat.topic_plugins(manager)
        # Topic plugins answer only if there are some and filtering is on (amqtt's rule, fixed at start).
        self._filtering = bool(self._topic_plugins) and manager.is_topic_filtering_enabled()

    @property
    def is_running(self) -> bool:
        return self.transitions.state == "started"

    async def start(self) -> None:
        # Broker.start clears the subscription table; the indexes beside it follow.
        self.subscription_index.clear()
        await super().start()
        self._hub.start()

    async def shutdown(self) -> None:
        await super().shutdown()
        self._hub.stop()

    async def _create_server_instance(
        self,
        listener_name: str,
        listener_type: ListenerType,
        address: str | None,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> asyncio.Server:
        """Replaces the stock version: TCP (and TLS) connections are served by ``protocol.Connection``.

        amqtt's stream and websocket paths (two tasks per connection, a task per
        packet) are not used; a websocket listener is refused. amqtt's SSL
        context (client certificates optional, checked against the system CAs
        too, no minimum version) is replaced by ``broker/tls.py``'s: TLS 1.2 at
        least, a client CA makes a certificate required, and it can be reloaded
        (``reload_tls``).
        """
        if listener_type != ListenerType.TCP:
            raise BrokerError(f"listener {listener_name!r}: only 'tcp' listeners are served by PlatformBroker")
        if ssl_context is not None:
            ssl_context = self._tls_context(listener_name)
        hub = self._hub
        return await asyncio.get_running_loop().create_server(
            lambda: Connection(hub, listener_name),
            address,
            port,
            reuse_address=True,
            ssl=ssl_context,
            # The handshake runs in the event loop without blocking it; one never finished is dropped as a
            # connection that never sends CONNECT is.
            ssl_handshake_timeout=hub.settings.connect_timeout if ssl_context is not None else None,
            backlog=LISTEN_BACKLOG,
        )

    def _tls_context(self, listener_name: str) -> ssl.SSLContext:
        listener = self.listeners_config[listener_name]
        cafile = listener.get("cafile")
        files = TlsFiles(str(listener.get("certfile")), str(listener.get("keyfile")), cafile and str(cafile))
        try:
            context = self._tls[listener_name] = ReloadableContext(files)
        except TlsConfigError as exc:
            raise BrokerError(str(exc)) from None
        return context.listener_context

    async def reload_tls(self) -> bool:
        """Load every TLS listener's certificate, key and client CA again (SIGHUP, ``serve``).

        New handshakes get the new certificate; connected devices keep their
        connection. A file that cannot be used is logged and the listener keeps
        serving what it had. True if every listener reloaded.
        """
        if not self._tls:
            log.info("TLS reload asked for, but no listener serves TLS: nothing to reload")
        reloaded = True
        for name, context in self._tls.items():
            try:
                await context.reload()
            except TlsConfigError as exc:
                log.error(
                    "TLS reload failed; still serving the previous certificate",
                    extra={"listener": name, "reason": str(exc)},
                )
                reloaded = False
            else:
                log.info("TLS certificate reloaded", extra={"listener": name, "certfile": context.files.certfile})
        return reloaded

    async def _session_monitor(self) -> None:
        """Replaces the stock monitor's once-a-second scan of every session.

        A clean or anonymous session now ends with its connection
        (``_connection_closed``); only ``session_expiry_interval``, when set,
        still needs the scan.
        """
        if self.config.session_expiry_interval is not None:
            await super()._session_monitor()

    # -- public API for the platform ---------------------------------------------------------

    def figures(self) -> BrokerFigures:
        """This broker's connections and message counts, for ``GET /metrics``.

        One pass over the sessions (3 to 5 ms per 20,000 on the 2-core test machine); messages in
        flight and queued are those of the connections awaiting a PUBACK (a
        session's queue fills only behind a full in-flight window).
        """
        hub = self._hub
        inflight = queued = 0
        for connection in hub.unacked:
            session = connection.session
            if session is not None:
                inflight += len(session.inflight_out)
                queued += len(session.queued_out or ())
        return BrokerFigures(
            connections=sum(server.conn_count for server in amqtt_compat.listener_servers(self)),
            sessions_connected=sum(
                1 for session, _ in self.sessions.values() if session.transitions.state == "connected"
            ),
            inflight=inflight,
            queued=queued,
            messages_in=hub.messages_in,
            messages_out=hub.messages_out,
            dropped=hub.dropped,
            refused_dollar=hub.refused_dollar,
        )

    def is_device_online(self, client_id: str) -> bool:
        session = self.sessions.get(client_id, (None, None))[0]
        return session is not None and session.transitions.is_connected()

    async def disconnect_client(self, client_id: str) -> bool:
        """Close the live connection of ``client_id`` because its credential stopped being valid.

        The end is handled as any other (``broker_client_disconnected`` fired,
        a clean session ends) except that the will is not published: a revoked
        credential makes the broker route nothing more on its behalf. Returns
        False when no connected session has that id.
        """
        session, handler = self.sessions.get(client_id, (None, None))
        if session is None or handler is None or not session.transitions.is_connected():
            return False
        await handler.stop()
        return True

    def connected_since(self, client_id: str) -> datetime | None:
        """When the live connection of ``client_id`` was accepted; None when it has none."""
        entry = self.sessions.get(client_id)
        if entry is None or self._live_connection(entry[0]) is None:
            return None
        return cast(DeviceSession, entry[0]).connected_at

    def downlink_room(self, client_id: str) -> int:
        """How many more QoS 1 messages ``client_id``'s connected session takes now; 0 if it is not connected.

        The outbox hands a device no more than this, so a slow reader's backlog
        stays in PostgreSQL rather than in broker memory.
        """
        entry = self.sessions.get(client_id)
        if entry is None or self._live_connection(entry[0]) is None:
            return 0
        return cast(DeviceSession, entry[0]).room(self._hub.settings.max_inflight_messages)

    def on_downlink_taken(self, callback: Callable[[str, str], None] | None) -> None:
        """``callback(client_id, key)`` whenever a client PUBACKs a message delivered with a key, even one
        ``deliver_to_client`` stopped waiting for (a slow reader PUBACKs the DUP resend much later)."""
        self._hub.keyed_puback = callback

    def holds_downlink(self, client_id: str, key: str) -> bool:
        """True while the message delivered with ``key`` is in flight or queued in ``client_id``'s session."""
        entry = self.sessions.get(client_id)
        return entry is not None and cast(DeviceSession, entry[0]).holds(key)

    async def deliver_to_client(
        self, client_id: str, topic: str, payload: bytes, qos: int = QOS_1, key: str | None = None
    ) -> bool:
        """Publish ``topic`` to ``client_id`` alone, if one of its subscriptions matches.

        No scan: the session is found by id and the topic checked against that
        session's own filters. A connected session gets the PUBLISH (QoS 2 is
        sent at QoS 1); the call returns True once the client acknowledged it
        (QoS 1) or it was written (QoS 0), False if the connection ended first
        or no PUBACK came within ``protocol.retry_interval`` (the message stays
        in flight: it is resent, and redelivered on reconnect to a persistent
        session), or if it waits in the session's queue (in-flight window full)
        or was dropped (queue full). With a ``key`` (the outbox's message id),
        a message already in flight or queued under that key is not sent again,
        and nothing is queued for an offline session: the caller is the durable
        store and delivers again on reconnect. Without one, an offline
        persistent session (clean_session=False) gets it queued for its
        reconnect, as amqtt does for broadcasts; that, or no matching
        subscription, returns False.
        """
        if has_wildcard(topic) or not topic:
            raise ValueError(f"cannot publish to topic filter {topic!r}")
        entry = self.sessions.get(client_id)
        own = self.subscription_index.filters_of(client_id)
        if entry is None or not own or not any(self._matches(topic, f) for f in own):
            return False
        session = entry[0]
        if not await self._topic_filtering(session, topic=topic, action=Action.RECEIVE):
            return False
        qos = min(qos, MAX_QOS)
        dialect = self._dialect_of(session)
        puback_ack = None
        if dialect is not None:
            puback_ack = dialect.puback_ack(client_id, topic, payload)
            rendered = dialect.outbound(client_id, topic, payload)
            if rendered is None:
                log.info("downlink not carried by the dialect", extra={"client_id": client_id, "topic": topic})
                return False
            topic, payload = rendered
            qos = min(qos, dialect.qos)
        connection = self._live_connection(session)
        if connection is None:
            if key is None and not session.clean_session and qos == QOS_1 and not session.is_anonymous:
                await self._retain_broadcast_message({"session": None, "topic": topic, "data": payload}, qos, session)
            return False
        if qos == QOS_0:
            return connection.publish(topic, payload, QOS_0, False)
        acknowledged: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not connection.publish(topic, payload, QOS_1, False, acknowledged, key):
            return False
        if not await acknowledged:
            log.info("downlink not acknowledged", extra={"client_id": client_id, "topic": topic})
            return False
        if puback_ack is not None:
            # The dialect's device acks nothing itself: its PUBACK is handled as the native ack uplink.
            ack = IncomingApplicationMessage(None, puback_ack[0], QOS_1, puback_ack[1], False)
            self._fire(client_id, BrokerEvents.MESSAGE_BROADCAST, client_id=client_id, message=ack)
        return True

    # -- subscriptions: indexed instead of scanned ---------------------------------------------

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        """Replaces ``Broker.add_subscription``: same checks and return codes, plus the indexes.

        Unlike amqtt, a repeated SUBSCRIBE to the same filter replaces the
        granted QoS, as MQTT 3.1.1 §3.8.4 requires, and QoS 2 is granted as 1
        (``MAX_QOS``).
        """
        topic_filter, qos = subscription
        if not valid_filter(topic_filter):
            return AMQTT_MAGIC_VALUE_RET_SUBSCRIBED
        if not await self._topic_filtering(session, topic_filter, Action.SUBSCRIBE):
            return AMQTT_MAGIC_VALUE_RET_SUBSCRIBED
        max_qos = self.config.get("max-qos", qos)
        qos = min(qos, max_qos if isinstance(max_qos, int) else qos, MAX_QOS)

        self.subscription_index.add(session, topic_filter, qos)
        return qos

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        """Replaces ``Broker._del_subscription``; emptied filters leave the table and the trie."""
        return int(self.subscription_index.remove(session, a_filter))

    async def _del_all_subscriptions(self, session: Session) -> None:
        """Replaces ``Broker._del_all_subscriptions``: the session's own filters, not every filter."""
        for topic_filter in list(self.subscription_index.filters_of(session.client_id or "")):
            self._del_subscription(topic_filter, session)

    # -- routing ---------------------------------------------------------------------------------

    async def _broadcast_message(
        self, session: Session | None, topic: str | None, data: bytes | bytearray | None, force_qos: int | None = None
    ) -> None:
        """Replaces the stock version, which queued the message for amqtt's broadcast loop: routed now.

        Used by ``internal_message_broadcast`` (and so plugins'
        ``context.broadcast_message``); amqtt's broadcast loop stays idle.
        """
        if topic is not None and data is not None:
            await self._route(session, topic, data, force_qos=force_qos)

    async def _route(
        self,
        source: Session | None,
        topic: str,
        data: bytes | bytearray,
        *,
        qos: int | None = None,
        force_qos: int | None = None,
    ) -> None:
        """Deliver to every matching subscription (one dict lookup plus one trie walk).

        QoS: ``force_qos`` if given (amqtt's internal broadcasts), else the
        minimum of the message's and the subscription's [MQTT-3.8.4-6], else
        the subscription's; at most 1. Per target, amqtt's rules: the RECEIVE
        topic check, and queueing for an offline persistent non-anonymous
        session at QoS 1.
        """
        for target, sub_qos in self.subscription_index.subscribers(topic):
            if self._filtering and not await self._topic_filtering(target, topic=topic, action=Action.RECEIVE):
                continue
            out_qos = force_qos if force_qos is not None else sub_qos if qos is None else min(qos, sub_qos)
            out_qos = min(out_qos, MAX_QOS)
            connection = self._live_connection(target)
            if connection is not None:
                connection.publish(topic, bytes(data), out_qos, False)
            elif not target.clean_session and out_qos and not target.is_anonymous:
                await self._retain_broadcast_message({"session": source, "topic": topic, "data": data}, out_qos, target)

    def _live_connection(self, session: Session) -> Connection | None:
        """The connection serving ``session``, unless it is offline or its connection is ending.

        A connection that received DISCONNECT (or failed) is still the
        session's until its end is handled; what a persistent session gets
        meanwhile is queued for its reconnect like any offline delivery.
        """
        if session.transitions.state != "connected":
            return None
        connection = self.sessions.get(session.client_id or "", (None, None))[1]
        return connection if isinstance(connection, Connection) and not connection.closed else None

    def _dialect_of(self, session: Session) -> Dialect | None:
        """The dialect a device session speaks (set by the device auth plugin); None for native."""
        name = session.attributes.get("dialect")
        return self.dialects.get(name) if isinstance(name, str) else None

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        """Replaces ``Broker._topic_filtering``: same verdict, without a task per plugin per call.

        amqtt wraps every topic plugin call in a task and a gather; this runs
        on every delivery, so the plugins are awaited in turn instead. As in
        amqtt, every plugin must answer truthy (None counts as a refusal).
        """
        if not self._filtering:
            return True
        for plugin in self._topic_plugins:
            if not await plugin.topic_filtering(session=session, topic=topic, action=action):
                return False
        return True

    async def _send_retained(self, connection: Connection, topic_filter: str, qos: int) -> None:
        """Retained messages matching a new subscription: RETAIN=1, at most the subscription's QoS.

        Each passes the RECEIVE check, as a routed message does.
        """
        session = connection.session
        assert session is not None
        for retained in self._retained.matching(topic_filter):
            if self._filtering and not await self._topic_filtering(
                session, topic=retained.topic, action=Action.RECEIVE
            ):
                continue
            message_qos = retained.qos if retained.qos is not None else qos
            connection.publish(retained.topic, retained.data, min(qos, message_qos), True)

    # -- plugin events ---------------------------------------------------------------------------

    def _fire(
        self, lane_id: str, event: BrokerEvents, /, *, handled: bool = False, **kwargs: Any
    ) -> asyncio.Future[None] | None:
        """Fire a client's event to the plugins, after that client's earlier events.

        amqtt's ``fire_event`` starts a task per plugin per event, so one
        device's uplinks (or its connect and disconnect) could be handled out
        of order. Here each client id has a lane: a deque drained by one task
        that exists while it is non-empty and calls the plugins in turn. The
        socket reader never waits for it; a slow plugin delays only that
        client's later events. The task is registered with the plugin manager,
        so shutdown waits for it as for amqtt's own.

        ``handled=True`` returns a future done once every plugin has handled
        the event (None when no plugin listens): what a PUBACK waits for.
        """
        callbacks = amqtt_compat.event_callbacks(self.plugins_manager, event)
        if not callbacks:
            return None
        lane = self._lanes.get(lane_id)
        if lane is None:
            lane = self._lanes[lane_id] = deque()
            amqtt_compat.track_event_task(self.plugins_manager, asyncio.ensure_future(self._run_lane(lane_id, lane)))
        done = asyncio.get_running_loop().create_future() if handled else None
        lane.append((callbacks, kwargs, done))
        return done

    async def _run_lane(self, client_id: str, lane: deque[_LaneEvent]) -> None:
        try:
            while lane:
                callbacks, kwargs, done = lane.popleft()
                try:
                    for callback in callbacks:
                        try:
                            await callback(**kwargs)
                        except Exception:
                            log.exception(
                                "plugin event handler failed",
                                extra={"client_id": client_id, "handler": getattr(callback, "__qualname__", "")},
                            )
                finally:
                    if done is not None and not done.done():
                        done.set_result(None)
        finally:
            if self._lanes.get(client_id) is lane:
                del self._lanes[client_id]

    # -- what clients send: protocol.PacketHandler, called by each Connection in its arrival order -------

    def listener_server(self, listener_name: str) -> Server | None:
        return amqtt_compat.listener_server(self, listener_name)

    def create_offline_session(self, client_id: str) -> tuple[Any, Session]:
        """Replaces the stock version: the lighter session, and no handler until a connection serves it."""
        session = DeviceSession(self._hub.settings.max_queued_messages)
        session.client_id = client_id
        session.transitions.disconnect()
        return None, session

    async def client_connect(self, connection: Connection, request: ConnectRequest) -> None:
        """CONNECT: admitted (``admission.py``: every check, and a refusal changes nothing), then installed."""
        incoming = await self._admission.admit(connection, request)
        if incoming is not None and not connection.closed:
            await self._install_session(connection, incoming)

    async def _install_session(self, connection: Connection, incoming: DeviceSession) -> None:
        """An accepted CONNECT: take over a connected session (waiting for the displaced connection's end
        to be handled), delete (clean) or resume (persistent) the existing one, then CONNACK and resend."""
        client_id = incoming.client_id or ""
        for _ in range(3):  # another CONNECT for the same id may slip in while we wait
            existing = self.sessions.get(client_id)
            if existing is None or existing[0].transitions.state != "connected":
                break
            await self._take_over(client_id, existing[1])
        if connection.closed:
            return

        session = incoming
        existing = self.sessions.get(client_id)
        if incoming.clean_session and existing is not None:
            await self._delete_session(client_id)
        elif existing is not None:
            # A resumed session keeps its subscriptions and queues but takes this CONNECT's will,
            # keep-alive and credentials, and what the auth plugins attached to it just now.
            session = cast(DeviceSession, existing[0])  # the only kind of session this broker makes
            for name in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "will_retain",
                "keep_alive",
                "username",
                "password",
                "remote_address",
                "remote_port",
                "ssl_object",
                "is_anonymous",
            ):
                setattr(session, name, getattr(incoming, name))
            session.attributes.update(incoming.attributes)
        session.parent = int(existing is not None and not incoming.clean_session)
        if session.transitions.state == "connected":
            # The displaced connection's end was not handled within TAKEOVER_TIMEOUT_S.
            session.transitions.disconnect()

        self.sessions[client_id] = (session, connection)  # type: ignore[assignment]
        session.connected_at = datetime.now(UTC)
        session.transitions.connect()
        connection.accept(session, bool(session.parent))
        self.platform.metrics.broker_connects.labels("accepted").inc()
        self._fire(client_id, BrokerEvents.CLIENT_CONNECTED, client_id=client_id, client_session=session)
        if session.parent:
            connection.resend_inflight()
            for message in session.take_offline_messages():
                # Queued for an established subscription, not retained: RETAIN=0 [MQTT-3.3.1-9].
                connection.publish(message.topic, message.data, min(message.qos or 0, MAX_QOS), False)
            for topic_filter in self.subscription_index.filters_of(client_id):
                await self._send_retained(connection, topic_filter, QOS_0)
        connection.start_reading()

    async def _authenticate(self, session: Session, listener: Any) -> bool:
        """Replaces ``Broker._authenticate``: same verdict, without a task per plugin per CONNECT.

        amqtt's ``map_plugin_auth`` wraps each ``authenticate`` call in a task
        and a gather (half of a CONNECT's cost here); the plugins are awaited
        in turn instead. As in amqtt: None abstains, at least one plugin must
        answer, and every answer must be truthy.
        """
        answers = [await plugin.authenticate(session=session) for plugin in self._auth_plugins]
        answers = [answer for answer in answers if answer is not None]
        return bool(answers) and all(answers)

    async def _take_over(self, client_id: str, handler: Any) -> None:
        log.warning("client already connected: taking over its session", extra={"client_id": client_id})
        if isinstance(handler, Connection):
            # As amqtt: the displaced connection ends as if the network failed (its will is published).
            await handler.handle_connection_closed()
            await handler.wait_closed(TAKEOVER_TIMEOUT_S)

    async def client_publish(self, connection: Connection, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """PUBLISH from a client (topic already checked by the parser): events, PUBLISH check, routing, retain."""
        session = connection.session
        assert session is not None
        client_id = session.client_id or ""
        if topic[0] == "$":
            # '$' topics are the broker's own [MQTT-4.7.2-1]: a client's is dropped here, but still PUBACKed by the
            # caller, as every QoS 1 PUBLISH is whatever becomes of it (a client would keep it in flight for ever).
            self._hub.refused_dollar += 1
            log.info("publish to a '$' topic dropped", extra={"client_id": client_id, "topic": topic[:256]})
            return
        dialect = self._dialect_of(session)
        if dialect is not None:
            translated = dialect.inbound(client_id, topic, payload)
            if isinstance(translated, Refused):
                log.warning(
                    "dialect message refused",
                    extra={
                        "client_id": client_id,
                        "dialect": dialect.id,
                        "reason": translated.reason,
                        "topic": topic[:256],
                    },
                )
                # Counted as an ACL refusal: the dialect is this device's ACL.
                self.platform.acl_denials.count(client_id)
                self.platform.metrics.acl_denials.labels("publish").inc()
                return
            topic, payload = translated
        verdict = self.platform.uplink_budget.admit(client_id, topic)
        if verdict is not Verdict.ADMIT:
            # Past the device's budget for this kind: no plugin sees it (core/devices/uplink_budget.py).
            if verdict is Verdict.DROP_TRACED:
                self.platform.uplink_writes.trace_uplink(client_id, topic, payload, qos, datetime.now(UTC))
            return
        manager = self.plugins_manager
        message = None
        if amqtt_compat.event_callbacks(manager, BrokerEvents.MESSAGE_RECEIVED) or amqtt_compat.event_callbacks(
            manager, BrokerEvents.MESSAGE_BROADCAST
        ):
            message = IncomingApplicationMessage(None, topic, qos, payload, retain)
            # As amqtt: told of every message received, even one the client may not publish.
            self._fire(client_id, BrokerEvents.MESSAGE_RECEIVED, client_id=client_id, message=message)
        if not await self._may_publish(session, topic):
            return
        handled = None
        if message is not None:
            # At QoS 1 the PUBACK (written when this returns) waits for the plugins: once a device has its
            # PUBACK, what the uplink changes (a payment's ack) is committed, so a node killed just after
            # cannot lose it while the device, holding its PUBACK, never sends it again.
            handled = self._fire(
                client_id, BrokerEvents.MESSAGE_BROADCAST, handled=qos > 0, client_id=client_id, message=message
            )
        await self._route(session, topic, payload, qos=qos)
        if retain:
            await self.retain_message(session, topic, payload, qos)
        if handled is not None:
            await handled

    async def _may_publish(self, session: Session, topic: str) -> bool:
        """The PUBLISH check, on every message a client makes the broker route: its PUBLISHes and its will."""
        if self._filtering and not await self._topic_filtering(session, topic=topic, action=Action.PUBLISH):
            log.info("publish refused by topic plugins", extra={"client_id": session.client_id, "topic": topic[:256]})
            return False
        return True

    async def _publish_will(self, session: Session) -> None:
        """The will of a connection that ended without DISCONNECT, under the same PUBLISH check as a PUBLISH.

        CONNECT already refused a will the client may not publish; checked
        again here because the rules are what holds at publication time.
        """
        topic, payload, qos = session.will_topic, session.will_message, session.will_qos or 0
        if not session.will_flag or not topic or payload is None or not await self._may_publish(session, topic):
            return
        await self._route(session, topic, payload, qos=qos)
        if session.will_retain:
            await self.retain_message(session, topic, payload, qos)

    async def client_subscribe(self, connection: Connection, packet_id: int, topics: list[tuple[str, int]]) -> None:
        """SUBSCRIBE: as amqtt's ``_handle_subscription``; retained messages at the granted QoS."""
        session = connection.session
        assert session is not None
        client_id = session.client_id or ""
        dialect = self._dialect_of(session)
        if dialect is not None:
            # The dialect's own topic stands for the device's native downlinks; any other filter meets the ACL.
            topics = [(dialect.native_filter(client_id, f) or f, qos) for f, qos in topics]
        codes = [await self.add_subscription(subscription, session) for subscription in topics]
        connection.write(encode_suback(packet_id, codes))
        for (topic_filter, qos), code in zip(topics, codes, strict=True):
            if code != AMQTT_MAGIC_VALUE_RET_SUBSCRIBED:
                self._fire(client_id, BrokerEvents.CLIENT_SUBSCRIBED, client_id=client_id, topic=topic_filter, qos=qos)
                await self._send_retained(connection, topic_filter, code)

    async def client_unsubscribe(self, connection: Connection, packet_id: int, filters: list[str]) -> None:
        """UNSUBSCRIBE: as amqtt's ``_handle_unsubscription``."""
        session = connection.session
        assert session is not None
        client_id = session.client_id or ""
        for topic_filter in filters:
            self._del_subscription(topic_filter, session)
            self._fire(client_id, BrokerEvents.CLIENT_UNSUBSCRIBED, client_id=client_id, topic=topic_filter)
        connection.write(encode_ack(UNSUBACK, packet_id))

    async def connection_closed(self, connection: Connection) -> None:
        """The end of an accepted connection: as amqtt's ``_handle_disconnect``, plus clean sessions end here.

        The will is published unless the client sent DISCONNECT (or the broker
        closed it on shutdown). If another connection has since taken the
        client id, its session is left alone.
        """
        session = connection.session
        if session is None:
            return
        client_id = session.client_id or ""
        if not connection.graceful:
            await self._publish_will(session)
        entry = self.sessions.get(client_id)
        if entry is not None and entry[1] is not connection:
            return
        session.transitions.disconnect()
        self._fire(client_id, BrokerEvents.CLIENT_DISCONNECTED, client_id=client_id, client_session=session)
        if entry is not None and (session.clean_session or session.is_anonymous):
            await self._cleanup_session(client_id)

    async def _cleanup_session(self, client_id: str) -> None:
        """Replaces the stock version: a live connection is closed and its end handled before the session goes.

        Called on shutdown, for expired sessions, and by ``connection_closed``
        for clean sessions.
        """
        handler = self.sessions.get(client_id, (None, None))[1]
        if isinstance(handler, Connection) and not handler.closed:
            await handler.stop()
            await handler.wait_closed(TAKEOVER_TIMEOUT_S)
        session = self.sessions.pop(client_id, (None, None))[0]
        if session is not None:
            await self._del_all_subscriptions(session)
            session.clear_queues()
